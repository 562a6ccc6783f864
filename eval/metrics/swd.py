"""Sliced Wasserstein distance between Laplacian-pyramid patches (Karras et al., "Progressive Growing
of GANs", ICLR 2018, section 5 and appendix D), following the paper's reference code
(``metrics/sliced_wasserstein.py`` of tkarras/progressive_growing_of_gans) step by step:

* Laplacian pyramid with the 5x5 binomial filter [1 4 6 4 1]^2 / 256 ('mirror' borders, like
  cv2.pyrDown/pyrUp), levels from the image size down to 16 px (64 px -> 64, 32, 16);
* 128 random 7x7 neighbourhoods per image and level (147-d descriptors), centres at least 3 px from
  the border;
* descriptors normalised per colour channel with each set's own mean and standard deviation;
* 4 repeats of 128 random unit directions; per direction the sorted projections of the two sets are
  compared point by point; the mean absolute difference, averaged over directions and repeats, x 1e3.

Differences, stated in the result: the reference draws patches and directions from numpy's global
RNG; here they come from a generator seeded with ``seed``. The paper used 16,384 images per set;
the result records how many were used (both sets need the same count: the larger is subsampled).
The real set must be images (a fingerprint stores no patches).
"""
from __future__ import annotations

import numpy as np
import scipy.ndimage

from eval.keys import KEY_SWD_AVG, key_swd
from eval.registry import MetricUnavailable, register_metric

NHOOD_SIZE = 7
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16

GAUSSIAN = np.float32([[1, 4, 6, 4, 1],
                       [4, 16, 24, 16, 4],
                       [6, 24, 36, 24, 6],
                       [4, 16, 24, 16, 4],
                       [1, 4, 6, 4, 1]]) / 256.0


BINOMIAL = np.float32([1, 4, 6, 4, 1]) / 16.0  # GAUSSIAN == outer(BINOMIAL, BINOMIAL)


def _blur(x: np.ndarray, gain: float = 1.0) -> np.ndarray:
    # The 5x5 filter is separable: two 1-D passes give the same result as the reference's 2-D
    # convolution (up to float rounding) at a fraction of the cost.
    x = scipy.ndimage.convolve1d(x, BINOMIAL * gain, axis=2, mode="mirror")
    return scipy.ndimage.convolve1d(x, BINOMIAL, axis=3, mode="mirror")


def pyr_down(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) float -> half size (matches cv2.pyrDown)."""
    return _blur(x)[:, :, ::2, ::2]


def pyr_up(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) float -> double size (matches cv2.pyrUp)."""
    n, c, h, w = x.shape
    res = np.zeros((n, c, h * 2, w * 2), x.dtype)
    res[:, :, ::2, ::2] = x
    return _blur(res, 4.0)


def laplacian_pyramid(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """Levels of uint8/float (N, C, H, W) images: band-pass details first, the low-pass residue last."""
    pyramid = [np.array(x, dtype=np.float32)]  # a copy: the levels are updated in place
    for _ in range(1, levels):
        pyramid.append(pyr_down(pyramid[-1]))
        pyramid[-2] -= pyr_up(pyramid[-1])
    return pyramid


def descriptors(level: np.ndarray, rng: np.random.RandomState, nhood_size: int = NHOOD_SIZE,
                nhoods_per_image: int = NHOODS_PER_IMAGE) -> np.ndarray:
    """(N * nhoods, C, k, k) random neighbourhoods of one pyramid level (N, C, H, W). As in the
    reference code, each patch comes out transposed (its ogrid names the row offsets x); the same
    for both sets, so the distance is unchanged."""
    s = level.shape
    n = nhoods_per_image * s[0]
    h = nhood_size // 2
    nhood, chan, x, y = np.ogrid[0:n, 0:s[1], -h:h + 1, -h:h + 1]
    img = nhood // nhoods_per_image
    x = x + rng.randint(h, s[3] - h, size=(n, 1, 1, 1))
    y = y + rng.randint(h, s[2] - h, size=(n, 1, 1, 1))
    idx = ((img * s[1] + chan) * s[2] + y) * s[3] + x
    return level.flat[idx]


def finalize(desc: np.ndarray) -> np.ndarray:
    """Normalise each colour channel to zero mean, unit std over the set; flatten to (M, C*k*k)."""
    desc = desc - np.mean(desc, axis=(0, 2, 3), keepdims=True)
    desc /= np.std(desc, axis=(0, 2, 3), keepdims=True)
    return desc.reshape(desc.shape[0], -1)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.RandomState,
                       dir_repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT) -> float:
    """Mean over random unit directions of the 1-D Wasserstein distance of the projections."""
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein: descriptor sets differ in shape {a.shape} vs {b.shape}")
    results = []
    for _ in range(dir_repeats):
        dirs = rng.randn(a.shape[1], dirs_per_repeat)
        dirs /= np.sqrt(np.sum(np.square(dirs), axis=0, keepdims=True))
        dirs = dirs.astype(np.float32)
        # (direction, neighbourhood) layout: each direction's projections contiguous, so the sort is fast.
        pa = np.sort(np.ascontiguousarray((a @ dirs).T), axis=1)
        pb = np.sort(np.ascontiguousarray((b @ dirs).T), axis=1)
        results.append(np.mean(np.abs(pa - pb)))
    return float(np.mean(results))


