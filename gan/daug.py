"""Differentiable augmentation of everything the discriminator sees, for training on few images.

Two methods, both applied to real and generated images alike, in the D phase and the G phase (so G
learns through the augmentation), for every model through the one loop:

* **DiffAugment** (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"):
  a fixed policy of ``color`` (brightness, saturation, contrast), ``translation`` (by up to 1/8 of
  the side, zero fill) and ``cutout`` (a square of half the side set to zero), every op on every image
  at every D call.
* **ADA** (Karras et al. 2020, "Training Generative Adversarial Networks with Limited Data"): each op
  of a pipeline is applied to each image with probability ``p``, and ``p`` adapts: every
  ``interval`` steps the overfitting heuristic ``r_t = E[sign(D_real)]`` over those steps moves
  ``p`` by ``sign(r_t - target) * images / (ada_kimg * 1000)``, clamped to [0, 1]. The pipeline is a
  subset of ADA's ``bgc``: blit (x-flip, 90-degree rotations, integer translation up to 1/8), geometry
  (isotropic scaling, lognormal sd 0.2 ln 2; rotation, uniform angle; reflection padding, bilinear) and
  colour (brightness N(0, 0.2), contrast lognormal sd 0.5 ln 2, saturation lognormal sd ln 2).
  ADA's luma flip, hue rotation, anisotropic scaling, fractional translation and its wavelet
  upsampling filter are left out. ``ops`` picks the groups (``bgc``, the default, all three; ``bg``
  leaves colours alone: in dermoscopy colour is diagnostic, and when p climbs high the colour ops
  can leak into G, as the paper warns for p above about 0.8).

Every random draw comes from one ``torch.Generator`` (the loop checkpoints it) through
:class:`gan.models.base.BatchRNG`, so a resumed run continues bit-exactly and the draws are those of
the global batch under torchrun. :class:`AugmentedD` wraps D so that the models' losses need no
change: ``D(x, **kw)`` becomes ``D(augment(x), **kw)``; its parameters are D's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gan.rng import BatchRNG

DIFFAUG_OPS = ("color", "translation", "cutout")
ADA_GROUPS = "bgc"  # blit, geometry, colour: ADA's own letters
# which of ada_augment's eight per-image ops each group switches
_ADA_GROUP_OPS = {"b": (0, 1, 2), "g": (3, 4), "c": (5, 6, 7)}


def parse_ada_ops(text: str) -> str:
    """``"bg"`` -> ``"bg"`` (any non-empty set of ADA's groups b, g, c, in that order); ValueError
    naming the flag otherwise."""
    letters = set(text)
    if not text or not letters <= set(ADA_GROUPS) or len(letters) != len(text):
        raise ValueError(f"--ada-ops: {text!r} is not a set of ADA's groups b (blit), g (geometry), "
                         f"c (colour), e.g. bgc or bg")
    return "".join(g for g in ADA_GROUPS if g in letters)


def parse_policy(text: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """``"color,translation,cutout"`` -> a tuple of DiffAugment ops; ValueError naming the unknown op."""
    ops = tuple(o.strip() for o in (text.split(",") if isinstance(text, str) else text) if o.strip())
    unknown = [o for o in ops if o not in DIFFAUG_OPS]
    if unknown:
        raise ValueError(f"--diffaug: unknown op(s) {', '.join(unknown)}; known: {', '.join(DIFFAUG_OPS)}")
    if len(set(ops)) != len(ops):
        raise ValueError(f"--diffaug: an op is named twice in {','.join(ops)}")
    return ops


# -- DiffAugment ------------------------------------------------------------------------------

def diff_augment(x: torch.Tensor, policy: tuple[str, ...], rng: BatchRNG) -> torch.Tensor:
    """Zhao et al.'s DiffAugment ops, in ``policy`` order, each on every image. ``x``: float NCHW in
    [-1, 1] (this process's share of the batch); differentiable with respect to ``x``."""
    n, _, h, w = x.shape
    dev = x.device
    for op in policy:
        if op == "color":
            x = x + (rng.rand(n, 1, 1, 1).to(dev, x.dtype) - 0.5)  # brightness
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (rng.rand(n, 1, 1, 1).to(dev, x.dtype) * 2) + mean  # saturation
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (rng.rand(n, 1, 1, 1).to(dev, x.dtype) + 0.5) + mean  # contrast
        elif op == "translation":
            sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            ty = (rng.rand(n).mul(2 * sy + 1).floor().long() - sy).to(dev)
            tx = (rng.rand(n).mul(2 * sx + 1).floor().long() - sx).to(dev)
            x = translate_int(x, ty, tx)
        elif op == "cutout":
            ch, cw = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
            cy = rng.rand(n).mul(h + (1 - ch % 2)).floor().long().to(dev)
            cx = rng.rand(n).mul(w + (1 - cw % 2)).floor().long().to(dev)
            y0, x0 = (cy - ch // 2).view(n, 1, 1), (cx - cw // 2).view(n, 1, 1)
            yy = torch.arange(h, device=dev).view(1, h, 1)
            xx = torch.arange(w, device=dev).view(1, 1, w)
            inside = (yy >= y0) & (yy < y0 + ch) & (xx >= x0) & (xx < x0 + cw)
            x = x * (~inside).unsqueeze(1).to(x.dtype)
        else:
            raise ValueError(f"unknown DiffAugment op {op!r}")
    return x


def translate_int(x: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
    """Shift image i by (ty[i], tx[i]) whole pixels (down, right), filling with zeros; a gather, so
    gradients flow to the pixels that stay in view."""
    n, c, h, w = x.shape
    yy = torch.arange(h, device=x.device).view(1, h, 1) - ty.view(n, 1, 1)
    xx = torch.arange(w, device=x.device).view(1, 1, w) - tx.view(n, 1, 1)
    valid = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).view(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
    return out * valid.unsqueeze(1).to(x.dtype)


# -- ADA ---------------------------------------------------------------------------------------

def ada_augment(x: torch.Tensor, p: float, rng: BatchRNG, ops: str = ADA_GROUPS) -> torch.Tensor:
    """ADA's pipeline (the subset in the module docstring) at probability ``p``: each op of the groups
    in ``ops`` is applied to each image independently with probability ``p``. ``p == 0`` returns ``x``
    itself. The draws are made whatever ``p`` and ``ops`` are (one fixed number per call), so the
    generator's stream depends on neither."""
    n, _, h, w = x.shape
    dev = x.device
    u = rng.rand(n, 8).to(dev)        # which ops apply
    v = rng.rand(n, 8).to(dev)        # their parameters
    w = rng.rand(n, 5).to(dev)        # x-translation, and the Box-Muller angles of the four normal draws
    if p <= 0:
        return x
    on = (u < p).to(x.dtype)
    if ops != ADA_GROUPS:
        keep = torch.zeros(8, dtype=x.dtype, device=dev)
        keep[[i for g in ops for i in _ADA_GROUP_OPS[g]]] = 1  # ops: parse_ada_ops'd by the config
        on = on * keep
    # Blit: x-flip and 90-degree rotations as one pixel permutation, integer translation.
    flip = (on[:, 0] * (v[:, 0] < 0.5).to(x.dtype)).long()
    k = (on[:, 1] * (v[:, 1] * 4).floor().clamp(max=3)).long()
    if bool((flip + k).any()):
        x = orient(x, flip, k)
    s = int(h * 0.125 + 0.5)
    ty = (on[:, 2] * ((v[:, 2] * (2 * s + 1)).floor() - s)).long()
    tx = (on[:, 2] * ((w[:, 0] * (2 * s + 1)).floor() - s)).long()
    if bool((ty != 0).any() or (tx != 0).any()):
        x = translate_int_reflect(x, ty, tx)
    # Geometry: isotropic scale and rotation as one affine warp (reflection padding, bilinear).
    scale = torch.exp2(_normal(v[:, 3], w[:, 1]) * 0.2 * on[:, 3])
    angle = (v[:, 4] * 2 - 1) * math.pi * on[:, 4]
    if bool((on[:, 3] + on[:, 4]).any()):
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(cos)], 1),
                             torch.stack([sin, cos, torch.zeros_like(cos)], 1)], 1).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # Colour.
    bright = (_normal(v[:, 5], w[:, 2]) * 0.2 * on[:, 5]).view(n, 1, 1, 1).to(x.dtype)
    x = x + bright
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    contrast = torch.exp2(_normal(v[:, 6], w[:, 3]) * 0.5 * on[:, 6]).view(n, 1, 1, 1).to(x.dtype)
    x = (x - mean) * contrast + mean
    gray = x.mean(dim=1, keepdim=True)
    sat = torch.exp2(_normal(v[:, 7], w[:, 4]) * on[:, 7]).view(n, 1, 1, 1).to(x.dtype)
    return (x - gray) * sat + gray


