"""Shared test fixtures: tiny synthetic "lesions" (dark discs on skin-coloured backgrounds)."""
from __future__ import annotations

import pytest
import torch

from eval.testing import lesion_images


def disc_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size): :func:`eval.testing.lesion_images` without pixel noise, NCHW as
    ``gan.data`` holds images."""
    return torch.from_numpy(lesion_images(n, size, seed, noise=0)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture
def discs():
    """The :func:`disc_images` factory."""
    return disc_images
