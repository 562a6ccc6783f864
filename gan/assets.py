"""Where the files that ship with LesionGAN lie (the trained models, the dermoscopy encoder, the reference
fingerprints), whatever the current folder and however the package was installed.

The weights are not part of the wheel. Commands whose defaults name a shipped file look for the shipped
``checkpoints/`` folder here, in this order:

1. ``$LESIONGAN_HOME/checkpoints`` when ``LESIONGAN_HOME`` is set (or ``$LESIONGAN_HOME`` itself, when it
   is a checkpoints folder); the variable decides: nothing else is searched when it is set;
2. the user cache, ``$XDG_CACHE_HOME/lesiongan/checkpoints`` (``~/.cache/lesiongan/checkpoints``), when
   it holds checkpoints;
3. ``checkpoints/`` beside the ``gan`` package: a source checkout, or an editable install of one.

When none is found, :data:`NOT_FOUND` is the one line that says what to do::

    from gan.assets import checkpoints_dir, encoder_path, find_checkpoints
    root = find_checkpoints()          # the folder, or None
    enc = encoder_path()               # .../derm-encoder/encoder.pt (it may not exist)
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

ENV_HOME = "LESIONGAN_HOME"
HINT = f"set {ENV_HOME} to a folder holding the shipped checkpoints/"
NOT_FOUND = f"no shipped checkpoints found: {HINT}"
ENCODER = ("derm-encoder", "encoder.pt")  # the dermoscopy encoder, relative to the checkpoints folder


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def user_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/lesiongan``, else ``~/.cache/lesiongan``."""
    env = _env(environ)
    base = env.get("XDG_CACHE_HOME", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "lesiongan"


def checkout_checkpoints() -> Path:
    """``checkpoints/`` beside the ``gan`` package (it exists in a source checkout, not in a wheel)."""
    return Path(__file__).resolve().parents[1] / "checkpoints"


def _holds_checkpoints(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(folder.iterdir())
    except OSError:  # unreadable: as good as absent
        return False


def _home(value: str) -> Path:
    """The checkpoints folder ``$LESIONGAN_HOME`` names: its ``checkpoints/``, or itself when it is one."""
    home = Path(value).expanduser()
    inner = home / "checkpoints"
    if not inner.is_dir() and (home / ENCODER[0]).is_dir():
        return home
    return inner


def find_checkpoints(environ: Mapping[str, str] | None = None) -> Path | None:
    """The shipped checkpoints folder (resolved), by the order in the module's docstring; None when
    there is none.

    Args:
        environ: the environment to read (``LESIONGAN_HOME``, ``XDG_CACHE_HOME``); None: ``os.environ``.
    """
    env = _env(environ)
    home = env.get(ENV_HOME, "").strip()
    if home:
        candidates = [_home(home)]
    else:
        candidates = [user_cache_dir(env) / "checkpoints", checkout_checkpoints()]
    for folder in candidates:
        if _holds_checkpoints(folder):
            return folder.resolve()
    return None


def checkpoints_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The shipped checkpoints folder; when none is found, the place it was expected first
    (``$LESIONGAN_HOME/checkpoints``, else the one beside the package), which does not exist: callers
    that check for a file there report :func:`missing_reason`."""
    found = find_checkpoints(environ)
    if found is not None:
        return found
    home = _env(environ).get(ENV_HOME, "").strip()
    return _home(home) if home else checkout_checkpoints()


def missing_reason(environ: Mapping[str, str] | None = None) -> str:
    """One line, with no path in it, saying why no checkpoints folder was found and what to do."""
    if _env(environ).get(ENV_HOME, "").strip():
        return f"${ENV_HOME} holds no checkpoints/ folder: {HINT}"
    return NOT_FOUND


def asset(*parts: str, environ: Mapping[str, str] | None = None) -> Path:
    """A shipped file or folder by its path inside ``checkpoints/`` (``asset("dcgan", "generator.pt")``);
    it may not exist (then :func:`missing_reason` says why, when no checkpoints folder was found)."""
    return checkpoints_dir(environ).joinpath(*parts)


def encoder_path(environ: Mapping[str, str] | None = None) -> Path:
    """The shipped dermoscopy encoder's file (``checkpoints/derm-encoder/encoder.pt``); it may not exist."""
    return asset(*ENCODER, environ=environ)


def portable_name(path: str | os.PathLike, base: str | os.PathLike | None = None) -> str:
    """How files meant to travel (results, configs, model cards) name a file or folder: never by this
    machine's absolute path.

    A relative path, or text that is not a path (``"<array>"``), is returned as it is. An absolute path
    below the shipped checkpoints folder becomes ``checkpoints/...``; below ``base`` (default: the
    current folder), relative to it; anywhere else, its last part for a folder (a data set by its name,
    ``isic2017``) and ``folder/file`` for a file (``00003-dcgan-isic2017-64/generator.pt``; a path that
    does not exist here is taken for a file when its name has a suffix).

    Args:
        path: the file or folder.
        base: the folder relative paths are taken from (None: the current folder).
    """
    text = os.fspath(path)
    if not text or not os.path.isabs(text):
        return text
    p = Path(os.path.normpath(text))
    shipped = find_checkpoints()
    if shipped is not None and p.is_relative_to(shipped):
        return Path("checkpoints", p.relative_to(shipped)).as_posix()
    here = Path(os.path.normpath(os.path.abspath(base if base is not None else os.getcwd())))
    if p != here and p.is_relative_to(here):
        return p.relative_to(here).as_posix()
    # a file by its folder and name; a path not on this machine is a file when its name has a suffix
    is_file = p.is_file() or (not p.exists() and bool(p.suffix))
    return f"{p.parent.name}/{p.name}" if is_file and p.parent.name else (p.name or text)


def portable_command(words: Sequence[str], base: str | os.PathLike | None = None) -> str:
    """A command line as files meant to travel record it: every argument that is an absolute path (alone,
    after ``--flag=``, or before an ``@split``) named by :func:`portable_name`, the rest as typed.

    ``portable_command(["python -m eval.privacy", "--real", "/data/isic2017@train"])`` gives
    ``"python -m eval.privacy --real isic2017@train"``.
    """
    def arg(word: str) -> str:
        flag, eq, value = word.partition("=") if word.startswith("-") else ("", "", word)
        if not os.path.isabs(value):
            return word
        path, at, rest = (value, "", "") if os.path.exists(value) else value.partition("@")
        return f"{flag}{eq}{portable_name(path, base)}{at}{rest}"

    return " ".join(arg(str(w)) for w in words)


def reproducing(command: str) -> str:
    """The recorded command without the options that do not change its numbers (``--out``, ``--threads``,
    ``--json``, ``--no-save``)."""
    words, out, skip = command.split(), [], False
    for w in words:
        if skip:
            skip = False
            continue
        if w in ("--out", "--threads"):
            skip = True
            continue
        if w in ("--json", "--no-save") or w.startswith(("--out=", "--threads=")):
            continue
        out.append(w)
    return " ".join(out)
