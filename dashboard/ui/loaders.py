"""Cached loaders for the pages: each returns ``(value, None)`` or ``(None, message)``, so no page ever
shows a traceback for a missing or broken file. Caches are keyed by the file's modification time, so a
growing ``stats.jsonl`` or a new checkpoint is re-read."""
from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import realdata, sampling
from dashboard.discovery import WEIGHTS_HINT, ModelEntry, file_stamp
from dashboard.formatting import plain_message
from dashboard.roots import OutsideRoots
from dashboard.results import Results, load_results, results_path
from dashboard.stats import read_metrics, read_stats
from gan.rundir import FINGERPRINTS, RunDir

SPLIT_WORDS = {"train": "training-image", "validation": "validation-image"}
LOG = logging.getLogger("lesiongan.dashboard")


def say(text: str) -> str:
    """A message for the page without the server's paths (:func:`dashboard.formatting.plain_message`,
    paths shown as the sidebar shows them)."""
    from dashboard.ui.sidebar import display

    return plain_message(text, display)


def _failed(what: str, e: BaseException) -> str:
    """Log a failure with its traceback on the server; the page gets one line without paths."""
    LOG.warning("%s: %s", what, e, exc_info=e)
    return say(f"{what}: {e}")


# One heavy job (many images, encoder features, a data set) at a time per server: two visitors' jobs
# would each take twice as long on the same cores, and need the memory of both at once. The cached
# functions take the slot when they compute (a cache hit needs none); re-entrant, as one calls another.
_HEAVY = threading.RLock()
_COUNT = threading.Lock()
_BUSY = [0]  # jobs computing now (0 or 1) plus those waiting


def _busy(delta: int) -> None:
    with _COUNT:
        _BUSY[0] += delta


@contextmanager
def _slot() -> Iterator[None]:
    _busy(+1)
    try:
        with _HEAVY:
            yield
    finally:
        _busy(-1)


def queued_note(what: str) -> str | None:
    """The line a visitor sees while another visitor's heavy job holds the server's slot, None when none does."""
    if not _BUSY[0]:
        return None
    return f"Queued: another visitor's job is running on this server; {what[0].lower() + what[1:]} starts when it ends."


@contextmanager
def heavy_job(what: str) -> Iterator[None]:
    """A spinner over a step that can take seconds; when another visitor's job holds the server's slot,
    a line says this one is queued (:func:`queued_note`)."""
    note = st.empty()
    queued = queued_note(what)
    if queued:
        note.info(queued, icon=":material/hourglass_top:")
    try:
        with st.spinner(f"{what}…"):
            yield
    finally:
        note.empty()


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
MAX_GENERATORS = 8  # fp32 for every page; a preview copy (bf16 where measured faster) for the Generate page
MAX_IMAGE_SETS = 24


@st.cache_resource(show_spinner="Loading generator…", max_entries=MAX_GENERATORS, ttl=TTL)
def _generator(path: str, stamp: float, precision: str = sampling.EXACT) -> tuple[Any | None, str | None]:
    # Failures are cached too (per file version), so a broken file is not re-read on every rerun.
    try:
        return sampling.load_generator(path, precision), None
    except Exception as e:  # noqa: BLE001 - any load failure becomes a message on the page
        LOG.warning("could not load %s: %s", path, e, exc_info=e)
        return None, f"{e}"


def generator(entry: ModelEntry, precision: str = sampling.EXACT) -> tuple[Any | None, str | None]:
    """(G, None) or (None, message) for a model; the generator is loaded once per file version.

    ``precision``: ``sampling.EXACT`` (fp32, the default: what every image and statistic on the pages
    is computed from, as ``eval.run`` does) or ``sampling.PREVIEW`` (the Generate page's opt-in preview:
    ``gan.precision`` measures this model in bf16 and fp32 on this CPU once and keeps bf16 only where it
    is native and measured faster; on a CPU without native bf16 it is slower, and fp32 is kept.
    ``G.precision`` says what was chosen, ``G.precision_reason`` why)."""
    weights = entry.weights
    if weights is None:
        return None, f"{entry.name}: no {WEIGHTS_HINT} yet."
    G, err = _generator(str(weights), file_stamp(weights), precision)
    if G is None:
        return None, say(f"{entry.name}: could not load `{weights.name}`: {err}")
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


def previous(entry: ModelEntry):
    """The shipped version this model replaced (``previous/``, :meth:`gan.rundir.RunDir.previous`) as a
    :class:`dashboard.comparison.Previous` (config, stats, training-split row, best snapshot), or None
    when the folder keeps none."""
    from dashboard.comparison import Previous
    from dashboard.results import stored_rows
    from gan.rundir import RESULTS

    prev = entry.run.previous()
    if prev is None or prev.config_path is None:
        return None
    try:
        cfg = _config(str(prev.path), file_stamp(prev.config_path))
        df = _stats(str(prev.path), file_stamp(prev.stats_path)) if prev.stats_path is not None else None
        doc = _run_results(str(prev.path), file_stamp(prev.path / RESULTS)) or {}
    except (OSError, ValueError):
        return None
    return Previous(cfg, df if df is not None and not df.empty and "nimg" in df else None,
                    stored_rows(doc, prev.name).get("train"), doc.get("best_snapshot"))


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
        return None, say(f"{entry.name}: could not read its run config: {e}")


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
        return None, say(str(e))


@st.cache_data(show_spinner=False, max_entries=16, ttl=TTL)
def _run_results(folder: str, stamp: float) -> dict | None:
    from gan.rundir import RunDir

    return RunDir(folder).read_results()


