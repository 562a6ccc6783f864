"""Classifier two-sample tests (C2ST): can a classifier tell the generated lesions from held-out real ones?

Lopez-Paz & Oquab, "Revisiting Classifier Two-Sample Tests", ICLR 2017: mix n generated and n real
images, train a classifier to tell them apart, and read its accuracy on images it did not train on.
0.5 means it cannot (chance), 1.0 that it always can. Two forms, registered as metrics:

    c2st_derm    an MLP (standardised inputs, 64 ReLU units, L2 alpha 1.0 as scikit-learn's MLPClassifier
                 counts it, 200 full-batch Adam steps; :data:`MLP`) on the dermoscopy encoder's 128-d
                 features (derm1, eval.metrics.derm)
    c2st_pixel   the utility classifier's CNN (eval.classifier.SmallCNN and its training recipe, at width 4
                 and 150 steps: :data:`PIXEL_RECIPE`), trained from scratch on 64 px pixels (other sizes
                 resized with lanczos)

Protocol, both forms (:func:`two_sample_test`):

* The real side is the HELD-OUT real set (``evaluate(heldout=...)``; in ``eval.run``, the ISIC 2017
  validation split), never the training split: the generator was fitted to those images. A held-out
  set that is a training split (by its split, or its fingerprint's) is refused with the reason.
* Balanced classes: n = min(held-out images, samples) per side; the real side is n held-out images
  (all of them when there are no more samples than that), the generated side ``draws`` disjoint seeded
  draws of n samples (c2st_derm: 3 when there are 3n samples, fewer otherwise; c2st_pixel: 1, for cost),
  each tested against the same real n. Numbers are means over the draws.
* Stratified k-fold (k = 5, shuffled, seeded): every image gets P(generated) from a classifier that
  did not see it. Accuracy: share of those out-of-fold predictions on the right side of 0.5 (ties
  count half), the headline; AUC: the Mann-Whitney AUC of the same predictions.
* 95% interval of the accuracy: percentile bootstrap (1,000 resamples, seeded) over the pooled
  out-of-fold predictions, resampling the real images and each draw's samples separately (a real
  image keeps its predictions from every draw together). It covers which test images were drawn,
  not the classifiers' training randomness (``eval.run --seeds`` shows that as the sd).
* The REAL-VS-REAL FLOOR (``*_floor`` keys): the same test, same seed, same n, with the real
  reference set (``real``; in ``eval.run`` the training split) in place of the samples, both sides
  real. It is what "cannot tell" reads at this n with this classifier: ISIC 2017's validation split
  differs a little from its training split (class shares, acquisition), so it sits above 0.5. Read
  every value against its floor.

Where the floor's training pixels come from (c2st_pixel): the real set's own images when it has them
(``--real DATA``); when the real set is a fingerprint (``eval.run`` on checkpoints), the training split
of the data set the held-out images were read from (``--heldout DATA/ISIC-2017_Validation_Data``),
used only when its image names are exactly the fingerprint's. Otherwise the floor is unavailable
(``result["unavailable"]["c2st_pixel_floor"]`` says why) and the value stands alone: a fingerprint's
128 thumbnails are fewer than the 150 held-out images, and its 32 px bank is not the same pixels.

Keys, for form in (derm, pixel) (``eval.keys.key_c2st``):

    c2st_<form>            accuracy (headline; lower is better, 0.5 is the goal)
    c2st_<form>_auc        AUC of the out-of-fold predictions
    c2st_<form>_lo95/_hi95 the accuracy's 95% bootstrap interval
    c2st_<form>_floor, c2st_<form>_floor_auc, _floor_lo95, _floor_hi95: the same for the floor
"""
from __future__ import annotations

import contextlib
import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from eval.classifier import RecipeConfig
from eval.keys import KEY_C2ST_DERM, KEY_C2ST_DERM_FLOOR, KEY_C2ST_PIXEL, KEY_C2ST_PIXEL_FLOOR, key_c2st
from eval.metrics import derm
from eval.registry import MetricUnavailable, register_metric

