"""Diversity: mean pairwise MS-SSIM among generated samples, beside the same figure among real images.
A generator whose samples resemble each other more than real images do (fake > real) is losing modes.

MS-SSIM (Wang, Simoncelli, Bovik 2003) as in its reference code and TensorFlow's ``ssim_multiscale``:
Gaussian window 11 px, sigma 1.5, K1 0.01, K2 0.03, L 255, 'valid' filtering, 2x2 average-pool
between scales, scale weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), negative terms clamped to 0,
computed per RGB channel and averaged over channels.

Adaptation to small images: the standard 5 scales need the coarsest scale (size / 16) to hold the
11-px window, i.e. at least 176 px. We keep the window and use the largest number of scales whose
coarsest level still holds it (64 px -> 3 scales: 64, 32, 16; 32 px -> 2; 16 px -> 1, plain SSIM),
with the first weights renormalised to sum to 1. Below 11 px the window shrinks to the largest odd
size that fits, sigma scaled with it. The result states scales, window and sigma.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from eval.keys import KEY_MSSSIM_FAKE, KEY_MSSSIM_GAP, KEY_MSSSIM_REAL
from eval.registry import MetricUnavailable, register_metric

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW = 11
SIGMA = 1.5
K1, K2, L = 0.01, 0.03, 255.0


def msssim_config(size: int, window: int = WINDOW, sigma: float = SIGMA, max_scales: int = 5) -> dict:
    """Scales, window and sigma used for images of side ``size`` (see the module docstring)."""
    if size < 1:
        raise ValueError(f"image size must be positive, got {size}")
    win = window
    sig = sigma
    if size < win:
        win = size if size % 2 else size - 1
        sig = sigma * win / window
    scales = 1
    while scales < max_scales and size // 2 ** scales >= win:
        scales += 1
    w = np.asarray(WEIGHTS[:scales], np.float64)
    return {"scales": scales, "window": win, "sigma": sig, "weights": (w / w.sum()).tolist()}


def _gauss(win: int, sigma: float) -> torch.Tensor:
    x = torch.arange(win, dtype=torch.float32) - (win - 1) / 2
    g = torch.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """(n, n - win + 1) matrix whose columns hold ``g`` shifted: x @ band = 'valid' 1-D filtering."""
    win = len(g)
    m = torch.zeros(n, n - win + 1, dtype=g.dtype)
    for k in range(n - win + 1):
        m[k:k + win, k] = g
    return m


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    # Separable 'valid' Gaussian filter per channel as two matmuls (much faster on CPU than a
    # depthwise conv2d). float32: 255^2-scale sums keep ~1e-6 relative error, far below C2.
    bw, bh = _band(x.shape[-1], g), _band(x.shape[-2], g)
    return bh.T @ (x @ bw)


def _stats(x: torch.Tensor, cfg: dict, g: torch.Tensor) -> list[tuple]:
    """Per scale: (image, local mean, local mean of squares) of float (N, C, H, W) images."""
    out = []
    for j in range(len(cfg["weights"])):
        if j:
            x = F.avg_pool2d(x, 2)
        out.append((x, _filter(x, g), _filter(x * x, g)))
    return out


def _combine(sx: list[tuple], sy: list[tuple], cfg: dict, g: torch.Tensor) -> torch.Tensor:
    """MS-SSIM (P,) from the per-scale statistics of paired images (P, C, H, W each)."""
    c1, c2 = (K1 * L) ** 2, (K2 * L) ** 2
    result = torch.ones(sx[0][0].shape[:2], dtype=sx[0][0].dtype)  # (P, C)
    last = len(cfg["weights"]) - 1
    for j, w in enumerate(cfg["weights"]):
        (x, mx, qx), (y, my, qy) = sx[j], sy[j]
        sxy = _filter(x * y, g) - mx * my
        cs = (2 * sxy + c2) / ((qx - mx * mx) + (qy - my * my) + c2)
        if j == last:
            cs = cs * (2 * mx * my + c1) / (mx * mx + my * my + c1)  # luminance only at the coarsest scale
        result = result * torch.clamp(cs.mean(dim=(2, 3)), min=0) ** w
    return result.mean(dim=1)


def _as_float(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x)).permute(0, 3, 1, 2).to(torch.float32)


def ms_ssim(x: np.ndarray, y: np.ndarray, cfg: dict | None = None) -> np.ndarray:
    """MS-SSIM of image pairs: ``x``, ``y`` uint8 (P, H, W, 3) -> (P,), 1 for identical images.

    Args:
        cfg: ``msssim_config(size)`` (default: from the image size).
    """
    if np.shape(x) != np.shape(y):
        raise ValueError(f"ms_ssim: shapes differ {np.shape(x)} vs {np.shape(y)}")
    cfg = cfg or msssim_config(min(np.shape(x)[1:3]))
    g = _gauss(cfg["window"], cfg["sigma"])
    return _combine(_stats(_as_float(x), cfg, g), _stats(_as_float(y), cfg, g), cfg, g).numpy().astype(np.float64)


def random_pairs(n: int, count: int, seed: int) -> np.ndarray:
    """(P, 2) index pairs i != j: all pairs when there are at most ``count``, else ``count`` drawn
    uniformly with ``seed``."""
    if n < 2:
        raise ValueError("random_pairs needs at least 2 images")
    total = n * (n - 1) // 2
    if total <= count:
        i, j = np.triu_indices(n, k=1)
        return np.stack([i, j], 1)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, count)
    j = (i + rng.integers(1, n, count)) % n
    return np.stack([i, j], 1)


def mean_pairwise_msssim(images: np.ndarray, pairs: int = 1000, seed: int = 0, batch: int = 256) -> tuple[float, int]:
    """(mean MS-SSIM over random pairs of ``images``, number of pairs used). Same numbers as
    ``ms_ssim`` on each pair; the per-image local statistics are computed once, not once per pair."""
    idx = random_pairs(len(images), pairs, seed)
    used, inv = np.unique(idx, return_inverse=True)
    inv = inv.reshape(idx.shape)
    cfg = msssim_config(images.shape[1])
    g = _gauss(cfg["window"], cfg["sigma"])
    st = _stats(_as_float(images[used]), cfg, g)
    vals = []
    for s in range(0, len(idx), batch):
        a, b = inv[s:s + batch, 0], inv[s:s + batch, 1]
        vals.append(_combine([tuple(t[a] for t in lv) for lv in st], [tuple(t[b] for t in lv) for lv in st], cfg, g))
    return float(torch.cat(vals).double().mean()), len(idx)


def _real_images(real) -> tuple[np.ndarray, str]:
    if real.images is not None:
        return real.images, "images"
    fp = real.fingerprint
    if fp is None or fp.thumbs is None or len(fp.thumbs) == 0:
        raise MetricUnavailable("the real fingerprint holds no thumbnails for MS-SSIM")
    if fp.thumbs.shape[1] != real.size:
        raise MetricUnavailable(f"the real fingerprint's thumbnails are {fp.thumbs.shape[1]} px, "
                                f"evaluation is at {real.size} px")
    return fp.thumbs, "fingerprint thumbnails"


@register_metric("diversity", keys=(KEY_MSSSIM_FAKE, KEY_MSSSIM_REAL), label="Diversity MS-SSIM",
                 better="lower",
                 description="Mean pairwise MS-SSIM between generated samples; lower = more varied. Above the "
                             "real images' own value warns of mode collapse.",
                 sees="mode collapse: samples that look alike in structure",
                 misses="whether the samples look real at all")
def diversity(real, fake, cfg) -> dict:
    """Mean pairwise MS-SSIM of fake samples and of real images (higher than real: less diverse)."""
    f = fake.require_images("MS-SSIM diversity")
    if len(f) < 2:
        raise MetricUnavailable(f"fake set has {len(f)} image(s); MS-SSIM diversity needs at least 2")
    r, r_from = _real_images(real)
    if len(r) < 2:
        raise MetricUnavailable(f"real set has {len(r)} image(s); MS-SSIM diversity needs at least 2")
    m_fake, p_fake = mean_pairwise_msssim(f, cfg.msssim_pairs, cfg.seed)
    m_real, p_real = mean_pairwise_msssim(r, cfg.msssim_pairs, cfg.seed)
    mcfg = msssim_config(f.shape[1])
    return {KEY_MSSSIM_FAKE: m_fake, KEY_MSSSIM_REAL: m_real, KEY_MSSSIM_GAP: m_fake - m_real,
            "_config": {"scales": mcfg["scales"], "window": mcfg["window"], "sigma": mcfg["sigma"],
                        "pairs_fake": p_fake, "pairs_real": p_real, "real_from": r_from,
                        "n_real_images": len(r)}}
