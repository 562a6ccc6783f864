"""The folders a dashboard server shares: it reads models, runs and data only below them.

A visitor's path (the ``?folder=`` and ``?runs=`` of a link, the sidebar's fields, a data set path) is
resolved (links followed) and used only when it lies below one of these roots; anything else gets one
line, :data:`OUTSIDE`, which says the same for a file, a folder and a missing path, so the server's
file system cannot be probed through the pages.

The roots:

* the shipped checkpoints folder (``gan.assets.checkpoints_dir()``) and ``$LESIONGAN_CHECKPOINTS``;
* runs folders: ``runs/`` beside the package and in the folder the server was started from (where
  ``python -m gan.train`` writes by default), and every ``--runs DIR``;
* data folders: every ``--data DIR`` (none by default: real images are read from the fingerprints);
* the folders in ``$LESIONGAN_ROOTS`` (separated by ``:``), and the ``[roots]`` table of
  ``.streamlit/lesiongan.toml`` (``runs = [...]``, ``data = [...]``, relative to the folder that holds
  ``.streamlit``), read in the folder the server starts from and in the repository.

``--runs``/``--data`` come after Streamlit's own options: ``streamlit run dashboard/app.py -- --runs
/data/runs --data /data/isic2017``.
"""
from __future__ import annotations

import argparse
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from gan.assets import checkpoints_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_CHECKPOINTS = "LESIONGAN_CHECKPOINTS"
ENV_ROOTS = "LESIONGAN_ROOTS"
CONFIG_NAME = "lesiongan.toml"  # in .streamlit/, beside Streamlit's own config.toml
OUTSIDE = "outside the folders this server shares"
MAX_CHARS = 1024  # a longer path is refused as it is, never resolved


class OutsideRoots(ValueError):
    """A path that is not below any shared folder (or not a usable path at all)."""

    def __init__(self) -> None:
        super().__init__(f"That path is {OUTSIDE}.")


@dataclass(frozen=True)
class Roots:
    """The shared folders by kind, each resolved (links followed).

    Attributes:
        checkpoints: folders of shipped or exported models (the first is the default view).
        runs: folders that receive training runs (their run folders are offered in the sidebar).
        data: data set folders (the Gallery's and Evaluation's data path).
    """

    checkpoints: tuple[Path, ...]
    runs: tuple[Path, ...] = ()
    data: tuple[Path, ...] = ()

    @property
    def all(self) -> tuple[Path, ...]:
        return tuple(dict.fromkeys((*self.checkpoints, *self.runs, *self.data)))

    def root_of(self, path: Path) -> Path | None:
        """The deepest shared folder that holds the resolved ``path``, None when none does."""
        inside = [r for r in self.all if path == r or path.is_relative_to(r)]
        return max(inside, key=lambda r: len(r.parts)) if inside else None

    def resolve(self, text: str | os.PathLike) -> Path:
        """The shared path a visitor typed: absolute, relative to the repository, or starting with a
        shared folder's name as the pages show it (``checkpoints/dcgan``); resolved, links followed.

        Raises:
            OutsideRoots: it is not below a shared folder, or no usable path (too long, a NUL byte).
        """
        text = str(text).strip()
        if not text or len(text) > MAX_CHARS or "\0" in text or not text.isprintable():
            raise OutsideRoots()
        p = Path(text)  # no ~ expansion: the server's home is nobody's business
        candidates = [p] if p.is_absolute() else [
            *(r.parent / p for r in self.all if p.parts and p.parts[0] == r.name), REPO_ROOT / p]
        inside = []
        for c in candidates:
            try:
                resolved = Path(os.path.realpath(c))
            except (OSError, ValueError):
                continue
            if self.root_of(resolved) is not None:
                inside.append(resolved)
        if not inside:
            raise OutsideRoots()
        # Several shared folders may bear one name (runs/ beside the package and where the server started):
        # the one that holds the path, else the first.
        return next((c for c in inside if c.exists()), inside[0])

    def display(self, path: str | os.PathLike) -> str:
        """A shared path as the pages show it: from its shared folder's name down (``checkpoints/dcgan``),
        never the server's absolute path; a path outside every root shows as its last part."""
        try:
            p = Path(os.path.realpath(path))
        except (OSError, ValueError):
            return Path(path).name
        root = self.root_of(p)
        if root is None:
            return p.name
        rel = p.relative_to(root)
        return root.name if not rel.parts else f"{root.name}/{rel.as_posix()}"


def _real(paths: Iterable[str | os.PathLike], base: Path) -> list[Path]:
    out = []
    for raw in paths:
        text = str(raw).strip()
        if not text or "\0" in text:
            continue
        p = Path(text).expanduser()  # the operator's own settings may use ~
        out.append(Path(os.path.realpath(p if p.is_absolute() else base / p)))
    return out


def _command_line(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--runs", action="append", default=[])
    p.add_argument("--data", action="append", default=[])
    p.add_argument("--root", action="append", default=[])
    return p.parse_known_args(list(argv))[0]


def _config_files(cwd: Path) -> list[Path]:
    return [p for p in dict.fromkeys([cwd / ".streamlit" / CONFIG_NAME, REPO_ROOT / ".streamlit" / CONFIG_NAME])
            if p.is_file()]


def _read_config(path: Path) -> dict[str, list[str]]:
    """The ``[roots]`` table of a ``lesiongan.toml``; ValueError naming the file when it is not TOML or
    the lists are not lists of strings."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: not a readable TOML file: {e}") from None
    table = doc.get("roots", {})
    out = {}
    for kind in ("runs", "data", "checkpoints"):
        v = table.get(kind, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"{path}: [roots] {kind} must be a list of folder names")
        out[kind] = v
    return out


def configured(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
               cwd: str | os.PathLike | None = None) -> Roots:
    """The roots of this server from the command line (``argv``: the app's own arguments), the
    environment and ``.streamlit/lesiongan.toml`` (module docstring)."""
    environ = os.environ if environ is None else environ
    cwd = Path(cwd or os.getcwd())
    args = _command_line(argv or [])
    checkpoints = _real([checkpoints_dir(), *([environ[ENV_CHECKPOINTS]] if environ.get(ENV_CHECKPOINTS, "").strip()
                                               else [])], cwd)
    if environ.get(ENV_CHECKPOINTS, "").strip():
        checkpoints.insert(0, checkpoints.pop())  # the operator's folder is the default view
    runs = _real([REPO_ROOT / "runs", cwd / "runs", *args.runs], cwd)
    data = _real(args.data, cwd)
    extra = _real([*args.root, *[x for x in environ.get(ENV_ROOTS, "").split(os.pathsep) if x.strip()]], cwd)
    for f in _config_files(cwd):
        table = _read_config(f)
        base = f.parent.parent
        checkpoints += _real(table["checkpoints"], base)
        runs += _real(table["runs"], base)
        data += _real(table["data"], base)
    uniq = lambda xs: tuple(dict.fromkeys(xs))  # noqa: E731
    return Roots(checkpoints=uniq(checkpoints), runs=uniq([*runs, *extra]), data=uniq([*data, *extra]))
