"""Cached loaders for the pages: each returns ``(value, None)`` or ``(None, message)``, so no page ever
shows a traceback for a missing or broken file. Caches are keyed by the file's modification time, so a
growing ``stats.jsonl`` or a new checkpoint is re-read."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import realdata, sampling
from dashboard.discovery import WEIGHTS_HINT, ModelEntry, file_stamp, resolve_folder
from dashboard.results import Results, load_results, results_path
from dashboard.stats import read_metrics, read_stats
from gan.rundir import FINGERPRINTS, RunDir

SPLIT_WORDS = {"train": "training-image", "validation": "validation-image"}


def trim_heap() -> None:
    """Give the heap's free pages back to the OS after a large computation (glibc's ``malloc_trim``):
    the activations of a generator or encoder pass are freed but would otherwise stay in the server's
    resident memory. A no-op where the C library has no ``malloc_trim``."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def tune_allocator() -> None:
    """Large arrays (cached images and features are unpickled afresh on every cache hit) get their own
    memory maps, returned to the OS when freed: glibc would otherwise raise its mmap threshold after the
    first large free and serve later ones from a heap that never shrinks. Once per process; a no-op
    without glibc."""
    global _TUNED
    if _TUNED:
        return
    _TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 256 * 1024)
        libc.mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024)
    except (OSError, AttributeError):
        pass


_TUNED = False

# Cache bounds (the server holds about 1.1 GB after one browser session). Generators are a few MB each; image
# and feature arrays are what grows with use, so they are bounded by count and expire after an hour idle.
TTL = 3600
MAX_GENERATORS = 8  # fp32 for every page; bf16 copies only for the Generate page's opt-in preview
MAX_IMAGE_SETS = 24


@st.cache_resource(show_spinner="Loading generator…", max_entries=MAX_GENERATORS, ttl=TTL)
def _generator(path: str, stamp: float, precision: str = sampling.EXACT) -> tuple[Any | None, str | None]:
    # Failures are cached too (per file version), so a broken file is not re-read on every rerun.
    try:
        return sampling.load_generator(path, precision), None
    except Exception as e:  # noqa: BLE001 - any load failure becomes a message on the page
        return None, f"{e}"


def generator(entry: ModelEntry, precision: str = sampling.EXACT) -> tuple[Any | None, str | None]:
    """(G, None) or (None, message) for a model; the generator is loaded once per file version.

    ``precision``: ``sampling.EXACT`` (fp32, the default: what every image and statistic on the pages
    is computed from, as ``eval.run`` does) or ``sampling.PREVIEW`` (bf16 where the CPU has it: the
    Generate page's opt-in preview)."""
    weights = entry.weights
    if weights is None:
        return None, f"{entry.name}: no {WEIGHTS_HINT} yet."
    G, err = _generator(str(weights), file_stamp(weights), precision)
    if G is None:
        return None, f"{entry.name}: could not load `{weights.name}`: {err}"
    return G, None


@st.cache_data(show_spinner=False, max_entries=32, ttl=TTL)
def _stats(folder: str, stamp: float) -> pd.DataFrame:
    return read_stats(RunDir(folder))


@st.cache_data(show_spinner=False, max_entries=32, ttl=TTL)
def _metrics(folder: str, stamp: float) -> pd.DataFrame:
    return read_metrics(RunDir(folder))


def training_metrics(entry: ModelEntry) -> pd.DataFrame | None:
    """The metrics scored during training (``metrics.jsonl``) as a DataFrame, None when absent or empty."""
    path = entry.run.metrics_path
    if path is None:
        return None
    try:
        df = _metrics(str(entry.path), file_stamp(path))
    except (OSError, ValueError):
        return None
    return df if not df.empty and "nimg" in df else None


def stats(entry: ModelEntry) -> pd.DataFrame | None:
    """The model's training statistics as a DataFrame, None when absent, empty or unreadable."""
    if entry.stats is None:
        return None
    try:
        df = _stats(str(entry.path), file_stamp(entry.stats))
    except (OSError, ValueError):
        return None
    return df if not df.empty and "nimg" in df else None


def previous(entry: ModelEntry) -> tuple[dict, pd.DataFrame | None, dict | None] | None:
    """The shipped version this model replaced (``previous/``, :meth:`gan.rundir.RunDir.previous`):
    (its config dict, its stats, its training-split scores), or None when the folder keeps none."""
    prev = entry.run.previous()
    if prev is None or prev.config_path is None:
        return None
    try:
        cfg = _config(str(prev.path), file_stamp(prev.config_path))
        df = _stats(str(prev.path), file_stamp(prev.stats_path)) if prev.stats_path is not None else None
        row = ((prev.read_results() or {}).get("results") or {}).get("train")
    except (OSError, ValueError):
        return None
    return cfg, (df if df is not None and not df.empty and "nimg" in df else None), row


@st.cache_data(show_spinner=False, max_entries=32, ttl=TTL)
def _config(folder: str, stamp: float) -> dict | None:
    return ModelEntry(RunDir(folder)).read_config()