K_FOLDS = 5
BOOTSTRAP = 1000
DERM_DRAWS = 3
PIXEL_DRAWS = 1
PIXEL_SIZE = 64
MIN_IMAGES = 20  # per side: k = 5 folds of at least 4 images each
# c2st_derm's MLP: scikit-learn's MLPClassifier's model (ReLU, L2 alpha) trained full-batch in torch: a
# third of MLPClassifier's time on a busy 2-core CPU, accuracies within 0.02 of it on the shipped models.
MLP = {"hidden": 64, "alpha": 1.0, "lr": 1e-2, "steps": 200}
# The utility classifier's recipe (eval.classifier) made cheap enough for eval.run on a CPU: width 4
# (4-8-16-32 channels, 6 k parameters), batch 32, 150 steps (20 epochs of a fold's 240 training images):
# 10-70 s per test on one thread of a 2-core CPU shared with other work. More steps still raise the
# accuracy on the shipped models (dcgan: 0.82 at 100 steps, 0.85 at 150, 0.88 at 200), so the value is
# a lower bound on what a longer-trained classifier would find; the floor barely moves (0.57-0.58).
PIXEL_RECIPE = RecipeConfig(steps=150, batch=32, width=4)

FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class C2STResult:
    """One two-sample test: accuracy (mean over draws), AUC, the accuracy's 95% interval, n per side,
    the number of draws."""

    accuracy: float
    auc: float
    lo95: float
    hi95: float
    n: int
    draws: int

    def keys(self, form: str, floor: bool = False) -> dict[str, float]:
        """The result keys of this test for ``form`` ("derm", "pixel"), the floor's with ``floor``."""
        return {key_c2st(form, floor=floor): self.accuracy, key_c2st(form, "auc", floor): self.auc,
                key_c2st(form, "lo95", floor): self.lo95, key_c2st(form, "hi95", floor): self.hi95}


# -- the test --------------------------------------------------------------------------------------

def _seed(*parts: int) -> int:
    """A 31-bit seed derived from ``parts`` (numpy's SeedSequence), for sklearn and torch."""
    return int(np.random.default_rng([int(p) for p in parts]).integers(2 ** 31 - 1))


