"""Real images for comparison: a training-split fingerprint as the pages use it (:class:`RealBank`),
images from a data set folder, colour histograms, and the generated images closest to a training image."""
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
        meta: the fingerprint's provenance (source, split, size, image_count, ...).
    """

    hist: np.ndarray
    thumbs: np.ndarray
    thumb_names: list[str]
    bank: np.ndarray | None
    bank_names: list[str]
    meta: dict[str, Any]


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
    return RealBank(hist=hist, thumbs=thumbs, thumb_names=thumb_names, bank=fp.nn_bank, bank_names=names, meta=meta)


def load_real_images(path: str | os.PathLike, size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` random images (uint8 NHWC) from a data set folder, via ``gan.data.load_dataset``."""
    from gan.data import load_dataset

    ds = load_dataset(path, size=size, progress=False)
    if len(ds) == 0:
        raise ValueError(f"{path}: no images found")
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
    """A generated image, its nearest training image and their distance (RMS on [0, 1] pixels)."""

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
    order = np.argsort(dist, kind="stable")[:k]
    return [NeighbourPair(int(i), q[i], bank[idx[i]], str(bank_names[idx[i]]) if idx[i] < len(bank_names)
                          else f"#{idx[i]}", float(dist[i])) for i in order]
