"""The sidebar: which models the pages show (a checkpoints folder, a run in a runs folder, or another
folder or generator file), all below the folders this server shares (:mod:`dashboard.roots`), and
following runs while they train. The choice is kept in the session and in the page's URL
(``?folder=...&runs=...``, as the pages show the paths), so a reload or a shared link keeps it."""
from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import streamlit as st

from dashboard import roots as R
from dashboard.discovery import WEIGHTS_HINT, ModelEntry, discover_models, folder_stamp, is_weights_file, \
    list_run_folders
from gan.rundir import CONFIG, STATS

FOLDER_KEY = "lg_folder"
OTHER = "Other folder or generator file…"
FOLLOW_S = 10
RUNS_KEY, SOURCE_KEY, OTHER_KEY, URL_FOLDER_KEY = "lg_runs", "lg_source", "lg_other", "lg_url_folder"


ROOT_ENV = (R.ENV_CHECKPOINTS, R.ENV_ROOTS, "LESIONGAN_HOME", "XDG_CACHE_HOME")  # what the roots depend on


@functools.lru_cache(maxsize=8)
def _configured(argv: tuple[str, ...], env: tuple[str, ...], cwd: str) -> R.Roots:
    return R.configured(argv, None, cwd)  # env: the cache key; configured reads os.environ itself


def server_roots() -> R.Roots:
    """This server's shared folders: its command line (``streamlit run dashboard/app.py -- --runs DIR``),
    environment and ``.streamlit/lesiongan.toml``."""
    argv = tuple(sys.argv[1:]) if Path(sys.argv[0]).name == "app.py" else ()
    return _configured(argv, tuple(os.environ.get(k, "") for k in ROOT_ENV), os.getcwd())


def default_folder() -> Path:
    return server_roots().checkpoints[0]


def display(path: str | os.PathLike) -> str:
    """A path as the pages show it: from its shared folder's name down, never the server's absolute path."""
    return server_roots().display(path)


def _restore_from_url() -> None:
    """On a session's first run, take the folder choice from the URL's query parameters."""
    if st.session_state.get("lg_restored"):
        return
    st.session_state["lg_restored"] = True
    qp = st.query_params
    if qp.get("runs"):
        st.session_state[RUNS_KEY] = qp["runs"][:R.MAX_CHARS]
    if qp.get("folder"):
        st.session_state[URL_FOLDER_KEY] = qp["folder"]


def _remember(key: str, value: str | None) -> None:
    if value:
        if st.query_params.get(key) != value:
            st.query_params[key] = value
    elif key in st.query_params:
        del st.query_params[key]


def _choose_from_url(roots: R.Roots, choices: dict[str, Path]) -> None:
    """The model folder the URL named: its entry in the list when it has one, else typed under "Other"."""
    text = st.session_state.pop(URL_FOLDER_KEY, None)
    if text is None:
        return
    try:
        path = roots.resolve(text)
    except R.OutsideRoots:
        path = None
    label = next((k for k, v in choices.items() if v == path), None)
    if label is not None:
        st.session_state[SOURCE_KEY] = label
    else:
        st.session_state[SOURCE_KEY] = OTHER
        st.session_state[OTHER_KEY] = text[:R.MAX_CHARS]


