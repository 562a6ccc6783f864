"""Streamlit glue shared by the pages: the sidebar's folder choice, cached loaders, small widgets.

Compute lives in :mod:`dashboard.lib`; this module only adds caching and turns failures into messages
on the page, so no page ever shows a traceback for a missing or broken file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import lib

FOLDER_KEY = "lg_folder"
OTHER = "Other folder…"


# ---------------------------------------------------------------------------------------------
# Sidebar: which folder of models to show
# ---------------------------------------------------------------------------------------------


def default_folder() -> Path:
    env = os.environ.get(lib.ENV_CHECKPOINTS, "").strip()
    return lib.resolve_folder(env) if env else lib.DEFAULT_CHECKPOINTS


def _short(p: Path) -> str:
    try:
        return str(p.relative_to(lib.REPO_ROOT)) + "/"
    except ValueError:
        return str(p)


def sidebar() -> Path:
    """Draw the folder chooser in the sidebar and remember the choice for the pages."""
    with st.sidebar:
        st.markdown("### Models")
        default = default_folder()
        # Runs from `python -m gan.train` (default --out runs/, relative to where it was started).
        runs = lib.list_run_folders(lib.DEFAULT_RUNS) + lib.list_run_folders(Path.cwd() / "runs")
        choices = {_short(default): default}
        for r in runs:
            choices.setdefault(_short(r), r)
        choice = st.selectbox(
            "Checkpoints or training run",
            [*choices, OTHER],
            key="lg_source",
            help="The shipped checkpoints/ folder (one subfolder per model), or a run folder written by "
                 "`python -m gan.train` to watch your own training.",
        )
        if choice == OTHER:
            typed = st.text_input("Folder", value=str(default), key="lg_other",
                                  help="A checkpoints folder or a run folder; absolute, or relative to the "
                                       "repository root.")
            folder = lib.resolve_folder(typed)
        else:
            folder = choices[choice]
        entries = lib.discover_models(folder)
        if not folder.is_dir():
            st.warning(f"`{folder}` does not exist.")
        else:
            st.caption(f"{len(entries)} model{'s' if len(entries) != 1 else ''} in `{_short(folder)}`")
        if st.toggle("Follow training", key="lg_follow",
                     help=f"Check the folder every {FOLLOW_S} s and redraw when stats, grids or checkpoints "
                          "change, to watch a run while it trains."):
            _follow(str(folder))
        if st.button("Reload files", key="lg_reload", help="Re-read stats, grids and checkpoints from disk."):
            st.cache_data.clear()
            st.cache_resource.clear()
    st.session_state[FOLDER_KEY] = str(folder)
    return folder


FOLLOW_S = 10


@st.fragment(run_every=FOLLOW_S)
def _follow(folder: str) -> None:
    # Runs on its own every FOLLOW_S seconds; reruns the whole page only when a file changed.
    stamp = lib.folder_stamp(folder)
    last = st.session_state.get("lg_follow_stamp")
    st.session_state["lg_follow_stamp"] = stamp
    if last is not None and last != stamp:
        st.rerun(scope="app")


def current_folder() -> Path:
    return Path(st.session_state.get(FOLDER_KEY) or default_folder())


def models_or_stop() -> tuple[Path, list[lib.ModelEntry]]:
    """The chosen folder and its models; explains and stops the page when there are none."""
    folder = current_folder()
    entries = lib.discover_models(folder)
    if not entries:
        if not folder.is_dir():
            st.info(f"No such folder: `{folder}`. Pick another in the sidebar.")
        else:
            st.info(
                f"No models in `{folder}` yet. A model is a folder holding `generator.pt`, `checkpoint.pt` "
                "or `stats.jsonl`; train one with `python -m gan.train` or pick another folder in the sidebar."
            )
        st.stop()
    return folder, entries


def pick_model(entries: Sequence[lib.ModelEntry], key: str, label: str = "Model",
               need_weights: bool = False) -> lib.ModelEntry | None:
    """A model selectbox; with ``need_weights`` only models with a loadable file are offered."""
    choices = [e for e in entries if e.weights is not None] if need_weights else list(entries)
    if not choices:
        st.info("None of these models has weights yet (generator.pt or checkpoint.pt).")
        return None
    names = [e.name for e in choices]
    # Open on the first model that loads, so a broken file does not greet the user.
    index = next((i for i, e in enumerate(choices) if generator(e)[0] is not None), 0) if need_weights else 0
    name = st.selectbox(label, names, index=index, key=key)
    return choices[names.index(name)]


# ---------------------------------------------------------------------------------------------
# Cached loaders
# ---------------------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading generator…", max_entries=16)
def _generator(path: str, stamp: float) -> tuple[Any | None, str | None]:
    # Failures are cached too (per file version), so a broken file is not re-read on every rerun.
    try:
        return lib.load_generator(path), None
    except Exception as e:  # noqa: BLE001 - any load failure becomes a message on the page
        return None, f"{e}"


def generator(entry: lib.ModelEntry) -> tuple[Any | None, str | None]:
    """(G, None) or (None, message) for a model; the generator is loaded once per file version."""
    if entry.weights is None:
        return None, f"{entry.name}: no generator.pt or checkpoint.pt yet."
    G, err = _generator(str(entry.weights), lib.file_stamp(entry.weights))
    if G is None:
        return None, f"{entry.name}: could not load `{entry.weights.name}`: {err}"
    return G, None


@st.cache_data(show_spinner=False, max_entries=64)
def _stats(path: str, stamp: float) -> pd.DataFrame:
    return lib.read_stats(path)


def stats(entry: lib.ModelEntry) -> pd.DataFrame | None:
    """The model's stats.jsonl as a DataFrame, None when absent, empty or unreadable."""
    if entry.stats is None:
        return None
    try:
        df = _stats(str(entry.stats), lib.file_stamp(entry.stats))
    except (OSError, ValueError):
        return None
    return df if not df.empty and "nimg" in df else None


