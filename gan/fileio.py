"""Atomic file writes, shared by checkpoints, caches, fingerprints and results: readers see the
old file or the new one, never half of one, and a failed write leaves nothing behind.

A temp file is named ``.<target>.<pid>.<random>.tmp`` beside its target. A process killed in the
middle of a write (``kill -9``, power loss) cannot remove its own; :func:`clean_stale_temps`
removes those whose writer is no longer alive (run folders call it when opened for writing;
:func:`prepare_output` calls it for the other output paths of the command line).

A write that fails (a full disk, a read-only file system) raises :class:`WriteError`, naming the
file and saying that its previous content is untouched."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import IO, Callable

_TEMP_RE = re.compile(r"^\..+\.(\d+)\.[^.]+\.tmp$")


class WriteError(OSError):
    """An atomic write failed; the target holds what it held before (or does not exist)."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], durable: bool = True) -> None:
    """Write ``path`` through ``write(fileobj)`` into a temp file in the same folder, fsync it,
    rename it over ``path`` and fsync the folder.

    Args:
        path: the file to write.
        write: called with the open temp file.
        durable: fsync the file and the folder (``False``: still all-or-nothing for readers, but a
            power loss may lose the file; for many small files such as ``gan.sample``'s images).

    Raises:
        WriteError: an ``OSError`` (full disk, read-only file system, a path under a regular file)
            while writing; the message names ``path`` and says the previous file is intact.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, WriteError):
            before = "its previous content is intact" if path.is_file() else "no file was left"
            err = WriteError(f"{path}: could not be written ({e.strerror or e}); {before}")
            err.errno = e.errno
            raise err from None
        raise
    if durable and os.name == "posix":  # make the rename itself durable
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


def prepare_output(path: str | os.PathLike, flag: str, kind: str = "folder") -> Path:
    """Check, before any work, that a command can write ``path``, and remove the temp files that
    killed writers left where it writes (:func:`clean_stale_temps`, that folder only). Creates nothing.

    Args:
        path: the output folder (``kind="folder"``) or file (``kind="file"``).
        flag: the command-line flag that named it, for the message (``"--out"``).
        kind: ``"folder"`` or ``"file"``.

    Raises:
        ValueError: ``FLAG PATH: why`` when the path is a file where a folder is wanted (or the other
            way round), lies under a regular file or a broken link, or its nearest existing folder
            is read-only or not writable.
    """
    if kind not in ("folder", "file"):
        raise ValueError(f"kind must be 'folder' or 'file', got {kind!r}")
    path = Path(path)
    if kind == "folder" and path.exists() and not path.is_dir():
        raise ValueError(f"{flag} {path}: is a file, not a folder")
    if kind == "file" and path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder, not a file")
    folder = path if kind == "folder" else path.parent
    existing = folder
    while not existing.exists() and existing.parent != existing:
        if existing.is_symlink():
            raise ValueError(f"{flag} {path}: {existing} is a broken link")
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{flag} {path}: {existing} is a regular file, so nothing can be created under it")
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = hasattr(os, "statvfs") and os.statvfs(existing).f_flag & os.ST_RDONLY
        raise ValueError(f"{flag} {path}: {existing} is " + ("on a read-only file system" if read_only else
                                                              "not writable (permission denied)"))
    clean_stale_temps(folder, recursive=False)
    return path
