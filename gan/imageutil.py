"""Small image helpers shared by training, sampling and the dashboard."""
from __future__ import annotations

import math

import numpy as np
import torch


def to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """Float images in [-1, 1] (N, 3, H, W) -> uint8 numpy (N, H, W, 3), rounding to nearest."""
    return x.float().mul(127.5).add_(128).clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) -> one near-square uint8 grid image (empty cells black)."""
    n, h, w, c = images.shape
    side = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / side))
    grid = np.zeros((rows * h, side * w, c), dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, side)
        grid[r * h:(r + 1) * h, col * w:(col + 1) * w] = img
    return grid
