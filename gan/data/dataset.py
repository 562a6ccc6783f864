"""Load a dermoscopic data set as one cached uint8 tensor: ``load_dataset`` -> ``ImageSet``."""
from __future__ import annotations

import os
import re
import sys
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import PIL
import torch
from PIL import Image
from tqdm import tqdm

from gan.data import cache, decode
from gan.data.layouts import LAYOUTS, SPLITS, Listing, scan

SIZES = (16, 32, 64, 128, 256)
_SHOW_SKIPPED = 5


class DataWarning(UserWarning):
    """Images were skipped, or a cache file was ignored."""


@dataclass(frozen=True)
class DataConfig:
    """Which images to train on, at what size, and how to augment them; the ``data`` part of a
    :class:`gan.config.RunConfig`, so it drives the data path of every run and is saved with it.

    Args:
        path: the data set's folder (see :func:`load_dataset` for the layouts); None for a config
            that has no data yet (``--dry-run``, files made without a data set).
        size: side of the square training images in pixels, one of ``SIZES``.
        layout: "auto" (detect from the folder) or one of ``LAYOUTS`` to force it.
        split: "train", "validation" or "test" for the isic2017 layout (None: "train", or the
            split folder ``path`` names); None for every other layout.
        augment: randomly re-orient each real image the training loop draws (dermoscopy has no
            canonical orientation; helps on small sets), with the three options below.
        xflip: augmentation may flip images horizontally.
        yflip: augmentation may flip images vertically.
        rot90: augmentation may rotate images by multiples of 90 degrees.
        cache_dir: where decoded tensors are cached (None: ``$LESIONGAN_CACHE`` or ``~/.cache/lesiongan``).
        num_images: the images the reader found, filled in when a run starts (None before).
    """

    path: str | None = None
    size: int = 64
    layout: str = "auto"
    split: str | None = None
    augment: bool = False
    xflip: bool = True
    yflip: bool = True
    rot90: bool = True
    cache_dir: str | None = None
    num_images: int | None = None

    def __post_init__(self) -> None:
        # Accept path-like values but store strings, so the config stays JSON-ready.
        if self.path is not None:
            object.__setattr__(self, "path", os.fspath(self.path))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", os.fspath(self.cache_dir))
        if self.size not in SIZES:
            raise ValueError(f"data size must be one of {SIZES}, got {self.size!r}")
        if self.layout != "auto" and self.layout not in LAYOUTS:
            raise ValueError(f"data layout must be 'auto' or one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"data split must be one of {', '.join(SPLITS)}, got {self.split!r}")


@dataclass
class ImageSet:
    """Decoded images of one data set, with their ids and labels in the same order.

    Args:
        images: uint8 tensor (N, 3, size, size), RGB, NCHW.
        names: image ids ("ISIC_0000000"; for the folder layout, the path relative to ``source``).
        labels: class of each image ("melanoma", "nevus", ... as the metadata spell it), None if unlabelled.
        layout: "isic2017", "isic-archive", "ham10000" or "folder".
        source: absolute path of the data set's folder.
        size: side of the images in pixels.
        split: the isic2017 split loaded, else None.
        skipped: (name, reason) for every image or metadata row that could not be used.
        cache_path: the cache file these images were read from or written to.
        info: how the images were made: "resize" (the preprocessing, in words), "preprocessing"
            (each step), "label_field", "pillow" (version that decoded them), "from_cache".
    """

    images: torch.Tensor
    names: list[str]
    labels: list[str | None]
    layout: str
    source: str
    size: int
    split: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    cache_path: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.names)
        if tuple(self.images.shape) != (n, 3, self.size, self.size) or len(self.labels) != n:
            raise ValueError(f"ImageSet of {self.source}: images {tuple(self.images.shape)}, {n} names, "
                             f"{len(self.labels)} labels and size {self.size} do not agree")

    def __len__(self) -> int:
        return len(self.names)

    def class_counts(self) -> dict[str, int]:
        """Images per label, most frequent first (ties by name); unlabelled images are not counted."""
        counts = Counter(label for label in self.labels if label is not None)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def summary(self) -> str:
        """One line: count, size, layout and split, class counts, unlabelled and skipped counts, source."""
        classes = ", ".join(f"{k} {v}" for k, v in self.class_counts().items()) or "none"
        unlabelled = sum(label is None for label in self.labels)
        split = f"/{self.split}" if self.split else ""
        return (f"{len(self)} images {self.size}px, layout {self.layout}{split}; classes: {classes}; "
                f"unlabelled {unlabelled}; skipped {len(self.skipped)}; from {self.source}")


