"""The run folder: the one module that knows its layout, names every file in it, finds run folders,
and reads and writes each file. The training loop, ``load_generator``, ``eval.run``,
``tools/ship.py`` and the dashboard all go through it; a shipped model folder
(``checkpoints/<model>/``) is a run folder with the same names.

    run = RunDir.create("runs", "dcgan", "isic2017", 64)   # runs/00000-dcgan-isic2017-64/
    run.write_config(cfg); run.append_stats({...}); run.write_grid(nimg, image)
    run = RunDir("checkpoints/dcgan"); run.read_config(); run.read_stats(); run.weights()

What a run folder holds (``FILES``; a new kind of file is one more entry there and a pair of
methods below):

====================  =========================================================================
``config.json``       the resolved :class:`gan.config.RunConfig`, written before step one
``stats.jsonl``       one JSON line per logging interval; read back with one row per step
``grids/``            fixed-noise sample grids ``grid-<images seen, 9 digits>.png``
``checkpoint.pt``     the training checkpoint (:mod:`gan.checkpoint`), what ``--resume`` reads
``generator.pt``      G_ema alone, for sampling and shipping
``fingerprint.npz``   the training split's reference statistics (:mod:`eval.fingerprint`)
``fingerprint-val.npz``  the held-out split's
``metrics.jsonl``     metrics of G_ema scored during training (``--metrics``), one line per scoring
``generator-best.pt`` G_ema of the best-scoring snapshot so far (``--keep-best``)
``snapshots/``        training checkpoints kept every ``--keep-kimg`` (``checkpoint-<kimg, 6 digits>.pt``)
``discriminator.pt``  D of the shipped snapshot, for the white-box membership audit (``eval.privacy``)
``results.json``      this model's scores from ``python -m eval.run``, each naming the snapshot it scored
                      (file, SHA-256, images seen), and utility, privacy sections
``MODEL_CARD.md``     the model card (``tools/ship.py --cards``)
``previous/``         a shipped model's earlier version (config, stats, results, card, grids; no weights)
``run.lock``          the writer's advisory lock while one writes the folder (below); gone when it ends
====================  =========================================================================

A folder of run folders (``runs/``, ``checkpoints/``) holds the collection's ``results.json`` and
``results.csv`` (one row per model and reference set), also written and read here.

Every write is atomic (:mod:`gan.fileio`); temp files carry the writer's host id and PID, and
:meth:`RunDir.open_for_writing` removes the ones whose writer died.

One writer at a time: a process that writes a run folder holds its lock (:meth:`RunDir.lock`, an
``fcntl.flock`` on ``run.lock``, whose JSON names the holder's PID, host, start time and a heartbeat
that the writer refreshes with every stats line, metrics line and checkpoint). ``gan.train`` takes it
when it makes the folder (:meth:`RunDir.create`), or on ``--resume`` before it decodes the data or
rewrites ``config.json``, and keeps it until the command returns; ``gan.loop.training_loop`` holds it
while it trains (for a library caller, only then); a second writer (``--resume`` of the same folder, ``tools/ship.py`` into a
model folder being written) is refused with one line naming the holder. Readers ask without taking
it: :meth:`RunDir.writer_alive` (is a run running?) and :meth:`RunDir.holder` (who, since when).

A run folder whose first checkpoint never came: when the command that made it ends (an error, a bad
``--metrics-ref``, Ctrl-C before the first snapshot) while the folder holds nothing but its
``config.json``, the folder is removed; when the process was killed (``kill -9``, power loss), the
bare folder stays, but :meth:`RunDir.is_run` does not count a folder with only a config and no live
writer, so it never shows as a run.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gan.fileio import (LOCK_NAME, FolderLock, atomic_write, atomic_write_text, clean_stale_temps, held_lock,
                        lock_folder, lock_holder, sha256_file)

RESULTS_FORMAT = "lesiongan-results"
RESULTS_VERSION = 2  # 2: ``unavailable`` is a {metric: reason} object in every row
# A model's results.json: this module writes the envelope (format, version, model); eval.run writes the
# scores ("results") and the settings it scored with (write_results); every other top-level key is a
# section that the module computing it sets with update_results (eval.utility, eval.privacy,
# eval.class_fidelity, eval.audit, tools/ship.py). Each writer keeps the keys it does not own, so no list
# of sections lives here.
RESULTS_ENVELOPE = ("format", "version", "model", "results")


@dataclass(frozen=True)
class RunFile:
    """One file (or folder) of a run folder.

    Attributes:
        name: its name inside the run folder.
        what: what it holds, one line.
        writer: the code that decides its content (it writes through this module).
    """

    name: str
    what: str
    writer: str


FILES: dict[str, RunFile] = {f.name: f for f in (
    RunFile("config.json", "the resolved RunConfig (model, training, data), written before step one", "gan.train"),
    RunFile("stats.jsonl", "losses, D outputs, resolution, phase, images seen, wall time per logging interval",
            "gan.loop"),
    RunFile("grids", "fixed-noise sample grids grid-<images seen>.png", "gan.loop"),
    RunFile("checkpoint.pt", "G, D, G_ema, optimizers, RNG states, images seen, config: what --resume reads",
            "gan.loop"),
    RunFile("generator.pt", "G_ema, its config and provenance: what sampling, evaluation and shipping read",
            "gan.loop / gan.export / tools/ship.py"),
    RunFile("fingerprint.npz", "reference statistics of the training split", "eval.fingerprint / tools/ship.py"),
    RunFile("fingerprint-val.npz", "reference statistics of the held-out split", "eval.fingerprint / tools/ship.py"),
    RunFile("snapshots", "training checkpoints kept at every --keep-kimg multiple (checkpoint-KKKKKK.pt, KKKKKK the "
            "thousands of images seen): G, D and G_ema for audits over training length", "gan.loop"),
    RunFile("metrics.jsonl", "metrics of G_ema scored against the training fingerprint during training, one line "
            "per scored snapshot", "eval.training_metrics (a gan.loop hook)"),
    RunFile("generator-best.pt", "G_ema of the best snapshot by the --keep-best metric, with its score",
            "eval.training_metrics (a gan.loop hook)"),
    RunFile("discriminator.pt", "D of the shipped snapshot and its config, for the white-box membership audit",
            "tools/ship.py"),
    RunFile("results.json", "this model's scores against each reference set, each naming the snapshot it scored "
            "(file, SHA-256, images seen)", "eval.run"),
    RunFile("MODEL_CARD.md", "the model card", "tools/ship.py --cards"),
    RunFile("previous", "the shipped version this model replaced, itself a run folder without weights: config, "
            "stats, results, card, grids", "tools/ship.py"),
    RunFile(LOCK_NAME, "the writer's advisory lock (fcntl.flock) and record: PID, host, start time, heartbeat; "
            "removed when the writer ends", "gan.rundir (training, tools/ship.py)"),
)}
CONFIG, STATS, GRIDS, CHECKPOINT, GENERATOR = "config.json", "stats.jsonl", "grids", "checkpoint.pt", "generator.pt"
METRICS, GENERATOR_BEST, DISCRIMINATOR = "metrics.jsonl", "generator-best.pt", "discriminator.pt"
FINGERPRINT, FINGERPRINT_VAL, RESULTS, MODEL_CARD = "fingerprint.npz", "fingerprint-val.npz", "results.json", \
    "MODEL_CARD.md"
RESULTS_CSV = "results.csv"  # in a folder of run folders only
LEGACY_CONFIG = "training_options.json"  # shipped folders before the run-folder module: read, never written
WEIGHT_FILES = (GENERATOR, CHECKPOINT)  # preference order: the exported G_ema first
FINGERPRINTS = {"train": FINGERPRINT, "validation": FINGERPRINT_VAL}
GRID_RE = re.compile(r"^grid-(\d+)\.png$")
SNAPSHOTS = "snapshots"
SNAPSHOT_RE = re.compile(r"^checkpoint-(\d{6})\.pt$")
_RUN_NAME_RE = re.compile(r"^(\d{5})-")


class RunDir:
    """A run folder (it need not exist yet: reading methods then find nothing).

    Args:
        path: the folder.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunDir) and self.path == other.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        """The path of one of ``FILES`` in this folder (whether it exists or not)."""
        if name not in FILES:
            raise KeyError(f"{name!r} is not a run-folder file; known: {', '.join(FILES)}")
        return self.path / name

    def _existing(self, name: str) -> Path | None:
        p = self.file(name)
        return p if p.is_file() else None

    # -- creating and opening --------------------------------------------------------------

    @classmethod
    def create(cls, out: str | os.PathLike, model: str, data_name: str, size: int) -> RunDir:
        """Make ``OUT/00007-dcgan-isic2017-64``: the next free number in ``out``."""
        out = Path(out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out}: is a file, not a folder")
        out.mkdir(parents=True, exist_ok=True)
        while True:  # another process may take a number between the listing and the mkdir
            ids = [int(m.group(1)) for p in out.iterdir() if p.is_dir() and (m := _RUN_NAME_RE.match(p.name))]
            path = out / f"{max(ids, default=-1) + 1:05d}-{model}-{data_name}-{size}"
            try:
                path.mkdir()
            except FileExistsError:
                continue
            # Ours from its first moment: locked until the command ends, and removed then if it still
            # holds no more than its config (the run failed before its first checkpoint).
            lock_folder(path).on_release.append(_drop_if_bare)
            return cls(path)

    def open_for_writing(self) -> RunDir:
        """Make sure the folder exists, take its lock for as long as this command runs (released when
        a command's ``main`` returns, or by the kernel when the process ends), and remove temp files
        left by writers that died.

        Raises:
            gan.fileio.FolderInUse: another live process holds the lock (a ValueError naming it).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        lock_folder(self.path)
        clean_stale_temps(self.path)
        return self

    # -- the writer's lock -----------------------------------------------------------------

    def lock(self) -> FolderLock:
        """Take the folder's advisory lock (making the folder); ``with run.lock(): ...`` releases it.
        Re-entrant within a process.

        Raises:
            gan.fileio.FolderInUse: another live process holds it; the message names the folder and the
                holder (PID, host, since when, last heartbeat).
        """
        self.path.mkdir(parents=True, exist_ok=True)
        return lock_folder(self.path)

    def holder(self) -> dict | None:
        """The record of the live process writing this folder (``pid``, ``host``, ``started``,
        ``heartbeat``, ``command``), or None when none is. Takes nothing."""
        return lock_holder(self.path)

    def writer_alive(self) -> bool:
        """Whether a live process holds this folder's lock: a training run that is running now."""
        return self.holder() is not None

    def _heartbeat(self) -> None:
        lock = held_lock(self.path)
        if lock is not None:
            lock.heartbeat()

    # -- config.json -----------------------------------------------------------------------

    @property
    def config_path(self) -> Path | None:
        """``config.json`` (or the legacy ``training_options.json``) if present."""
        for p in (self.path / CONFIG, self.path / LEGACY_CONFIG):
            if p.is_file():
                return p
        return None

    def read_config(self):
        """The run's :class:`~gan.config.RunConfig`, or None when the folder has no config file.

        Raises:
            ValueError: naming the file, when it is not a valid run config.
        """
        from gan.config import RunConfig

        p = self.config_path
        if p is None:
            return None
        try:
            return RunConfig.from_json(p.read_text(encoding="utf-8")).located(self.path)
        except (OSError, ValueError, TypeError) as e:
            raise ValueError(f"{p}: {e}") from None

    def write_config(self, cfg) -> Path:
        """Write the resolved config (atomically), as files meant to travel hold it
        (:meth:`gan.config.RunConfig.portable`: no path of this machine; :meth:`read_config` reads it back)."""
        p = self.path / CONFIG
        atomic_write_text(p, cfg.portable(self.path).to_json(indent=2) + "\n")
        return p

    # -- stats.jsonl -----------------------------------------------------------------------

    @property
    def stats_path(self) -> Path | None:
        return self._existing(STATS)

    def read_stats(self) -> list[dict]:
        """The logged rows, one per step (``nimg``), in order of images seen.

        After a run was killed and resumed, the lines logged between its last checkpoint and the
        kill appear twice; the last line written for a step wins. Lines that do not parse (a run
        writing its last line right now) are skipped.
        """
        return _read_jsonl_by_nimg(self.stats_path)

    def append_stats(self, row: dict) -> None:
        """Append one line (flushed, so a live dashboard sees it); refreshes the lock's heartbeat."""
        _append_jsonl(self.path / STATS, row)
        self._heartbeat()

    def write_stats(self, rows: list[dict]) -> Path:
        """Replace ``stats.jsonl`` by ``rows`` (atomically), e.g. a shipped copy of a run's rows."""
        p = self.path / STATS
        atomic_write_text(p, "".join(json.dumps(r) + "\n" for r in rows))
        return p

    def truncate_stats(self, nimg: int) -> int:
        """Drop the lines logged after ``nimg`` images (a resume continues from a checkpoint taken
        there); returns how many lines were dropped. Atomic."""
        return _truncate_jsonl(self.stats_path, nimg)

    # -- metrics.jsonl ---------------------------------------------------------------------

    @property
    def metrics_path(self) -> Path | None:
        return self._existing(METRICS)

    def read_metrics(self) -> list[dict]:
        """Metrics scored during training, one row per scored snapshot (``nimg``, ``kimg``,
        ``time_s``, one key per metric, ``reference``), deduplicated like :meth:`read_stats`."""
        return _read_jsonl_by_nimg(self.metrics_path)

    def append_metrics(self, row: dict) -> None:
        _append_jsonl(self.path / METRICS, row)
        self._heartbeat()

    def write_metrics(self, rows: list[dict]) -> Path:
        p = self.path / METRICS
        atomic_write_text(p, "".join(json.dumps(r) + "\n" for r in rows))
        return p

    def truncate_metrics(self, nimg: int) -> int:
        """Drop metric rows scored after ``nimg`` images (on resume). Atomic."""
        return _truncate_jsonl(self.metrics_path, nimg)

    # -- other JSON-lines logs -------------------------------------------------------------

    # For the files of other kinds of run folders (the dermoscopy encoder's per-epoch stats, keyed by
    # ``epoch``): their names belong to the module that writes them, not to ``FILES``.

    def read_log(self, name: str, key: str = "nimg") -> list[dict]:
        """The rows of the JSON-lines log ``name`` in this folder, deduplicated by ``key`` like
        :meth:`read_stats`."""
        p = self.path / name
        return _read_jsonl_by_nimg(p if p.is_file() else None, key)

    def append_log(self, name: str, row: dict) -> None:
        """Append one line to the log ``name`` (flushed); refreshes the lock's heartbeat."""
        _append_jsonl(self.path / name, row)
        self._heartbeat()

    def truncate_log(self, name: str, upto: int, key: str = "nimg") -> int:
        """Drop the log's rows after ``upto`` by ``key`` (a resume continues from a checkpoint taken
        there); returns how many lines were dropped. Atomic."""
        p = self.path / name
        return _truncate_jsonl(p if p.is_file() else None, upto, key)

    # -- grids/ ----------------------------------------------------------------------------

    def grid_path(self, nimg: int) -> Path:
        return self.path / GRIDS / f"grid-{int(nimg):09d}.png"

    def list_grids(self) -> list[tuple[int, Path]]:
        """The fixed-noise grids as (images seen, path), in order of images seen."""
        gdir = self.path / GRIDS
        if not gdir.is_dir():
            return []
        return sorted((int(m.group(1)), p) for p in gdir.iterdir() if (m := GRID_RE.match(p.name)))

    def write_grid(self, nimg: int, image) -> Path:
        """Save one grid (uint8 HWC numpy) as PNG, atomically."""
        from PIL import Image

        img = Image.fromarray(image)
        p = self.grid_path(nimg)
        atomic_write(p, lambda f: img.save(f, format="PNG", optimize=True))
        return p

    def copy_grid(self, src: str | os.PathLike, nimg: int) -> Path:
        p = self.grid_path(nimg)
        data = Path(src).read_bytes()
        atomic_write(p, lambda f: f.write(data))
        return p

    def clear_grids(self) -> None:
        for _, p in self.list_grids():
            p.unlink()

    # -- checkpoint.pt and generator.pt -----------------------------------------------------

    @property
    def checkpoint_path(self) -> Path | None:
        return self._existing(CHECKPOINT)

    @property
    def generator_path(self) -> Path | None:
        return self._existing(GENERATOR)

    def weights(self) -> Path | None:
        """The file to sample from: ``generator.pt`` (G_ema alone) if present, else ``checkpoint.pt``."""
        return next((p for name in WEIGHT_FILES if (p := self._existing(name)) is not None), None)

    def save_checkpoint(self, ckpt: dict) -> Path:
        from gan import checkpoint as ckpt_io

        p = self.file(CHECKPOINT)
        ckpt_io.save(ckpt, p)
        self._heartbeat()
        return p

    def keep_snapshot(self, nimg: int) -> Path:
        """Keep the current ``checkpoint.pt`` (saved at ``nimg`` images) as
        ``snapshots/checkpoint-KKKKKK.pt``, KKKKKK the whole kimg seen: a hard link where the file system allows (checkpoint.pt is
        replaced, never rewritten in place), else a copy; atomic either way."""
        import shutil
        import tempfile

        src = self.file(CHECKPOINT)
        out = self.path / SNAPSHOTS / f"checkpoint-{nimg // 1000:06d}.pt"
        out.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
        os.close(fd)
        try:
            os.unlink(tmp)
            try:
                os.link(src, tmp)
            except OSError:
                shutil.copyfile(src, tmp)
            os.replace(tmp, out)
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
        return out

    def list_snapshots(self) -> list[tuple[int, Path]]:
        """The kept snapshots as (images seen, path), in order of images seen."""
        sdir = self.path / SNAPSHOTS
        if not sdir.is_dir():
            return []
        return sorted((int(m.group(1)) * 1000, p) for p in sdir.iterdir() if (m := SNAPSHOT_RE.match(p.name)))

    def load_checkpoint(self, map_location: Any = "cpu") -> dict:
        """The training checkpoint; ValueError naming the file when there is none or it is unusable."""
        from gan import checkpoint as ckpt_io

        return ckpt_io.load(self.file(CHECKPOINT), map_location=map_location, kinds=(ckpt_io.KIND_TRAIN,))

    def save_generator(self, train_ckpt: dict) -> Path:
        """Export G_ema of a training checkpoint dict as ``generator.pt``."""
        from gan.checkpoint import export_generator

        return export_generator(train_ckpt, self.file(GENERATOR))

    def previous(self) -> RunDir | None:
        """The shipped version this model replaced (``previous/``), if kept."""
        prev = RunDir(self.path / "previous")
        return prev if prev.is_run() else None

    @property
    def best_generator_path(self) -> Path | None:
        return self._existing(GENERATOR_BEST)

    @property
    def discriminator_path(self) -> Path | None:
        return self._existing(DISCRIMINATOR)

    # -- fingerprints ----------------------------------------------------------------------

    def fingerprint(self, split: str = "train") -> Path | None:
        """``fingerprint.npz`` (split "train") or ``fingerprint-val.npz`` ("validation") if present
        (a link to a shared file counts)."""
        if split not in FINGERPRINTS:
            raise ValueError(f"unknown fingerprint split {split!r}; known: {', '.join(FINGERPRINTS)}")
        return self._existing(FINGERPRINTS[split])

    def link_fingerprint(self, target: str | os.PathLike, split: str = "train") -> Path:
        """Point this folder's fingerprint for ``split`` at a shared file (a relative symlink)."""
        link = self.file(FINGERPRINTS[split])
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(Path(target).resolve(), link.parent.resolve()), link)
        return link

    # -- results.json ----------------------------------------------------------------------

    def read_results(self) -> dict | None:
        """This model's ``results.json`` (``{"results": {reference: result}, ...}``), or None."""
        return _read_json(self.path / RESULTS)

    def write_results(self, results: dict[str, dict], meta: dict, owns: tuple[str, ...] = ()) -> Path:
        """Write this model's scores per reference set and the settings they were scored with
        (``eval.run``), keeping the sections other tools set (:meth:`update_results`) as they were.

        Args:
            results: ``{reference: result}``.
            meta: the writer's settings, written after the format and version.
            owns: the writer's own keys besides ``meta``'s: an earlier write's that this one drops when
                ``meta`` no longer holds them (every other key of the file is kept, in its order).
        """
        p = self.path / RESULTS
        old = self.read_results() or {}
        replaced = {*RESULTS_ENVELOPE, *meta, *owns}
        kept = {k: v for k, v in old.items() if k not in replaced}
        doc = {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, **meta, "model": self.name, "results": results,
               **kept}
        atomic_write_text(p, json.dumps(doc, indent=1) + "\n")
        return p

    def update_results(self, section: str, value: Any) -> Path:
        """Set one section of ``results.json`` (a top-level key that the calling module computes, e.g.
        ``"utility"``), keeping the rest; ``None`` removes it.

        Raises:
            KeyError: ``section`` is part of the envelope or the scores (:data:`RESULTS_ENVELOPE`), which
                only :meth:`write_results` writes, or not a lower-case name.
        """
        if section in RESULTS_ENVELOPE or not re.fullmatch(r"[a-z][a-z0-9_]*", str(section)):
            raise KeyError(f"{section!r} is not a results.json section (a lower-case name other than "
                           f"{', '.join(RESULTS_ENVELOPE)})")
        p = self.path / RESULTS
        doc = self.read_results() or {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, "model": self.name,
                                      "results": {}}
        if value is None:
            doc.pop(section, None)
        else:
            doc[section] = value
        atomic_write_text(p, json.dumps(doc, indent=1) + "\n")
        return p

    # -- MODEL_CARD.md ---------------------------------------------------------------------

    @property
    def model_card_path(self) -> Path | None:
        return self._existing(MODEL_CARD)

    def read_model_card(self) -> str | None:
        p = self.model_card_path
        return p.read_text(encoding="utf-8") if p is not None else None

    def write_model_card(self, text: str) -> Path:
        p = self.path / MODEL_CARD
        atomic_write_text(p, text)
        return p

    # -- what the folder holds -------------------------------------------------------------

    def is_run(self) -> bool:
        """Whether the folder holds a model: weights or stats, or a config that a live writer is
        training from (a config alone, with no writer, is a start that never came to anything)."""
        if not self.path.is_dir():
            return False
        if any((self.path / n).is_file() for n in (*WEIGHT_FILES, STATS)):
            return True
        return (self.path / LEGACY_CONFIG).is_file() or ((self.path / CONFIG).is_file() and self.writer_alive())

    def stamp(self) -> tuple[float, int]:
        """(newest modification time, file count) over what a live view shows: stats, weights, grids,
        config. Changes whenever a training run writes something."""
        files = [self.stats_path, self.weights(), self.config_path, *(p for _, p in self.list_grids())]
        newest, count = 0.0, 0
        for p in files:
            if p is None:
                continue
            try:
                newest = max(newest, p.stat().st_mtime)
                count += 1
            except OSError:
                pass
        return newest, count


