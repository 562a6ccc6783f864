"""Wasserstein-1 distance of pixel intensities per channel on [0, 1].

Same semantics as ``scipy.stats.wasserstein_distance(u / 255, v / 255)`` over all pixels of each set,
but computed from the 256-value counts: for uint8 data the values sit exactly at v/255, so scipy's
weighted form ``wasserstein_distance(v, v, counts_u, counts_v)`` is exact and costs O(256) after the
histogram.
"""
from __future__ import annotations

import numpy as np

from eval.keys import CHANNELS, key_wasserstein
from eval.metrics.histogram import set_histograms
from eval.registry import MetricUnavailable, register_metric

_VALUES = np.arange(256) / 255.0  # where the 256 counts sit on [0, 1]


def wasserstein_from_counts(cu: np.ndarray, cv: np.ndarray) -> float:
    """W1 between two distributions given as counts over the 256 values v/255:
    ``scipy.stats.wasserstein_distance(v, v, cu, cv)``."""
    from scipy.stats import wasserstein_distance  # here: scipy.stats costs ~1 s to import

    cu = np.asarray(cu, np.float64)
    cv = np.asarray(cv, np.float64)
    if cu.sum() <= 0 or cv.sum() <= 0:
        raise ValueError("wasserstein_from_counts: a histogram is empty")
    return float(wasserstein_distance(_VALUES, _VALUES, cu, cv))


def pixel_wasserstein(hist_real: np.ndarray, hist_fake: np.ndarray, space: str = "rgb") -> dict:
    """Per-channel and mean W1 of two (3, 256) count arrays, keyed ``wasserstein_<space>[_<ch>]``."""
    key = key_wasserstein(space)
    out = {f"{key}_{ch}": wasserstein_from_counts(hist_real[c], hist_fake[c])
           for c, ch in enumerate(CHANNELS[space])}
    out[key] = float(np.mean([out[f"{key}_{ch}"] for ch in CHANNELS[space]]))
    return out


@register_metric("wasserstein", keys=("wasserstein_rgb",), label="Wasserstein", better="lower",
                 description="Earth mover's distance between real and generated pixel-value distributions "
                             "(per channel, values in [0, 1], mean over R, G, B).",
                 sees="how far the colour distribution is off, in intensity units",
                 misses="shape, texture, sharpness and artefacts")
def wasserstein(real, fake, cfg) -> dict:
    """Wasserstein-1 distance of pixel intensities on [0, 1] per RGB channel and the mean."""
    for s in (real, fake):
        if s.count < 1:
            raise MetricUnavailable(f"{s.role} set has no images")
    return pixel_wasserstein(set_histograms(real, cfg, "rgb"), set_histograms(fake, cfg, "rgb"), "rgb")
