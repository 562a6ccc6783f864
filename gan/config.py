"""Typed configs of a training run. The CLI only fills these in; ``config.json`` and every
checkpoint hold them resolved, so loading needs no flags."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """How long and how the one training loop runs.

    Args:
        kimg: total length of training in thousands of real images shown to D.
        seed: drives everything: weights, latents, data order, augmentation.
        ema_kimg: half-life of the EMA generator G_ema, in thousands of images.
        ema_rampup: the half-life is at most ``ema_rampup * images seen`` (None: no ramp-up).
        log_kimg: write one ``stats.jsonl`` line (means over the interval) every this many kimg.
        snapshot_kimg: write ``checkpoint.pt`` every this many kimg (and at the end, and on Ctrl-C).
        grid_kimg: write a fixed-noise sample grid every this many kimg.
        grid_size: images in the fixed-noise grid (a square number).
        augment: random flips and 90-degree rotations of real images (dermoscopy has no canonical
            orientation; helps on small sets).
        device: "auto" (CUDA when available, else CPU), "cpu" or "cuda[:N]".
        channels_last: run the networks in channels-last memory format (faster convolutions).
        threads: torch intra-op threads on CPU (0: torch's default), per process.
        sync_bn: under torchrun, BatchNorm layers of G and D normalise with the statistics of the
            global batch (SyncBatchNorm, GPUs only) instead of each process's share.
        precision: "fp32", or "bf16": the forward and backward passes under bfloat16 autocast
            (weights, gradients and optimizer state stay float32). About 1.8x the training step on
            CPUs with native bf16 (AVX512-BF16/AMX) and on Ampere+ GPUs; refused elsewhere.
    """

    kimg: float = 150.0
    seed: int = 0
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    log_kimg: float = 1.0
    snapshot_kimg: float = 10.0
    grid_kimg: float = 10.0
    grid_size: int = 64
    augment: bool = False
    device: str = "auto"
    channels_last: bool = False
    threads: int = 0
    sync_bn: bool = False
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.kimg <= 0:
            raise ValueError(f"--kimg must be positive, got {self.kimg}")
        for name in ("log_kimg", "snapshot_kimg", "grid_kimg", "ema_kimg"):
            if getattr(self, name) <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        side = int(round(self.grid_size ** 0.5))
        if side * side != self.grid_size:
            raise ValueError(f"--grid-size must be a square number, got {self.grid_size}")


def to_dict(cfg: Any) -> dict:
    """A frozen dataclass as a JSON-ready dict."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type, d: dict) -> Any:
    """Rebuild dataclass ``cls`` from ``d``, naming unknown keys in the error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
    return cls(**d)
