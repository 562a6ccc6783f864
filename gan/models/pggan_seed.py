"""The report's "PGGAN": DCGAN grown phase by phase with the earlier phases frozen.

The report trains at 16 px (phase 1), then adds layers for 32 px with the phase-1 layers frozen
(phase 2), then for 64 px with phases 1 and 2 frozen (phase 3); DCGAN-like blocks, BCE, Adam, batch
64. Here (phases counted from 0 in ``Stage.phase`` and ``stats.jsonl``):

* G: ``ConvT(z, 4x4) + BN + ReLU``, then one ``ConvT(4, stride 2) + BN + ReLU`` block per doubling;
  the toRGB of resolution r is DCGAN's last layer (``ConvT(4, stride 2)`` to 3 channels + tanh) on the
  r/2 features. D mirrors it: the fromRGB of resolution r is DCGAN's first layer (``Conv(4, stride
  2)`` + LReLU 0.2, no BN), blocks are ``Conv(4, stride 2) + BN + LReLU``, the last layer
  ``Conv(4x4 valid)`` gives a logit. Widths follow DCGAN for the final resolution, so the 64 px
  networks in use at the end are exactly the report's DCGAN (:mod:`gan.models.dcgan`), grown; every
  phase owns a toRGB / fromRGB pair. No fade-in: a new phase switches at once (``alpha`` is always 1).
* Phase p trains only the layers it adds (phase 0: everything its resolution uses). Earlier layers get
  ``requires_grad = False`` and are left out of the optimizers, so their parameters stay bit-identical.
  Frozen BatchNorm layers stay in train mode and normalize with batch statistics, as they did while
  they trained: their inputs now come from new layers, and running statistics gathered on the old
  inputs would not fit them. Their running-statistic buffers keep updating; D never uses them, and
  G_ema's are re-estimated by the loop before sampling.
* BCE (on logits: the same loss as DCGAN's sigmoid + BCELoss, numerically safer) with DCGAN's step
  (:mod:`gan.models.bce`): one batch of fakes serves the D step (detached) and the G step
  (non-saturating loss).
  Adam(2e-4, 0.5, 0.999), batch 64, N(0, 0.02) init.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from gan.models.base import ModelSpec, Stage, adam
from gan.models.bce import BCELoss
from gan.models.conditioning import ConditionalConfig, LatentEmbedding, Projection, check_labels
from gan.models.dcgan import init_weights
from gan.models.pggan import check_resolutions, growth_resolutions
from gan.models.registry import register_model


@dataclass(frozen=True)
class PGGANSeedConfig(ConditionalConfig):
    """The report's progressive recipe.

    Args:
        resolution: final output side in px (64 by default, up to 256).
        start_resolution: resolution of phase 0 (16 in the report; 8 or more).
        phase_kimg: thousands of images spent in each phase but the last; the last phase trains until
            the run ends. One entry per growth step (two for 16 -> 32 -> 64). Default: 40 each, so a
            150 kimg run spends 40 / 40 / 70 kimg.
        z_dim: latent size.
        ngf: generator feature maps at the last hidden layer of the final network (DCGAN's ngf).
        ndf: discriminator feature maps at the first layer of the final network (DCGAN's ndf).
        lr: Adam learning rate of G and D.
        beta1: Adam beta1.
        beta2: Adam beta2.
        batch: images per step.
        class_names: the classes of a class-conditional model (empty: unconditional, the report's
            recipe); filled from the data's labels by ``gan.train --cond``. The class embedding (G)
            and the projection (D) belong to phase 0 and are frozen with it.
        embed_dim: size of G's class embedding joined to z (conditional models only).
    """

    resolution: int = 64
    start_resolution: int = 16
    phase_kimg: tuple[float, ...] | None = None
    z_dim: int = 100
    ngf: int = 64
    ndf: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    batch: int = 64
    # class_names and embed_dim: from ConditionalConfig (the conditioning every model shares)

    def __post_init__(self) -> None:
        self.check_conditional("pggan-seed")
        check_resolutions("pggan-seed", self.resolution, self.start_resolution, lo=8)
        steps = len(self.resolutions) - 1
        if self.phase_kimg is None:
            object.__setattr__(self, "phase_kimg", (40.0,) * steps)
        if len(self.phase_kimg) != steps or any(k <= 0 for k in self.phase_kimg):
            raise ValueError(f"pggan-seed phase_kimg needs {steps} positive entries (one per phase before the "
                             f"last, {' -> '.join(map(str, self.resolutions))} px), got {self.phase_kimg}")
        for name in ("z_dim", "ngf", "ndf", "batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"pggan-seed {name} must be positive, got {getattr(self, name)}")
        if not (math.isfinite(self.lr) and self.lr > 0) or not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"pggan-seed needs a finite lr > 0 and beta1, beta2 in [0, 1), got lr={self.lr}, "
                             f"beta1={self.beta1}, beta2={self.beta2}")

    @property
    def resolutions(self) -> list[int]:
        """Resolution of each phase."""
        return growth_resolutions(self.start_resolution, self.resolution)

    def width(self, base: int, res: int) -> int:
        """Feature maps at ``res`` px (< resolution), DCGAN's rule for the final resolution:
        64 px final -> 512, 256, 128, 64 at 4, 8, 16, 32 px."""
        return base * min(self.resolution // (2 * res), 8)


class Generator(nn.Module):
    """z (N, z_dim) [and class indices (N,)] -> images (N, 3, r, r) in [-1, 1] for any phase resolution r."""

    def __init__(self, cfg: PGGANSeedConfig):
        super().__init__()
        self.z_dim = cfg.z_dim
        self.resolution = cfg.resolution
        self.resolutions = cfg.resolutions
        self.num_classes = cfg.num_classes
        def w(r: int) -> int:
            return cfg.width(cfg.ngf, r)

        if self.num_classes:
            self.embed = LatentEmbedding(self.num_classes, cfg.embed_dim)
        z_in = cfg.z_dim + (cfg.embed_dim if self.num_classes else 0)
        self.proj = nn.Sequential(nn.ConvTranspose2d(z_in, w(4), 4, 1, 0, bias=False),
                                  nn.BatchNorm2d(w(4)), nn.ReLU(True))
        # ups[r]: features at r/2 -> features at r.
        self.ups = nn.ModuleDict({str(r): nn.Sequential(nn.ConvTranspose2d(w(r // 2), w(r), 4, 2, 1, bias=False),
                                                        nn.BatchNorm2d(w(r)), nn.ReLU(True))
                                  for r in growth_resolutions(8, cfg.resolution // 2)})
        self.to_rgb = nn.ModuleDict({str(r): nn.Sequential(nn.ConvTranspose2d(w(r // 2), 3, 4, 2, 1, bias=False),
                                                           nn.Tanh())
                                     for r in self.resolutions})
        self.apply(init_weights)

    def phase_modules(self, phase: int) -> list[nn.Module]:
        """The layers phase ``phase`` adds and trains."""
        r = self.resolutions[phase]
        if phase == 0:
            return [*([self.embed] if self.num_classes else []), self.proj,
                    *(self.ups[str(s)] for s in growth_resolutions(8, r // 2)), self.to_rgb[str(r)]]
        return [self.ups[str(r // 2)], self.to_rgb[str(r)]]

    def forward(self, z: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        r = self.resolution if resolution is None else int(resolution)
        if r not in self.resolutions:
            raise ValueError(f"this pggan-seed generator works at {self.resolutions} px, got {r}")
        labels = check_labels(labels, self.num_classes, z.shape[0])
        if labels is not None:
            z = self.embed(z, labels)
        x = self.proj(z.view(z.shape[0], -1, 1, 1))
        for s in growth_resolutions(8, r // 2):
            x = self.ups[str(s)](x)
        return self.to_rgb[str(r)](x)


class Discriminator(nn.Module):
    """images (N, 3, r, r) -> logits of "real" (N,), for any phase resolution r."""

    def __init__(self, cfg: PGGANSeedConfig):
        super().__init__()
        self.resolution = cfg.resolution
        self.resolutions = cfg.resolutions
        def w(r: int) -> int:
            return cfg.width(cfg.ndf, r)

        self.from_rgb = nn.ModuleDict({str(r): nn.Sequential(nn.Conv2d(3, w(r // 2), 4, 2, 1, bias=False),
                                                             nn.LeakyReLU(0.2, inplace=True))
                                       for r in self.resolutions})
        # downs[r]: features at r -> features at r/2.
        self.downs = nn.ModuleDict({str(r): nn.Sequential(nn.Conv2d(w(r), w(r // 2), 4, 2, 1, bias=False),
                                                          nn.BatchNorm2d(w(r // 2)), nn.LeakyReLU(0.2, inplace=True))
                                    for r in growth_resolutions(8, cfg.resolution // 2)})
        self.final = nn.Conv2d(w(4), 1, 4, 1, 0, bias=False)
        self.apply(init_weights)
        self.num_classes = cfg.num_classes
        if self.num_classes:
            self.project = Projection(self.num_classes, w(4))

    def phase_modules(self, phase: int) -> list[nn.Module]:
        r = self.resolutions[phase]
        if phase == 0:
            return [self.from_rgb[str(r)], *(self.downs[str(s)] for s in growth_resolutions(8, r // 2)), self.final,
                    *([self.project] if self.num_classes else [])]
        return [self.from_rgb[str(r)], self.downs[str(r // 2)]]

    def forward(self, x: torch.Tensor, resolution: int | None = None, alpha: float = 1.0,
                labels: torch.Tensor | None = None) -> torch.Tensor:
        r = x.shape[-1]
        if r not in self.resolutions or (resolution is not None and int(resolution) != r):
            raise ValueError(f"this pggan-seed discriminator works at {self.resolutions} px, got {r} px images"
                             + (f" for resolution {resolution}" if resolution is not None else ""))
        h = self.from_rgb[str(r)](x)
        for s in reversed(growth_resolutions(8, r // 2)):
            h = self.downs[str(s)](h)
        labels = check_labels(labels, self.num_classes, x.shape[0])
        if labels is None:
            return self.final(h).view(-1)
        return self.final(h).view(-1) + self.project(h.sum(dim=(2, 3)), labels)


@register_model
class PGGANSeed(ModelSpec):
    name = "pggan-seed"
    Config = PGGANSeedConfig

    def build(self, cfg: PGGANSeedConfig) -> tuple[nn.Module, nn.Module]:
        return Generator(cfg), Discriminator(cfg)

    def build_generator(self, cfg: PGGANSeedConfig) -> nn.Module:
        return Generator(cfg)

    def _boundaries(self, cfg: PGGANSeedConfig) -> list[int]:
        """Images seen when each phase starts."""
        starts = [0]
        for k in cfg.phase_kimg:
            starts.append(starts[-1] + round(k * 1000))
        return starts

    def schedule(self, cfg: PGGANSeedConfig, nimg: int) -> Stage:
        if nimg < 0:
            raise ValueError(f"images seen must be >= 0, got {nimg}")
        starts = self._boundaries(cfg)
        phase = sum(nimg >= s for s in starts) - 1
        return Stage(phase=phase, resolution=cfg.resolutions[phase], alpha=1.0, batch=cfg.batch,
                     lr_g=cfg.lr, lr_d=cfg.lr)

    def prepare_phase(self, G: Generator, D: Discriminator, cfg: PGGANSeedConfig, stage: Stage
                      ) -> dict[str, torch.optim.Optimizer]:
        opts = {}
        for key, net in (("G", G), ("D", D)):
            net.requires_grad_(False)
            params = []
            for m in net.phase_modules(stage.phase):
                m.requires_grad_(True)
                params += list(m.parameters())
            opts[key] = adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
        return opts

    def make_loss(self, G: Generator, D: Discriminator, cfg: PGGANSeedConfig) -> BCELoss:
        return BCELoss(G, D, cfg, logits=True)

    def describe_schedule(self, cfg: PGGANSeedConfig, total_nimg: int) -> list[dict]:
        starts = self._boundaries(cfg)
        rows = []
        for p, res in enumerate(cfg.resolutions):
            if starts[p] >= total_nimg:
                break
            end = total_nimg if p == len(starts) - 1 else min(total_nimg, starts[p + 1])
            rows.append({"phase": p, "resolution": res, "start_kimg": starts[p] / 1000, "end_kimg": end / 1000,
                         "fade_kimg": 0.0, "batch": cfg.batch, "lr_g": cfg.lr, "lr_d": cfg.lr})
        return rows
