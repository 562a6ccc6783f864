"""Metrics during training, like StyleGAN's ``metric-fid50k_full.jsonl``: a :class:`gan.loop.TrainingHook`
that scores G_ema against a reference fingerprint every ``train.metrics_kimg`` and keeps the best
snapshot.

``python -m gan.train ... --metrics fd_derm,precision_derm,recall_derm --metrics-kimg 10 --keep-best fd_derm``
builds one :class:`MetricsHook`. At the first snapshot at or after each multiple of ``metrics_kimg``
(and at the end of training) it draws ``metrics_n`` samples from G_ema with a fixed seed (the same
latents every time, so that snapshots are compared on equal terms), scores them with
:func:`eval.evaluate` and appends one row to the run folder's ``metrics.jsonl``
(:meth:`gan.rundir.RunDir.append_metrics`). With ``keep_best`` it writes ``generator-best.pt`` whenever
a snapshot beats every earlier one on that metric (its direction from the catalogue).

``gan.train`` finds this module through the ``lesiongan.training_hooks`` entry point that
``pyproject.toml`` declares (:mod:`gan.hooks`): the module is the provider, :func:`metric_names` and
:func:`training_hooks` its two functions.

Selecting the best of several snapshots on the training fingerprint favours that fingerprint and that
sample seed: claims about the chosen snapshot are re-scored with a fresh seed and against the
held-out split (``python -m eval.run``), which ``tools/ship.py`` records.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gan.config import RunConfig
from gan.imageutil import to_uint8_hwc
from gan.loop import TrainingHook, stage_kwargs
from gan.models.base import Stage
from gan.rundir import RunDir

SAMPLE_SEED = 0  # the latents every scoring draws (a fixed seed, like StyleGAN's metrics)


class SnapshotSampler:
    """G_ema at a stage as the generator object :func:`eval.evaluate` takes (``generate``,
    ``resolution``, ``class_names``). Draws from its own generator: the global RNG is not touched.
    A conditional model's classes are drawn in the training data's shares."""

    def __init__(self, G: torch.nn.Module, stage: Stage, z_dim: int, class_names: tuple[str, ...] = (),
                 class_probs: list[float] | None = None):
        self.G, self.stage, self.z_dim = G, stage, z_dim
        self.class_names = tuple(class_names)
        self.class_probs = class_probs
        self.resolution = stage.resolution

    @torch.no_grad()
    def generate(self, n: int, seed: int = 0, batch_size: int = 256, labels: Any = None) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=g)
        cls = None
        if self.class_names:
            if labels is None:
                probs = torch.tensor(self.class_probs or [1.0] * len(self.class_names), dtype=torch.float)
                cls = torch.multinomial(probs / probs.sum(), n, replacement=True, generator=g)
            else:
                idx = self.class_names.index(labels) if isinstance(labels, str) else int(labels)
                cls = torch.full((n,), idx, dtype=torch.long)
        device = next(self.G.parameters()).device
        out = []
        for i in range(0, n, batch_size):
            kw = stage_kwargs(self.stage)
            if cls is not None:
                kw["labels"] = cls[i:i + batch_size].to(device)
            out.append(to_uint8_hwc(self.G(z[i:i + batch_size].to(device), **kw)))
        return np.concatenate(out)


class MetricsHook(TrainingHook):
    """Score G_ema during training and keep the best snapshot (see the module docstring).

    Args:
        config: the run's config (``train.metrics``, ``metrics_kimg``, ``metrics_n``, ``keep_best``).
        reference: the reference fingerprint (path or ``eval.fingerprint.Fingerprint``).
        derm_encoder: the dermoscopy encoder for the ``*_derm`` metrics (default: the shipped one).
        progress: print one line per scoring.
    """

    def __init__(self, config: RunConfig, reference: Any, derm_encoder: str | None = None, progress: bool = True):
        from eval.registry import catalogue

        tcfg = config.train
        self.config, self.reference, self.derm_encoder, self.progress = config, reference, derm_encoder, progress
        self.metrics = tuple(tcfg.metrics)
        self.every = max(int(round(tcfg.metrics_kimg * 1000)), 1)
        self.total = int(round(tcfg.kimg * 1000))
        self.n = tcfg.metrics_n
        self.keep_best = tcfg.keep_best
        self.better = {m.name: m.better for m in catalogue(list(self.metrics))}
        self.keys = {m.name: m.key for m in catalogue(list(self.metrics))}
        self._last_due: int | None = None
        self._best: float | None = None
        counts = dict(config.data.class_counts or {})
        classes = tuple(getattr(config.model_cfg, "class_names", ()))
        self._class_probs = [float(counts.get(c, 1)) for c in classes] if classes else None

    def due(self, nimg: int, run: RunDir) -> bool:
        """Whether a snapshot at ``nimg`` images is scored: it is the first at or after a new
        multiple of ``metrics_kimg``, or the end of training."""
        if self._last_due is None:  # the first call (of a new or a resumed run): what was scored is in the file
            rows = [r for r in run.read_metrics() if r["nimg"] < nimg]
            self._last_due = rows[-1]["nimg"] // self.every if rows else 0
        return nimg >= self.total or nimg // self.every > self._last_due

    def score(self, G_ema: torch.nn.Module, stage: Stage) -> dict:
        """The metrics of G_ema at ``stage`` (a result dict from :func:`eval.evaluate`)."""
        from eval import evaluate

        sampler = SnapshotSampler(G_ema, stage, self.config.model_cfg.z_dim,
                                  tuple(getattr(self.config.model_cfg, "class_names", ())), self._class_probs)
        return evaluate(self.reference, sampler, list(self.metrics), n=self.n, seed=SAMPLE_SEED,
                        derm_encoder=self.derm_encoder)

    def on_snapshot(self, G_ema: torch.nn.Module, run: RunDir, nimg: int, stage: Stage) -> None:
        if not self.due(nimg, run):
            return
        self._last_due = nimg // self.every
        t0 = time.perf_counter()
        result = self.score(G_ema, stage)
        stats = run.read_stats()
        row = {"nimg": nimg, "kimg": nimg / 1000,
               "time_s": stats[-1].get("time_s") if stats else None,
               "reference": _reference_name(self.reference), "n": self.n, "seed": SAMPLE_SEED,
               "resolution": stage.resolution, "alpha": stage.alpha}
        for name in self.metrics:
            key = self.keys[name]
            if key in result:
                row[key] = float(result[key])
        if result.get("unavailable"):
            row["unavailable"] = dict(result["unavailable"])
        row["seconds"] = round(time.perf_counter() - t0, 2)
        best_line = ""
        if self.keep_best and self.keys[self.keep_best] in row and stage.alpha >= 1.0 \
                and stage.resolution == self.config.model_cfg.resolution:
            value = row[self.keys[self.keep_best]]
            if self._best is None:
                self._best = _best_so_far(run, self.keys[self.keep_best], self.better[self.keep_best], nimg)
            lower = self.better[self.keep_best] == "lower"
            if self._best is None or (value < self._best if lower else value > self._best):
                self._best = value
                row["best"] = True
                self._save_best(G_ema, run, nimg, value)
                best_line = " (best so far: generator-best.pt)"
        run.append_metrics(row)
        if self.progress:
            shown = ", ".join(f"{self.keys[m]} {row[self.keys[m]]:.4g}" for m in self.metrics if self.keys[m] in row)
            tqdm.write(f"metrics at {nimg / 1000:g} kimg: {shown or 'unavailable'}{best_line} "
                       f"[{row['seconds']:.0f} s]", file=sys.stderr)

    def _save_best(self, G_ema: torch.nn.Module, run: RunDir, nimg: int, value: float) -> None:
        from gan.checkpoint import export_generator

        info = {"nimg": nimg, "best_metric": self.keep_best, "best_value": value,
                "selected_on": f"{_reference_name(self.reference)}, {self.n} samples, seed {SAMPLE_SEED}"}
        export_generator({"model": self.config.model, "config": self.config, "G_ema": G_ema.state_dict(),
                          "info": info}, run.file("generator-best.pt"))


def _best_so_far(run: RunDir, key: str, better: str, before: int) -> float | None:
    values = [r[key] for r in run.read_metrics() if r["nimg"] < before and isinstance(r.get(key), (int, float))
              and r.get("best")]
    if not values:
        return None
    return min(values) if better == "lower" else max(values)


def _reference_name(ref: Any) -> str:
    path = getattr(ref, "path", None) or (ref if isinstance(ref, (str, Path)) else None)
    return Path(path).name if path else type(ref).__name__


def reference_fingerprint(config: RunConfig, run: RunDir, images: torch.Tensor, progress: bool = True):
    """The fingerprint the metrics score against: ``train.metrics_ref`` if set, else the run
    folder's ``fingerprint.npz``, made from the training images (with the dermoscopy encoder's
    features) when it is not there yet."""
    from eval.fingerprint import load_fingerprint, make_fingerprint, save_fingerprint

    if config.train.metrics_ref:
        path = Path(config.train.metrics_ref)
        if not path.is_file():
            raise ValueError(f"--metrics-ref {path}: no such fingerprint file")
        return load_fingerprint(path)
    existing = run.fingerprint("train")
    if existing is not None:
        return load_fingerprint(existing)
    if progress:
        print(f"metrics: fingerprinting the {len(images)} training images into {run.file('fingerprint.npz')}",
              file=sys.stderr)
    arr = images.permute(0, 2, 3, 1).contiguous().numpy()
    fp = make_fingerprint(arr, size=config.model_cfg.resolution, derm_encoder=None, progress=progress)
    return load_fingerprint(save_fingerprint(fp, run.file("fingerprint.npz")))


def metric_names() -> list[str]:
    """What ``--metrics`` accepts: every registered metric (the provider's half for argument checking)."""
    from eval.registry import list_metrics

    return list_metrics()


def training_hooks(config: RunConfig, run: RunDir, images: torch.Tensor, progress: bool = True) -> list[TrainingHook]:
    """The hooks ``gan.train`` runs for ``config.train.metrics``: one :class:`MetricsHook` scoring against
    :func:`reference_fingerprint` (made now when the run folder has none)."""
    reference = reference_fingerprint(config, run, images, progress=progress)
    return [MetricsHook(config, reference, progress=progress)]