def _drop_if_bare(lock: FolderLock) -> None:
    """Remove a run folder this process made when it holds nothing but its config (and an empty grids
    folder): the run ended before it logged a line or saved a checkpoint. Called while still locked."""
    path, grids = lock.folder, lock.folder / GRIDS
    try:
        names = {p.name for p in path.iterdir()} - {LOCK_NAME}
        if not names <= {CONFIG, GRIDS} or (grids.exists() and (not grids.is_dir() or any(grids.iterdir()))):
            return
        (path / CONFIG).unlink(missing_ok=True)
        if grids.is_dir():
            grids.rmdir()
    except OSError:
        return
    lock.remove_folder = True


# -- finding run folders and weights -------------------------------------------------------


def discover(folder: str | os.PathLike) -> list[RunDir]:
    """The run folders in ``folder``: the folder itself when it is one, else its subfolders that are,
    sorted by name; [] when it is missing or holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    if RunDir(folder).is_run():
        return [RunDir(folder)]
    return [RunDir(p) for p in sorted(folder.iterdir()) if p.is_dir() and RunDir(p).is_run()]


def find_weights(path: str | os.PathLike) -> Path:
    """A generator or checkpoint file given as itself or as the run folder holding it.

    Raises:
        ValueError: naming the path, when it does not exist or the folder holds no weights.
    """
    path = Path(path)
    if path.is_dir():
        w = RunDir(path).weights()
        if w is None:
            raise ValueError(f"{path}: folder holds no {' or '.join(WEIGHT_FILES)}")
        return w
    if not path.exists():
        raise ValueError(f"{path}: no such file or folder")
    return path


def snapshot_of(path: str | os.PathLike) -> dict:
    """Which snapshot a weights file holds, for the scores taken from it: ``{"file": name, "sha256": hex,
    "nimg": images seen}`` (``nimg`` from the file's info block, else a training checkpoint's own).

    Raises:
        ValueError: naming the file, when it is not a readable LesionGAN checkpoint.
    """
    from gan import checkpoint as ckpt_io

    path = Path(path)
    digest = sha256_file(path) if path.is_file() else None
    ckpt = ckpt_io.load(path)
    nimg = ckpt["info"].get("nimg", ckpt.get("nimg"))
    return {"file": path.name, "sha256": digest, "nimg": int(nimg) if isinstance(nimg, (int, float)) else None}


def is_weights_source(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a run folder with weights (as opposed to, say, a folder of images)."""
    path = Path(path)
    return path.is_dir() and RunDir(path).weights() is not None


