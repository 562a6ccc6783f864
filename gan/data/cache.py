"""The decoded-image cache: one safetensors file per (source, layout, split, files, size, preprocessing).

A cache file holds one uint8 tensor ``images`` (N, 3, S, S) and, in the safetensors header, a JSON
document with the names, labels, codes, skipped files (and which of them to try again), the full
cache key and a CRC-32 of the image bytes.
Files are written atomically (temporary file in the same folder, fsync, ``os.replace``) and checked
in full on reading, so a torn or corrupted file is detected rather than trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
import zlib
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from gan.fileio import atomic_write, clean_stale_temps, prepare_output

# 2: canonical labels plus codes, and "retry" (files unread for a passing reason).
CACHE_FORMAT = 2
_READABLE_FORMATS = (1, 2)  # eval reads format-1 files handed to it by name
_META_KEY = "lesiongan"


class CacheError(Exception):
    """A cache file exists but cannot be trusted; the message says why."""


def default_cache_dir() -> Path:
    """``$LESIONGAN_CACHE`` if set, else ``~/.cache/lesiongan``."""
    env = os.environ.get("LESIONGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lesiongan"


def open_folder(folder: Path) -> None:
    """Remove temporary files that dead writers (killed processes) left in the cache folder."""
    try:
        clean_stale_temps(folder, recursive=False)
    except OSError:  # a folder we may not change: check_writable says so when it matters
        pass


def check_writable(folder: Path) -> None:
    """Check, before decoding anything, that cache files can be written in ``folder`` (it is a
    folder or can be made one, and is writable); creates nothing.

    Raises:
        ValueError: one line naming the folder and the reason (a file, under a file, read-only,
            no permission) and how to choose another.
    """
    try:
        prepare_output(folder, "cache folder")
    except ValueError as e:
        raise ValueError(f"{e}; choose another with --cache-dir or $LESIONGAN_CACHE") from None


def cache_key(doc: dict[str, Any]) -> str:
    """SHA-256 hex digest of a JSON-ready document describing everything the cached result depends on."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _crc(images: torch.Tensor) -> int:
    return zlib.crc32(images.numpy().data)


def read_cache(path: Path, key: str | None = None) -> tuple[torch.Tensor, dict[str, Any]] | None:
    """Read a cache file written by :func:`write_cache`.

    Args:
        path: the cache file.
        key: the key the caller expects (from :func:`cache_key`); None: the file's own (a cache file
            handed over by name, e.g. to ``eval``), still checked in full.

    Returns:
        ``(images, doc)``, or None when there is no file at ``path``.

    Raises:
        CacheError: the file is unreadable, truncated, of another format or key, or fails its checksum.
    """
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            doc = json.loads((f.metadata() or {})[_META_KEY])
            images = f.get_tensor("images")
        if doc["format"] not in _READABLE_FORMATS or doc["key"] != (doc["key"] if key is None else key):
            raise CacheError(f"format {doc['format']} / key {doc['key'][:12]} do not match")
        n, size = len(doc["names"]), doc["size"]
        doc.setdefault("codes", [None] * n)
        if images.dtype != torch.uint8 or tuple(images.shape) != (n, 3, size, size) or \
                len(doc["labels"]) != n or len(doc["codes"]) != n:
            raise CacheError(f"images {images.dtype} {tuple(images.shape)} do not match {n} names at {size} px")
        if _crc(images) != doc["crc32"]:
            raise CacheError("image data fail their checksum")
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise CacheError(f"{type(e).__name__}: {e}") from None
    return images, doc


def write_cache(path: Path, images: torch.Tensor, doc: dict[str, Any]) -> None:
    """Write ``images`` and ``doc`` (plus a checksum) to ``path`` atomically.

    Args:
        path: the cache file; its folder is created if needed.
        images: uint8 tensor (N, 3, S, S).
        doc: JSON-ready metadata; must hold "format", "key", "names", "labels" and "size".

    Raises:
        OSError: (naming the file or folder) when it cannot be written; no temporary file is left.
    """
    images = images.contiguous()
    meta = {_META_KEY: json.dumps({**doc, "crc32": _crc(images)})}
    data = save({"images": images}, metadata=meta)
    atomic_write(path, lambda f: f.write(data))
