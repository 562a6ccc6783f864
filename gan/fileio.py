"""Atomic file writes, shared by checkpoints, caches, fingerprints and results: readers see the
old file or the new one, never half of one, and a failed write leaves nothing behind.

A temp file is named ``.<target>.lesiongan-tmp-<host>-<pid>-<token>.tmp`` beside its target: ``host``
is :func:`host_id` (this machine, its boot and its PID namespace, hashed), ``pid`` the writer's
process id in that namespace and ``token`` random. A process killed in the middle of a write
(``kill -9``, power loss) cannot remove its own; :func:`clean_stale_temps` removes a file only when
its name has this exact pattern, its host id is this one's and no process with its PID is alive
here: a user's ``.budget.2024.xlsx.tmp``, another program's temp file, and the temp file of a
writer on another machine or in another container sharing the folder are never touched (run
folders call it when opened for writing, under their lock; :func:`prepare_output` calls it for the
other output paths of the command line).

A write that fails (a full disk, a read-only file system) raises :class:`WriteError`, naming the
file and saying that its previous content is untouched."""
from __future__ import annotations

import functools
import hashlib
import os
import re
import socket
import tempfile
from pathlib import Path
from typing import IO, Callable

TEMP_TAG = "lesiongan-tmp"
_TEMP_RE = re.compile(rf"^\.(?P<target>.+)\.{TEMP_TAG}-(?P<host>[0-9a-f]{{12}})-(?P<pid>\d+)-(?P<token>[a-z0-9_]{{8}})\.tmp$")


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
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{TEMP_TAG}-{host_id()}-{os.getpid()}-", suffix=".tmp",
                                   dir=path.parent)
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


@functools.lru_cache(maxsize=None)
def host_id() -> str:
    """Twelve hex digits that name this machine, its current boot and this process's PID namespace
    (a hash of the host name, the kernel's boot id and the namespace's inode): two processes share
    it exactly when a PID means the same process to both."""
    parts = [socket.gethostname()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    except OSError:
        parts.append("")
    try:
        ns = os.stat("/proc/self/ns/pid")
        parts.append(f"{ns.st_dev}:{ns.st_ino}")
    except OSError:
        parts.append("")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def temp_name(path: str | os.PathLike, pid: int | None = None, token: str = "00000000",
              host: str | None = None) -> Path:
    """The temp file that :func:`atomic_write` names for ``path`` (beside it), as writer ``pid`` (default:
    this process) with ``token``: what a writer killed mid-write leaves behind."""
    path = Path(path)
    return path.parent / f".{path.name}.{TEMP_TAG}-{host or host_id()}-{os.getpid() if pid is None else pid}-{token}.tmp"


def temp_owner(path: str | os.PathLike) -> int | None:
    """The PID of the writer of an :func:`atomic_write` temp file of this host and PID namespace, or
    None for any other name (another program's file, or a writer whose PID means nothing here)."""
    m = _TEMP_RE.match(Path(path).name)
    return int(m.group("pid")) if m and m.group("host") == host_id() else None


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists in this PID namespace."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Remove the temp files of :func:`atomic_write` in ``folder`` whose writer is provably gone; returns them.

    Only regular files named by :func:`temp_name` with this host's id and a PID that no live process
    here has are removed. Temp files of live processes (another run writing now, this process), of
    writers on other hosts or in other PID namespaces, and every other file are left alone."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in (folder.rglob(".*.tmp") if recursive else folder.glob(".*.tmp")):
        pid = temp_owner(p)
        if pid is None or pid_alive(pid) or p.is_symlink() or not p.is_file():
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