def sidebar() -> str | None:
    """Draw the folder chooser in the sidebar and remember the choice for the pages; returns one line
    for the page when the address or a field named a path outside the shared folders (the default
    folder is shown instead), else None."""
    roots = server_roots()
    _restore_from_url()
    notice = None
    with st.sidebar:
        st.markdown("**Models**")
        default = roots.checkpoints[0]
        runs_text = st.text_input(
            "Runs folder", key=RUNS_KEY, placeholder="runs", max_chars=R.MAX_CHARS,
            help="A folder that receives training runs (python -m gan.train --out); its run folders are offered "
                 "below. Only the folders this server shares can be read. Remembered in the page address.")
        runs_dirs = list(roots.runs)
        if runs_text.strip():
            try:
                runs_dirs = [roots.resolve(runs_text)]
            except R.OutsideRoots as e:
                notice = f"Runs folder: {e}"
        _remember("runs", runs_text.strip() or None)
        runs = [r for d in runs_dirs for r in list_run_folders(d)]
        choices = {roots.display(c): c for c in dict.fromkeys([default, *(c for c in roots.checkpoints if c.is_dir())])}
        for r in sorted(runs, key=lambda p: p.name, reverse=True):  # newest run first
            choices.setdefault(roots.display(r), r)
        _choose_from_url(roots, choices)
        if st.session_state.get(SOURCE_KEY) not in (*choices, OTHER):
            st.session_state.pop(SOURCE_KEY, None)
        choice = st.selectbox(
            "Checkpoints or training run", [*choices, OTHER], key=SOURCE_KEY,
            help="A checkpoints folder (one subfolder per model), a run folder from the runs folder above, or "
                 "another folder or generator file (.pt) below the folders this server shares.")
        if runs_text.strip() and not runs and notice is None:
            st.caption("No run folders there yet.")
        folder = choices.get(choice, default)
        if choice == OTHER:
            st.session_state.setdefault(OTHER_KEY, roots.display(default))
            typed = st.text_input("Folder or generator file", key=OTHER_KEY, max_chars=R.MAX_CHARS,
                                  help="A checkpoints folder, a run folder or a generator file (.pt), as the pages "
                                       "show paths (checkpoints/dcgan) or absolute; only below the folders this "
                                       "server shares.")
            try:
                folder = roots.resolve(typed)
            except R.OutsideRoots as e:
                notice, folder = f"Folder: {e}", default
            _remember("folder", typed.strip() or None)
        else:
            _remember("folder", None if folder == default else roots.display(folder))
        entries = discover_models(folder)
        if not folder.exists():
            st.warning(f"`{roots.display(folder)}` does not exist.")
        elif is_weights_file(folder):
            st.caption(f"Generator file `{folder.name}` in `{roots.display(folder.parent)}`")
        else:
            st.caption(f"{len(entries)} model{'s' if len(entries) != 1 else ''} in `{roots.display(folder)}`")
        if st.toggle("Follow training", key="lg_follow",
                     help=f"Check every {FOLLOW_S} s and redraw when a run writes stats, grids or checkpoints, "
                          "or a new run appears: to watch runs while they train."):
            _follow(str(folder), tuple(str(d) for d in runs_dirs))
    st.session_state[FOLDER_KEY] = str(folder)
    return notice


def following() -> bool:
    """Whether the visitor follows training (the pages then refresh what ages, such as run status)."""
    return bool(st.session_state.get("lg_follow"))


@st.fragment(run_every=FOLLOW_S)
def _follow(folder: str, runs_dirs: tuple[str, ...]) -> None:
    # Runs on its own every FOLLOW_S seconds; reruns the whole page only when a file changed or a run
    # folder appeared.
    stamp = (folder_stamp(folder), tuple(str(r) for d in runs_dirs for r in list_run_folders(d)))
    last = st.session_state.get("lg_follow_stamp")
    st.session_state["lg_follow_stamp"] = stamp
    if last is not None and last != stamp:
        st.rerun(scope="app")


def current_folder() -> Path:
    return Path(st.session_state.get(FOLDER_KEY) or default_folder())


def models_or_stop() -> tuple[Path, list[ModelEntry]]:
    """The chosen folder (or generator file) and its models; explains and stops the page when there are none."""
    folder = current_folder()
    shown = display(folder)
    entries = discover_models(folder)
    if not entries:
        if not folder.exists():
            st.info(f"No such folder or file: `{shown}`. Pick another in the sidebar.")
        elif folder.is_file():
            st.info(f"`{shown}` is not a generator file ({WEIGHTS_HINT} or another .pt file). Pick another in "
                    "the sidebar.")
        elif not any(folder.iterdir()):
            st.info(f"No models in `{shown}` yet: it is empty. A run started by `python -m gan.train` writes its "
                    f"`{CONFIG}` first; the pages show the run as soon as it does.")
        else:
            st.info(
                f"No models in `{shown}` yet. A model is a folder holding weights ({WEIGHTS_HINT}), "
                f"`{STATS}` or a run config; train one with `python -m gan.train` or pick another folder in "
                "the sidebar."
            )
        st.stop()
    return folder, entries
