"""Orientation augmentation for real images: dermoscopy has no canonical up, left or right."""
from __future__ import annotations

import torch


def augment(x: torch.Tensor, rng: torch.Generator, *, xflip: bool = True, yflip: bool = True,
            rot90: bool = True) -> torch.Tensor:
    """Randomly flip and rotate each image of a batch by multiples of 90 degrees.

    Each image independently gets a horizontal flip (p=1/2, if ``xflip``), then a vertical flip
    (p=1/2, if ``yflip``), then a rotation by k*90 degrees (k uniform in 0..3, if ``rot90``). With
    all three on, every one of the 8 orientations (the dihedral group D4) is equally likely; with
    only the flips, the 4 orientations they reach are. Pixels are only moved, never interpolated.

    Args:
        x: NCHW batch of square images, any dtype (uint8 or float), any device.
        rng: the generator all randomness comes from (one draw of N integers per call), so the
            result is a function of ``x`` and the generator's state.
        xflip: allow horizontal flips.
        yflip: allow vertical flips.
        rot90: allow rotations by 90, 180 and 270 degrees.

    Returns:
        A new tensor of the same shape, dtype and device.

    Raises:
        ValueError: ``x`` is not a 4-D batch of square images.
    """
    if x.ndim != 4 or x.shape[2] != x.shape[3]:
        raise ValueError(f"augment expects an NCHW batch of square images, got shape {tuple(x.shape)}")
    n, c, s, _ = x.shape
    r = torch.randint(0, 16, (n,), generator=rng, device=rng.device).to(x.device)
    h, v, k = (r & 1) * int(xflip), ((r >> 1) & 1) * int(yflip), (r >> 2) * int(rot90)
    # With H, V the flips and R a 90-degree turn, V = R^2 H and R^2 commutes with H, so
    # R^k V^v H^h = R^(k+2v) H^(h xor v): one of 8 orientations, numbered 2 * turns + flip.
    code = 2 * ((k + 2 * v) % 4) + (h ^ v)
    # Each orientation as a pixel permutation, made by applying it to a grid of pixel indices.
    grid = torch.arange(s * s, device=x.device).view(s, s)
    perms = torch.stack([torch.rot90(g, q) for q in range(4) for g in (grid, grid.flip(1))]).view(8, s * s)
    index = perms[code].unsqueeze(1).expand(n, c, s * s)
    return x.reshape(n, c, s * s).gather(2, index).view(n, c, s, s)
