"""Which models the dashboard shows: run folders found through :mod:`gan.rundir` in the folder the
user points it at (checked against the shared folders by :mod:`dashboard.roots`). Every file of a model (weights, stats, config, fingerprint, model card) is found by
``gan.rundir.RunDir``; nothing here names a file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboard.roots import ENV_CHECKPOINTS  # noqa: F401 - where the tests and the sidebar look it up
from gan.rundir import WEIGHT_FILES, RunDir, discover

WEIGHTS_HINT = " or ".join(WEIGHT_FILES)  # for messages: "generator.pt or checkpoint.pt"


@dataclass(frozen=True)
class ModelEntry:
    """One model the dashboard can show: a shipped checkpoint folder or a training run folder.

    Attributes:
        run: the model's run folder; its files are looked up there each time they are asked for, so a
            run that is still training shows what it has written so far.
    """

    run: RunDir
    weights_file: Path | None = None  # a generator file given by path (any name), instead of the folder's

    @property
    def name(self) -> str:
        """The folder name, used as the model's label everywhere (with the file name for a generator file
        given by path that is not the folder's own ``generator.pt``/``checkpoint.pt``)."""
        if self.weights_file is not None and self.weights_file.name not in WEIGHT_FILES:
            return f"{self.run.name}/{self.weights_file.name}"
        return self.run.name

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def weights(self) -> Path | None:
        """The file to sample from (exported G_ema first, else the training checkpoint), or None
        (a run that has not written a checkpoint yet still shows its curves and grids)."""
        if self.weights_file is not None:
            return self.weights_file if self.weights_file.is_file() else None
        return self.run.weights()

    @property
    def stats(self) -> Path | None:
        return self.run.stats_path

    @property
    def config(self) -> Path | None:
        """The config file (``config.json``, or a shipped folder's legacy ``training_options.json``)."""
        return self.run.config_path

    @property
    def fingerprint(self) -> Path | None:
        """The training split's fingerprint."""
        return self.run.fingerprint("train")

    @property
    def model_card(self) -> Path | None:
        return self.run.model_card_path

    def read_config(self) -> dict[str, Any] | None:
        """The resolved run config as a JSON-ready dict (``RunConfig.to_dict()``), None without a config file.

        Raises:
            ValueError: naming the file, when it is not a valid run config.
        """
        cfg = self.run.read_config()
        return cfg.to_dict() if cfg is not None else None

    def read_model_card(self) -> str | None:
        """The model card's Markdown, None when the folder has none."""
        return self.run.read_model_card()

    def grids(self) -> list[tuple[int, Path]]:
        """The fixed-noise grids as (images seen, path), in order of images seen."""
        return self.run.list_grids()


WEIGHT_SUFFIXES = (".pt", ".pth")


def is_weights_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a generator or checkpoint file (given where a folder could be)."""
    p = Path(path)
    return p.is_file() and p.suffix in WEIGHT_SUFFIXES


def discover_models(folder: str | os.PathLike) -> list[ModelEntry]:
    """The models in ``folder``: the folder itself when it is a run folder, else its run subfolders
    (``checkpoints/``, ``runs/``), sorted by name; a generator file (``.pt``) is one model, its folder's
    stats, config and fingerprint beside it. [] when it is missing or holds none."""
    if is_weights_file(folder):
        p = Path(folder).resolve()
        return [ModelEntry(RunDir(p.parent), p)]
    return [ModelEntry(r) for r in discover(folder)]


def list_run_folders(runs_dir: str | os.PathLike) -> list[Path]:
    """Training run folders under ``runs_dir`` (newest name last), for the sidebar's quick pick."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir() or RunDir(runs_dir).is_run():
        return []
    return [r.path for r in discover(runs_dir)]


def folder_stamp(folder: str | os.PathLike) -> tuple[float, int]:
    """(newest modification time, file count) over what the pages show of the folder's models:
    changes when a training run writes anything."""
    stamps = [e.run.stamp() for e in discover_models(folder)]
    return max((t for t, _ in stamps), default=0.0), sum(n for _, n in stamps)


def file_stamp(path: Path | None) -> float:
    """Modification time used as a cache key, so a growing stats.jsonl or a new checkpoint is re-read."""
    try:
        return path.stat().st_mtime if path is not None else 0.0
    except OSError:
        return 0.0