def config(entry: ModelEntry) -> tuple[dict | None, str | None]:
    """(the resolved run config as a dict, None), (None, None) without a config file, or (None, message)."""
    path = entry.config
    if path is None:
        return None, None
    try:
        return _config(str(entry.path), file_stamp(path)), None
    except ValueError as e:
        return None, f"{entry.name}: could not read its run config: {e}"


@st.cache_data(show_spinner=False, max_entries=8, ttl=TTL)
def _results(folder: str, stamp: float) -> Results | None:
    return load_results(folder)


def results(folder: Path) -> tuple[Results | None, str | None]:
    """(what eval.run wrote or None, error message or None) for the folder's results (a generator file's:
    its folder's)."""
    folder = Path(folder)
    if folder.is_file():
        folder = folder.parent
    try:
        return _results(str(folder), file_stamp(results_path(folder))), None
    except ValueError as e:
        return None, str(e)


@st.cache_data(show_spinner="Reading fingerprint…", max_entries=8, ttl=TTL)
def _bank(path: str, stamp: float) -> realdata.RealBank:
    return realdata.load_real_bank(path)


def real_bank(entry: ModelEntry, split: str = "train") -> tuple[realdata.RealBank | None, str | None]:
    """A split's fingerprint ("train" or "validation") as the pages use it, or a message saying why there
    is none."""
    path = entry.run.fingerprint(split)
    if path is None:
        return None, f"{entry.name}: no {FINGERPRINTS[split]}, so no {SPLIT_WORDS[split]} statistics to compare with."
    try:
        return _bank(str(path), file_stamp(path)), None
    except Exception as e:  # noqa: BLE001
        return None, f"{entry.name}: could not read `{path.name}`: {e}"


@st.cache_data(show_spinner="Loading data set…", max_entries=4, ttl=TTL)
def _dataset_sample(path: str, size: int, count: int, seed: int) -> np.ndarray:
    return realdata.load_real_images(path, size, count, seed)


def dataset_sample(path: str, size: int, count: int, seed: int = 0) -> tuple[np.ndarray | None, str | None]:
    try:
        return _dataset_sample(str(resolve_folder(path)), size, count, seed), None
    except Exception as e:  # noqa: BLE001
        return None, f"Could not read real images from `{path}`: {e}"


@st.cache_data(show_spinner=False, max_entries=MAX_IMAGE_SETS, ttl=TTL)
def _generate(path: str, stamp: float, seeds: tuple[int, ...], label: str | None,
              precision: str = sampling.EXACT) -> np.ndarray:
    images = sampling.generate_images(_generator(path, stamp, precision)[0], seeds, label)
    trim_heap()
    return images


def generate(entry: ModelEntry, seeds: Sequence[int], label: str | None = None, precision: str = sampling.EXACT
             ) -> tuple[np.ndarray | None, str | None]:
    """Images for ``seeds`` (cached, so reruns for other widgets cost nothing) or an error message;
    ``label``: the class a conditional model draws (None: each seed's own from the training mix);
    ``precision``: see :func:`generator`."""
    G, err = generator(entry, precision)
    if G is None:
        return None, err
    try:
        return _generate(str(entry.weights), file_stamp(entry.weights), tuple(int(s) for s in seeds), label,
                         precision), None
    except Exception as e:  # noqa: BLE001
        return None, f"{entry.name}: generation failed: {e}"


def derm_encoder(bank: realdata.RealBank) -> tuple[Any | None, str | None]:
    """(the dermoscopy encoder whose features the fingerprint holds, None) or (None, why there is none)."""
    try:
        return realdata.derm_encoder_for(bank), None
    except Exception as e:  # noqa: BLE001 - a missing or foreign encoder is a message on the page
        return None, str(e)


@st.cache_data(show_spinner="Encoder features of the samples…", max_entries=8, ttl=TTL)
def _derm_features(path: str, stamp: float, seeds: tuple[int, ...], label: str | None, sha256: str,
                   _encoder: Any) -> np.ndarray:
    # Keyed by the encoder's SHA-256; the encoder object itself is not hashed. fp32 samples, as eval.run.
    feats = realdata.derm_features(_generate(path, stamp, seeds, label, sampling.EXACT), _encoder)
    trim_heap()
    return feats


def derm_features(entry: ModelEntry, seeds: Sequence[int], encoder: Any, label: str | None = None
                  ) -> tuple[np.ndarray | None, str | None]:
    """The encoder features of the images for ``seeds`` (cached like :func:`generate`), or a message."""
    try:
        return _derm_features(str(entry.weights), file_stamp(entry.weights), tuple(int(s) for s in seeds), label,
                              str(encoder.sha256), encoder), None
    except Exception as e:  # noqa: BLE001
        return None, f"{entry.name}: encoder features failed: {e}"


@st.cache_data(show_spinner=False, max_entries=16, ttl=TTL)
def _sha256(path: str, stamp: float) -> str:
    return sampling.file_sha256(path)


def sha256(path: Path) -> str:
    """The SHA-256 of a generator file, computed once per file version."""
    return _sha256(str(path), file_stamp(path))
