"""Progressive growing of GANs, as in Karras et al. 2018 ("Progressive Growing of GANs for Improved
Quality, Stability, and Variation", ICLR 2018; reference code tkarras/progressive_growing_of_gans).

What is the paper's:

* G and D grow from ``start_resolution`` (4 or 8 px) to ``resolution``; each new block fades in
  smoothly (``alpha`` 0 -> 1) over ``fade_kimg`` thousand images, then trains ``stable_kimg``.
  G's output during a fade is ``lerp(upsample(toRGB_prev(x_prev)), toRGB_new(block(x_prev)), alpha)``;
  D mirrors it on its input side, and the real images D sees are blended the same way (the
  reference code's ``lod`` blending of reals, done here in the loss).
* Equalized learning rate: every weight is N(0, 1) and scaled at run time by the He constant
  ``gain / sqrt(fan_in)`` (gain sqrt(2); 1 for toRGB and D's last layer; sqrt(2)/4 for G's latent
  dense layer, as in the reference code); biases start at zero.
* Pixelwise feature normalization after every G convolution (and of the latent), leaky ReLU 0.2,
  nearest upsampling, 2x2 average pooling, linear toRGB output.
* Minibatch standard deviation (group size 4, one feature) before D's last block.
* WGAN-GP (lambda 10, target 1) with the drift term 0.001 * E[D(real)^2];
  Adam(lr 1e-3, betas (0, 0.99), eps 1e-8); per-resolution batch size; G_ema (kept by the loop).
* Adam state is reset whenever layers enter or leave the network (``reset_opt_for_new_lod``):
  every fade-in and every stabilization period is its own ``Stage.phase``, and the loop rebuilds
  the optimizers when the phase changes.

Under torchrun (:mod:`gan.dist`) each process computes the minibatch stddev over groups within its
own share of the batch, as the reference code does per GPU, and the gradient penalty on its own
samples (it is per sample; DDP averages the gradients), with latents and mixing weights drawn for the
global batch (:class:`~gan.rng.BatchRNG`).

What is scaled down for a 2-core CPU and ~150 kimg runs (all configurable, see :class:`PGGANConfig`):

* widths ``min(fmap_base // res, fmap_max)`` = 1024 / 128: 128 maps at 4-8 px, 64 at 16, 32 at 32,
  16 at 64 px (and, with ``fmap_min``, 16 at 128 and 256 px), which makes G and D about as costly
  as the report's DCGAN (~0.1 GMAC each at 64 px).
  The paper is 16384 / 512 in this formula (its code's ``fmap_base`` 8192 indexes by ``log2(res) - 1``):
  512 maps up to 32 px, 256 at 64 px. On this CPU 4096 / 256 trained ~15x slower per image than
  DCGAN at 64 px, 2048 / 256 ~8x, 1024 / 128 ~2.5x (WGAN-GP's double backward is the rest).
* ``z_dim`` 128, the 4x4 width, as the paper's 512 is its 4x4 width.
* 15 kimg fade-in + 15 kimg stabilization per resolution from 8 px (the paper: 600 + 600 kimg
  from 4 px), so 64 px is fully faded in at 90 kimg, 60 % of a 150 kimg run.
* batch 64 up to 16 px, 32 at 32-64 px (the paper: 16 up to 128 px); 16 at 128 px, 8 at 256 px.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from gan.models.base import ModelSpec, Stage, adam, no_param_grads
from gan.models.conditioning import ConditionalConfig, LatentEmbedding, Projection, check_labels
from gan.models.registry import register_model
from gan.rng import BatchRNG

SQRT2 = math.sqrt(2.0)
_RESOLUTIONS = (4, 8, 16, 32, 64, 128, 256)


# --------------------------------------------------------------------------- helpers shared with pggan-seed

def growth_resolutions(start: int, final: int) -> list[int]:
    """``[start, 2 * start, ..., final]`` (empty when ``final < start``)."""
    return [start * 2 ** i for i in range(int(math.log2(final // start)) + 1)] if final >= start else []


def check_resolutions(model: str, resolution: int, start: int, lo: int) -> None:
    """Fail early, naming the field, unless ``lo <= start <= resolution <= 256`` are powers of two."""
    if resolution not in _RESOLUTIONS or resolution < lo:
        raise ValueError(f"{model} resolution must be a power of two from {lo} to 256, got {resolution}")
    if start not in _RESOLUTIONS or not lo <= start <= resolution:
        raise ValueError(f"{model} start_resolution must be a power of two from {lo} to resolution "
                         f"({resolution}), got {start}")


# --------------------------------------------------------------------------- layers

def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Pixelwise feature vector normalization: each pixel's feature vector to unit RMS (paper eq. 2),
    ``x / sqrt(mean_c(x^2) + eps)``; the norm is one reduction pass instead of square + mean."""
    ms = torch.linalg.vector_norm(x, dim=1, keepdim=True).square() / x.shape[1]
    return x * torch.rsqrt(ms + eps)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU 0.2, in place: every caller passes a fresh layer output that nothing else keeps."""
    return F.leaky_relu(x, 0.2, inplace=True)


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour 2x upsampling."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class EqualizedLinear(nn.Module):
    """Dense layer with equalized learning rate: ``y = x @ (w * gain / sqrt(fan_in)).T + b``, w ~ N(0, 1)."""

    def __init__(self, in_features: int, out_features: int, gain: float = SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = gain / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


class EqualizedConv2d(nn.Module):
    """'Same'-padded convolution with equalized learning rate (fan_in = in_channels * k * k)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, gain: float = SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel * kernel)
        self.padding = kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Scaling the (small) weight rather than the activations: same result, less work.
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, eps: float = 1e-8) -> torch.Tensor:
    """Append one feature map: the standard deviation of each feature over a group of samples,
    averaged over features and pixels (paper section 3, ``minibatch_stddev_layer``).

    The batch is split into ``ceil(N / group_size)`` groups and sample ``i`` joins group
    ``i % groups``, which is the reference code's ``reshape([group_size, -1, ...])`` when
    ``group_size`` divides N. When it does not (N = 7: groups of 4 and 3) the groups are as even as
    possible instead of failing; a batch of one gives the value ``sqrt(eps)``.
    """
    n, _, h, w = x.shape
    groups = -(-n // max(1, min(group_size, n)))
    gid = torch.arange(n, device=x.device) % groups
    # avg[g, i] = 1 / |group g| for members: group means are one matrix product.
    member = F.one_hot(gid, groups).T.to(x.dtype)
    avg = member / member.sum(dim=1, keepdim=True)
    flat = x.reshape(n, -1)
    mean = avg @ flat
    var = avg @ (flat - mean[gid]).square()          # population variance within each group
    std = (var + eps).sqrt().mean(dim=1)            # (groups,)
    return torch.cat([x, std[gid].view(n, 1, 1, 1).expand(n, 1, h, w)], dim=1)


class GBlock(nn.Module):
    """Upsample, conv3x3, lrelu, pixelnorm, conv3x3, lrelu, pixelnorm."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, out_channels, 3)
        self.conv1 = EqualizedConv2d(out_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(lrelu(self.conv0(upsample2(x))))
        return pixel_norm(lrelu(self.conv1(x)))


class DBlock(nn.Module):
    """conv3x3, lrelu, conv3x3, lrelu, 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(lrelu(self.conv1(lrelu(self.conv0(x)))), 2)


# --------------------------------------------------------------------------- config

@dataclass(frozen=True)
class PGGANConfig(ConditionalConfig):
    """Karras et al. 2018 hyperparameters (paper values where the CPU allows; see the module docstring).

    Args:
        resolution: final output side in px (64 by default; 128 and 256 on request).
        start_resolution: the first resolution trained, 4 (the paper) or 8 (default: on a short
            CPU budget the 4 px stage teaches little).
        fade_kimg: thousands of images over which each new block fades in (alpha 0 -> 1).
        stable_kimg: thousands of images each resolution trains at alpha = 1 (the final one: until
            the run ends).
        batch_per_res: ``((resolution, batch), ...)``: images per step at each resolution, used
            during its fade-in too. Must cover every resolution from start to final.
        z_dim: latent size.
        fmap_base: feature maps at resolution r are ``clamp(fmap_base // r, fmap_min, fmap_max)``.
        fmap_max: cap on feature maps.
        fmap_min: floor on feature maps (keeps 128 and 256 px layers from thinning to 8 and 4).
        lr: Adam learning rate of G and D.
        betas: Adam betas.
        gp_lambda: WGAN-GP gradient-penalty weight.
        drift: weight of the drift term E[D(real)^2].
        mbstd_group: minibatch-stddev group size.
        class_names: the classes of a class-conditional model (empty: unconditional); filled from the
            data's labels by ``gan.train --cond``. G pixel-normalizes ``[z, embed(c)]`` before its first
            block; D adds the projection of its last feature vector on the class's embedding.
        embed_dim: size of G's class embedding (conditional models only).
    """

    resolution: int = 64
    start_resolution: int = 8
    fade_kimg: float = 15.0
    stable_kimg: float = 15.0
    batch_per_res: tuple[tuple[int, int], ...] = ((4, 64), (8, 64), (16, 64), (32, 32), (64, 32),
                                                  (128, 16), (256, 8))
    z_dim: int = 128
    fmap_base: int = 1024
    fmap_max: int = 128
    fmap_min: int = 16
    lr: float = 1e-3
    betas: tuple[float, float] = (0.0, 0.99)
    gp_lambda: float = 10.0
    drift: float = 1e-3
    mbstd_group: int = 4
    # class_names and embed_dim: from ConditionalConfig (the conditioning every model shares)

    def __post_init__(self) -> None:
        self.check_conditional("pggan")
        check_resolutions("pggan", self.resolution, self.start_resolution, lo=4)
        if self.fade_kimg < 0:
            raise ValueError(f"pggan fade_kimg must be >= 0, got {self.fade_kimg}")
        if round(self.stable_kimg * 1000) < 1:
            raise ValueError(f"pggan stable_kimg must be at least 0.001 (one image), got {self.stable_kimg}")
        try:
            batches = dict(self.batch_per_res)
        except (TypeError, ValueError):
            raise ValueError(f"pggan batch_per_res must be (resolution, batch) pairs, got {self.batch_per_res!r}") from None
        missing = [r for r in growth_resolutions(self.start_resolution, self.resolution) if r not in batches]
        if missing:
            raise ValueError(f"pggan batch_per_res has no batch size for {missing} px")
        if any(int(b) < 1 for b in batches.values()):
            raise ValueError(f"pggan batch_per_res batch sizes must be positive, got {self.batch_per_res!r}")
        for name in ("z_dim", "fmap_base", "fmap_max", "fmap_min", "mbstd_group"):
            if getattr(self, name) < 1:
                raise ValueError(f"pggan {name} must be positive, got {getattr(self, name)}")
        if (not (math.isfinite(self.lr) and self.lr > 0) or len(self.betas) != 2
                or not all(0 <= b < 1 for b in self.betas)):
            raise ValueError(f"pggan needs a finite lr > 0 and two betas in [0, 1), got lr={self.lr}, "
                             f"betas={self.betas}")
        if not (0 <= self.gp_lambda < math.inf and 0 <= self.drift < math.inf):
            raise ValueError(f"pggan gp_lambda and drift must be finite and >= 0, got {self.gp_lambda}, {self.drift}")

    def channels(self, res: int) -> int:
        """Feature maps at resolution ``res``."""
        return max(self.fmap_min, min(self.fmap_base // res, self.fmap_max))

    def batch(self, res: int) -> int:
        return int(dict(self.batch_per_res)[res])


# --------------------------------------------------------------------------- networks

def _check_stage(net: nn.Module, resolution: int, alpha: float) -> None:
    if resolution not in net.resolutions:
        raise ValueError(f"this pggan {type(net).__name__.lower()} works at {net.resolutions} px, got {resolution}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if alpha < 1.0 and resolution == net.resolutions[0]:
        raise ValueError(f"nothing fades in at the first resolution ({resolution} px); alpha must be 1")


class Generator(nn.Module):
    """z (N, z_dim) -> images (N, 3, r, r), linear output around [-1, 1], for any grown-to r."""

    def __init__(self, cfg: PGGANConfig):
        super().__init__()
        self.z_dim = cfg.z_dim
        self.resolution = cfg.resolution
        self.resolutions = growth_resolutions(cfg.start_resolution, cfg.resolution)
        self.c4 = cfg.channels(4)
        self.num_classes = cfg.num_classes
        if self.num_classes:
            self.embed = LatentEmbedding(self.num_classes, cfg.embed_dim)
        z_in = cfg.z_dim + (cfg.embed_dim if self.num_classes else 0)
        self.dense = EqualizedLinear(z_in, self.c4 * 16, gain=SQRT2 / 4)
        self.conv4 = EqualizedConv2d(self.c4, self.c4, 3)
        self.blocks = nn.ModuleDict({str(r): GBlock(cfg.channels(r // 2), cfg.channels(r))
                                     for r in growth_resolutions(8, cfg.resolution)})
        self.to_rgb = nn.ModuleDict({str(r): EqualizedConv2d(cfg.channels(r), 3, 1, gain=1.0)
                                     for r in self.resolutions})

    def features(self, z: torch.Tensor, resolution: int, labels: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(features at resolution / 2 or None at 4 px, features at ``resolution``)."""
        labels = check_labels(labels, self.num_classes, z.shape[0])
        x = pixel_norm(z if labels is None else self.embed(z, labels))
        x = pixel_norm(lrelu(self.dense(x).view(-1, self.c4, 4, 4)))
        x = pixel_norm(lrelu(self.conv4(x)))
        prev = None
        res = 8
        while res <= resolution:
            prev, x = x, self.blocks[str(res)](x)
            res *= 2
        return prev, x

    def active_modules(self, resolution: int, fading: bool) -> list[nn.Module]:
        """The layers a stage at ``resolution`` uses (toRGB of the previous resolution when fading)."""
        mods = [*([self.embed] if self.num_classes else []), self.dense, self.conv4,
                *(self.blocks[str(r)] for r in growth_resolutions(8, resolution)), self.to_rgb[str(resolution)]]
        return mods + ([self.to_rgb[str(resolution // 2)]] if fading else [])

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        r = self.resolution if resolution is None else int(resolution)
        _check_stage(self, r, alpha)
        prev, x = self.features(z, r, labels)
        y = self.to_rgb[str(r)](x)
        if alpha < 1.0:
            y = torch.lerp(upsample2(self.to_rgb[str(r // 2)](prev)), y, float(alpha))
        return y


class Discriminator(nn.Module):
    """images (N, 3, r, r) -> critic scores (N,), for any r the generator grows through."""

    def __init__(self, cfg: PGGANConfig):
        super().__init__()
        self.resolution = cfg.resolution
        self.resolutions = growth_resolutions(cfg.start_resolution, cfg.resolution)
        self.mbstd_group = cfg.mbstd_group
        c4 = cfg.channels(4)
        self.from_rgb = nn.ModuleDict({str(r): EqualizedConv2d(3, cfg.channels(r), 1) for r in self.resolutions})
        self.blocks = nn.ModuleDict({str(r): DBlock(cfg.channels(r), cfg.channels(r // 2))
                                     for r in growth_resolutions(8, cfg.resolution)})
        self.conv4 = EqualizedConv2d(c4 + 1, c4, 3)
        self.dense = EqualizedLinear(c4 * 16, c4)
        self.out = EqualizedLinear(c4, 1, gain=1.0)
        self.num_classes = cfg.num_classes
        if self.num_classes:
            self.project = Projection(self.num_classes, c4)

    def active_modules(self, resolution: int, fading: bool) -> list[nn.Module]:
        mods = [self.from_rgb[str(resolution)], *(self.blocks[str(r)] for r in growth_resolutions(8, resolution)),
                self.conv4, self.dense, self.out, *([self.project] if self.num_classes else [])]
        return mods + ([self.from_rgb[str(resolution // 2)]] if fading else [])

    def forward(self, x: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        r = x.shape[-1]
        if resolution is not None and int(resolution) != r:
            raise ValueError(f"pggan discriminator asked for {resolution} px but got {r} px images")
        _check_stage(self, r, alpha)
        h = lrelu(self.from_rgb[str(r)](x))
        if r > 4:
            h = self.blocks[str(r)](h)
        if alpha < 1.0:
            h = torch.lerp(lrelu(self.from_rgb[str(r // 2)](F.avg_pool2d(x, 2))), h, float(alpha))
        res = r // 2
        while res >= 8:
            h = self.blocks[str(res)](h)
            res //= 2
        h = lrelu(self.conv4(minibatch_stddev(h, self.mbstd_group)))
        h = lrelu(self.dense(h.flatten(1)))
        labels = check_labels(labels, self.num_classes, x.shape[0])
        if labels is None:
            return self.out(h).view(-1)
        return self.out(h).view(-1) + self.project(h, labels)


# --------------------------------------------------------------------------- loss

def blend_reals(real: torch.Tensor, alpha: float) -> torch.Tensor:
    """During a fade-in, reals as the fading G sees them: ``lerp(upsample(avgpool(x)), x, alpha)``
    (the reference code's ``process_reals`` lod blending)."""
    if alpha >= 1.0:
        return real
    return torch.lerp(upsample2(F.avg_pool2d(real, 2)), real, float(alpha))


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, eps: torch.Tensor,
                     **kwargs) -> torch.Tensor:
    """WGAN-GP term ``mean((||grad D(x_hat)||_2 - 1)^2)`` with ``x_hat = lerp(fake, real, eps)``.

    Args:
        D: the critic, called as ``D(x_hat, **kwargs)``.
        real, fake: (N, C, H, W) batches.
        eps: (N, 1, 1, 1) per-sample mixing weights in [0, 1].
    """
    # Under bf16 autocast G's fakes come out in bfloat16: mix in the reals' dtype (float32 weights' inputs).
    x_hat = torch.lerp(fake.detach().to(real.dtype), real.detach(), eps.to(real.dtype)).requires_grad_(True)
    score = D(x_hat, **kwargs)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()


class WGANGPLoss:
    """Phase "D": ``E[D(fake)] - E[D(real)] + lambda * GP + drift * E[D(real)^2]``, fakes from fresh
    latents under ``no_grad``. Phase "G": ``-E[D(G(z))]`` on new latents (as in the paper)."""

    phases = ("D", "G")

    def __init__(self, G: nn.Module, D: nn.Module, cfg: PGGANConfig):
        self.G, self.D, self.cfg = G, D, cfg

    def accumulate_gradients(self, phase: str, real: torch.Tensor, stage: Stage,
                             rng: torch.Generator, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        kw = {"resolution": stage.resolution, "alpha": stage.alpha}
        if labels is not None:  # conditional: G draws the real batch's classes, D scores each for its class
            kw["labels"] = labels
        rng = BatchRNG.of(rng)
        n = real.shape[0]
        z = rng.randn(n, self.cfg.z_dim, device=real.device)
        if phase == "D":
            real = blend_reals(real, stage.alpha)
            with torch.no_grad():
                fake = self.G(z, **kw)
            d_real = self.D(real, **kw)
            d_fake = self.D(fake, **kw)
            eps = rng.rand(n, 1, 1, 1, device=real.device)
            gp = gradient_penalty(self.D, real, fake, eps, **kw)
            loss = (d_fake.mean() - d_real.mean() + self.cfg.gp_lambda * gp
                    + self.cfg.drift * d_real.square().mean())
            loss.backward()
            return {"loss_D": loss.detach(), "D_real": d_real.detach().mean(), "D_fake": d_fake.detach().mean(),
                    "grad_penalty": gp.detach(),
                    # ADA's r_t for a critic: the share of reals scored above the fakes' mean, as a sign mean.
                    "D_real_sign": torch.sign(d_real.detach().float() - d_fake.detach().float().mean()).mean()}
        if phase == "G":
            with no_param_grads(self.D):
                d_fake = self.D(self.G(z, **kw), **kw)
                loss = -d_fake.mean()
                loss.backward()
            return {"loss_G": loss.detach()}
        raise ValueError(f"unknown phase {phase!r}")


# --------------------------------------------------------------------------- schedule and spec

class Segment(NamedTuple):
    """One phase of the schedule: a fade-in into ``resolution`` or a stabilization period at it."""

    phase: int
    resolution: int
    start_nimg: int
    length_nimg: int | None  # None: the last one lasts until training stops
    fading: bool


def segments(cfg: PGGANConfig) -> list[Segment]:
    """Stabilize at the start resolution, then for each doubling: fade in, stabilize."""
    fade, stable = round(cfg.fade_kimg * 1000), round(cfg.stable_kimg * 1000)
    res = growth_resolutions(cfg.start_resolution, cfg.resolution)
    plan = [(res[0], stable, False)]
    for r in res[1:]:
        if fade > 0:
            plan.append((r, fade, True))
        plan.append((r, stable, False))
    out, start = [], 0
    for i, (r, length, fading) in enumerate(plan):
        last = i == len(plan) - 1
        out.append(Segment(i, r, start, None if last else length, fading))
        start += length
    return out


@register_model
class PGGAN(ModelSpec):
    name = "pggan"
    Config = PGGANConfig

    def build(self, cfg: PGGANConfig) -> tuple[nn.Module, nn.Module]:
        return Generator(cfg), Discriminator(cfg)

    def build_generator(self, cfg: PGGANConfig) -> nn.Module:
        return Generator(cfg)

    def schedule(self, cfg: PGGANConfig, nimg: int) -> Stage:
        if nimg < 0:
            raise ValueError(f"images seen must be >= 0, got {nimg}")
        seg = [s for s in segments(cfg) if s.start_nimg <= nimg][-1]
        alpha = (nimg - seg.start_nimg) / seg.length_nimg if seg.fading else 1.0
        return Stage(phase=seg.phase, resolution=seg.resolution, alpha=float(alpha), batch=cfg.batch(seg.resolution),
                     lr_g=cfg.lr, lr_d=cfg.lr)

    def prepare_phase(self, G: Generator, D: Discriminator, cfg: PGGANConfig, stage: Stage
                      ) -> dict[str, torch.optim.Optimizer]:
        # Fresh Adam state per phase (Karras's reset_opt_for_new_lod); each optimizer holds only the
        # layers this phase uses, so unused toRGB/fromRGB layers keep their weights untouched.
        fading = segments(cfg)[stage.phase].fading
        opts = {}
        for key, net in (("G", G), ("D", D)):
            net.requires_grad_(True)
            params = [p for m in net.active_modules(stage.resolution, fading) for p in m.parameters()]
            opts[key] = adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=1e-8)
        return opts

    def make_loss(self, G: Generator, D: Discriminator, cfg: PGGANConfig) -> WGANGPLoss:
        return WGANGPLoss(G, D, cfg)

    def describe_schedule(self, cfg: PGGANConfig, total_nimg: int) -> list[dict]:
        rows = []
        for s in segments(cfg):
            if s.start_nimg >= total_nimg:
                break
            end = total_nimg if s.length_nimg is None else min(total_nimg, s.start_nimg + s.length_nimg)
            rows.append({"phase": s.phase, "resolution": s.resolution, "start_kimg": s.start_nimg / 1000,
                         "end_kimg": end / 1000, "fade_kimg": (s.length_nimg or 0) / 1000 if s.fading else 0.0,
                         "batch": cfg.batch(s.resolution), "lr_g": cfg.lr, "lr_d": cfg.lr})
        return rows
