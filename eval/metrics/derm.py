"""Metrics in the dermoscopy encoder's feature space (``derm1``: :mod:`eval.encoder`, shipped in
``checkpoints/derm-encoder/``): what a network trained to tell lesion types apart sees of the
difference between real and generated lesions.

Metric names (``--metrics``) and result keys:

    fd_derm            fd_derm                   Fréchet distance of the feature statistics (torch-fidelity's
                                                 ``fid_features_to_statistics`` / ``fid_statistics_to_metric``)
    kid_derm           kid_derm, kid_derm_std    KID: unbiased MMD^2, cubic polynomial kernel, mean and sd over
                                                 100 subsets of min(1000, n_real, n_fake) (torch-fidelity's
                                                 ``kid_features_to_metric``)
    precision_derm     precision_derm            Kynkäänniemi et al. 2019, k = 3 (torch-fidelity's
    recall_derm        recall_derm               ``prc_features_to_metric``)
    density_derm       density_derm              Naeem et al. 2020, k = 5 (the ``prdc`` package's
    coverage_derm      coverage_derm             ``compute_prdc``)
    memorization_derm  copy_rate_derm, memorization_derm_nn_fake_median, memorization_derm_nn_heldout_median,
                       memorization_derm_nn_threshold_p1

Features come from the encoder registered as a torch-fidelity feature extractor
(:mod:`eval.metrics.derm_extractor`), once per set per evaluation (``FeatureCache``); a fingerprint
(:mod:`eval.fingerprint`) stores the real set's features, mean and covariance, so scoring a model needs
no real images. Images not at 64 px are resized to 64 px by :func:`eval.images.resize_images`' default,
``lanczos``. Each metric's ``result["config"][name]`` records ``metric_version`` ("derm1"),
``encoder_sha256`` (the encoder file's SHA-256), ``n_real``, ``n_fake``, ``input_size``, ``resize``
and where the real features came from. Features made with another encoder (version or file) are never
mixed with these: such a fingerprint makes the derm metrics unavailable, with the reason.

The encoder: ``evaluate(derm_encoder=PATH)`` / ``eval.run --derm-encoder PATH``, else
``$LESIONGAN_DERM_ENCODER``, else the shipped ``checkpoints/derm-encoder/encoder.pt`` as
:mod:`gan.assets` finds it (``$LESIONGAN_HOME``, the user cache, the source checkout). Without it the
derm metrics are unavailable (``MetricUnavailable``, with the reason) and every other metric goes on.

**Memorization in feature space** (``memorization_derm``, needs a held-out set): each sample's nearest
training image by Euclidean distance between encoder features; ``copy_rate_derm`` is the share of
samples closer to a training image than the 1st percentile of the held-out images' nearest-training
distances, the protocol of the pixel copy rate (:mod:`eval.metrics.memorization`): about 0.01 is
honest, near 1 is copying. Its closest pairs, for the dashboard:

    result["details"]["memorization_derm"]["closest"]    JSON: up to 8 dicts, closest first:
        {"fake_index": int, "fake_name": str, "train_index": int, "train_name": str, "distance": float}
    result.extras["memorization_derm"]                    arrays (not in the JSON):
        "closest_fake"   uint8 (K, S, S, 3)  those samples, at the evaluation size S (a fake set given as a
                                             fingerprint: its image bank); None when neither is there
        "closest_train"  uint8 (K, T, T, 3)  their nearest training images: at S when the training set
                                             came with images, else the fingerprint's image bank (T = 32);
                                             None when neither is there
        "nn_fake"        float64 (n_fake,)     each sample's nearest-training distance
        "nn_heldout"     float64 (n_heldout,)  each held-out image's nearest-training distance
        "nn_index"       int64 (n_fake,)       index of each sample's nearest training image
        "copy_flags"     bool (n_fake,)        nn_fake < the threshold

the same keys and layout as the pixel metric's ``result.extras["memorization"]`` (distances here are
in feature units, not pixels).
"""
from __future__ import annotations

import contextlib
import io
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from eval.keys import (KEY_COPY_RATE_DERM, KEY_COVERAGE_DERM, KEY_DENSITY_DERM, KEY_FD_DERM, KEY_KID_DERM,
                       KEY_KID_DERM_STD, KEY_NN_FAKE_MEDIAN_DERM, KEY_NN_HELDOUT_MEDIAN_DERM, KEY_NN_THRESHOLD_DERM,
                       KEY_PRECISION_DERM, KEY_RECALL_DERM)
