"""Frechet Inception Distance with torch-fidelity's feature extractor and statistics functions.
features (``eval.metrics.inception``) -> ``fid_statistics`` (mean, covariance) -> ``fid_from_statistics``."""
from __future__ import annotations

import numpy as np
import torch

from eval.keys import KEY_FID
from eval.metrics import inception
from eval.registry import MetricUnavailable, register_metric

MIN_IMAGES = 10  # below this the covariance estimate is noise; FID is reported unavailable


def fid_statistics(features: np.ndarray) -> dict:
    """torch-fidelity's ``fid_features_to_statistics``: {"mu", "sigma"} of (N, D) features."""
    from torch_fidelity.metric_fid import fid_features_to_statistics

    return fid_features_to_statistics(torch.from_numpy(np.asarray(features, np.float32)))


def fid_from_statistics(stats_1: dict, stats_2: dict) -> float:
    """torch-fidelity's ``fid_statistics_to_metric``."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    return float(fid_statistics_to_metric(stats_1, stats_2, verbose=False)[KEY_METRIC_FID])


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """Fréchet distance between the Gaussians fitted to two (N, D) feature sets (torch-fidelity's
    statistics and metric): FID on Inception features; fd_derm scores the same on stored statistics."""
    return fid_from_statistics(fid_statistics(f1), fid_statistics(f2))


@register_metric("fid", keys=(KEY_FID,), label="FID", better="lower",
                 description="Fréchet distance between Inception-v3 feature statistics of real and generated "
                             "images (torch-fidelity).",
                 sees="overall image statistics in ImageNet features: blur, artefacts, missing modes",
                 misses="dermoscopic detail ImageNet features do not encode; biased upward on few samples")
def fid(real, fake, cfg) -> dict:
    """FID between Inception-v3 pool features (torch-fidelity), images upsampled to 299 px."""
    weights = inception.require_weights(cfg)
    for s in (real, fake):
        if s.count < MIN_IMAGES:
            raise MetricUnavailable(f"{s.role} set has {s.count} images; FID needs at least {MIN_IMAGES}")
    f_real = inception.set_features(real, weights, cfg)
    f_fake = inception.set_features(fake, weights, cfg)
    return {KEY_FID: fid_from_features(f_real, f_fake),
            "_config": {"weights_sha256": inception.weights_id(weights), "feature_layer": "pool3 (2048)"}}