def load_dataset(path: str | os.PathLike | DataConfig, size: int = 64, layout: str = "auto",
                 split: str | None = None, cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, workers: int | None = None) -> ImageSet:
    """Load a data set folder as uint8 tensors, decoding each image at most once (then cached).

    Layouts (detected from the folder, or forced with ``layout``):

    - "isic2017": the ISIC 2017 challenge: ``ISIC-2017_{Training,Validation,Test_v2}_Data/ISIC_*.jpg``
      and ``ISIC-2017_*_Part3_GroundTruth.csv`` beside them; labels "melanoma",
      "seborrheic_keratosis" or "nevus". ``path`` is the folder holding both, or one ``*_Data`` folder.
    - "isic-archive": images with a JSON file each (label: ``meta.clinical.diagnosis``) or an
      isic-cli ``metadata.csv`` (``isic_id``; label from the first column present of
      ``diagnosis``, ``diagnosis_1``, ``benign_malignant``).
    - "ham10000": ``HAM10000_metadata.csv`` (label: ``dx``) and ``HAM10000_images/`` or
      ``HAM10000_images_part_1/``, ``_part_2/``.
    - "folder": every image below ``path``, recursively, unlabelled.

    Images are centre-cropped to a square and resized with PIL's LANCZOS filter (see
    :mod:`gan.data.decode`). Files that cannot be used (corrupt, truncated, empty, not images,
    decompression bombs, smaller than ``size``, or without matching metadata) are skipped, listed in
    ``ImageSet.skipped`` and reported with a :class:`DataWarning`.

    Args:
        path: the data set's folder, or a :class:`DataConfig` (then leave the next four at their defaults).
        size: side of the output squares in pixels, one of ``SIZES``.
        layout: "auto" or one of ``LAYOUTS``.
        split: isic2017 only: "train", "validation" or "test" (None: "train", or the folder's own split).
        cache_dir: cache folder (None: ``$LESIONGAN_CACHE``, else ``~/.cache/lesiongan``).
        progress: show a progress bar on stderr while decoding.
        workers: decoding threads (None: the CPUs this process may use, at most 8).

    Returns:
        The :class:`ImageSet`.

    Raises:
        ValueError: naming the folder or file, when the folder is missing or empty, the layout or
            split does not fit it, a metadata file is unreadable, or no image is usable.
    """
    if isinstance(path, DataConfig):
        if (size, layout, split, cache_dir) != (64, "auto", None, None):
            raise ValueError("pass either a DataConfig or size/layout/split/cache_dir, not both")
        cfg = path
        if cfg.path is None:
            raise ValueError("the data config names no folder (--data)")
    else:
        cfg = DataConfig(os.fspath(path), size=size, layout=layout, split=split,
                         cache_dir=None if cache_dir is None else os.fspath(cache_dir))
    source = Path(cfg.path).expanduser().resolve()
    listing = scan(source, cfg.layout, cfg.split)
    key_doc = _key_doc(source, listing, cfg.size)
    key = cache.cache_key(key_doc)
    folder = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache.default_cache_dir()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", source.name)[:40]
    cache_path = folder / f"{slug}-{listing.layout}-{listing.split or 'all'}-{cfg.size}px-{key[:16]}.safetensors"

    try:
        cached = cache.read_cache(cache_path, key)
    except cache.CacheError as e:
        warnings.warn(f"ignoring unusable cache file {cache_path} ({e}); rebuilding it", DataWarning, stacklevel=2)
        cached = None
    if cached is not None:
        images, doc = cached
        from_cache = True
    else:
        folder.mkdir(parents=True, exist_ok=True)  # fail on an unwritable cache before decoding
        images, doc = _build(source, listing, cfg.size, progress, workers)
        cache.write_cache(cache_path, images, {**doc, "format": cache.CACHE_FORMAT, "key": key})
        from_cache = False

    ds = ImageSet(images=images, names=doc["names"], labels=doc["labels"], layout=listing.layout,
                  source=str(source), size=cfg.size, split=listing.split,
                  skipped=[(n, r) for n, r in doc["skipped"]], cache_path=str(cache_path),
                  info={**doc["info"], "from_cache": from_cache})
    if ds.skipped:
        shown = "; ".join(f"{n} ({r})" for n, r in ds.skipped[:_SHOW_SKIPPED])
        more = f"; and {len(ds.skipped) - _SHOW_SKIPPED} more" if len(ds.skipped) > _SHOW_SKIPPED else ""
        warnings.warn(f"{source}: skipped {len(ds.skipped)} of {len(ds) + len(ds.skipped)} images: {shown}{more}",
                      DataWarning, stacklevel=2)
    return ds