def run_results(entry: ModelEntry) -> dict:
    """The model's own ``results.json`` (eval.run's scores and the sections other tools add: utility,
    privacy, best_snapshot), {} when it has none or it cannot be read."""
    from gan.rundir import RESULTS

    try:
        return _run_results(str(entry.path), file_stamp(entry.path / RESULTS)) or {}
    except (OSError, ValueError) as e:
        LOG.warning("%s: %s", entry.name, e)
        return {}


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
        return None, _failed(f"{entry.name}: could not read `{path.name}`", e)


@st.cache_data(show_spinner=False, max_entries=4, ttl=TTL)
def _dataset_sample(path: str, size: int, count: int, seed: int) -> np.ndarray:
    with _slot():
        return realdata.load_real_images(path, size, count, seed)


def data_folder(path: str) -> tuple[Path | None, str]:
    """(the data set folder a visitor typed, as the pages show it) when it lies below the folders this
    server shares, else (None, one line saying it does not)."""
    from dashboard.ui.sidebar import display, server_roots

    try:
        folder = server_roots().resolve(path)
    except OutsideRoots as e:
        return None, f"Data set path: {e}"
    return folder, display(folder)


def dataset_sample(path: str, size: int, count: int, seed: int = 0) -> tuple[np.ndarray | None, str | None]:
    """``count`` images from a data set folder below the folders this server shares, or one line why not."""
    folder, shown = data_folder(path)
    if folder is None:
        return None, shown
    try:
        with heavy_job("Reading the data set"):
            return _dataset_sample(str(folder), size, count, seed), None
    except Exception as e:  # noqa: BLE001
        return None, _failed(f"Could not read real images from `{shown}`", e)


@st.cache_data(show_spinner=False, max_entries=MAX_IMAGE_SETS, ttl=TTL)
def _generate(path: str, stamp: float, seeds: tuple[int, ...], label: str | None,
              precision: str = sampling.EXACT) -> np.ndarray:
    with _slot():
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
    seeds = tuple(int(s) for s in seeds)
    try:
        with heavy_job(f"Generating {len(seeds)} image{'s' if len(seeds) != 1 else ''} with {entry.name}"):
            return _generate(str(entry.weights), file_stamp(entry.weights), seeds, label, precision), None
    except Exception as e:  # noqa: BLE001
        return None, _failed(f"{entry.name}: generation failed", e)


def derm_encoder(bank: realdata.RealBank) -> tuple[Any | None, str | None]:
    """(the dermoscopy encoder whose features the fingerprint holds, None) or (None, why there is none)."""
    try:
        return realdata.derm_encoder_for(bank), None
    except Exception as e:  # noqa: BLE001 - a missing or foreign encoder is a message on the page
        return None, say(str(e))


@st.cache_data(show_spinner=False, max_entries=8, ttl=TTL)
def _derm_features(path: str, stamp: float, seeds: tuple[int, ...], label: str | None, sha256: str,
                   _encoder: Any) -> np.ndarray:
    # Keyed by the encoder's SHA-256; the encoder object itself is not hashed. fp32 samples, as eval.run.
    with _slot():
        feats = realdata.derm_features(_generate(path, stamp, seeds, label, sampling.EXACT), _encoder)
    trim_heap()
    return feats


def derm_features(entry: ModelEntry, seeds: Sequence[int], encoder: Any, label: str | None = None
                  ) -> tuple[np.ndarray | None, str | None]:
    """The encoder features of the images for ``seeds`` (cached like :func:`generate`), or a message."""
    seeds = tuple(int(s) for s in seeds)
    try:
        with heavy_job(f"Encoder features of {len(seeds)} samples"):
            return _derm_features(str(entry.weights), file_stamp(entry.weights), seeds, label, str(encoder.sha256),
                                  encoder), None
    except Exception as e:  # noqa: BLE001
        return None, _failed(f"{entry.name}: encoder features failed", e)


@st.cache_data(show_spinner=False, max_entries=16, ttl=TTL)
def _sha256(path: str, stamp: float) -> str:
    return sampling.file_sha256(path)


def sha256(path: Path) -> str:
    """The SHA-256 of a generator file, computed once per file version."""
    return _sha256(str(path), file_stamp(path))


@st.cache_data(show_spinner=False, max_entries=8, ttl=TTL)
def _audit_samples(path: str, stamp: float, seed: int, picks: tuple[int, ...]) -> np.ndarray:
    import torch

    with _slot():
        G = _generator(path, stamp)[0]
        end = max(picks) + 1
        idx = list(picks)
        # Latent j (and class j) of the audit's draw G.generate(n, seed): the first end rows are the same
        # whatever n, so only they are drawn.
        z = G.latents(end, seed)[idx]
        y = G.labels_for(end, None, seed)[idx] if G.class_names else None
        with torch.inference_mode():
            return G.synthesize(z, labels=y) if y is not None else G.synthesize(z)


def audit_samples(entry: ModelEntry, n: int, seed: int, picks: Sequence[int]) -> tuple[np.ndarray | None, str | None]:
    """Samples ``picks`` of the membership audit's ``n`` samples of ``seed``, remade in one small batch
    (within a grey level of the audit's own: the CPU kernels round a little differently per batch size),
    or a message. Seconds, where remaking each sample's whole batch of the audit took a minute."""
    G, err = generator(entry)
    if G is None:
        return None, err
    picks = tuple(int(p) for p in picks)
    if not picks or max(picks) >= max(n, 1):
        return None, f"{entry.name}: the audit's samples do not match its stored pairs; rerun python -m eval.privacy."
    try:
        with heavy_job(f"Remaking the {len(picks)} closest synthetic samples"):
            return _audit_samples(str(entry.weights), file_stamp(entry.weights), int(seed), picks), None
    except Exception as e:  # noqa: BLE001
        return None, _failed(f"{entry.name}: remaking the audit's samples failed", e)
