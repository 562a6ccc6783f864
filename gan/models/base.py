"""The small interface through which every model plugs into the one training loop.

A model is a :class:`ModelSpec` registered by name. It supplies

* a typed, frozen config dataclass (``Config``),
* ``build(cfg) -> (G, D)``: the networks. Every generator is called as
  ``G(z, resolution=None, alpha=1.0)`` and every discriminator as ``D(x, resolution=None, alpha=1.0)``;
  fixed-resolution models ignore ``alpha`` and accept only their own resolution,
* ``schedule(cfg, nimg) -> Stage``: a pure function of images seen,
* ``prepare_phase(G, D, cfg, stage) -> {"G": opt, "D": opt}``: called at the start and whenever
  ``stage.phase`` changes; it decides which parameters train (and freezes the rest),
* ``make_loss(G, D, cfg) -> Loss``: all GAN maths, one method call per training phase.

The loop steps through ``loss.phases`` and knows nothing else about the model. Under torchrun the G
and D a loss is made with are DDP wrappers and ``real`` is this process's share of the global batch;
a loss that averages over its batch and draws per-sample noise through :class:`gan.rng.BatchRNG` then
trains the same on any number of processes.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from gan.rng import BatchRNG


@dataclass(frozen=True)
class Stage:
    """Where training is, as a pure function of images seen (see ``ModelSpec.schedule``).

    Args:
        phase: index of the current growth phase (0 for fixed-resolution models).
        resolution: side of the images G produces and D sees, in pixels.
        alpha: fade-in weight of the newest block, 0..1 (1 when not fading).
        batch: images per training step.
        lr_g: generator learning rate.
        lr_d: discriminator learning rate.
    """

    phase: int
    resolution: int
    alpha: float
    batch: int
    lr_g: float
    lr_d: float


class Loss(Protocol):
    """All the GAN maths of one model. ``phases`` names the optimizer each phase steps."""

    phases: tuple[str, ...]

    def accumulate_gradients(self, phase: str, real: torch.Tensor, stage: Stage,
                             rng: torch.Generator | BatchRNG, labels: torch.Tensor | None = None
                             ) -> dict[str, torch.Tensor]:
        """Compute this phase's loss on ``real`` (float, [-1, 1], NCHW at ``stage.resolution``; this
        process's share of ``stage.batch``), call ``backward()`` on it, and return detached scalar
        statistics (``loss_D``, ``loss_G``, ``D_real``, ``D_fake``...). ``rng`` drives every random
        draw (latents, penalties); per-sample draws go through ``BatchRNG.of(rng)``. ``labels`` (long,
        one class index per real image) is given to conditional models only; G then generates the
        same classes and D scores each image for its class."""
        ...


class ModelSpec:
    """Base class of registered models; see the module docstring."""

    name: ClassVar[str]
    Config: ClassVar[type]
    # Named configurations (``gan.train --preset NAME``); the config's defaults need no name.
    presets: ClassVar[dict[str, Any]] = {}

    def build(self, cfg: Any) -> tuple[nn.Module, nn.Module]:
        raise NotImplementedError

    def build_generator(self, cfg: Any) -> nn.Module:
        """G alone (for inference); override when building D is costly."""
        return self.build(cfg)[0]

    def schedule(self, cfg: Any, nimg: int) -> Stage:
        raise NotImplementedError

    def prepare_phase(self, G: nn.Module, D: nn.Module, cfg: Any, stage: Stage
                      ) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def make_loss(self, G: nn.Module, D: nn.Module, cfg: Any) -> Loss:
        raise NotImplementedError

    def describe_schedule(self, cfg: Any, total_nimg: int) -> list[dict]:
        """Rows for ``--dry-run``: one per phase (default: a single constant phase)."""
        s = self.schedule(cfg, 0)
        return [dict(phase=0, resolution=s.resolution, start_kimg=0.0, end_kimg=total_nimg / 1000,
                     fade_kimg=0.0, batch=s.batch, lr_g=s.lr_g, lr_d=s.lr_d)]

    def train_defaults(self, cfg: Any, conditional: bool) -> dict:
        """Training-loop settings (:class:`gan.config.TrainConfig` fields) this model trains with unless
        the command line says otherwise, e.g. ``{"ada": True}``; ``conditional``: a ``--cond`` run."""
        return {}

    def dry_run_notes(self, cfg: Any) -> list[str]:
        """Lines ``--dry-run`` prints after the parameter counts (e.g. a measured training cost)."""
        return []

    def config_from_dict(self, d: dict) -> Any:
        """Rebuild the typed config from a checkpoint's JSON, refusing unknown keys."""
        from gan.configdict import config_from_dict

        return config_from_dict(self.Config, d, f"{self.name} config")


def adam(params, lr: float, betas: tuple[float, float], eps: float = 1e-8, fused: bool = True
         ) -> torch.optim.Adam:
    """Adam with the fused kernel (one pass over all parameters instead of a Python loop per tensor;
    the same update up to float rounding): the optimizer every model uses."""
    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), eps=eps, fused=fused)


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module`` (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


@contextmanager
def no_param_grads(module: nn.Module) -> Iterator[None]:
    """Switch off ``requires_grad`` on ``module``'s parameters for the block, then restore each flag.

    Used in the G phase: gradients still flow *through* D to G, but D's weight gradients (a third
    of D's backward pass) are not computed.
    """
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