def _key_doc(source: Path, listing: Listing, size: int) -> dict[str, Any]:
    """Everything a cached result depends on; its hash names the cache file."""
    files = [e.path for e in listing.entries] + listing.metadata_files
    stats = [(os.path.relpath(p, source), p.stat()) for p in files]
    return {
        "format": cache.CACHE_FORMAT, "source": str(source), "layout": listing.layout, "split": listing.split,
        "size": size, "preprocessing": decode.PREPROCESSING, "pillow": PIL.__version__,
        "max_image_pixels": Image.MAX_IMAGE_PIXELS,
        "files": [[rel, st.st_size, st.st_mtime_ns] for rel, st in stats],
        "names": [[e.name, e.label] for e in listing.entries], "listing_skipped": listing.skipped,
    }


def _build(source: Path, listing: Listing, size: int, progress: bool,
           workers: int | None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Decode every listed image in parallel; returns the kept images and the cache document."""
    entries = listing.entries
    images = torch.empty((len(entries), 3, size, size), dtype=torch.uint8)

    def work(i: int) -> str | None:
        try:
            images[i] = torch.from_numpy(decode.decode_image(entries[i].path, size)).permute(2, 0, 1)
        except decode.Unusable as e:
            return str(e)
        return None

    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(8, cpus)
    # decode_image refuses bombs itself; silence Pillow's duplicate warning meanwhile. The filter
    # is process-wide, so it is set once here around the pool, not in each thread.
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, workers)) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        reasons = list(tqdm(pool.map(work, range(len(entries))), total=len(entries), disable=not progress,
                            file=sys.stderr, desc=f"decoding {source.name} at {size}px", unit="img"))
    keep = [i for i, r in enumerate(reasons) if r is None]
    skipped = listing.skipped + [(entries[i].name, r) for i, r in enumerate(reasons) if r is not None]
    if not keep:
        shown = "; ".join(f"{n} ({r})" for n, r in skipped[:_SHOW_SKIPPED])
        raise ValueError(f"{source}: no usable images ({len(skipped)} skipped: {shown})")
    if len(keep) < len(entries):
        images = images[keep]
    doc = {
        "names": [entries[i].name for i in keep], "labels": [entries[i].label for i in keep],
        "skipped": skipped, "size": size,
        "info": {"resize": decode.RESIZE, "preprocessing": decode.PREPROCESSING,
                 "label_field": listing.label_field, "pillow": PIL.__version__},
    }
    return images, doc
