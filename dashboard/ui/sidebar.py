"""The sidebar: which models the pages show (the shipped checkpoints, a run under any output folder, or
any folder or generator file), following a run while it trains, reloading files. The choice is kept in
the session and in the page's URL (``?folder=...&runs=...``), so a reload or a shared link keeps it."""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from dashboard.discovery import (DEFAULT_CHECKPOINTS, DEFAULT_RUNS, ENV_CHECKPOINTS, REPO_ROOT, WEIGHTS_HINT,
                                 ModelEntry, discover_models, folder_stamp, is_weights_file, list_run_folders,
                                 resolve_folder)
from gan.rundir import CONFIG, STATS

FOLDER_KEY = "lg_folder"
OTHER = "Other folder or generator file…"
FOLLOW_S = 10
RUNS_KEY, SOURCE_KEY, OTHER_KEY = "lg_runs", "lg_source", "lg_other"


def default_folder() -> Path:
    env = os.environ.get(ENV_CHECKPOINTS, "").strip()
    return resolve_folder(env) if env else DEFAULT_CHECKPOINTS


def _short(p: Path) -> str:
    try:
        return str(p.relative_to(REPO_ROOT)) + ("" if p.is_file() else "/")
    except ValueError:
        return str(p)


def _restore_from_url() -> None:
    """On a session's first run, take the folder choice from the URL's query parameters."""
    if st.session_state.get("lg_restored"):
        return
    st.session_state["lg_restored"] = True
    qp = st.query_params
    if qp.get("runs"):
        st.session_state[RUNS_KEY] = qp["runs"]
    if qp.get("folder"):
        st.session_state[SOURCE_KEY] = OTHER
        st.session_state[OTHER_KEY] = qp["folder"]


def _remember(key: str, value: str | None) -> None:
    if value:
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    elif key in st.query_params:
        del st.query_params[key]


def sidebar() -> Path:
    """Draw the folder chooser in the sidebar and remember the choice for the pages."""
    _restore_from_url()
    with st.sidebar:
        st.markdown("**Models**")
        default = default_folder()
        runs_text = st.text_input(
            "Runs folder (gan.train --out)", key=RUNS_KEY, placeholder="runs",
            help="Where your training runs are written; its run folders are offered below. Remembered for this "
                 "session and in the page address.")
        runs_dirs = [resolve_folder(runs_text)] if runs_text.strip() else [DEFAULT_RUNS, Path.cwd() / "runs"]
        _remember("runs", runs_text.strip() or None)
        runs = [r for d in runs_dirs for r in list_run_folders(d)]
        choices = {_short(default): default}
        for r in sorted(runs, key=lambda p: p.name, reverse=True):  # newest run first
            choices.setdefault(_short(r), r)
        if st.session_state.get(SOURCE_KEY) not in (*choices, OTHER):
            st.session_state.pop(SOURCE_KEY, None)
        choice = st.selectbox(
            "Checkpoints or training run",
            [*choices, OTHER],
            key=SOURCE_KEY,
            help="The shipped checkpoints/ folder (one subfolder per model), a run folder from the runs folder "
                 "above, or any folder or generator file (.pt).",
        )
        if runs_text.strip() and not runs:
            st.caption(f"No run folders in `{runs_text.strip()}` yet.")
        if choice == OTHER:
            typed = st.text_input("Folder or generator file", value=str(default), key=OTHER_KEY,
                                  help="A checkpoints folder, a run folder, or a generator file (.pt); absolute, "
                                       "or relative to the repository root.")
            folder = resolve_folder(typed)
            _remember("folder", typed.strip() or None)
        else:
            folder = choices[choice]
            _remember("folder", None)
        entries = discover_models(folder)
        if not folder.exists():
            st.warning(f"`{folder}` does not exist.")
        elif is_weights_file(folder):
            st.caption(f"Generator file `{folder.name}` in `{_short(folder.parent)}`")
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
    """The chosen folder (or generator file) and its models; explains and stops the page when there are none."""
    folder = current_folder()
    entries = discover_models(folder)
    if not entries:
        if not folder.exists():
            st.info(f"No such folder or file: `{folder}`. Pick another in the sidebar.")
        elif folder.is_file():
            st.info(f"`{folder}` is not a generator file ({WEIGHTS_HINT} or another .pt file). Pick another in "
                    "the sidebar.")
        elif not any(folder.iterdir()):
            st.info(f"No models in `{folder}` yet: it is empty. A run started by `python -m gan.train` writes its "
                    f"`{CONFIG}` first; the pages show the run as soon as it does.")
        else:
            st.info(
                f"No models in `{folder}` yet. A model is a folder holding weights ({WEIGHTS_HINT}), "
                f"`{STATS}` or a run config; train one with `python -m gan.train` or pick another folder in "
                "the sidebar."
            )
        st.stop()
    return folder, entries
