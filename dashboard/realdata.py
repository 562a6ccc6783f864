"""Real images for comparison: a training-split fingerprint as the pages use it (:class:`RealBank`),
images from a data set folder, colour histograms, and the generated images closest to a training image,
in pixels (:func:`closest_pairs`) and in the dermoscopy encoder's features (:func:`closest_feature_pairs`)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np


@dataclass(frozen=True)
class RealBank:
    """What the dashboard shows from a training-split fingerprint (``eval.fingerprint`` format).

    Attributes:
        hist: float (3, 256) per-channel share of pixels at each value (rows sum to 1).
        thumbs: uint8 (T, S, S, 3) real images at the fingerprint size S, for galleries (may be empty).
        thumb_names: image ids of ``thumbs``.
        bank: uint8 (N, B, B, 3) every training image box-downscaled (B = 32), for nearest neighbours,
            or None when the fingerprint was made without one.
        bank_names: image ids of ``bank``.
        meta: the fingerprint's provenance (source, split, size, image_count, ``derm`` {metric_version,
            encoder_sha256, ...} or None, ...).
        derm_features: float32 (N, D) the dermoscopy encoder's features of every training image, in
            ``bank`` order, or None when the fingerprint was made without the encoder.
    """

    hist: np.ndarray
    thumbs: np.ndarray
    thumb_names: list[str]
    bank: np.ndarray | None
    bank_names: list[str]
    meta: dict[str, Any]
    derm_features: np.ndarray | None = None

    @property
    def derm(self) -> dict | None:
        """The encoder the feature bank was made with ({metric_version, encoder_sha256, ...}), or None."""
        d = self.meta.get("derm")
        return d if self.derm_features is not None and isinstance(d, dict) else None


def load_real_bank(path: str | os.PathLike) -> RealBank:
    """Read a fingerprint with ``eval.fingerprint.load_fingerprint``; ValueError naming the file if invalid."""
    from eval.fingerprint import load_fingerprint

    fp = load_fingerprint(path)
    hist = fp.hist_rgb256.astype(np.float64)
    hist /= np.clip(hist.sum(axis=1, keepdims=True), 1, None)
    names = fp.bank_names
    thumbs = fp.thumbs if fp.thumbs is not None else np.zeros((0, fp.size, fp.size, 3), np.uint8)
    if fp.thumb_index is not None and len(fp.thumb_index) == len(thumbs):
        thumb_names = [names[i] if 0 <= i < len(names) else f"#{i}" for i in fp.thumb_index.tolist()]
    else:
        thumb_names = [f"#{i}" for i in range(len(thumbs))]
    meta = {k: v for k, v in fp.meta.items() if k != "names"}
    return RealBank(hist=hist, thumbs=thumbs, thumb_names=thumb_names, bank=fp.nn_bank, bank_names=names, meta=meta,
                    derm_features=fp.derm_features)


def load_real_images(path: str | os.PathLike, size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` random images (uint8 NHWC) from a data set folder, via ``gan.data.load_dataset``."""
    from gan.data import load_dataset

    ds = load_dataset(path, size=size, progress=False)
    if len(ds) == 0:
        raise ValueError("no images found in that folder")
    return ds.images[sample_indices(len(ds), count, seed)].permute(0, 2, 3, 1).numpy()


def sample_indices(n: int, count: int, seed: int = 0) -> np.ndarray:
    """``min(count, n)`` distinct sorted indices into ``n`` items, reproducible per seed."""
    return np.sort(np.random.default_rng(int(seed)).choice(n, size=min(int(count), n), replace=False))


def colour_histogram(images: np.ndarray) -> np.ndarray:
    """Per-channel share of pixels at each value, float (3, 256), from ``eval``'s exact counts."""
    from eval.metrics.histogram import channel_histograms

    h = channel_histograms(np.array(images, dtype=np.uint8)).astype(np.float64)  # a writable copy
    return h / np.clip(h.sum(axis=1, keepdims=True), 1, None)


@dataclass(frozen=True)
class NeighbourPair:
    """A generated image, its nearest training image and their distance (RMS on [0, 1] pixels, or
    Euclidean between encoder features for :func:`closest_feature_pairs`)."""

    fake_index: int
    fake: np.ndarray
    real: np.ndarray
    real_name: str
    distance: float