def orient(x: torch.Tensor, flip: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Image i x-flipped if ``flip[i]``, then turned by ``k[i]`` * 90 degrees: a gather."""
    n, c, h, w = x.shape
    if h != w:
        raise ValueError(f"ADA's rotations need square images, got {h}x{w}")
    grid = torch.arange(h * w, device=x.device).view(h, w)
    perms = torch.stack([torch.rot90(g, q) for q in range(4) for g in (grid, grid.flip(1))]).view(8, h * w)
    index = perms[(2 * k + flip).to(x.device)].unsqueeze(1).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)


def _normal(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Standard normal draws from two independent uniform ones (Box-Muller), so ADA needs one draw of
    uniforms per call."""
    return torch.sqrt(-2 * torch.log(a.clamp_min(1e-7))) * torch.cos(2 * math.pi * b)


def translate_int_reflect(x: torch.Tensor, ty: torch.Tensor, tx: torch.Tensor) -> torch.Tensor:
    """Integer translation with reflection at the borders (ADA's padding), as a gather."""
    n, c, h, w = x.shape

    def reflect(i, size):
        period = 2 * (size - 1)
        i = i.remainder(period)
        return torch.where(i >= size, period - i, i)

    yy = reflect(torch.arange(h, device=x.device).view(1, h, 1) - ty.view(n, 1, 1), h)
    xx = reflect(torch.arange(w, device=x.device).view(1, 1, w) - tx.view(n, 1, 1), w)
    index = (yy * w + xx).view(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)


@dataclass
class AdaState:
    """ADA's adaptive probability and the overfitting signal accumulated since the last update.

    Args:
        p: the current augmentation probability.
        target: the r_t the heuristic steers to (0.6, the paper's).
        interval: steps between updates of ``p`` (4, the paper's).
        ada_kimg: thousands of images over which ``p`` can move from 0 to 1.
        ops: the pipeline's groups (``bgc``; ``bg``: no colour ops).
    """

    p: float = 0.0
    target: float = 0.6
    interval: int = 4
    ada_kimg: float = 100.0
    ops: str = ADA_GROUPS
    sign_sum: float = 0.0
    count: int = 0
    steps: int = 0
    rt: float | None = None

    def accumulate(self, sign_mean: float, batch: int) -> None:
        """Add one step's mean sign(D(real)) over ``batch`` real images; every ``interval`` steps
        update ``p``."""
        self.sign_sum += sign_mean * batch
        self.count += batch
        self.steps += 1
        if self.steps % self.interval == 0 and self.count:
            self.rt = self.sign_sum / self.count
            adjust = math.copysign(1.0, self.rt - self.target) * self.count / (self.ada_kimg * 1000)
            self.p = min(max(self.p + adjust, 0.0), 1.0)
            self.sign_sum, self.count = 0.0, 0

    def state_dict(self) -> dict:
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count, "steps": self.steps, "rt": self.rt}

    def load_state_dict(self, d: dict) -> None:
        self.p, self.sign_sum = float(d["p"]), float(d["sign_sum"])
        self.count, self.steps = int(d["count"]), int(d["steps"])
        self.rt = None if d.get("rt") is None else float(d["rt"])


class AugmentedD(nn.Module):
    """D seeing augmented images: ``AugmentedD(D, ...)(x, **kw) == D(augment(x), **kw)``.

    Its parameters are D's (``no_param_grads`` and DDP see through it); it holds no state of its own
    and is never saved.

    Args:
        D: the discriminator (or its DDP wrapper).
        rng: the augmentation draws' generator (per-sample draws through :class:`BatchRNG`).
        policy: DiffAugment ops (empty: none).
        ada: the ADA state (None: no ADA); its ``p`` is read at every call.
    """

    def __init__(self, D: nn.Module, rng: BatchRNG, policy: tuple[str, ...] = (), ada: AdaState | None = None):
        super().__init__()
        self.D, self.rng, self.policy, self.ada = D, rng, tuple(policy), ada

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        if self.ada is not None:
            x = ada_augment(x, self.ada.p, self.rng, self.ada.ops)
        if self.policy:
            x = diff_augment(x, self.policy, self.rng)
        return x

    def forward(self, x: torch.Tensor, **kw) -> torch.Tensor:
        return self.D(self.augment(x), **kw)