from eval.metrics import kid as _kid
from eval.metrics import memorization as _mem
from eval.registry import MetricUnavailable, register_metric
from gan import assets

ENV_ENCODER = "LESIONGAN_DERM_ENCODER"
MIN_IMAGES = 10   # per set: below this the covariance and the k-NN balls are noise
PRC_K = 3         # Kynkäänniemi et al.'s k (torch-fidelity's prc_neighborhood default)
DC_K = 5          # Naeem et al.'s k for density and coverage
FEATURES = "derm_features"  # FeatureCache / fingerprint names: f"{FEATURES}:{version}:{sha256}"
STATS = "derm_stats"

# What every *_derm metric misses, for the catalogue's "misses" (the C2ST in derm features too).
WEAKNESS = ("trained on HAM10000 (7 classes, 64 px) and weaker on ISIC 2017 (3-class balanced accuracy 0.48): "
             "a distance in that network's view, blind to what it never learned to tell apart")


# -- the encoder ---------------------------------------------------------------------------------

def encoder_file(path: str | os.PathLike | None = None) -> Path:
    """The encoder file to use: ``path`` (a file or a folder holding ``encoder.pt``), else
    ``$LESIONGAN_DERM_ENCODER``, else the shipped one (:func:`gan.assets.encoder_path`). It may not
    exist (see :func:`require_encoder`)."""
    p = Path(path if path is not None else os.environ.get(ENV_ENCODER) or assets.encoder_path())
    return p / "encoder.pt" if p.is_dir() else p


def missing_encoder(path: str | os.PathLike | None = None) -> str:
    """Why :func:`encoder_file` of ``path`` names no file, in one line with no path in it (it may end
    up in a ``results.json``): the flag or variable that chose it, else the shipped encoder's resolver."""
    if path is not None:
        return "no dermoscopy encoder file where --derm-encoder points"
    if os.environ.get(ENV_ENCODER):
        return f"no dermoscopy encoder file where ${ENV_ENCODER} points"
    if assets.find_checkpoints() is None:
        return f"no dermoscopy encoder: {assets.missing_reason()}"
    return f"no dermoscopy encoder in the shipped checkpoints (derm-encoder/encoder.pt): {assets.HINT}"


def encoder_for_flag(value: str | None, flag: str, hint: str = "") -> Path:
    """The encoder file a command-line flag names (None: the default of :func:`encoder_file`), checked
    to exist.

    Args:
        value: the flag's value, or None when it was not given.
        flag: the flag, for the message (``"--derm-encoder"``).
        hint: what else the user can do, added to the message.

    Raises:
        ValueError: ``FLAG PATH: no such encoder file``, the default named as such.
    """
    path = encoder_file(value)
    if not path.is_file():
        if value is None:
            raise ValueError(f"{flag}: {missing_encoder()}{hint or f' (or pass {flag} PATH)'}")
        raise ValueError(f"{flag} {path}: no such encoder file{hint}")
    return path


@lru_cache(maxsize=2)
def _load(path: str, mtime_ns: int, nbytes: int):
    from eval.encoder import load_encoder

    return load_encoder(path)


def load(path: str | os.PathLike):
    """The :class:`eval.encoder.DermEncoder` in ``path`` (cached while the file is unchanged)."""
    p = Path(path).resolve()
    st = p.stat()
    return _load(str(p), st.st_mtime_ns, st.st_size)


def require_encoder(cfg):
    """The encoder ``cfg`` names (``cfg.derm_encoder``, else the default), or ``MetricUnavailable``
    saying why there is none."""
    given = getattr(cfg, "derm_encoder", None)
    path = encoder_file(given)
    if not path.is_file():
        raise MetricUnavailable(missing_encoder(given))
    try:
        return load(path)
    except (ValueError, OSError):  # its message names the file: the reason stays a sentence without paths
        raise MetricUnavailable("the dermoscopy encoder file cannot be read as a LesionGAN encoder (damaged, or "
                                "another kind of file)") from None


def feature_name(enc, kind: str = FEATURES) -> str:
    """The name a set's features (or statistics, ``kind=STATS``) under ``enc`` are kept by."""
    return f"{kind}:{enc.metric_version}:{enc.sha256}"


