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
import json
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


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as hex (read in 1 MB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    """Check, before any work, that a command can write ``path`` and that no other live process holds
    its folder's lock (:func:`lock_folder`), and remove the temp files that killed writers left where
    it writes (:func:`clean_stale_temps`, that folder only). Creates nothing.

    Args:
        path: the output folder (``kind="folder"``) or file (``kind="file"``).
        flag: the command-line flag that named it, for the message (``"--out"``).
        kind: ``"folder"`` or ``"file"``.

    Raises:
        ValueError: ``FLAG PATH: why`` when the path is a file where a folder is wanted (or the other
            way round), lies under a regular file or a broken link, or its nearest existing folder
            is read-only or not writable; :class:`FolderInUse` (a ValueError) naming the holder when
            another process holds the folder's lock.
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
    holder = lock_holder(folder) if folder.is_dir() and held_lock(folder) is None else None
    if holder is not None:
        raise FolderInUse(f"{flag} {path}", holder)
    clean_stale_temps(folder, recursive=False)
    return path


# -- advisory folder locks ----------------------------------------------------------------------

LOCK_NAME = "run.lock"
LOCK_FORMAT = "lesiongan-lock"
_HELD: dict[Path, "FolderLock"] = {}  # the locks this process holds, by resolved folder


class FolderInUse(ValueError):
    """Another live process holds a folder's lock.

    Attributes:
        holder: its record (``pid``, ``host``, ``started``, ``heartbeat``; empty when unreadable).
    """

    def __init__(self, where: str, holder: dict):
        super().__init__(f"{where}: in use by {describe_holder(holder)}: one writer at a time; wait for it to end, "
                         f"or stop it")
        self.holder = holder


def describe_holder(record: dict | None) -> str:
    """``PID 123 on host since 2024-05-01T10:00:00+00:00 (last heartbeat ...)`` for a lock record."""
    if not record or not record.get("pid"):
        return "another process (its lock file names none)"
    return (f"PID {record['pid']} on {record.get('host', 'an unknown host')} since {record.get('started', '?')} "
            f"(last heartbeat {record.get('heartbeat', '?')})")


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _read_record(fd: int) -> dict:
    try:
        doc = json.loads(os.pread(fd, 1 << 16, 0).decode("utf-8").strip() or "{}")
    except (OSError, ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


class FolderLock:
    """An advisory lock on a folder (``fcntl.flock`` on ``FOLDER/run.lock``), held by one process at a
    time; the file holds the holder's record as JSON: ``pid``, ``host`` (name), ``host_id``
    (:func:`host_id`), ``started`` and ``heartbeat`` (UTC, ISO 8601), ``command``.

    Taken with :func:`lock_folder`; a ``with`` block releases it. The kernel releases it when its
    process ends, however it ends (``kill -9`` included): a lock file whose lock nobody holds is a
    record of a finished writer, never a claim. Locks are advisory: they keep LesionGAN's writers
    apart, on a local file system; where the file system refuses ``flock`` (some network mounts), the
    writer goes on with its record written but nothing enforced.

    Attributes:
        folder: the locked folder.
        record: the holder's record (this process).
    """

    def __init__(self, folder: Path, fd: int, record: dict):
        self.folder, self.path, self._fd, self.record = folder, folder / LOCK_NAME, fd, record
        self._count = 1
        self.on_release: list[Callable[[FolderLock], None]] = []  # called while still held, before the file goes
        self.remove_folder = False  # set by a callback: remove the folder too when the lock file leaves it empty

    def heartbeat(self) -> None:
        """Refresh the record's ``heartbeat`` (writers call it as they make progress)."""
        if self._fd is None:
            return
        self.record["heartbeat"] = _now()
        data = json.dumps(self.record).encode("utf-8")
        try:  # one write of a few hundred bytes over the old record; the padding keeps it valid JSON
            os.pwrite(self._fd, data + b" " * max(0, os.fstat(self._fd).st_size - len(data)), 0)
        except OSError:  # a full disk costs the heartbeat, never the writer
            pass

    def release(self) -> None:
        """Give the lock up (after as many releases as it was taken, :func:`lock_folder` being
        re-entrant) and remove its file."""
        self._count -= 1
        if self._count > 0 or self._fd is None:
            return
        for callback in self.on_release:
            callback(self)
        _HELD.pop(self.folder.resolve(), None)
        try:
            if os.path.samestat(os.stat(self.path), os.fstat(self._fd)):
                self.path.unlink()
        except OSError:
            pass
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None
        if self.remove_folder:
            try:
                self.folder.rmdir()  # only when empty
            except OSError:
                pass

    def __enter__(self) -> "FolderLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def lock_folder(folder: str | os.PathLike, wait_s: float = 1.0) -> FolderLock:
    """Take the advisory lock of ``folder`` (which must exist) for this process; re-entrant.

    Args:
        folder: the folder to lock.
        wait_s: how long to retry while another process holds it (a reader's brief check included).

    Raises:
        FolderInUse: another live process holds it: the message names the folder and the holder.
    """
    import fcntl
    import sys
    import time

    folder = Path(folder)
    key = folder.resolve()
    held = _HELD.get(key)
    if held is not None:
        held._count += 1
        return held
    path = folder / LOCK_NAME
    deadline = time.monotonic() + wait_s
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            record = _read_record(fd)
            os.close(fd)
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise FolderInUse(str(folder), record) from None
        except OSError:  # a file system without flock (some network mounts): the writer goes on unlocked
            break
        try:  # a holder that was releasing may have removed the file between our open and our flock
            same = os.path.samestat(os.stat(path), os.fstat(fd))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    now = _now()
    lock = FolderLock(folder, fd, {"format": LOCK_FORMAT, "pid": os.getpid(), "host": socket.gethostname(),
                                   "host_id": host_id(), "started": now, "heartbeat": now,
                                   "command": " ".join(sys.argv)[:500]})
    os.ftruncate(fd, 0)
    lock.heartbeat()
    _HELD[key] = lock
    return lock


def held_lock(folder: str | os.PathLike) -> FolderLock | None:
    """The lock this process holds on ``folder``, if any."""
    return _HELD.get(Path(folder).resolve())


def lock_holder(folder: str | os.PathLike) -> dict | None:
    """The record of the live process holding ``folder``'s lock (this one included), or None when no
    process holds it (no lock file, or one left by a writer that ended). Reads only."""
    import fcntl

    held = held_lock(folder)
    if held is not None:
        return dict(held.record)
    try:
        fd = os.open(Path(folder) / LOCK_NAME, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_record(fd)
        except OSError:  # no flock on this file system: nobody can be shown to hold it
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def release_locks_taken_since(before: set[Path]) -> None:
    """Release every lock this process took since ``set(held_locks())`` was ``before`` (a command's
    locks, when it returns)."""
    for key in [k for k in _HELD if k not in before]:
        lock = _HELD[key]
        lock._count = 1
        lock.release()


def held_locks() -> list[Path]:
    """The folders (resolved) whose locks this process holds."""
    return list(_HELD)
