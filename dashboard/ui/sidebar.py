"""The sidebar: which folder of models the pages show, following a run while it trains, reloading files."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from dashboard.discovery import (DEFAULT_CHECKPOINTS, DEFAULT_RUNS, ENV_CHECKPOINTS, REPO_ROOT, WEIGHTS_HINT,
                                 ModelEntry, discover_models, folder_stamp, list_run_folders, resolve_folder)
from gan.rundir import STATS

FOLDER_KEY = "lg_folder"
OTHER = "Other folder…"
FOLLOW_S = 10


def default_folder() -> Path:
    env = os.environ.get(ENV_CHECKPOINTS, "").strip()
    return resolve_folder(env) if env else DEFAULT_CHECKPOINTS


def _short(p: Path) -> str:
    try:
        return str(p.relative_to(REPO_ROOT)) + "/"
    except ValueError:
        return str(p)


def sidebar() -> Path:
    """Draw the folder chooser in the sidebar and remember the choice for the pages."""
    with st.sidebar:
        st.markdown("### Models")
        default = default_folder()
        # Runs from `python -m gan.train` (default --out runs/, relative to where it was started).
        runs = list_run_folders(DEFAULT_RUNS) + list_run_folders(Path.cwd() / "runs")
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
            folder = resolve_folder(typed)
        else:
            folder = choices[choice]
        entries = discover_models(folder)
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


@st.fragment(run_every=FOLLOW_S)
def _follow(folder: str) -> None:
    # Runs on its own every FOLLOW_S seconds; reruns the whole page only when a file changed.
    stamp = folder_stamp(folder)
    last = st.session_state.get("lg_follow_stamp")
    st.session_state["lg_follow_stamp"] = stamp
    if last is not None and last != stamp:
        st.rerun(scope="app")


def current_folder() -> Path:
    return Path(st.session_state.get(FOLDER_KEY) or default_folder())


def models_or_stop() -> tuple[Path, list[ModelEntry]]:
    """The chosen folder and its models; explains and stops the page when there are none."""
    folder = current_folder()
    entries = discover_models(folder)
    if not entries:
        if not folder.is_dir():
            st.info(f"No such folder: `{folder}`. Pick another in the sidebar.")
        else:
            st.info(
                f"No models in `{folder}` yet. A model is a folder holding weights ({WEIGHTS_HINT}), "
                f"`{STATS}` or a run config; train one with `python -m gan.train` or pick another folder in "
                "the sidebar."
            )
        st.stop()
    return folder, entries