# -- a folder of run folders: the collection's results -----------------------------------------


def read_collection_results(root: str | os.PathLike) -> dict | None:
    """``ROOT/results.json`` as ``eval.run`` wrote it (``{"rows": [...], ...}``), or None.

    Raises:
        ValueError: naming the file, when it is not in that format.
    """
    p = Path(root) / RESULTS
    doc = _read_json(p)
    if doc is None:
        return None
    if not isinstance(doc.get("rows"), list):
        raise ValueError(f"{p}: expected eval.run's format (an object with a 'rows' list)")
    return doc


def write_collection_results(root: str | os.PathLike, rows: list[dict], meta: dict, csv_text: str) -> list[Path]:
    """Write ``ROOT/results.json`` and ``ROOT/results.csv`` (atomically)."""
    root = Path(root)
    doc = {"format": RESULTS_FORMAT, "version": RESULTS_VERSION, **meta, "rows": rows}
    atomic_write_text(root / RESULTS, json.dumps(doc, indent=1) + "\n")
    atomic_write_text(root / RESULTS_CSV, csv_text)
    return [root / RESULTS, root / RESULTS_CSV]


def _read_jsonl_by_nimg(p: Path | None, key: str = "nimg") -> list[dict]:
    """JSON lines keyed by images seen (or another step field, ``key``): one row per step (the last
    written wins), in order; unparsable lines skipped (a writer may be midway through its last line)."""
    if p is None:
        return []
    rows: dict[int, dict] = {}
    with open(p, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(row, dict):
                continue
            if key == "nimg" and "nimg" not in row and isinstance(row.get("kimg"), (int, float)):
                row["nimg"] = int(round(row["kimg"] * 1000))
            if isinstance(row.get(key), (int, float)):
                rows.pop(int(row[key]), None)  # re-insert: the order follows the last write
                rows[int(row[key])] = row
    return [rows[k] for k in sorted(rows)]


def _append_jsonl(p: Path, row: dict) -> None:
    with open(p, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _truncate_jsonl(p: Path | None, nimg: int, key: str = "nimg") -> int:
    if p is None:
        return 0
    lines = p.read_text(encoding="utf-8").splitlines(keepends=True)
    keep = []
    for line in lines:
        try:
            row = json.loads(line)
            after = int(row.get(key, -1)) > nimg
        except (json.JSONDecodeError, AttributeError, TypeError, ValueError):
            after = True  # a torn last line
        if not after:
            keep.append(line if line.endswith("\n") else line + "\n")
    if len(keep) != len(lines):
        atomic_write_text(p, "".join(keep))
    return len(lines) - len(keep)


def _read_json(p: Path) -> dict | None:
    if not p.is_file():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as e:  # RecursionError: nested too deep
        raise ValueError(f"{p}: not readable JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{p}: expected a JSON object")
    return doc

