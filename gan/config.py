"""Typed configs of a training run. The CLI only fills these in; ``config.json`` and every
checkpoint hold the resolved :class:`RunConfig`, so loading needs no flags.

    cfg = RunConfig.from_dict(json.loads(text))   # also reads the files of earlier versions
    text = cfg.to_json()                           # and back: RunConfig.from_json(text) == cfg
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gan.configdict import config_from_dict, to_dict
from gan.data.dataset import DataConfig, near_path

FORMAT_VERSION = 1  # of the run config's JSON (and of checkpoint files, see gan.checkpoint)


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
        device: "auto" (CUDA when available, else CPU), "cpu" or "cuda[:N]".
        channels_last: run the networks in channels-last memory format (faster convolutions).
        threads: torch intra-op threads on CPU (0: torch's default), per process; restored when
            the loop returns.
        sync_bn: under torchrun, BatchNorm layers of G and D normalise with the statistics of the
            global batch (SyncBatchNorm, GPUs only) instead of each process's share.
        precision: "fp32", or "bf16": the forward and backward passes under bfloat16 autocast
            (weights, gradients and optimizer state stay float32); refused where bf16 is not native
            (CPU: no AVX512-BF16/AMX-BF16 flag; CUDA: before compute capability 8.0), as emulated
            bf16 is slower. "auto": bf16 where it is native and a one-off measurement of this
            model's training step finds it faster, else fp32 (:func:`gan.loop.training_precision`);
            resolved when a run starts, so ``config.json`` and checkpoints hold fp32 or bf16.
        balance: draw real images class-balanced (each class equally often, with replacement)
            instead of in shuffled epochs; needs labels.
        diffaug: DiffAugment ops applied to everything D sees (:mod:`gan.daug`): any of ``color``,
            ``translation``, ``cutout``; empty: none.
        ada: adaptive discriminator augmentation (:mod:`gan.daug`): probability p steered by the
            overfitting heuristic r_t = E[sign(D_real)] towards ``ada_target``.
        ada_target: the r_t ADA steers to (0.6, Karras et al. 2020).
        ada_kimg: thousands of images over which ADA's p can move from 0 to 1 (the paper's 500 suits
            runs of many million images; 100 lets p react within this project's 50-150 k runs).
        ada_interval: steps between updates of p.
        ada_ops: ADA's pipeline groups: ``bgc`` (blit, geometry, colour; the paper's default) or a
            subset, e.g. ``bg`` to keep D's colours untouched.
        metrics: metrics scored on G_ema during training (``eval.training_metrics``), e.g.
            ``fd_derm``, ``precision_derm``, ``recall_derm``; empty: none.
        metrics_kimg: score every this many kimg (at the first snapshot at or after each multiple,
            and at the end).
        metrics_n: samples per scoring.
        metrics_ref: the reference fingerprint (``eval.fingerprint``); empty: the run folder's
            ``fingerprint.npz``, made from the training images when missing.
        keep_best: keep the snapshot that scores best on this metric (one of ``metrics``) as
            ``generator-best.pt``; empty: do not.
        keep_kimg: also keep the training checkpoint (G, D, G_ema) at every multiple of this many
            kimg as ``snapshots/checkpoint-KKKKKK.pt`` (audits over training length: membership
            attacks need D and G_ema of each snapshot); 0: keep only the latest.

    Augmentation of real images is a data option: :class:`gan.data.DataConfig`.
    """

    kimg: float = 150.0
    seed: int = 0
    ema_kimg: float = 10.0
    ema_rampup: float | None = 0.05
    log_kimg: float = 1.0
    snapshot_kimg: float = 10.0
    grid_kimg: float = 10.0
    grid_size: int = 64
    device: str = "auto"
    channels_last: bool = False
    threads: int = 0
    sync_bn: bool = False
    precision: str = "fp32"
    balance: bool = False
    diffaug: tuple[str, ...] = ()
    ada: bool = False
    ada_target: float = 0.6
    ada_kimg: float = 100.0
    ada_interval: int = 4
    ada_ops: str = "bgc"
    metrics: tuple[str, ...] = ()
    metrics_kimg: float = 10.0
    metrics_n: int = 1000
    metrics_ref: str = ""
    keep_best: str = ""
    keep_kimg: float = 0.0

    def __post_init__(self) -> None:
        from gan.daug import parse_ada_ops, parse_policy

        parse_policy(self.diffaug)
        object.__setattr__(self, "ada_ops", parse_ada_ops(self.ada_ops))  # canonical order: gb -> bg
        if not (0 < self.ada_target < 1) or not (self.ada_kimg > 0) or self.ada_interval < 1:
            raise ValueError(f"--ada needs 0 < ada_target < 1, ada_kimg > 0, ada_interval >= 1; got "
                             f"{self.ada_target}, {self.ada_kimg}, {self.ada_interval}")
        if self.metrics_n < 10 or not (self.metrics_kimg > 0):
            raise ValueError(f"--metrics-n must be >= 10 and --metrics-kimg > 0, got {self.metrics_n}, "
                             f"{self.metrics_kimg}")
        if self.keep_best and self.keep_best not in self.metrics:
            raise ValueError(f"--keep-best {self.keep_best}: not among --metrics ({','.join(self.metrics) or 'none'})")
        for name in ("kimg", "log_kimg", "snapshot_kimg", "grid_kimg", "ema_kimg"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a positive number, got {value}")
        if not (math.isfinite(self.keep_kimg) and self.keep_kimg >= 0):
            raise ValueError(f"--keep-kimg must be 0 (off) or a positive number, got {self.keep_kimg}")
        if self.precision not in ("fp32", "bf16", "auto"):
            raise ValueError(f"--precision must be fp32, bf16 or auto, got {self.precision!r}")
        if self.threads < 0:
            raise ValueError(f"--threads must be >= 0, got {self.threads}")
        side = int(round(self.grid_size ** 0.5))
        if self.grid_size < 1 or side * side != self.grid_size:
            raise ValueError(f"--grid-size must be a square number, got {self.grid_size}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run: the model and its config, the loop's settings and the
    data. ``config.json`` holds it, checkpoints and generator files carry it.

    Args:
        model: registry name (``gan.models.model_names()``).
        model_cfg: the model's typed config (``get_model(model).Config``).
        train: the training loop's settings.
        data: which images, at what size, with which augmentation.
        format: version of this config's JSON layout.
    """

    model: str
    model_cfg: Any
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    format: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        res = getattr(self.model_cfg, "resolution", None)
        if res is not None and self.data.size != res:
            raise ValueError(f"the data size ({self.data.size} px) differs from the model's resolution ({res} px)")

    @property
    def spec(self):
        """The model's :class:`~gan.models.base.ModelSpec`."""
        from gan.models import get_model

        return get_model(self.model)

    def replace(self, **changes: Any) -> RunConfig:
        """A copy with some parts replaced (``cfg.replace(train=...)``)."""
        return dataclasses.replace(self, **changes)

    def portable(self, base: str | os.PathLike | None = None) -> RunConfig:
        """This config as files meant to travel hold it (``config.json``, shipped models): no path of the
        machine that trained it. The data as :meth:`gan.data.DataConfig.portable` gives it (by name and
        content hash; a path only relative to the run folder ``base`` and near it), and
        ``train.metrics_ref`` relative to ``base`` when near, else the fingerprint's file name."""
        ref = self.train.metrics_ref
        if ref and os.path.isabs(ref):
            ref = (near_path(ref, base) if base is not None else None) or Path(ref).name
        return self.replace(train=dataclasses.replace(self.train, metrics_ref=ref), data=self.data.portable(base))

    def located(self, base: str | os.PathLike) -> RunConfig:
        """A config read from a file in folder ``base`` (:meth:`portable`'s inverse where it can be): the
        data's relative paths taken from ``base``, and ``train.metrics_ref`` too when that file is there."""
        ref = self.train.metrics_ref
        if ref and not os.path.isabs(ref) and (Path(base) / ref).is_file():
            ref = os.path.normpath(Path(base) / ref)
        return self.replace(train=dataclasses.replace(self.train, metrics_ref=ref), data=self.data.located(base))

    def to_dict(self) -> dict:
        return {"format": self.format, "model": self.model, "model_cfg": to_dict(self.model_cfg),
                "train": to_dict(self.train), "data": to_dict(self.data)}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"run config is not valid JSON ({e})") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        """The config from its JSON dict, also as earlier versions wrote it (``train.augment`` moved
        to ``data.augment``; files made without a data set or loop settings get the defaults)."""
        from gan.models import get_model

        if not isinstance(d, dict) or "model" not in d:
            raise ValueError("run config: expected a JSON object with a 'model' field")
        spec = get_model(d["model"])
        fmt = d.get("format", FORMAT_VERSION)
        if fmt != FORMAT_VERSION:
            raise ValueError(f"run config format {fmt} is not supported (this LesionGAN reads {FORMAT_VERSION})")
        mcfg = spec.config_from_dict(d.get("model_cfg") or {})
        train = dict(d.get("train") or {})
        data = dict(d.get("data") or {})
        if "augment" in train:  # before the data config held augmentation
            data.setdefault("augment", train.pop("augment"))
        data.setdefault("size", getattr(mcfg, "resolution", 64))
        return cls(model=spec.name, model_cfg=mcfg, train=config_from_dict(TrainConfig, train, "train config"),
                   data=config_from_dict(DataConfig, data, "data config"), format=FORMAT_VERSION)