def features_of(images: np.ndarray, enc, batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """float32 (N, D) features of uint8 images through the encoder as torch-fidelity's extractor."""
    from eval.metrics.derm_extractor import derm_features

    return derm_features(images, enc.path, batch_size, progress)


def set_features(s, enc, cfg) -> np.ndarray:
    """A set's encoder features: stored in its fingerprint, computed before in ``cfg.cache``, or
    computed from its images now (and kept there)."""
    name = feature_name(enc)
    known = cfg.cache.names(s)
    if name not in known and s.images is None:
        other = [k.split(":", 2) for k in known if k.startswith(FEATURES + ":")]
        if other:
            _, version, sha = other[0]
            raise MetricUnavailable(
                f"the {s.role} fingerprint's derm features come from encoder {version} (sha256 {sha[:12]}), not "
                f"from this one ({enc.metric_version}, sha256 {enc.sha256[:12]}); remake it with python -m "
                f"eval.fingerprint")
        raise MetricUnavailable(f"the {s.role} fingerprint has no derm features (made without the encoder) and no "
                                f"images to compute them; remake it with python -m eval.fingerprint")
    return cfg.cache.get(s, name, lambda: features_of(s.images, enc, cfg.batch_size, cfg.progress))


def set_statistics(s, enc, cfg) -> dict:
    """A set's feature mean and covariance (torch-fidelity's ``fid_features_to_statistics``): stored in
    its fingerprint or computed from its features."""
    from eval.metrics.fid import fid_statistics

    if feature_name(enc, STATS) not in cfg.cache.names(s):
        set_features(s, enc, cfg)  # refuses another encoder's features with the reason
    return cfg.cache.get(s, feature_name(enc, STATS), lambda: fid_statistics(set_features(s, enc, cfg)))


@contextlib.contextmanager
def one_blas_thread():
    """Run numpy/scipy linear algebra on one thread: the derm metrics' matrices are small (128-d), and
    on a CPU shared with other work, BLAS threads waiting for a core made KID 30-100x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _require_counts(*sets) -> None:
    for s in sets:
        if s.count < MIN_IMAGES:
            raise MetricUnavailable(f"{s.role} set has {s.count} images; the derm metrics need at least {MIN_IMAGES}")


def _config(enc, real, fake, cfg, **extra) -> dict:
    """What every derm result records: the encoder, the sample sizes, the resize, the features' source."""
    size = cfg.size
    resize = ("none (images at 64 px)" if size == enc.config.size else
              f"pil-{enc.resize} from {size} to {enc.config.size} px (eval.images.resize_images default)")
    return {"metric_version": enc.metric_version, "encoder_sha256": enc.sha256, "feature_dim": enc.dim,
            "n_real": real.count, "n_fake": fake.count, "input_size": enc.config.size, "resize": resize,
            "real_features": "fingerprint" if real.images is None else "images", **extra}


# -- the metric functions on features ------------------------------------------------------------

def prc_from_features(real: np.ndarray, fake: np.ndarray, k: int = PRC_K) -> tuple[float, float]:
    """(precision, recall) of Kynkäänniemi et al. with k-NN balls (torch-fidelity's
    ``prc_features_to_metric``; its convention: features_1 generated, features_2 real)."""
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    out = prc_features_to_metric(torch.from_numpy(np.asarray(fake, np.float32)),
                                 torch.from_numpy(np.asarray(real, np.float32)),
                                 prc_neighborhood=k, prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def density_coverage_from_features(real: np.ndarray, fake: np.ndarray, k: int = DC_K) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. 2020 (the ``prdc`` package's ``compute_prdc``)."""
    try:
        from prdc import compute_prdc
    except ImportError:
        raise MetricUnavailable("density/coverage need the prdc package (pip install prdc)") from None
    with contextlib.redirect_stdout(io.StringIO()):  # compute_prdc prints the set sizes; stdout is for --json
        out = compute_prdc(real_features=np.asarray(real, np.float32), fake_features=np.asarray(fake, np.float32),
                           nearest_k=k)
    return float(out["density"]), float(out["coverage"])


def nearest_features(queries: np.ndarray, bank: np.ndarray, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Each query's nearest row of ``bank`` by Euclidean distance: (distance float64 (N,), index int64 (N,)),
    the distance recomputed in float64 for the chosen neighbour. Does not depend on ``batch``."""
    b = torch.from_numpy(np.ascontiguousarray(bank, np.float32))
    idx = np.empty(len(queries), np.int64)
    for s in range(0, len(queries), batch):
        q = torch.from_numpy(np.ascontiguousarray(queries[s:s + batch], np.float32))
        idx[s:s + len(q)] = torch.cdist(q, b).argmin(1).numpy()
    diff = np.asarray(queries, np.float64) - np.asarray(bank, np.float64)[idx]
    return np.sqrt((diff ** 2).sum(1)), idx


# -- the registered metrics ----------------------------------------------------------------------

_SEES = "lesion appearance as a lesion-type classifier sees it: colour, texture, structure, blur, artefacts"


@register_metric("fd_derm", keys=(KEY_FD_DERM,), label="FD derm", better="lower",
                 description="Fréchet distance between the dermoscopy encoder's (derm1) 128-d feature statistics "
                             "of real and generated images (torch-fidelity).",
                 sees=_SEES + "; quality and diversity in one number",
                 misses="what the encoder does not tell apart; " + WEAKNESS + "; biased upward on few samples")
def fd_derm(real, fake, cfg) -> dict:
    """Fréchet distance in the dermoscopy encoder's feature space."""
    enc = require_encoder(cfg)
    _require_counts(real, fake)
    from eval.metrics.fid import fid_from_statistics

    set_features(real, enc, cfg), set_features(fake, enc, cfg)  # the encoder first, at its own thread count
    with one_blas_thread():
        fd = fid_from_statistics(set_statistics(real, enc, cfg), set_statistics(fake, enc, cfg))
    return {KEY_FD_DERM: fd, "_config": _config(enc, real, fake, cfg)}


@register_metric("kid_derm", keys=(KEY_KID_DERM,), label="KID derm", better="lower",
                 description="Kernel distance (unbiased MMD^2, cubic kernel) between dermoscopy-encoder features "
                             "of real and generated images (torch-fidelity).",
                 sees="what FD derm sees, without its small-sample bias",
                 misses="what the encoder does not tell apart; " + WEAKNESS)
def kid_derm(real, fake, cfg) -> dict:
    """KID in the dermoscopy encoder's feature space, subset size adapted to small sets."""
    enc = require_encoder(cfg)
    _require_counts(real, fake)
    m = _kid.kid_subset_size(real.count, fake.count, cfg.kid_subset_size)
    f_real, f_fake = set_features(real, enc, cfg), set_features(fake, enc, cfg)
    with one_blas_thread():
        mean, std = _kid.kid_from_features(f_real, f_fake, m, cfg.kid_subsets, cfg.seed)
    return {KEY_KID_DERM: mean, KEY_KID_DERM_STD: std,
            "_config": _config(enc, real, fake, cfg, subset_size=m, subsets=cfg.kid_subsets, kernel="poly3")}


def _knn_metric(real, fake, cfg, pair_fn, k: int, key: str, which: int) -> dict:
    """Number ``which`` of ``pair_fn(real_features, fake_features, k)`` as a result under ``key``."""
    enc = require_encoder(cfg)
    _require_counts(real, fake)
    f_real, f_fake = set_features(real, enc, cfg), set_features(fake, enc, cfg)
    with one_blas_thread():
        value = pair_fn(f_real, f_fake, k)[which]
    return {key: value, "_config": _config(enc, real, fake, cfg, k=k)}


@register_metric("precision_derm", keys=(KEY_PRECISION_DERM,), label="Precision derm", better="higher",
                 description="Share of generated images inside the real images' k-NN balls (k = 3) in "
                             "dermoscopy-encoder features (Kynkäänniemi et al. 2019, torch-fidelity): fidelity.",
                 sees="samples that look like no real lesion: artefacts, blur, implausible colours",
                 misses="missing modes (a model that draws a few good lesions scores high); " + WEAKNESS)
def precision_derm(real, fake, cfg) -> dict:
    """Precision (Kynkäänniemi et al.) in the dermoscopy encoder's feature space."""
    return _knn_metric(real, fake, cfg, prc_from_features, PRC_K, KEY_PRECISION_DERM, 0)


@register_metric("recall_derm", keys=(KEY_RECALL_DERM,), label="Recall derm", better="higher",
                 description="Share of real images inside the generated images' k-NN balls (k = 3) in "
                             "dermoscopy-encoder features (Kynkäänniemi et al. 2019, torch-fidelity): diversity.",
                 sees="lesion types and appearances the model never draws (mode collapse)",
                 misses="sample quality; inflated by a few outlying samples with large balls; " + WEAKNESS)
def recall_derm(real, fake, cfg) -> dict:
    """Recall (Kynkäänniemi et al.) in the dermoscopy encoder's feature space."""
    return _knn_metric(real, fake, cfg, prc_from_features, PRC_K, KEY_RECALL_DERM, 1)


@register_metric("density_derm", keys=(KEY_DENSITY_DERM,), label="Density derm", better="higher",
                 description="How many real images' k-NN balls (k = 5) hold each generated image, over k, in "
                             "dermoscopy-encoder features (Naeem et al. 2020, prdc): fidelity, about 1 for a "
                             "faithful model.",
                 sees="samples in dense regions of real lesions; robust to real outliers, unlike precision",
                 misses="diversity (above 1 when samples crowd into typical lesions); " + WEAKNESS)
def density_derm(real, fake, cfg) -> dict:
    """Density (Naeem et al.) in the dermoscopy encoder's feature space."""
    return _knn_metric(real, fake, cfg, density_coverage_from_features, DC_K, KEY_DENSITY_DERM, 0)


@register_metric("coverage_derm", keys=(KEY_COVERAGE_DERM,), label="Coverage derm", better="higher",
                 description="Share of real images whose k-NN ball (k = 5) holds at least one generated image, in "
                             "dermoscopy-encoder features (Naeem et al. 2020, prdc): diversity.",
                 sees="real lesion types the model leaves out (mode collapse), robust to fake outliers",
                 misses="sample quality beyond landing near some real lesion; " + WEAKNESS)
def coverage_derm(real, fake, cfg) -> dict:
    """Coverage (Naeem et al.) in the dermoscopy encoder's feature space."""
    return _knn_metric(real, fake, cfg, density_coverage_from_features, DC_K, KEY_COVERAGE_DERM, 1)


def _pair_images(s):
    """(images, names, size note) to show a set's side of the closest pairs: its images, else its
    fingerprint's image bank, else (None, names, None)."""
    if s.images is not None:
        return s.images, s.names, "images"
    fp = s.fingerprint
    if fp is not None and fp.nn_bank is not None and len(fp.nn_bank) == s.count:
        return fp.nn_bank, fp.bank_names, "fingerprint bank"
    return None, s.names, None


@register_metric("memorization_derm", keys=(KEY_COPY_RATE_DERM,), label="Copy rate derm", better="lower",
                 needs_heldout=True,
                 description="Share of samples closer to a training image than 99% of held-out real images are, "
                             "by Euclidean distance between dermoscopy-encoder features; about 0.01 is honest, "
                             "near 1 means copying.",
                 sees="near-copies of training images, also shifted, flipped or slightly recoloured ones as far "
                      "as the encoder's features ignore that",
                 misses="copied parts of an image; different lesions that look alike to the encoder count as close")
def memorization_derm(real, fake, cfg) -> dict:
    """Copy rate by nearest training image in the dermoscopy encoder's feature space."""
    heldout = cfg.heldout
    if heldout is None:  # evaluate() says so before calling (needs_heldout); this guards direct calls
        raise MetricUnavailable("memorization_derm needs a held-out real set")
    enc = require_encoder(cfg)
    if fake.count < 1 or real.count < 1:
        raise MetricUnavailable(f"the {'fake' if fake.count < 1 else 'training'} set has no images")
    if heldout.count < _mem.MIN_HELDOUT:
        raise MetricUnavailable(f"held-out set has {heldout.count} images; the 1st-percentile threshold "
                                f"needs at least {_mem.MIN_HELDOUT}")
    f_train, f_held, f_fake = (set_features(s, enc, cfg) for s in (real, heldout, fake))
    nn_fake, idx_fake = nearest_features(f_fake, f_train)
    nn_held, _ = nearest_features(f_held, f_train)
    train_imgs, train_names, train_from = _pair_images(real)
    fake_imgs, fake_names, _ = _pair_images(fake)
    values, closest, order, flags = _mem.copy_summary(
        nn_fake, idx_fake, nn_held, fake_names, train_names,
        (KEY_COPY_RATE_DERM, KEY_NN_FAKE_MEDIAN_DERM, KEY_NN_HELDOUT_MEDIAN_DERM, KEY_NN_THRESHOLD_DERM))
    return {
        **values,
        "_config": _config(enc, real, fake, cfg, space=f"{enc.metric_version} features", distance="euclidean",
                           percentile=_mem.PERCENTILE, n_heldout=heldout.count,
                           heldout_features="fingerprint" if heldout.images is None else "images",
                           closest_train_images=train_from),
        "_details": {"closest": closest},
        "_extras": {"closest_fake": None if fake_imgs is None else fake_imgs[order],
                    "closest_train": None if train_imgs is None else train_imgs[idx_fake[order]],
                    "nn_fake": nn_fake, "nn_heldout": nn_held, "copy_flags": flags, "nn_index": idx_fake},
    }
