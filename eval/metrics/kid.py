"""Kernel Inception Distance with torch-fidelity's ``kid_features_to_metric`` (cubic polynomial kernel,
unbiased MMD^2 averaged over random subsets). The subset size adapts to small sets:
``min(kid_subset_size, n_real, n_fake)`` (torch-fidelity's default 1000 would refuse the 600-image
ISIC 2017 test split)."""
from __future__ import annotations

import numpy as np
import torch

from eval.keys import KEY_KID, KEY_KID_STD
from eval.metrics import inception
from eval.registry import MetricUnavailable, register_metric

MIN_SUBSET = 10  # smaller subsets give an MMD estimate dominated by noise
DEFAULT_SUBSET_SIZE = 1000
DEFAULT_SUBSETS = 100


def kid_subset_size(n_real: int, n_fake: int, wanted: int = DEFAULT_SUBSET_SIZE) -> int:
    """The subset size used: ``wanted`` capped by both set sizes."""
    return int(min(wanted, n_real, n_fake))


def kid_from_features(f1: np.ndarray, f2: np.ndarray, subset_size: int, subsets: int = DEFAULT_SUBSETS,
                      seed: int = 0) -> tuple[float, float]:
    """(mean, std) of KID over ``subsets`` random subsets of ``subset_size`` drawn with ``seed``."""
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric

    out = kid_features_to_metric(torch.from_numpy(np.asarray(f1, np.float32)),
                                 torch.from_numpy(np.asarray(f2, np.float32)),
                                 kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed, verbose=False)
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


@register_metric("kid", keys=(KEY_KID,), label="KID", better="lower",
                 description="Kernel Inception Distance (unbiased MMD on Inception-v3 features, torch-fidelity).",
                 sees="what FID sees, without FID's small-sample bias",
                 misses="dermoscopic detail ImageNet features do not encode")
def kid(real, fake, cfg) -> dict:
    """KID between Inception-v3 pool features (torch-fidelity), subset size adapted to small sets."""
    weights = inception.require_weights(cfg)
    m = kid_subset_size(real.count, fake.count, cfg.kid_subset_size)
    if m < MIN_SUBSET:
        raise MetricUnavailable(f"sets of {real.count} real and {fake.count} fake images; KID needs at "
                                f"least {MIN_SUBSET} in each")
    f_real = inception.set_features(real, weights, cfg)
    f_fake = inception.set_features(fake, weights, cfg)
    mean, std = kid_from_features(f_real, f_fake, m, cfg.kid_subsets, cfg.seed)
    return {KEY_KID: mean, KEY_KID_STD: std,
            "_config": {"subset_size": m, "subsets": cfg.kid_subsets, "kernel": "poly3",
                        "weights_sha256": inception.weights_id(weights)}}
