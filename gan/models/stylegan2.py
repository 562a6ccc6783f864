"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020),
in pure PyTorch, with the class conditioning of StyleGAN2-ADA (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data", NeurIPS 2020; reference code
NVlabs/stylegan2-ada-pytorch, whose custom CUDA ops are replaced here by plain convolutions).

What is the paper's:

* Mapping network: ``z`` normalized to unit second moment, ``mapping_layers`` fully connected layers
  (leaky ReLU, learning rate x0.01) to ``w``; a conditional model joins a learned class embedding
  (one-hot class -> fully connected -> normalized, as StyleGAN2-ADA does) to ``z`` before the first layer.
  ``w_avg``, the running mean of ``w``, is kept for the truncation trick (``truncation_psi``).
* Synthesis: a learned 4x4 constant; per resolution a 2x-upsampling and a plain 3x3 modulated
  convolution, each with weight demodulation (every output channel's effective weight scaled to unit
  norm), a per-pixel noise input with a learned strength, bias and leaky ReLU x sqrt(2). Skip
  architecture: a 1x1 modulated toRGB (no demodulation) per resolution, the RGB image upsampled and
  summed from block to block. Upsampling is a stride-2 transposed convolution followed by the [1, 3, 3, 1]
  FIR filter (the reference's ``conv2d_resample``); the RGB skips use the same filter. Style mixing:
  with probability ``style_mixing`` a second latent drives the layers after a random cut-off.
* Discriminator: residual (``resnet``) blocks of two 3x3 convolutions, the second downsampling
  (filter then stride 2), with a filtered 1x1 stride-2 skip, both branches scaled by sqrt(1/2); at 4x4
  the minibatch standard deviation (group 4, one feature), a 3x3 convolution, a dense layer and the
  output. A conditional D maps the class through its own mapping network to ``cmap`` and scores
  ``<out(x), cmap> / sqrt(dim)`` (StyleGAN2-ADA's projection).
* Equalized learning rate everywhere; non-saturating logistic loss; R1 on real images with lazy
  regularization (every ``r1_interval`` D steps, scaled by the interval, as a separate Adam step of D's
  optimizer with lr and betas adjusted by ``interval / (interval + 1)``); optional path-length
  regularization of G (``pl_weight``, every ``pl_interval`` G steps); Adam(betas (0, 0.99)); G_ema and
  ADA through the loop (``--ema-kimg``, ``--ada``, :mod:`gan.daug`).

Lazy regularization is a pure function of images seen: the step index ``nimg // batch`` travels in the
stage (:class:`StyleGAN2Stage`), so a resumed run regularizes at the same steps. The running
statistics (the path-length mean, ``w_avg``) are buffers of G and so in every checkpoint. Noise:
training draws it per image from the loop's generator; sampling uses each layer's fixed noise buffer,
so a generator file draws the same image for the same latent.

Two named configurations (``gan.train --preset``, :data:`PRESETS`):

* ``cpu64`` (the default), scaled down for a CPU: maps ``min(2048 // r, 128)`` (128 at 4-16 px, 64 at
  32, 32 at 64 px), z and w 128, a 2-layer mapping network, no path length. G + D cost 1.75x DCGAN's
  forward FLOPs per image at 64 px; :data:`MEASURED_STEP_COST` is its training step against DCGAN's.
* ``gpu256``: config f's widths for 128-256 px on a GPU (the paper's: ``min(32768 // r, 512)``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gan.models.base import ModelSpec, Stage, adam, no_param_grads
from gan.models.conditioning import check_class_names, check_labels
from gan.models.pggan import minibatch_stddev
from gan.models.registry import register_model
from gan.rng import BatchRNG

SQRT2 = math.sqrt(2.0)
_RESOLUTIONS = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class StyleGAN2Config:
    """StyleGAN2 hyperparameters; the defaults are the ``cpu64`` configuration.

    Args:
        resolution: output side in px: 16 to 256, a power of two.
        z_dim: latent size.
        w_dim: intermediate latent (style) size.
        mapping_layers: depth of the mapping network (and of a conditional D's class mapping).
        mapping_lr_mul: learning-rate multiplier of the mapping network (0.01, the paper's).
        channel_base: feature maps at resolution r are ``min(channel_base // r, channel_max)`` in G and D
            (the paper's config f: 32768 and 512).
        channel_max: cap on feature maps.
        lr: Adam learning rate of G and D (before the lazy-regularization adjustment).
        beta1: Adam beta1.
        beta2: Adam beta2.
        batch: images per step.
        r1_gamma: R1 weight gamma; None: StyleGAN2-ADA's heuristic ``0.0002 * resolution^2 / batch``.
        r1_interval: D steps per R1 step (lazy regularization; 16, the paper's).
        pl_weight: path-length regularization weight (0: off, the CPU default; 2 in the paper).
        pl_interval: G steps per path-length step.
        pl_batch_shrink: the path-length batch is ``batch // pl_batch_shrink``.
        pl_decay: decay of the running path-length mean.
        style_mixing: probability that an image's styles come from two latents.
        mbstd_group: minibatch-stddev group size.
        class_names: the classes of a class-conditional model (empty: unconditional); filled from the
            data's labels by ``gan.train --cond``.
        embed_dim: size of the class embedding joined to z in the mapping network (conditional only).
    """

    resolution: int = 64
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2
    mapping_lr_mul: float = 0.01
    channel_base: int = 2048
    channel_max: int = 128
    lr: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    batch: int = 64
    r1_gamma: float | None = None
    r1_interval: int = 16
    pl_weight: float = 0.0
    pl_interval: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    style_mixing: float = 0.9
    mbstd_group: int = 4
    class_names: tuple[str, ...] = ()
    embed_dim: int = 128

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def gamma(self) -> float:
        """The R1 weight in use (``r1_gamma``, or the heuristic when it is None)."""
        return self.r1_gamma if self.r1_gamma is not None else 0.0002 * self.resolution ** 2 / self.batch

    def channels(self, res: int) -> int:
        """Feature maps at resolution ``res``."""
        return min(self.channel_base // res, self.channel_max)

    def __post_init__(self) -> None:
        check_class_names("stylegan2", self.class_names)
        if self.resolution not in _RESOLUTIONS:
            raise ValueError(f"stylegan2 resolution must be a power of two from 16 to 256, got {self.resolution}")
        for name in ("z_dim", "w_dim", "mapping_layers", "channel_max", "batch", "r1_interval", "pl_interval",
                     "pl_batch_shrink", "mbstd_group", "embed_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"stylegan2 {name} must be positive, got {getattr(self, name)}")
        if self.channel_base // self.resolution < 1:
            raise ValueError(f"stylegan2 channel_base ({self.channel_base}) gives no feature maps at "
                             f"{self.resolution} px: it must be at least the resolution")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"stylegan2 needs a finite lr > 0 and beta1, beta2 in [0, 1), got lr={self.lr}, "
                             f"beta1={self.beta1}, beta2={self.beta2}")
        for name in ("mapping_lr_mul", "pl_decay"):
            if not (0 < getattr(self, name) <= 1):
                raise ValueError(f"stylegan2 {name} must be in (0, 1], got {getattr(self, name)}")
        for name in ("pl_weight", "r1_gamma"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ValueError(f"stylegan2 {name} must be a finite number >= 0, got {value}")
        if not 0 <= self.style_mixing <= 1:
            raise ValueError(f"stylegan2 style_mixing must be a probability, got {self.style_mixing}")


PRESETS = {
    # 64 px on a CPU: 32-128 maps, z and w 128, a 2-layer mapping network, no path-length term.
    "cpu64": StyleGAN2Config(),
    # 128-256 px on a GPU: config f's widths (512 maps up to 64 px, 256 at 128, 128 at 256), 8 mapping
    # layers, z and w 512, path length on (weight 2), batch 32; lr 0.0025 and gamma 1 as StyleGAN2-ADA
    # trains at 256 px (its paper256 configuration).
    "gpu256": StyleGAN2Config(resolution=256, z_dim=512, w_dim=512, mapping_layers=8, channel_base=32768,
                              channel_max=512, batch=32, r1_gamma=1.0, pl_weight=2.0, embed_dim=512),
}


# The cpu64 training step's cost against dcgan's, both at batch 64 and 64 px, measured in the same run
# (``python bench/bench_train.py models``, which alternates the two); --dry-run prints it.
MEASURED_STEP_COST = ("3.05x dcgan's with 1 thread, 3.49x with 2 (fp32, R1 amortized; bench/bench_train.py "
                      "models, 33 steps each, alternating, on a quiet 2-core AMD EPYC, load average 1.0-1.8)")


@dataclass(frozen=True)
class StyleGAN2Stage(Stage):
    """The stage plus the index of the training step (``nimg // batch``), which decides the lazy
    regularization steps: a pure function of images seen, like the rest of the stage."""

    step: int = 0


# --------------------------------------------------------------------------- layers

def _lazy_ratio(interval: int) -> float:
    """Lazy regularization's Adam adjustment: lr * c and betas ** c with c = interval / (interval + 1)."""
    return interval / (interval + 1)


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


def fir_filter() -> torch.Tensor:
    """The [1, 3, 3, 1] outer product, normalized to sum 1: the 4x4 resampling filter."""
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


def _depthwise(f: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return f.to(x.dtype)[None, None].expand(x.shape[1], 1, *f.shape)


def blur(x: torch.Tensor, f: torch.Tensor, pad: int, stride: int = 1) -> torch.Tensor:
    """``x`` zero-padded by ``pad`` on every side and filtered with ``f`` per channel (then strided)."""
    return F.conv2d(F.pad(x, [pad] * 4), _depthwise(f, x), stride=stride, groups=x.shape[1])


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling by zero insertion and ``f`` (gain 4, so a constant image stays constant)."""
    return F.conv_transpose2d(x, _depthwise(f * 4, x), stride=2, padding=1, groups=x.shape[1])


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     up: bool = False, f: torch.Tensor | None = None, fused: bool = False) -> torch.Tensor:
    """StyleGAN2's modulated convolution, "same" padded: sample ``n`` is convolved with
    ``weight * styles[n]`` (scaling the input channels), each output channel of which is scaled to
    unit norm when ``demodulate``.

    Args:
        x: (N, Cin, H, W).
        weight: (Cout, Cin, k, k).
        styles: (N, Cin).
        demodulate: weight demodulation.
        up: 2x upsampling (a stride-2 transposed convolution, then the filter ``f``; 3x3 weights only):
            (N, Cout, 2H, 2W).
        f: the resampling filter (for ``up``).
        fused: one grouped convolution with a weight per sample (the paper's formulation) instead of
            scaling the activations before and after a shared convolution (the same sum, reordered).
    """
    n, cin = styles.shape
    cout, _, k, _ = weight.shape
    weight = weight.to(x.dtype)
    styles = styles.to(x.dtype)
    dcoefs = None
    if demodulate:  # 1 / ||weight * styles[n]|| per output channel: (N, Cout)
        dcoefs = (styles.square() @ weight.square().sum(dim=(2, 3)).T + 1e-8).rsqrt()
    if fused:
        w = weight[None] * styles[:, None, :, None, None]
        if dcoefs is not None:
            w = w * dcoefs[:, :, None, None, None]
        x = x.reshape(1, n * cin, *x.shape[2:])
        if up:
            w = w.transpose(1, 2).reshape(n * cin, cout, k, k)
            x = F.conv_transpose2d(x, w, stride=2, groups=n)
        else:
            x = F.conv2d(x, w.reshape(n * cout, cin, k, k), padding=k // 2, groups=n)
        x = x.reshape(n, cout, *x.shape[2:])
    else:
        x = x * styles[:, :, None, None]
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2) if up else F.conv2d(x, weight, padding=k // 2)
        if dcoefs is not None:
            x = x * dcoefs[:, :, None, None]
    if up:  # the transposed 3x3 convolution gives 2H + 1 px; the padded 4x4 filter 2H
        x = blur(x, f, pad=1)
    return x


class FullyConnected(nn.Module):
    """Dense layer with equalized learning rate and a learning-rate multiplier: weights N(0, 1/lr_mul^2)
    scaled at run time by ``lr_mul / sqrt(fan_in)``, bias by ``lr_mul``; optional leaky ReLU x sqrt(2)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_mul))
        self.weight_gain, self.bias_gain, self.act = lr_mul / math.sqrt(in_features), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        return F.leaky_relu(x, 0.2) * SQRT2 if self.act else x


class MappingNetwork(nn.Module):
    """``z`` [and class] -> ``w`` (N, out_dim). With ``z_dim == 0`` it maps the class alone (D's cmap)."""

    def __init__(self, z_dim: int, num_classes: int, embed_dim: int, out_dim: int, layers: int, lr_mul: float):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        if num_classes:
            self.embed = FullyConnected(num_classes, embed_dim)
        width = z_dim + (embed_dim if num_classes else 0)
        self.layers = nn.Sequential(*[FullyConnected(width if i == 0 else out_dim, out_dim, lr_mul=lr_mul, act=True)
                                      for i in range(layers)])

    def forward(self, z: torch.Tensor | None, labels: torch.Tensor | None) -> torch.Tensor:
        parts = [normalize_2nd_moment(z)] if self.z_dim else []
        if self.num_classes:
            onehot = F.one_hot(labels, self.num_classes).to(self.embed.weight.dtype)
            parts.append(normalize_2nd_moment(self.embed(onehot)))
        return self.layers(torch.cat(parts, dim=1))


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution (optionally upsampling), noise, bias, leaky ReLU x sqrt(2)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.up, self.resolution = up, resolution
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_rng: BatchRNG | None, fused: bool) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, f=self.resample_filter, fused=fused)
        r = self.resolution
        noise = (noise_rng.randn(x.shape[0], 1, r, r, device=x.device) if noise_rng is not None
                 else self.noise_const[None, None])
        x = x + (noise * self.noise_strength).to(x.dtype) + self.bias.to(x.dtype)[None, :, None, None]
        return F.leaky_relu(x, 0.2) * SQRT2


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to RGB, no demodulation, no activation."""

    def __init__(self, in_channels: int, w_dim: int):
        super().__init__()
        self.affine = FullyConnected(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(3, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(3))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool) -> torch.Tensor:
        x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, demodulate=False, fused=fused)
        return x + self.bias.to(x.dtype)[None, :, None, None]


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [upsampling conv,] conv, toRGB; the RGB image so far is
    upsampled and the block's toRGB added. Uses ``num_ws`` styles: one per conv and the toRGB's, which
    is the next block's first."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int):
        super().__init__()
        self.first = resolution == 4
        if self.first:
            self.const = nn.Parameter(torch.randn(out_channels, 4, 4))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution)
        self.torgb = ToRGB(out_channels, w_dim)
        self.num_conv = 1 if self.first else 2
        self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_rng: BatchRNG | None, fused: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.first:
            x = self.const.to(ws.dtype)[None].expand(ws.shape[0], -1, -1, -1)
            x = self.conv1(x, ws[:, 0], noise_rng, fused)
        else:
            x = self.conv0(x, ws[:, 0], noise_rng, fused)
            x = self.conv1(x, ws[:, 1], noise_rng, fused)
        y = self.torgb(x, ws[:, self.num_conv], fused)
        img = y if img is None else upsample2d(img, self.resample_filter) + y
        return x, img


def _resolutions(resolution: int) -> list[int]:
    return [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]


class Generator(nn.Module):
    """z (N, z_dim) [and class indices (N,)] -> images (N, 3, R, R), about [-1, 1] (no tanh, as in
    the paper).

    ``G(z, labels=...)`` samples with each layer's fixed noise (``noise_const``), so the same latent
    gives the same image. Training passes ``noise_rng`` (per-image noise from the loop's generator),
    ``mix`` (a second latent and per-image cut-offs) and ``update_w_avg``.
    """

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.resolution, self.z_dim, self.w_dim = cfg.resolution, cfg.z_dim, cfg.w_dim
        self.num_classes = cfg.num_classes
        self.w_avg_beta = 0.995
        self.mapping = MappingNetwork(cfg.z_dim, cfg.num_classes, cfg.embed_dim, cfg.w_dim, cfg.mapping_layers,
                                      cfg.mapping_lr_mul)
        self.blocks = nn.ModuleDict()
        for res in _resolutions(cfg.resolution):
            self.blocks[str(res)] = SynthesisBlock(cfg.channels(max(res // 2, 4)), cfg.channels(res), cfg.w_dim, res)
        self.num_ws = sum(b.num_conv for b in self.blocks.values()) + 1
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))
        self.register_buffer("pl_mean", torch.zeros([]))

    def mapping_ws(self, z: torch.Tensor, labels: torch.Tensor | None, truncation_psi: float = 1.0,
                   update_w_avg: bool = False) -> torch.Tensor:
        """``w`` (N, w_dim) for latents ``z``: the mapping network, [the running mean updated,] truncated."""
        w = self.mapping(z, labels)
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if truncation_psi != 1:
            w = self.w_avg.to(w.dtype).lerp(w, truncation_psi)
        return w

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                mix: tuple[torch.Tensor, torch.Tensor] | None = None, noise_rng: BatchRNG | None = None,
                update_w_avg: bool = False, return_ws: bool = False, fused_modconv: bool = False):
        """Args beyond the interface's: ``truncation_psi`` pulls ``w`` towards ``w_avg``; ``mix``:
        ``(z2, cutoff)``, image ``i`` takes its styles from index ``cutoff[i]`` on from ``z2``;
        ``noise_rng``: random noise (None: the fixed buffers); ``update_w_avg``: track the mean ``w``;
        ``return_ws``: return ``(images, ws)`` with ws (N, num_ws, w_dim); ``fused_modconv``: grouped
        convolutions (:func:`modulated_conv2d`)."""
        if resolution not in (None, self.resolution):
            raise ValueError(f"this StyleGAN2 generates {self.resolution} px only, asked for {resolution}")
        labels = check_labels(labels, self.num_classes, z.shape[0])
        w = self.mapping_ws(z, labels, truncation_psi, update_w_avg)
        ws = w[:, None].expand(-1, self.num_ws, -1)
        if mix is not None:
            z2, cutoff = mix
            w2 = self.mapping_ws(z2, labels, truncation_psi)
            later = torch.arange(self.num_ws, device=z.device)[None, :] >= cutoff[:, None]
            ws = torch.where(later[:, :, None], w2[:, None], ws)
        x = img = None
        i = 0
        for block in self.blocks.values():
            x, img = block(x, img, ws[:, i:i + block.num_conv + 1], noise_rng, fused_modconv)
            i += block.num_conv
        return (img, ws) if return_ws else img


class Conv2dLayer(nn.Module):
    """Equalized-lr convolution, "same" padded or downsampling 2x (filter, then stride 2), with bias
    and leaky ReLU x sqrt(2) (``act``) or linear; the output times ``gain``."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True, act: bool = True,
                 down: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = 1 / math.sqrt(in_channels * kernel * kernel)
        self.act, self.down, self.kernel = act, down, kernel
        if down:
            self.register_buffer("resample_filter", fir_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight * self.weight_gain
        if not self.down:
            x = F.conv2d(x, w, self.bias, padding=self.kernel // 2)
        elif self.kernel == 1:  # filter and subsample first, then the 1x1 convolution
            x = F.conv2d(blur(x, self.resample_filter, pad=1, stride=2), w, self.bias)
        else:  # H + 1 px after the filter, then a stride-2 valid convolution: H / 2
            x = F.conv2d(blur(x, self.resample_filter, pad=(self.kernel + 1) // 2), w, self.bias, stride=2)
        if self.act:
            return F.leaky_relu(x, 0.2) * (SQRT2 * gain)
        return x * gain if gain != 1 else x


class DiscriminatorBlock(nn.Module):
    """Residual block: fromRGB (first block only), 3x3 conv, 3x3 downsampling conv, plus a 1x1
    downsampling skip; the two branches summed with weight sqrt(1/2) each."""

    def __init__(self, in_channels: int, out_channels: int, first: bool):
        super().__init__()
        if first:
            self.fromrgb = Conv2dLayer(3, in_channels, 1)
        self.conv0 = Conv2dLayer(in_channels, in_channels, 3)
        self.conv1 = Conv2dLayer(in_channels, out_channels, 3, down=True)
        self.skip = Conv2dLayer(in_channels, out_channels, 1, bias=False, act=False, down=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "fromrgb"):
            x = self.fromrgb(x)
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


class Discriminator(nn.Module):
    """images (N, 3, R, R) [and class indices (N,)] -> logits (N,)."""

    def __init__(self, cfg: StyleGAN2Config):
        super().__init__()
        self.resolution, self.num_classes, self.mbstd_group = cfg.resolution, cfg.num_classes, cfg.mbstd_group
        res = _resolutions(cfg.resolution)[:0:-1]  # R, ..., 8
        self.blocks = nn.Sequential(*[DiscriminatorBlock(cfg.channels(r), cfg.channels(r // 2), first=i == 0)
                                      for i, r in enumerate(res)])
        c4 = cfg.channels(4)
        self.conv = Conv2dLayer(c4 + 1, c4, 3)
        self.fc = FullyConnected(c4 * 16, c4, act=True)
        self.cmap_dim = c4 if self.num_classes else 1
        self.out = FullyConnected(c4, self.cmap_dim)
        if self.num_classes:
            self.mapping = MappingNetwork(0, cfg.num_classes, cfg.embed_dim, c4, cfg.mapping_layers,
                                          cfg.mapping_lr_mul)

    def forward(self, x: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] != self.resolution or resolution not in (None, self.resolution):
            raise ValueError(f"this StyleGAN2 discriminator takes {self.resolution} px, got {x.shape[-1]}")
        labels = check_labels(labels, self.num_classes, x.shape[0])
        x = self.blocks(x)
        x = self.conv(minibatch_stddev(x, self.mbstd_group))
        x = self.out(self.fc(x.flatten(1)))
        if labels is not None:
            cmap = self.mapping(None, labels).to(x.dtype)
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        return x.view(-1)


# --------------------------------------------------------------------------- loss

def _unwrap(module: nn.Module) -> nn.Module:
    """The network inside a DDP wrapper (the loop wraps G under torchrun)."""
    return getattr(module, "module", module)


class StyleGAN2Loss:
    """Non-saturating logistic loss with lazy R1 and optional path-length regularization.

    Phases: "D" (``softplus(D(fake)) + softplus(-D(real))``, fakes from new latents, kept for "G"),
    "Dreg" (on every ``r1_interval``-th step: ``r1_interval * gamma / 2 * ||grad D(real)||^2``, stepped
    by D's optimizer), "G" (``softplus(-D(fake))`` on the "D" phase's fakes, as the project's DCGAN step
    re-uses them) and, with ``pl_weight > 0``, "Greg" (every ``pl_interval``-th step). A phase that is
    not due computes nothing and its optimizer, with no gradients, leaves the weights alone.
    """

    def __init__(self, G: nn.Module, D: nn.Module, cfg: StyleGAN2Config):
        self.G, self.D, self.cfg = G, D, cfg
        self.phases = ("D", "Dreg", "G") + (("Greg",) if cfg.pl_weight > 0 else ())
        self._fake: torch.Tensor | None = None

    def _generate(self, rng: BatchRNG, n: int, device: torch.device, kw: dict, **extra):
        z = rng.randn(n, self.cfg.z_dim, device=device)
        z2 = rng.randn(n, self.cfg.z_dim, device=device)
        u = rng.rand(n, 2, device=device)
        num_ws = _unwrap(self.G).num_ws
        # Mixed images take z2's styles from a cut-off in 1..num_ws-1; the others never (num_ws).
        cutoff = torch.where(u[:, 0] < self.cfg.style_mixing, 1 + (u[:, 1] * (num_ws - 1)).long(),
                             torch.full_like(u[:, 1], num_ws, dtype=torch.long))
        return self.G(z, **kw, mix=(z2, cutoff), noise_rng=rng, **extra)

    def accumulate_gradients(self, phase: str, real: torch.Tensor, stage: Stage,
                             rng: torch.Generator | BatchRNG, labels: torch.Tensor | None = None
                             ) -> dict[str, torch.Tensor]:
        rng = BatchRNG.of(rng)
        kw = {"resolution": stage.resolution} if labels is None else {"resolution": stage.resolution, "labels": labels}
        step = getattr(stage, "step", 0)
        if phase == "D":
            self._fake = self._generate(rng, real.shape[0], real.device, kw, update_w_avg=True)
            d_real = self.D(real, **kw)
            d_fake = self.D(self._fake.detach(), **kw)
            loss = F.softplus(d_fake).mean() + F.softplus(-d_real).mean()
            loss.backward()
            d_real, d_fake = d_real.detach().float(), d_fake.detach().float()
            return {"loss_D": loss.detach(), "D_real": torch.sigmoid(d_real).mean(),
                    "D_fake": torch.sigmoid(d_fake).mean(), "D_real_sign": torch.sign(d_real).mean()}
        if phase == "Dreg":
            if step % self.cfg.r1_interval:
                return {}
            x = real.detach().requires_grad_(True)
            d = self.D(x, **kw)
            (grad,) = torch.autograd.grad(d.float().sum(), x, create_graph=True)
            penalty = grad.float().square().sum(dim=(1, 2, 3))
            # d * 0: every D parameter takes part in the backward pass (DDP expects it).
            loss = (penalty * (self.cfg.gamma / 2) + d.float() * 0).mean() * self.cfg.r1_interval
            loss.backward()
            return {"r1_penalty": penalty.detach().mean()}
        if phase == "G":
            if self._fake is None:
                raise RuntimeError("phase 'G' ran before phase 'D'")
            with no_param_grads(self.D):  # D's weight gradients would be thrown away: skip them
                d_fake = self.D(self._fake, **kw)
                loss = F.softplus(-d_fake).mean()
                loss.backward()
            self._fake = None
            return {"loss_G": loss.detach()}
        if phase == "Greg":
            if step % self.cfg.pl_interval:
                return {}
            n = max(real.shape[0] // self.cfg.pl_batch_shrink, 1)
            kw_pl = dict(kw, labels=labels[:n]) if labels is not None else kw
            img, ws = self._generate(rng, n, real.device, kw_pl, return_ws=True)
            r = img.shape[-1]
            pl_noise = rng.randn(n, 3, r, r, device=real.device) / r
            (pl_grads,) = torch.autograd.grad((img.float() * pl_noise).sum(), ws, create_graph=True)
            lengths = pl_grads.float().square().sum(dim=2).mean(dim=1).sqrt()
            pl_mean = _unwrap(self.G).pl_mean
            mean = pl_mean.lerp(lengths.detach().mean(), self.cfg.pl_decay)
            pl_mean.copy_(mean)
            penalty = (lengths - mean).square()
            loss = (penalty * self.cfg.pl_weight + img[:, 0, 0, 0].float() * 0).mean() * self.cfg.pl_interval
            loss.backward()
            return {"pl_penalty": penalty.detach().mean()}
        raise ValueError(f"unknown phase {phase!r}")


# --------------------------------------------------------------------------- spec

@register_model
class StyleGAN2(ModelSpec):
    name = "stylegan2"
    Config = StyleGAN2Config
    presets = PRESETS

    def build(self, cfg: StyleGAN2Config) -> tuple[nn.Module, nn.Module]:
        return Generator(cfg), Discriminator(cfg)

    def build_generator(self, cfg: StyleGAN2Config) -> nn.Module:
        return Generator(cfg)

    def _ratios(self, cfg: StyleGAN2Config) -> tuple[float, float]:
        """Lazy regularization's c for G and D (1 where there is no regularization step)."""
        return (_lazy_ratio(cfg.pl_interval) if cfg.pl_weight > 0 else 1.0), _lazy_ratio(cfg.r1_interval)

    def schedule(self, cfg: StyleGAN2Config, nimg: int) -> StyleGAN2Stage:
        if nimg < 0:
            raise ValueError(f"images seen must be >= 0, got {nimg}")
        cg, cd = self._ratios(cfg)
        return StyleGAN2Stage(phase=0, resolution=cfg.resolution, alpha=1.0, batch=cfg.batch,
                              lr_g=cfg.lr * cg, lr_d=cfg.lr * cd, step=nimg // cfg.batch)

    def prepare_phase(self, G, D, cfg: StyleGAN2Config, stage: Stage) -> dict[str, torch.optim.Optimizer]:
        cg, cd = self._ratios(cfg)
        opt_g = adam(G.parameters(), lr=stage.lr_g, betas=(cfg.beta1 ** cg, cfg.beta2 ** cg))
        opt_d = adam(D.parameters(), lr=stage.lr_d, betas=(cfg.beta1 ** cd, cfg.beta2 ** cd))
        # The regularization phases step the same optimizers (shared Adam state, as in the paper's code).
        opts = {"G": opt_g, "D": opt_d, "Dreg": opt_d}
        if cfg.pl_weight > 0:
            opts["Greg"] = opt_g
        return opts

    def make_loss(self, G, D, cfg: StyleGAN2Config) -> StyleGAN2Loss:
        return StyleGAN2Loss(G, D, cfg)

    def train_defaults(self, cfg: StyleGAN2Config, conditional: bool) -> dict:
        # ADA as StyleGAN2-ADA trains by default; a conditional run leaves colours alone (bg): in
        # dermoscopy colour is diagnostic, and the colour ops could leak into G's classes.
        return {"ada": True, **({"ada_ops": "bg"} if conditional else {})}

    def dry_run_notes(self, cfg: StyleGAN2Config) -> list[str]:
        if dataclasses.replace(cfg, class_names=()) != PRESETS["cpu64"]:
            return []
        return [f"training step: {MEASURED_STEP_COST}"]
