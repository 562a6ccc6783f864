"""The report's DCGAN: PyTorch's DCGAN example (Radford et al. 2016), exactly.

At 64 px: G 3,576,704 and D 2,765,568 parameters, no biases, BN, N(0, 0.02) init, BCE
(:mod:`gan.models.bce`), Adam(2e-4, 0.5).
128 and 256 px add one stride-2 block per doubling in the same pattern, with channels capped at
``8 * ngf`` (``8 * ndf``) so that the 64 px networks stay exactly the reference ones.

``upsample`` names G's upsampling for studies of the samples' fingerprint (the report's networks use
``transposed``, the default): ``resize`` (nearest-neighbour x2, then a 3x3 convolution: Odena et al.
2016, "Deconvolution and Checkerboard Artifacts") or ``blur`` (the same transposed convolutions, each
followed by a fixed [1, 2, 1] x [1, 2, 1] / 16 low-pass, which has no response at the highest frequency
where transposed convolutions draw their checkerboard).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from gan.models.base import ModelSpec, Stage, adam
from gan.models.bce import BCELoss
from gan.models.conditioning import ConditionalConfig, LatentEmbedding, Projection, check_labels
from gan.models.registry import register_model


UPSAMPLING = ("transposed", "resize", "blur")


@dataclass(frozen=True)
class DCGANConfig(ConditionalConfig):
    """DCGAN hyperparameters (defaults are the report's recipe).

    Args:
        resolution: output side in px: 32, 64 (the report), 128 or 256.
        z_dim: latent size nz.
        ngf: generator feature maps at the last hidden layer.
        ndf: discriminator feature maps at the first layer.
        lr: Adam learning rate for G and D.
        beta1: Adam beta1.
        beta2: Adam beta2.
        batch: images per step.
        class_names: the classes of a class-conditional model (empty: unconditional, the report's
            networks exactly); filled from the data's labels by ``gan.train --cond``.
        embed_dim: size of G's class embedding joined to z (conditional models only).
        upsample: G's stride-2 upsampling: ``transposed`` (the report's), ``resize`` or ``blur`` (see the
            module's docstring).
    """

    resolution: int = 64
    z_dim: int = 100
    ngf: int = 64
    ndf: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch: int = 64
    upsample: str = "transposed"
    # class_names and embed_dim: from ConditionalConfig (the conditioning every model shares)

    def __post_init__(self) -> None:
        self.check_conditional("dcgan")
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"dcgan upsample must be one of {', '.join(UPSAMPLING)}, got {self.upsample!r}")
        if self.resolution not in (32, 64, 128, 256):
            raise ValueError(f"dcgan resolution must be 32, 64, 128 or 256, got {self.resolution}")
        for name in ("z_dim", "ngf", "ndf", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"dcgan {name} must be positive, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"dcgan needs a finite lr > 0 and beta1, beta2 in [0, 1), got lr={self.lr}, "
                             f"beta1={self.beta1}, beta2={self.beta2}")


def _channels(base: int, resolution: int) -> list[int]:
    """Feature maps from the 4x4 layer up to the last hidden layer: 64 px -> [512, 256, 128, 64]."""
    n = int(math.log2(resolution)) - 2  # hidden layers: 4 px .. resolution/2 px
    return [base * min(2 ** (n - 1 - i), 8) for i in range(n)]


def init_weights(m: nn.Module) -> None:
    """The DCGAN paper's initialisation: conv N(0, 0.02); BN weight N(1, 0.02), bias 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class Blur(nn.Module):
    """A fixed [1, 2, 1] x [1, 2, 1] / 16 low-pass on each channel (no parameters, nothing in the state
    dict); edges replicated, so the size stays."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer("kernel", (torch.outer(k, k) / 16).expand(channels, 1, 3, 3).clone(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype), groups=x.shape[1])


class BlurredConvTranspose2d(nn.ConvTranspose2d):
    """The report's stride-2 transposed convolution followed by :class:`Blur`: the same parameters and
    state-dict keys, so the report's weights load into it."""

    def __init__(self, cin: int, cout: int):
        super().__init__(cin, cout, 4, 2, 1, bias=False)
        self.blur = Blur(cout)

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        return self.blur(super().forward(x, output_size))


def upsampling(cin: int, cout: int, how: str) -> nn.Module:
    """One stride-2 upsampling of G from ``cin`` to ``cout`` maps (``how``: :data:`UPSAMPLING`)."""
    if how == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
    if how == "blur":
        return BlurredConvTranspose2d(cin, cout)
    return nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)


