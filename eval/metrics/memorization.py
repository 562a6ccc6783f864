"""Memorization: how close each generated sample is to its nearest training image, against how close
held-out real images are to the training set.

Distance: root-mean-square difference of pixels scaled to [0, 1] (L2 / sqrt(H*W*3)), so figures are
comparable across sizes. Space: pixels at the evaluation size when real and held-out images are at
hand; at the fingerprint's image-bank size (32 px, box-filtered) when either comes from a fingerprint
(every set is then box-downscaled to that size). The copy rate is the share of samples closer to a
training image than the 1st percentile of the held-out images' nearest-training-image distances: an
honest generator scores about 0.01, a copying one approaches 1.
"""
from __future__ import annotations

import numpy as np
import torch

from eval.images import resize_images
from eval.keys import KEY_COPY_RATE, KEY_NN_FAKE_MEDIAN, KEY_NN_HELDOUT_MEDIAN, KEY_NN_THRESHOLD
from eval.registry import MetricUnavailable, register_metric

MIN_HELDOUT = 100  # below 100 images the 1st percentile is an extrapolation from the minimum
PERCENTILE = 1.0
KEEP_PAIRS = 8


def _flat(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).reshape(len(x), -1).to(torch.float32) / 255.0


def nearest_neighbours(queries: np.ndarray, bank: np.ndarray, batch: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each uint8 image in ``queries`` (N, S, S, 3), its nearest image in ``bank`` (M, S, S, 3).

    Returns (distance float64 (N,), index int64 (N,)); distance is the RMS pixel difference on [0, 1],
    recomputed exactly (float64) for the chosen neighbour. Does not depend on ``batch``.
    """
    if queries.shape[1:] != bank.shape[1:]:
        raise ValueError(f"nearest_neighbours: image shapes differ {queries.shape[1:]} vs {bank.shape[1:]}")
    b = _flat(bank)
    b2 = (b * b).sum(1)
    idx = np.empty(len(queries), np.int64)
    for s in range(0, len(queries), batch):
        q = _flat(queries[s:s + batch])
        d2 = (q * q).sum(1, keepdim=True) + b2[None] - 2 * q @ b.T
        idx[s:s + len(q)] = d2.argmin(1).numpy()
    diff = queries.reshape(len(queries), -1).astype(np.float64) - bank[idx].reshape(len(queries), -1)
    dist = np.sqrt(np.mean((diff / 255.0) ** 2, axis=1))
    return dist, idx


def copy_rate(nn_fake: np.ndarray, nn_heldout: np.ndarray, percentile: float = PERCENTILE) -> tuple[float, float, np.ndarray]:
    """(copy rate, threshold, per-sample flags): the share of ``nn_fake`` below the ``percentile``-th
    percentile of ``nn_heldout``."""
    thr = float(np.percentile(nn_heldout, percentile))
    flags = nn_fake < thr
    return float(flags.mean()) if len(flags) else float("nan"), thr, flags


def copy_summary(nn_fake: np.ndarray, idx_fake: np.ndarray, nn_heldout: np.ndarray, fake_names: list[str],
                 train_names: list[str], keys: tuple[str, str, str, str]) -> tuple[dict, list[dict], np.ndarray, np.ndarray]:
    """The copy-rate protocol on nearest-training distances, in any space.

    Args:
        nn_fake, idx_fake: each sample's nearest-training distance and that training image's index.
        nn_heldout: each held-out image's nearest-training distance.
        fake_names, train_names: names by index, for the closest pairs.
        keys: result keys of (copy rate, samples' median distance, held-out median, threshold).

    Returns:
        (values {key: number}, closest pairs (up to ``KEEP_PAIRS`` dicts, closest first), their sample
        indices, the per-sample copy flags).
    """
    rate, thr, flags = copy_rate(nn_fake, nn_heldout)
    order = np.argsort(nn_fake, kind="stable")[:KEEP_PAIRS]
    closest = [{"fake_index": int(i), "fake_name": fake_names[i], "train_index": int(idx_fake[i]),
                "train_name": train_names[idx_fake[i]], "distance": float(nn_fake[i])} for i in order]
    values = dict(zip(keys, (rate, float(np.median(nn_fake)), float(np.median(nn_heldout)), thr)))
    return values, closest, order, flags


def _bank(s, what: str):
    """(images, names, from_fingerprint) of a set for nearest-neighbour search."""
    if s.images is not None:
        return s.images, s.names, False
    fp = s.fingerprint
    if fp is None or fp.nn_bank is None or len(fp.nn_bank) == 0:
        raise MetricUnavailable(f"memorization needs the {what} images: the {s.role} fingerprint has no image bank")
    return fp.nn_bank, fp.bank_names, True


@register_metric("memorization", keys=(KEY_COPY_RATE,), label="Copy rate", better="lower",
                 needs_heldout=True,
                 description="Share of samples closer to a training image than 99% of held-out real images "
                             "are (32 px, RMS pixel distance); about 0.01 is honest, near 1 means copying.",
                 sees="near-copies of training images",
                 misses="copies that are shifted, flipped or recoloured; semantic copying")
def memorization(real, fake, cfg) -> dict:
    """Share of samples closer to a training image than 99% of held-out real images are (copy rate)."""
    heldout = cfg.heldout
    if heldout is None:  # evaluate() says so before calling (needs_heldout); this guards direct calls
        raise MetricUnavailable("memorization needs a held-out real set")
    fake_imgs = fake.require_images("memorization")
    if len(fake_imgs) < 1:
        raise MetricUnavailable("fake set has no images")
    train, train_names, t_fp = _bank(real, "training")
    held, _, h_fp = _bank(heldout, "held-out")
    if len(held) < MIN_HELDOUT:
        raise MetricUnavailable(f"held-out set has {len(held)} images; the 1st-percentile threshold "
                                f"needs at least {MIN_HELDOUT}")
    if len(train) < 1:
        raise MetricUnavailable("training set has no images")
    size = min(train.shape[1], held.shape[1], fake_imgs.shape[1])
    # Fingerprint banks are box-downscaled; bring every set to the smallest size the same way.
    train, held, q = (resize_images(a, size, "box") for a in (train, held, fake_imgs))
    nn_fake, idx_fake = nearest_neighbours(q, train)
    nn_held, _ = nearest_neighbours(held, train)
    values, closest, order, flags = copy_summary(nn_fake, idx_fake, nn_held, fake.names, train_names,
                                                 (KEY_COPY_RATE, KEY_NN_FAKE_MEDIAN, KEY_NN_HELDOUT_MEDIAN, KEY_NN_THRESHOLD))
    return {
        **values,
        "_config": {"space": f"pixel_{size}", "distance": "rms_01", "percentile": PERCENTILE,
                    "n_train": len(train), "n_heldout": len(held), "n_fake": len(q),
                    "train_from": "fingerprint bank" if t_fp else "images",
                    "heldout_from": "fingerprint bank" if h_fp else "images"},
        "_details": {"closest": closest},
        "_extras": {"closest_fake": q[order], "closest_train": train[idx_fake[order]],
                    "nn_fake": nn_fake, "nn_heldout": nn_held, "copy_flags": flags, "nn_index": idx_fake},
    }