@st.cache_data(show_spinner=False, max_entries=8)
def _results(folder: str, stamp: float) -> lib.Results | None:
    return lib.load_results(folder)


def results(folder: Path) -> tuple[lib.Results | None, str | None]:
    """(what eval.run wrote or None, error message or None) for the folder's results.json."""
    try:
        return _results(str(folder), lib.file_stamp(folder / "results.json")), None
    except ValueError as e:
        return None, str(e)


def reference_picker(results: lib.Results | None, models: Sequence[str], key: str) -> str:
    """A "scored against" choice when some model was also scored against a validation fingerprint."""
    refs = list(dict.fromkeys(r for m in models for r in (results.references(m) if results else [])))
    if len(refs) < 2:
        return refs[0] if refs else "train"
    return st.radio("Scored against", refs, horizontal=True, key=key,
                    help="train: the training split's fingerprint (as in the report); validation: the held-out "
                         "split's, where a fingerprint-val.npz was shipped.")


@st.cache_data(show_spinner="Reading fingerprint…", max_entries=16)
def _bank(path: str, stamp: float) -> lib.RealBank:
    return lib.load_real_bank(path)


def real_bank(entry: lib.ModelEntry) -> tuple[lib.RealBank | None, str | None]:
    if entry.fingerprint is None:
        return None, f"{entry.name}: no fingerprint.npz, so no real-image statistics to compare with."
    try:
        return _bank(str(entry.fingerprint), lib.file_stamp(entry.fingerprint)), None
    except Exception as e:  # noqa: BLE001
        return None, f"{entry.name}: could not read `fingerprint.npz`: {e}"


@st.cache_data(show_spinner="Loading data set…", max_entries=8)
def _dataset_sample(path: str, size: int, count: int, seed: int) -> np.ndarray:
    return lib.load_real_images(path, size, count, seed)


def dataset_sample(path: str, size: int, count: int, seed: int = 0) -> tuple[np.ndarray | None, str | None]:
    try:
        return _dataset_sample(str(lib.resolve_folder(path)), size, count, seed), None
    except Exception as e:  # noqa: BLE001
        return None, f"Could not read real images from `{path}`: {e}"


@st.cache_data(show_spinner=False, max_entries=64)
def _generate(path: str, stamp: float, seeds: tuple[int, ...], class_index: int | None) -> np.ndarray:
    return lib.generate_images(_generator(path, stamp)[0], seeds, class_index)


def generate(entry: lib.ModelEntry, seeds: Sequence[int], class_index: int | None = None
             ) -> tuple[np.ndarray | None, str | None]:
    """Images for ``seeds`` (cached, so reruns for other widgets cost nothing) or an error message."""
    G, err = generator(entry)
    if G is None:
        return None, err
    try:
        return _generate(str(entry.weights), lib.file_stamp(entry.weights), tuple(int(s) for s in seeds),
                         class_index), None
    except Exception as e:  # noqa: BLE001
        return None, f"{entry.name}: generation failed: {e}"


# ---------------------------------------------------------------------------------------------
# Small drawing helpers
# ---------------------------------------------------------------------------------------------


def style() -> None:
    """Page-wide CSS: samples are sent at their own size and scaled up by the browser without blur
    (encoding 64 native 64 px PNGs is ~6x cheaper than encoding upscaled copies)."""
    st.html("<style>[data-testid='stImage'] img, [data-testid='stFullScreenFrame'] img "
            "{image-rendering: pixelated;}</style>")


def image_row(images: np.ndarray, captions: Sequence[str] | None = None, width: int = 96) -> None:
    """A wrapping row of small images shown ``width`` px wide."""
    # PNG, not Streamlit's default JPEG for arrays: compression artefacts would pass for GAN artefacts.
    st.image(list(images), caption=list(captions) if captions else None, width=width, output_format="PNG")


def plot(fig: Any, key: str | None = None) -> None:
    st.plotly_chart(fig, key=key, config={"displaylogo": False})
