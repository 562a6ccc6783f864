"""Atomic file writes, shared by checkpoints, caches, fingerprints and results: readers see the
old file or the new one, never half of one, and a failed write leaves nothing behind.

A temp file is named ``.<target>.<pid>.<random>.tmp`` beside its target. A process killed in the
middle of a write (``kill -9``, power loss) cannot remove its own; :func:`clean_stale_temps`
removes those whose writer is no longer alive (run folders call it when opened for writing)."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import IO, Callable

_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``path`` through ``write(fileobj)`` into a temp file in the same folder, fsync it,
    rename it over ``path`` and fsync the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """:func:`atomic_write` for a UTF-8 text file."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def temp_owner(path: str | os.PathLike) -> int | None:
    """The PID that an :func:`atomic_write` temp file's name carries, or None for any other name."""
    m = _TEMP_RE.match(Path(path).name)
    return int(m.group(1)) if m else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove the temp files of :func:`atomic_write` in ``folder`` whose writer is dead; returns them.

    Temp files of live processes (another run writing now, this process) are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        pid = temp_owner(p)
        if pid is None or pid_alive(pid) or not p.is_file():
            continue
        try:
            p.unlink()
            removed.append(p)
        except FileNotFoundError:  # another cleaner was first
            pass
    return removed
