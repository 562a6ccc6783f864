"""Colour-histogram Jensen-Shannon divergence.

Stages, each a pure function:
  images -> ``channel_histograms`` (3 x 256 counts over all pixels of a set; additive over batches)
         -> ``rebin`` (--bins over [0, 256): value v falls in bin ``v * bins // 256``)
         -> ``js_divergence`` per channel, base 2 (0 = identical, 1 = disjoint), and their mean.
The 256-bin counts are what a fingerprint stores, so any ``--bins`` <= 256 is exact from it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from eval.keys import CHANNELS, KEY_JS_HSV, KEY_JS_RGB, key_js
from eval.registry import MetricUnavailable, register_metric


def channel_histograms(images: np.ndarray, batch_size: int = 2048) -> np.ndarray:
    """Per-channel counts of each uint8 value over all pixels: int64 array (3, 256).

    Args:
        images: uint8 (N, H, W, 3).
        batch_size: images per ``torch.bincount`` call; the counts do not depend on it.
    """
    out = np.zeros((3, 256), np.int64)
    for start in range(0, len(images), max(1, batch_size)):
        t = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size]))
        t = t.reshape(-1, 3)
        for c in range(3):
            # bincount on a contiguous uint8 plane is the fastest exact histogram torch has on CPU.
            out[c] += torch.bincount(t[:, c].contiguous(), minlength=256).numpy()
    return out


def rebin(hist256: np.ndarray, bins: int) -> np.ndarray:
    """Sum 256-value counts (..., 256) into ``bins`` equal bins over [0, 256)."""
    if not 1 <= bins <= 256:
        raise ValueError(f"--bins must be in 1..256, got {bins}")
    idx = (np.arange(256) * bins) // 256
    out = np.zeros(hist256.shape[:-1] + (bins,), np.float64)
    np.add.at(out, (..., idx), hist256.astype(np.float64))
    return out


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two count vectors (normalised here):
    ``scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2`` (0 = identical, 1 = disjoint)."""
    from scipy.spatial.distance import jensenshannon  # here: scipy costs ~0.5 s to import

    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("js_divergence: a histogram is empty")
    # scipy returns the distance, sqrt(divergence); for near-identical histograms the divergence can
    # round to a tiny negative number, whose square root is nan: that divergence is 0.
    with np.errstate(invalid="ignore"):
        d = float(jensenshannon(p, q, base=2))
    return 0.0 if math.isnan(d) else d * d


def histogram_jsd(hist_real: np.ndarray, hist_fake: np.ndarray, bins: int, space: str = "rgb") -> dict:
    """Per-channel and mean JSD of two (3, 256) count arrays at ``bins`` bins, keyed ``js_<space>_hist<bins>``."""
    hr, hf = rebin(hist_real, bins), rebin(hist_fake, bins)
    key = key_js(space, bins)
    out = {}
    for c, ch in enumerate(CHANNELS[space]):
        out[f"{key}_{ch}"] = js_divergence(hr[c], hf[c])
    out[key] = float(np.mean([out[f"{key}_{ch}"] for ch in CHANNELS[space]]))
    return out


def set_histograms(s, cfg, space: str = "rgb") -> np.ndarray:
    """A set's (3, 256) counts in ``space``: read from its fingerprint, or computed once per set in
    ``cfg.cache``."""
    from eval.images import rgb_to_hsv

    def compute():
        imgs = s.require_images(f"{space.upper()} histograms")
        if space == "hsv":
            return channel_histograms(rgb_to_hsv(imgs))
        return channel_histograms(imgs)

    return cfg.cache.get(s, f"hist_{space}256", compute)


def _jsd_metric(real, fake, cfg, space: str) -> dict:
    for s in (real, fake):
        if s.count < 1:
            raise MetricUnavailable(f"{s.role} set has no images")
    out = histogram_jsd(set_histograms(real, cfg, space), set_histograms(fake, cfg, space), cfg.bins, space)
    out["_config"] = {"bins": cfg.bins, "range": [0, 256], "space": space, "log_base": 2}
    return out


# The key names the bin count (``--bins``): registered is the key at the default 64 bins, the one the
# catalogue, the quality bar and the model cards use; ``keys_for`` gives the key a run writes.
@register_metric("hist_js", keys=(KEY_JS_RGB,), keys_for=lambda cfg: (key_js("rgb", cfg.bins),),
                 label="JSD colour", better="lower",
                 description="Jensen-Shannon divergence (base 2) of real vs generated RGB histograms (64 bins), "
                             "mean over channels; 0 = same colours, 1 = disjoint.",
                 sees="shifts in lesion and skin colour, contrast and brightness",
                 misses="shape, texture, sharpness and artefacts: a scrambled image has the same histogram")
def hist_js(real, fake, cfg) -> dict:
    """Colour-histogram Jensen-Shannon divergence per RGB channel (base 2) and the mean."""
    return _jsd_metric(real, fake, cfg, "rgb")


@register_metric("hist_js_hsv", keys=(KEY_JS_HSV,), keys_for=lambda cfg: (key_js("hsv", cfg.bins),),
                 label="JSD HSV", better="lower",
                 description="Jensen-Shannon divergence (base 2) of real vs generated HSV histograms, mean over "
                             "H, S, V.",
                 sees="hue and saturation shifts separately from brightness",
                 misses="shape, texture, sharpness and artefacts")
def hist_js_hsv(real, fake, cfg) -> dict:
    """Colour-histogram Jensen-Shannon divergence per HSV channel (PIL's HSV, base 2) and the mean."""
    return _jsd_metric(real, fake, cfg, "hsv")
