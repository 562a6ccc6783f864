"""Shared test fixtures: tiny synthetic "lesions" (dark discs on skin-coloured backgrounds)."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def disc_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size): a brownish disc of random radius/centre on a pinkish background."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    for i in range(n):
        skin = np.array([225, 170, 150]) + rng.integers(-20, 20, 3)
        lesion = np.array([110, 60, 40]) + rng.integers(-25, 25, 3)
        cy, cx = rng.uniform(0.35, 0.65, 2) * size
        r = rng.uniform(0.15, 0.35) * size
        inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2
        out[i] = np.where(inside[..., None], lesion, skin)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


@pytest.fixture
def discs():
    """The :func:`disc_images` factory."""
    return disc_images