def resolutions(size: int) -> list[int]:
    out, res = [], size
    while res >= MIN_RESOLUTION:
        out.append(res)
        res //= 2
    return out


def swd(real: np.ndarray, fake: np.ndarray, seed: int = 0, batch: int = 256) -> dict:
    """SWD x 1e3 per pyramid level and their mean between two equal-size uint8 NHWC sets."""
    if real.shape != fake.shape:
        raise ValueError(f"swd: sets differ in shape {real.shape} vs {fake.shape}")
    levels = resolutions(real.shape[1])
    rng = np.random.RandomState(seed)
    desc = {}
    for name, imgs in (("real", real), ("fake", fake)):
        per_level: list[list[np.ndarray]] = [[] for _ in levels]
        for s in range(0, len(imgs), batch):
            x = np.ascontiguousarray(imgs[s:s + batch].transpose(0, 3, 1, 2))
            for lod, level in enumerate(laplacian_pyramid(x, len(levels))):
                per_level[lod].append(descriptors(level, rng))
        desc[name] = [finalize(np.concatenate(d)) for d in per_level]
    out = {}
    for lod, res in enumerate(levels):
        out[key_swd(res)] = 1e3 * sliced_wasserstein(desc["real"][lod], desc["fake"][lod], rng)
    out[KEY_SWD_AVG] = float(np.mean([out[key_swd(r)] for r in levels]))
    return out


@register_metric("swd", keys=(KEY_SWD_AVG,), label="SWD (x1e3)", better="lower",
                 description="PGGAN's sliced Wasserstein distance between 7x7 Laplacian-pyramid patches, "
                             "averaged over levels (x1e3).",
                 sees="local texture and edge statistics at each scale",
                 misses="global layout; needs many samples for a stable number")
def swd_metric(real, fake, cfg) -> dict:
    """PGGAN's sliced Wasserstein distance of Laplacian-pyramid patches (x1e3) per level and mean."""
    r = real.require_images("SWD")
    f = fake.require_images("SWD")
    if real.size < MIN_RESOLUTION:
        raise MetricUnavailable(f"SWD needs images of at least {MIN_RESOLUTION} px, evaluation is at {real.size}")
    n = min(len(r), len(f))
    if n < 2:
        raise MetricUnavailable(f"sets of {len(r)} real and {len(f)} fake images; SWD needs at least 2 in each")
    rng = np.random.default_rng(cfg.seed)
    # Equal counts, as in the reference; subsample the larger set with the seed.
    if len(r) > n:
        r = r[np.sort(rng.choice(len(r), n, replace=False))]
    if len(f) > n:
        f = f[np.sort(rng.choice(len(f), n, replace=False))]
    out = swd(r, f, cfg.seed)
    out["_config"] = {"images_per_set": n, "levels": resolutions(real.size), "nhood_size": NHOOD_SIZE,
                      "nhoods_per_image": NHOODS_PER_IMAGE, "dir_repeats": DIR_REPEATS,
                      "dirs_per_repeat": DIRS_PER_REPEAT, "rng": f"numpy RandomState({cfg.seed})"}
    return out