def closest_pairs(fakes: np.ndarray, bank: np.ndarray, bank_names: Sequence[str], k: int = 8) -> list[NeighbourPair]:
    """The ``k`` generated images closest to a training image, closest first.

    Uses the same space as the copy rate of ``eval.metrics.memorization`` when it reads a fingerprint:
    every image box-downscaled to the bank's size, RMS pixel difference on [0, 1].
    """
    from eval.images import resize_images
    from eval.metrics.memorization import nearest_neighbours

    if bank is None or len(bank) == 0:
        raise ValueError("no training images to compare against (the fingerprint has no image bank)")
    q = resize_images(np.ascontiguousarray(fakes), bank.shape[1], "box")
    dist, idx = nearest_neighbours(q, bank)
    return _pairs(q, bank, bank_names, dist, idx, k)


def _pairs(fakes: np.ndarray, bank: np.ndarray, bank_names: Sequence[str], dist: np.ndarray, idx: np.ndarray,
           k: int) -> list[NeighbourPair]:
    """The ``k`` pairs of smallest ``dist``, closest first (ties in seed order)."""
    order = np.argsort(dist, kind="stable")[:k]
    return [NeighbourPair(int(i), fakes[i], bank[idx[i]], str(bank_names[idx[i]]) if idx[i] < len(bank_names)
                          else f"#{idx[i]}", float(dist[i])) for i in order]


def derm_encoder_for(bank: RealBank):
    """The dermoscopy encoder whose features ``bank`` holds (``eval.metrics.derm.encoder_file()``: the
    shipped one unless ``$LESIONGAN_DERM_ENCODER`` names another).

    Raises:
        ValueError: one plain sentence, without a path, saying what is missing: no features in the
            fingerprint, no encoder file, an encoder file that cannot be read (the details go to the
            server's log), or an encoder other than the one that made the fingerprint's features (never
            mixed).
    """
    import logging

    from eval.metrics import derm

    if bank.derm is None:
        raise ValueError("the fingerprint holds no dermoscopy-encoder features; remake it with "
                         "`python -m eval.fingerprint` (it adds them when the encoder is there)")
    path = derm.encoder_file()
    if not path.is_file():
        where = f"where ${derm.ENV_ENCODER} points" if os.environ.get(derm.ENV_ENCODER) else "among the shipped files"
        raise ValueError(f"this server has no dermoscopy encoder file {where}")
    try:
        enc = derm.load(path)
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file: one line for the page, details logged
        logging.getLogger("lesiongan.dashboard").warning("could not load the dermoscopy encoder %s: %s", path, e,
                                                         exc_info=e)
        raise ValueError("the dermoscopy encoder file on this server could not be read") from None
    want = bank.derm
    if (enc.metric_version, enc.sha256) != (want.get("metric_version"), want.get("encoder_sha256")):
        raise ValueError(f"the fingerprint's features come from encoder {want.get('metric_version')} (sha256 "
                         f"{str(want.get('encoder_sha256'))[:12]}), the encoder here is {enc.metric_version} "
                         f"(sha256 {str(enc.sha256)[:12]}); remake the fingerprint with `python -m eval.fingerprint`")
    return enc


def derm_features(images: np.ndarray, encoder) -> np.ndarray:
    """float32 (N, D) encoder features of uint8 images, as the ``*_derm`` metrics compute them
    (``eval.metrics.derm.features_of``: torch-fidelity's extractor, lanczos to 64 px)."""
    from eval.metrics.derm import features_of

    return features_of(np.ascontiguousarray(images), encoder)


def closest_feature_pairs(fakes: np.ndarray, fake_features: np.ndarray, bank: RealBank, k: int = 8
                          ) -> list[NeighbourPair]:
    """The ``k`` generated images whose encoder features are closest to a training image's, closest
    first: the space and distance of ``copy_rate_derm`` (``eval.metrics.derm.nearest_features``,
    Euclidean). Each pair shows the generated image as it is and the training image from the
    fingerprint's image bank (every training image at 32 px, in feature order)."""
    from eval.metrics.derm import nearest_features

    if bank.derm is None:
        raise ValueError("the fingerprint holds no dermoscopy-encoder features")
    if bank.bank is None or len(bank.bank) != len(bank.derm_features):
        raise ValueError("the fingerprint has no image bank to show the training images from")
    if len(fake_features) != len(fakes):
        raise ValueError(f"{len(fakes)} images but {len(fake_features)} feature vectors")
    dist, idx = nearest_features(fake_features, bank.derm_features)
    return _pairs(np.ascontiguousarray(fakes), bank.bank, bank.bank_names, dist, idx, k)