class Generator(nn.Module):
    """z (N, z_dim) [and class indices (N,)] -> images (N, 3, R, R) in [-1, 1]."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.resolution = cfg.resolution
        self.z_dim = cfg.z_dim
        self.num_classes = cfg.num_classes
        if self.num_classes:
            self.embed = LatentEmbedding(self.num_classes, cfg.embed_dim)
        ch = _channels(cfg.ngf, cfg.resolution)
        z_in = cfg.z_dim + (cfg.embed_dim if self.num_classes else 0)
        layers: list[nn.Module] = [nn.ConvTranspose2d(z_in, ch[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch[0]), nn.ReLU(True)]
        for cin, cout in zip(ch[:-1], ch[1:]):
            layers += [upsampling(cin, cout, cfg.upsample), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [upsampling(ch[-1], 3, cfg.upsample), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if resolution not in (None, self.resolution):
            raise ValueError(f"this DCGAN generates {self.resolution} px only, asked for {resolution}")
        labels = check_labels(labels, self.num_classes, z.shape[0])
        if labels is not None:
            z = self.embed(z, labels)
        return self.main(z.view(z.shape[0], -1, 1, 1))


class Discriminator(nn.Module):
    """images (N, 3, R, R) in [-1, 1] [and class indices (N,)] -> probability of real (N,).

    Conditional: the sigmoid's input is the unconditional logit plus the projection of the last
    feature map (summed over its 4x4 positions) on the class's embedding."""

    def __init__(self, cfg: DCGANConfig):
        super().__init__()
        self.resolution = cfg.resolution
        self.num_classes = cfg.num_classes
        ch = _channels(cfg.ndf, cfg.resolution)[::-1]  # 64 px: [64, 128, 256, 512]
        layers: list[nn.Module] = [nn.Conv2d(3, ch[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        for cin, cout in zip(ch[:-1], ch[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.Conv2d(ch[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid()]
        self.main = nn.Sequential(*layers)
        self.apply(init_weights)
        if self.num_classes:
            self.project = Projection(self.num_classes, ch[-1])

    def forward(self, x: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[-1] != self.resolution:
            raise ValueError(f"this DCGAN discriminator takes {self.resolution} px, got {x.shape[-1]}")
        labels = check_labels(labels, self.num_classes, x.shape[0])
        if labels is not None:
            for layer in self.main[:-2]:
                x = layer(x)
            # The head in float32 under autocast too (see below).
            with torch.autocast(x.device.type, enabled=False):
                h = x.float()
                logit = self.main[-2](h).view(-1) + self.project(h.sum(dim=(2, 3)), labels)
                return torch.sigmoid(logit)
        if torch.is_autocast_enabled(x.device.type):
            # Under bf16 autocast the 1-output head and its sigmoid run in float32: bf16 probabilities
            # near 0 or 1 (8 bits of mantissa) would make the BCE loss coarse.
            for layer in self.main[:-2]:
                x = layer(x)
            with torch.autocast(x.device.type, enabled=False):
                return self.main[-1](self.main[-2](x.float())).view(-1)
        return self.main(x).view(-1)


@register_model
class DCGAN(ModelSpec):
    name = "dcgan"
    Config = DCGANConfig

    def build(self, cfg: DCGANConfig) -> tuple[nn.Module, nn.Module]:
        return Generator(cfg), Discriminator(cfg)

    def schedule(self, cfg: DCGANConfig, nimg: int) -> Stage:
        return Stage(phase=0, resolution=cfg.resolution, alpha=1.0, batch=cfg.batch, lr_g=cfg.lr, lr_d=cfg.lr)

    def prepare_phase(self, G, D, cfg: DCGANConfig, stage: Stage):
        betas = (cfg.beta1, cfg.beta2)
        return {"G": adam(G.parameters(), lr=stage.lr_g, betas=betas),
                "D": adam(D.parameters(), lr=stage.lr_d, betas=betas)}

    def make_loss(self, G, D, cfg: DCGANConfig) -> BCELoss:
        return BCELoss(G, D, cfg, logits=False)  # D ends in a sigmoid, as in the reference
