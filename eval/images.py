"""Small image helpers shared by the metrics: layout checks, resizing with a named mode, RGB->HSV."""
from __future__ import annotations

import numpy as np
from PIL import Image

# Resize modes: PIL filters, antialiased when downscaling. The default is LANCZOS, the filter
# gan.data uses for the real images, so real and generated images are resized alike.
RESIZE_MODES = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "box": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}
DEFAULT_RESIZE = "lanczos"


def as_nhwc_uint8(x, what: str = "images") -> np.ndarray:
    """``x`` (numpy or torch, uint8, NHWC or NCHW with 3 channels) as a contiguous uint8 NHWC array."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"{what}: expected uint8 pixels, got {x.dtype}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"{what}: expected an (N, H, W, 3) or (N, 3, H, W) array, got shape {x.shape}")
    if x.shape[-1] != 3 and x.shape[1] == 3:
        x = x.transpose(0, 2, 3, 1)
    if x.shape[-1] != 3:
        raise ValueError(f"{what}: expected 3 colour channels, got shape {x.shape}")
    return np.ascontiguousarray(x)


def resize_images(x: np.ndarray, size: int, mode: str = DEFAULT_RESIZE) -> np.ndarray:
    """Resize uint8 NHWC images to ``size``x``size`` with PIL filter ``mode`` (no-op at that size).
    Non-square images are centre-cropped to a square first."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r} (--resize); known: {', '.join(RESIZE_MODES)}")
    n, h, w, _ = x.shape
    if h == size and w == size:
        return x
    out = np.empty((n, size, size, 3), np.uint8)
    s = min(h, w)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    for i in range(n):
        out[i] = np.asarray(Image.fromarray(x[i]).resize((size, size), RESIZE_MODES[mode], box=box))
    return out


def rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    """uint8 RGB NHWC -> uint8 HSV (PIL's convention: H, S, V each scaled to 0..255)."""
    n, h, w, _ = x.shape
    if n == 0:
        return x.copy()
    # One PIL call on all images stacked vertically: exact PIL semantics, no per-image overhead.
    tall = Image.fromarray(x.reshape(n * h, w, 3)).convert("HSV")
    return np.array(tall).reshape(n, h, w, 3)
