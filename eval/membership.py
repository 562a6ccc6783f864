"""Membership-inference statistics: pure functions of per-image attack scores (higher = likelier a
member), shared by the audits of :mod:`eval.privacy` and :mod:`eval.audit`.

* :func:`tpr_at_fpr` — the true-positive rate at a fixed low false-positive rate, the figure the
  membership-inference literature reports since Carlini et al. 2022 ("Membership Inference Attacks From
  First Principles"), with an exact (Clopper-Pearson) interval; "not estimable" where the non-members
  are too few for that rate.
* :func:`roc_points` — the ROC curve thinned for a log-axis plot.
* :func:`permutation_null` — the AUC and TPR when member/non-member labels are shuffled: what "no
  signal" looks like at these sample sizes.
* :func:`domias_scores` — DOMIAS (van Breugel et al. 2023): the ratio of the synthetic samples' density
  to the reference (non-member) images' density at each image, k-NN estimates, cross-fitted.
* :func:`copy_share` — how many synthetic samples lie closer to a training image than that image's
  nearest other training image: copies a person would call copies, beside the same share for
  non-member images as its base rate.
"""
from __future__ import annotations

import numpy as np
import torch

FPRS = (0.01, 0.001)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact binomial interval for ``k`` successes in ``n`` trials."""
    from scipy.stats import beta

    if n <= 0:
        raise ValueError("clopper_pearson needs n >= 1")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def tpr_at_fpr(member: np.ndarray, nonmember: np.ndarray, fpr: float) -> dict:
    """TPR at a false-positive rate of at most ``fpr``: the threshold is the lowest score that at most
    ``floor(fpr * n_nonmembers)`` non-members exceed (strictly), the TPR the share of members above it,
    with its Clopper-Pearson 95% interval over the members (the threshold taken as fixed).

    Estimable only when ``fpr * n_nonmembers >= 1`` (at least one non-member may lie above the
    threshold); otherwise ``{"estimable": False, "reason": "not estimable at n = ..."}``.
    """
    member, nonmember = np.asarray(member, np.float64), np.asarray(nonmember, np.float64)
    n_non = len(nonmember)
    allowed = int(np.floor(fpr * n_non + 1e-9))
    if allowed < 1:
        return {"fpr": fpr, "estimable": False,
                "reason": f"not estimable at n = {n_non} non-members (needs at least {int(np.ceil(1 / fpr))})"}
    srt = np.sort(nonmember)[::-1]
    # Scores strictly above the threshold: at most `allowed` non-members. Ties at the threshold count
    # as negatives for everyone, so the realised FPR can only be lower.
    threshold = srt[allowed]
    fp = int((nonmember > threshold).sum())
    tp = int((member > threshold).sum())
    lo, hi = clopper_pearson(tp, len(member))
    return {"fpr": fpr, "estimable": True, "tpr": tp / len(member), "ci95": [lo, hi], "threshold": float(threshold),
            "true_positives": tp, "false_positives": fp, "realised_fpr": fp / n_non,
            "n_members": len(member), "n_nonmembers": n_non}


def roc_points(member: np.ndarray, nonmember: np.ndarray, n: int = 60) -> dict:
    """The ROC curve at ``n`` false-positive rates spaced logarithmically from ``1 / n_nonmembers`` to 1
    (TPR at each, by :func:`tpr_at_fpr`'s rule): small enough to store, dense where log axes need it."""
    n_non = len(nonmember)
    fprs = np.unique(np.r_[np.geomspace(1.0 / n_non, 1.0, n), 1.0])
    srt_non = np.sort(np.asarray(nonmember, np.float64))[::-1]
    member = np.asarray(member, np.float64)
    out_fpr, out_tpr = [], []
    for f in fprs:
        allowed = int(np.floor(f * n_non + 1e-9))
        if allowed >= n_non:
            out_fpr.append(1.0)
            out_tpr.append(1.0)
            continue
        t = srt_non[allowed]
        out_fpr.append(float((srt_non > t).sum() / n_non))
        out_tpr.append(float((member > t).sum() / len(member)))
    return {"fpr": out_fpr, "tpr": out_tpr}


def auc(member: np.ndarray, nonmember: np.ndarray) -> float:
    """ROC AUC, members positive (ties one half)."""
    from sklearn.metrics import roc_auc_score

    scores = np.r_[member, nonmember]
    return float(roc_auc_score(np.r_[np.ones(len(member)), np.zeros(len(nonmember))], scores))


def permutation_null(member: np.ndarray, nonmember: np.ndarray, B: int = 200, seed: int = 0,
                     fpr: float = 0.01) -> dict:
    """AUC and TPR at ``fpr`` over ``B`` shuffles of the member/non-member labels (group sizes kept):
    mean and 95% range. Centred on 0.5 and ``fpr`` by construction; its width is the noise floor."""
    rng = np.random.default_rng(seed)
    scores = np.r_[member, nonmember].astype(np.float64)
    m = len(member)
    aucs, tprs = [], []
    for _ in range(B):
        perm = rng.permutation(len(scores))
        a, b = scores[perm[:m]], scores[perm[m:]]
        aucs.append(auc(a, b))
        t = tpr_at_fpr(a, b, fpr)
        if t["estimable"]:
            tprs.append(t["tpr"])
    out = {"permutations": B, "auc_mean": float(np.mean(aucs)),
           "auc_range95": [float(v) for v in np.percentile(aucs, [2.5, 97.5])]}
    if tprs:
        out.update({"fpr": fpr, "tpr_mean": float(np.mean(tprs)),
                    "tpr_range95": [float(v) for v in np.percentile(tprs, [2.5, 97.5])]})
    return out


def nearest_distances(queries: np.ndarray, bank: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distance from each row of ``queries`` (Q, D) to its nearest row of ``bank`` (N, D), and
    that row's index; float32 arithmetic, exact up to rounding."""
    q = torch.from_numpy(np.ascontiguousarray(queries, np.float32))
    qq = (q * q).sum(1, keepdim=True)
    best = torch.full((len(q),), float("inf"))
    arg = torch.zeros(len(q), dtype=torch.long)
    for i in range(0, len(bank), chunk):
        b = torch.from_numpy(np.ascontiguousarray(bank[i:i + chunk], np.float32))
        d2 = (qq + (b * b).sum(1)[None] - 2 * q @ b.T).clamp_(min=0)
        m, a = d2.min(1)
        better = m < best
        best = torch.where(better, m, best)
        arg = torch.where(better, a + i, arg)
    return best.sqrt().numpy().astype(np.float64), arg.numpy()


def knn_radius(queries: np.ndarray, bank: np.ndarray, k: int, exclude_self: bool = False) -> np.ndarray:
    """Distance from each query to its k-th nearest row of ``bank`` (Euclidean); ``exclude_self`` skips
    the first neighbour (the query itself, when ``queries`` is ``bank``)."""
    q = torch.from_numpy(np.ascontiguousarray(queries, np.float32))
    b = torch.from_numpy(np.ascontiguousarray(bank, np.float32))
    kk = k + int(exclude_self)
    if len(b) < kk:
        raise ValueError(f"k-NN with k = {k} needs at least {kk} reference rows, got {len(b)}")
    out = []
    for i in range(0, len(q), 1024):
        d = torch.cdist(q[i:i + 1024].double(), b.double())
        out.append(d.topk(kk, dim=1, largest=False).values[:, -1])
    return torch.cat(out).numpy()


def domias_scores(member_feats: np.ndarray, nonmember_feats: np.ndarray, synthetic_feats: np.ndarray,
                  k: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """DOMIAS membership scores, cross-fitted: the log of the k-NN density of the synthetic samples over
    the k-NN density of a reference set of non-members, at each image. The non-members are split in two
    seeded halves; each half is scored with the other as reference (so no image is its own reference),
    and members get the mean of their scores under the two references.

    With the k-NN density ``p(x) ~ k / (N * V_d * r_k(x)^d)``, the log ratio is
    ``d * (log r_ref(x) - log r_syn(x)) + log(N_ref / N_syn)``; the constant does not change a ranking,
    and neither does the factor ``d``, so the score is ``log r_ref(x) - log r_syn(x)``.

    Returns:
        (member scores, non-member scores): higher = likelier a member.
    """
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(nonmember_feats))
    halves = perm[: len(perm) // 2], perm[len(perm) // 2:]
    log_syn_m = np.log(knn_radius(member_feats, synthetic_feats, k))
    log_syn_n = np.log(knn_radius(nonmember_feats, synthetic_feats, k))
    member_scores = np.zeros(len(member_feats))
    nonmember_scores = np.zeros(len(nonmember_feats))
    for evaluated, reference in (halves, halves[::-1]):
        ref = nonmember_feats[reference]
        member_scores += (np.log(knn_radius(member_feats, ref, k)) - log_syn_m) / 2
        nonmember_scores[evaluated] = np.log(knn_radius(nonmember_feats[evaluated], ref, k)) - log_syn_n[evaluated]
    return member_scores, nonmember_scores


def copy_share(synthetic: np.ndarray, members: np.ndarray, nonmembers: np.ndarray) -> dict:
    """Copies a person would call copies, in one feature space (rows are vectors, Euclidean):

    * ``synthetic``: the share of synthetic samples closer to their nearest member than that member is to
      its nearest other member;
    * ``nonmember_base_rate``: the same share for non-member images, what an image of the same
      distribution that the model never saw scores.
    """
    own = knn_radius(members, members, 1, exclude_self=True)
    ds, js = nearest_distances(synthetic, members)
    dn, jn = nearest_distances(nonmembers, members)
    close_s = ds < own[js]
    close_n = dn < own[jn]
    return {"synthetic": float(close_s.mean()), "synthetic_count": int(close_s.sum()), "n_synthetic": len(synthetic),
            "nonmember_base_rate": float(close_n.mean()), "nonmember_count": int(close_n.sum()),
            "n_nonmembers": len(nonmembers)}