def draw_indices(n_real: int, n_other: int, seed: int, max_draws: int) -> tuple[np.ndarray, np.ndarray]:
    """(real indices (n,), other indices (draws, n)): n = min(n_real, n_other) real items (all when
    n_real == n) and up to ``max_draws`` disjoint draws of n others, seeded."""
    n = min(n_real, n_other)
    rng = np.random.default_rng([seed, 1])
    real = np.arange(n) if n_real == n else np.sort(rng.choice(n_real, n, replace=False))
    draws = max(1, min(max_draws, n_other // n))
    return real, rng.permutation(n_other)[:draws * n].reshape(draws, n)


def out_of_fold(x_real: np.ndarray, x_other: np.ndarray, fit_predict: FitPredict, k: int,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """P(other) of every item from a classifier trained on the other folds of a stratified, shuffled
    k-fold split (label 0 real, 1 other): (p_real (n,), p_other (n,))."""
    from sklearn.model_selection import StratifiedKFold

    n = len(x_real)
    x = np.concatenate([x_real, x_other])
    y = np.r_[np.zeros(n, np.int64), np.ones(len(x_other), np.int64)]
    p = np.empty(len(x), np.float64)
    folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=_seed(seed, 2))
    for i, (tr, te) in enumerate(folds.split(np.zeros(len(y)), y)):
        p[te] = fit_predict(x[tr], y[tr], x[te], _seed(seed, 3, i))
    return p[:n], p[n:]


def accuracy(p_real: np.ndarray, p_other: np.ndarray) -> np.ndarray:
    """Balanced accuracy of P(other) thresholded at 0.5 (ties count half), over the last axis."""
    right_real = np.where(p_real == 0.5, 0.5, p_real < 0.5)
    right_other = np.where(p_other == 0.5, 0.5, p_other > 0.5)
    return (right_real.mean(-1) + right_other.mean(-1)) / 2


def auc(p_real: np.ndarray, p_other: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC (P(other scores above real), ties half) over the last axis."""
    from scipy.stats import rankdata

    n, m = p_real.shape[-1], p_other.shape[-1]
    ranks = rankdata(np.concatenate([p_real, p_other], -1), axis=-1)
    return (ranks[..., n:].sum(-1) - m * (m + 1) / 2) / (n * m)


def bootstrap_interval(p_real: np.ndarray, p_other: np.ndarray, seed: int, resamples: int = BOOTSTRAP,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the mean-over-draws accuracy of out-of-fold predictions ``p_real`` (D, n)
    and ``p_other`` (D, m): each resample draws n real images (the same ones in every draw) and m of
    each draw's others, with replacement."""
    d, n = p_real.shape
    m = p_other.shape[1]
    rng = np.random.default_rng([seed, 4])
    ir = rng.integers(0, n, (resamples, n))
    io = rng.integers(0, m, (resamples, d, m))
    acc_real = np.where(p_real == 0.5, 0.5, p_real < 0.5)[:, ir]                      # (D, B, n)
    acc_other = np.where(p_other == 0.5, 0.5, p_other > 0.5)[np.arange(d)[None, :, None], io]  # (B, D, m)
    stats = (acc_real.mean(-1).mean(0) + acc_other.mean(-1).mean(1)) / 2
    q = (1 - level) / 2
    lo, hi = np.quantile(stats, [q, 1 - q])
    return float(lo), float(hi)


def two_sample_test(real: np.ndarray, other: np.ndarray, fit_predict: FitPredict, *, seed: int = 0,
                    k: int = K_FOLDS, draws: int = 1, resamples: int = BOOTSTRAP) -> C2STResult:
    """A classifier two-sample test of ``real`` against ``other`` (arrays of items, first axis the item).

    Args:
        real: the real side (held-out images or their features).
        other: the other side (generated samples; for the floor, real reference images).
        fit_predict: ``(x_train, y_train, x_test, seed) -> P(label 1) of x_test``; label 1 is ``other``.
        seed: drives the draws, the folds, the classifiers and the bootstrap.
        k: folds of the stratified k-fold split.
        draws: at most this many disjoint draws of n others, each against the same n real items.
        resamples: bootstrap resamples for the 95% interval.

    Returns:
        :class:`C2STResult` (accuracy and AUC averaged over draws).
    """
    ri, oi = draw_indices(len(real), len(other), seed, draws)
    x_real = real[ri]
    p_real = np.empty(oi.shape)
    p_other = np.empty(oi.shape)
    for d, idx in enumerate(oi):
        p_real[d], p_other[d] = out_of_fold(x_real, other[idx], fit_predict, k, _seed(seed, 5, d))
    lo, hi = bootstrap_interval(p_real, p_other, seed, resamples)
    return C2STResult(accuracy=float(accuracy(p_real, p_other).mean()), auc=float(auc(p_real, p_other).mean()),
                      lo95=lo, hi95=hi, n=len(ri), draws=len(oi))


# Tests kept per process by the content of both sides, the classifier, the seed and the draws: a floor
# (the same two real sets for every model scored with a seed, every row of the validity table) is
# trained once.
_TESTS: dict[tuple, C2STResult] = {}


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(f"{a.shape} {a.dtype}".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def kept_test(real: np.ndarray, other: np.ndarray, fit_predict: FitPredict, classifier: str, *, seed: int,
              draws: int) -> C2STResult:
    """:func:`two_sample_test`, or its result from an earlier call on the same data (``classifier`` names
    the classifier and its settings)."""
    key = (_digest(real, other), classifier, seed, draws, K_FOLDS, BOOTSTRAP)
    if key not in _TESTS:
        if len(_TESTS) >= 64:
            _TESTS.clear()
        _TESTS[key] = two_sample_test(real, other, fit_predict, seed=seed, draws=draws)
    return _TESTS[key]


# -- the two classifiers ---------------------------------------------------------------------------

@contextlib.contextmanager
def one_torch_thread():
    """Run torch on one thread: the MLP's matrices are tiny (240 x 128), and threads waiting for a core on
    a busy CPU made it five times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def mlp_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    """c2st_derm's classifier (:data:`MLP`): features standardised by the training fold's mean and sd, one
    hidden layer of ReLU units, logistic loss plus scikit-learn's L2 penalty ``alpha / (2 n) * sum(W**2)``,
    full-batch Adam; Glorot-uniform initial weights drawn from ``seed``. P(label 1) of ``x_test``; on one
    torch thread."""
    with one_torch_thread():
        return _mlp(x_train, y_train, x_test, seed)


def _mlp(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    import torch

    mu, sd = x_train.mean(0), x_train.std(0) + 1e-8
    x = torch.from_numpy(((x_train - mu) / sd).astype(np.float32))
    y = torch.from_numpy(np.asarray(y_train, np.float32))
    gen = torch.Generator().manual_seed(seed)
    layers = [torch.nn.Linear(x.shape[1], MLP["hidden"]), torch.nn.Linear(MLP["hidden"], 1)]
    with torch.no_grad():
        for layer in layers:
            bound = (6.0 / (layer.in_features + layer.out_features)) ** 0.5
            layer.weight.uniform_(-bound, bound, generator=gen)
            layer.bias.uniform_(-bound, bound, generator=gen)
    net = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1])
    opt = torch.optim.Adam(net.parameters(), lr=MLP["lr"])
    for _ in range(MLP["steps"]):
        penalty = sum((layer.weight ** 2).sum() for layer in layers) * MLP["alpha"] / (2 * len(x))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x)[:, 0], y) + penalty
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        x_test = torch.from_numpy(((x_test - mu) / sd).astype(np.float32))
        return torch.sigmoid(net(x_test)[:, 0]).double().numpy()


def cnn_fit_predict(recipe: RecipeConfig) -> FitPredict:
    """c2st_pixel's classifier: ``eval.classifier.train_classifier`` with ``recipe`` on uint8 NHWC
    images, two classes; P(label 1) from ``predict_proba``."""
    import torch

    from eval.classifier import predict_proba, train_classifier

    def nchw(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()

    def fit_predict(x_train, y_train, x_test, seed):
        net = train_classifier(nchw(x_train), y_train, 2, seed, recipe)
        return predict_proba(net, nchw(x_test))[:, 1].astype(np.float64)

    return fit_predict


# -- what the metrics read -------------------------------------------------------------------------

def _split(s) -> str | None:
    """The data set split a set was read from: its own, else its fingerprint's."""
    if s.split:
        return s.split
    fp = getattr(s, "fingerprint", None)
    return (fp.meta.get("split") if fp is not None else None) or None


def _name(s) -> str:
    """A set named without machine paths: its kind, split, count and the last part of its source."""
    split = _split(s)
    return f"{s.kind} {Path(str(s.source)).name or s.source}" + (f" ({split} split)" if split else "") + \
        f", {s.count} images"


def heldout_set(cfg, metric: str):
    """The held-out set a C2ST reads as its real side, or ``MetricUnavailable`` saying why there is none."""
    h = cfg.heldout
    if h is None:  # evaluate() says so before calling (needs_heldout); this guards direct calls
        raise MetricUnavailable(f"{metric} needs a held-out real set (--heldout PATH)")
    if _split(h) == "train":
        raise MetricUnavailable(f"{metric}: the held-out set is a training split ({_name(h)}); the generator was "
                                f"fitted to those images, so give held-out ones (e.g. ISIC 2017's validation split)")
    if h.count < MIN_IMAGES:
        raise MetricUnavailable(f"{metric}: the held-out set has {h.count} images; the {K_FOLDS}-fold test needs at "
                                f"least {MIN_IMAGES}")
    return h


def _require_samples(fake, metric: str) -> None:
    if fake.count < MIN_IMAGES:
        raise MetricUnavailable(f"{metric}: {fake.count} generated images; the {K_FOLDS}-fold test needs at least "
                                f"{MIN_IMAGES}")


def _protocol(result: C2STResult, **extra) -> dict:
    return {"k": K_FOLDS, "n_per_side": result.n, "draws": result.draws, "threshold": 0.5,
            "interval": f"95% percentile bootstrap over the out-of-fold predictions ({BOOTSTRAP} resamples; real "
                        "images and each draw's samples resampled separately)", **extra}


_SEES = ("anything that lets a classifier pick samples out of a mix with unseen real lesions, judged on images it "
         "did not train on; read it against its real-vs-real floor")


@register_metric("c2st_derm", keys=(KEY_C2ST_DERM, KEY_C2ST_DERM_FLOOR), label="C2ST derm", better="lower",
                 needs_heldout=True,
                 description="Held-out accuracy of an MLP telling generated from held-out real images by their "
                             "dermoscopy-encoder features (5-fold, 150 a side; Lopez-Paz & Oquab 2017): 0.5 cannot "
                             "tell; beside the same test on real training vs held-out images (the floor).",
                 sees=_SEES + "; lesion appearance as the encoder sees it, including what FD's two moments miss",
                 misses="what the encoder does not tell apart; " + derm.WEAKNESS + "; memorised training "
                        "images look real to it")
def c2st_derm(real, fake, cfg) -> dict:
    """Classifier two-sample test (MLP) in the dermoscopy encoder's feature space, with its floor."""
    held = heldout_set(cfg, "c2st_derm")
    _require_samples(fake, "c2st_derm")
    enc = derm.require_encoder(cfg)
    f_held, f_fake = derm.set_features(held, enc, cfg), derm.set_features(fake, enc, cfg)
    out: dict = {}
    with derm.one_blas_thread():
        value = kept_test(f_held, f_fake, mlp_fit_predict, repr(MLP), seed=cfg.seed, draws=DERM_DRAWS)
        out.update(value.keys("derm"))
        try:
            floor = kept_test(f_held, derm.set_features(real, enc, cfg), mlp_fit_predict, repr(MLP), seed=cfg.seed,
                              draws=DERM_DRAWS)
            out.update(floor.keys("derm", floor=True))
            floor_info = {"n_per_side": floor.n, "draws": floor.draws, "other": _name(real)}
        except MetricUnavailable as e:
            out["_unavailable"] = {KEY_C2ST_DERM_FLOOR: f"the real-vs-real floor: {e}"}
            floor_info = None
    out["_config"] = _protocol(value, classifier=f"MLP {MLP} on standardised features",
                               metric_version=enc.metric_version, encoder_sha256=enc.sha256,
                               heldout=_name(held), floor=floor_info)
    return out


def training_pixels(real, held, cfg) -> tuple[np.ndarray, str]:
    """(uint8 NHWC images at the evaluation size, where they came from) of the real reference set, for
    c2st_pixel's floor; ``MetricUnavailable`` saying why there are none (see the module docstring)."""
    if real.images is not None:
        return real.images, _name(real)
    fp = real.fingerprint
    why = (f"the real set is a fingerprint without its images ({_name(real)}; its thumbnails are fewer than the "
           f"held-out images and its bank is at 32 px)")
    if held.kind != "dataset" or _split(held) is None:
        raise MetricUnavailable(f"{why}, and the held-out images come from no data set with a training split: pass "
                                f"--real DATA, or --heldout DATA/ISIC-2017_Validation_Data")
    from gan.data import load_dataset

    root = Path(held.source)
    root = root.parent if root.name.endswith("_Data") else root
    try:
        ds = load_dataset(root, size=cfg.size, split="train", progress=False)
    except ValueError:  # its message names this machine's folders: the reason says what is missing instead
        raise MetricUnavailable(f"{why}, and the held-out images' data set ({root.name}) has no training split to "
                                f"read") from None
    names = list(fp.names) if fp is not None else []
    if sorted(ds.names) != sorted(names):
        raise MetricUnavailable(f"{why}; the training split beside the held-out images ({len(ds.names)} images) is "
                                f"not the one the fingerprint was made from ({len(names)} images)")
    images = ds.images.permute(0, 2, 3, 1).contiguous().numpy()
    return images, f"{held.kind} {root.name} (train split, {len(images)} images; names match the fingerprint's)"


def _at_pixel_size(x: np.ndarray, resize: str) -> np.ndarray:
    from eval.images import resize_images

    return resize_images(x, PIXEL_SIZE, resize)


@register_metric("c2st_pixel", keys=(KEY_C2ST_PIXEL, KEY_C2ST_PIXEL_FLOOR), label="C2ST pixel", better="lower",
                 needs_heldout=True,
                 description="Held-out accuracy of a small CNN trained from scratch to tell generated from held-out "
                             "real 64 px images (5-fold, 150 a side; Lopez-Paz & Oquab 2017): 0.5 cannot tell; "
                             "beside the same test on real training vs held-out images (the floor).",
                 sees=_SEES + "; pixel-level tells no encoder was trained on: checkerboards, tiling, noise, "
                              "blur, colour casts",
                 misses="whatever this small CNN does not learn in 150 steps (a stronger classifier may do better: "
                        "a lower bound on detectability); needs held-out images, not a fingerprint")
def c2st_pixel(real, fake, cfg) -> dict:
    """Classifier two-sample test (small CNN) on 64 px pixels, with its floor."""
    held = heldout_set(cfg, "c2st_pixel")
    if held.images is None:
        raise MetricUnavailable(f"c2st_pixel needs the held-out images; the held-out set is a fingerprint without "
                                f"them ({_name(held)}): pass --heldout with the images (the ISIC 2017 validation "
                                f"folder)")
    _require_samples(fake, "c2st_pixel")
    x_held = _at_pixel_size(held.images, cfg.resize)
    x_fake = _at_pixel_size(fake.require_images("c2st_pixel"), cfg.resize)
    recipe = PIXEL_RECIPE
    fit, classifier = cnn_fit_predict(recipe), f"SmallCNN {recipe!r}"
    value = kept_test(x_held, x_fake, fit, classifier, seed=cfg.seed, draws=PIXEL_DRAWS)
    out: dict = value.keys("pixel")
    floor_info = None
    try:
        x_real, where = training_pixels(real, held, cfg)
        floor = kept_test(x_held, _at_pixel_size(x_real, cfg.resize), fit, classifier, seed=cfg.seed,
                          draws=PIXEL_DRAWS)
        out.update(floor.keys("pixel", floor=True))
        floor_info = {"n_per_side": floor.n, "draws": floor.draws, "other": where}
    except MetricUnavailable as e:
        out["_unavailable"] = {KEY_C2ST_PIXEL_FLOOR: f"the real-vs-real floor needs training-split pixels: {e}"}
    out["_config"] = _protocol(value, classifier=f"eval.classifier.SmallCNN, train_classifier {asdict(recipe)}",
                               input_size=PIXEL_SIZE,
                               resize="none" if cfg.size == PIXEL_SIZE else f"pil-{cfg.resize} to {PIXEL_SIZE} px",
                               heldout=_name(held), floor=floor_info)
    return out
