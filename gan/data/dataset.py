"""Load a dermoscopic data set as one cached uint8 tensor: ``load_dataset`` -> ``ImageSet``."""
from __future__ import annotations

import dataclasses
import hashlib
import json
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
from gan.fileio import WriteError
from gan.data.labels import class_order
from gan.data.layouts import LAYOUTS, SPLITS, Listing, scan

SIZES = (16, 32, 64, 128, 256)
_SHOW_SKIPPED = 5


class DataWarning(UserWarning):
    """Images were skipped, or a cache file was ignored or could not be written."""


class _PlainWarnings:
    """Installed by :func:`show_warnings_plainly`; restores the previous handler on leaving a ``with``."""

    def __init__(self, categories: tuple[type[Warning], ...]) -> None:
        self.categories = categories
        self.previous = warnings.showwarning
        warnings.showwarning = self.show

    def show(self, message, category, filename, lineno, file=None, line=None) -> None:
        if not issubclass(category, self.categories):
            self.previous(message, category, filename, lineno, file, line)
            return
        stream = file if file is not None else sys.stderr
        try:
            stream.write(f"warning: {message}\n")
        except (OSError, AttributeError):  # no usable stderr: nothing to warn on
            pass

    def __enter__(self) -> _PlainWarnings:
        return self

    def __exit__(self, *exc: object) -> None:
        warnings.showwarning = self.previous


def show_warnings_plainly(categories: tuple[type[Warning], ...] = (DataWarning,)) -> _PlainWarnings:
    """Print warnings of ``categories`` as one line, ``warning: <message>``, on stderr, instead of
    Python's ``file:line: Category: message`` plus the source line; others print as before.

    For command-line entry points: call it once at the start of ``main()``, or use it as a context
    manager (``with show_warnings_plainly(): ...``) to restore the previous handler afterwards.
    Which warnings are shown (and how often) stays with the ``warnings`` filters.

    Args:
        categories: the warning classes to print plainly (subclasses included); pass
            ``(Warning,)`` for all.

    Returns:
        The installed handler, usable as a context manager.
    """
    return _PlainWarnings(tuple(categories))


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
        labels: a CSV file (``image,label`` columns) whose labels replace the layout's; None: the
            layout's own (see :func:`gan.data.layouts.apply_labels_csv`).
        subset: a text file of image names (:mod:`gan.data.subset`): only those images are used
            (e.g. one half of a membership audit's split); None: all of them.
        augment: randomly re-orient each real image the training loop draws (dermoscopy has no
            canonical orientation; helps on small sets), with the three options below.
        xflip: augmentation may flip images horizontally.
        yflip: augmentation may flip images vertically.
        rot90: augmentation may rotate images by multiples of 90 degrees.
        cache_dir: where decoded tensors are cached (None: ``$LESIONGAN_CACHE`` or ``~/.cache/lesiongan``).
        num_images: the images the reader found, filled in when a run starts (None before).
        class_counts: images per class of a labelled run (``{class: count}``, in the model's class
            order), filled in when a conditional or class-balanced run starts.
        name: the data set's name (:func:`dataset_name`: ``isic2017``, ``ham10000``, or the folder's name),
            filled in when a run starts.
        sha256: what the run trained on, whatever folder it was read from (:func:`content_sha256`),
            filled in when a run starts.

    Files meant to travel (``config.json``, shipped models) hold :meth:`portable`: the data set by
    ``name`` and ``sha256``, and a path only relative to the run folder, where it is near
    (:meth:`located` reads it back); checkpoints of a run in progress keep the paths as given.
    """

    path: str | None = None
    size: int = 64
    layout: str = "auto"
    split: str | None = None
    labels: str | None = None
    subset: str | None = None
    augment: bool = False
    xflip: bool = True
    yflip: bool = True
    rot90: bool = True
    cache_dir: str | None = None
    num_images: int | None = None
    class_counts: dict[str, int] | None = None
    name: str | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        # Accept path-like values but store strings, so the config stays JSON-ready.
        if self.path is not None:
            object.__setattr__(self, "path", os.fspath(self.path))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", os.fspath(self.cache_dir))
        if self.labels is not None:
            object.__setattr__(self, "labels", os.fspath(self.labels))
        if self.subset is not None:
            object.__setattr__(self, "subset", os.fspath(self.subset))
        if self.size not in SIZES:
            raise ValueError(f"data size must be one of {SIZES}, got {self.size!r}")
        if self.layout != "auto" and self.layout not in LAYOUTS:
            raise ValueError(f"data layout must be 'auto' or one of {', '.join(LAYOUTS)}, got {self.layout!r}")
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"data split must be one of {', '.join(SPLITS)}, got {self.split!r}")

    def portable(self, base: str | os.PathLike | None = None) -> DataConfig:
        """This config as files meant to travel hold it: ``path``, ``labels`` and ``subset`` relative to
        ``base`` (the run folder the file lies in) when they are near it (:func:`near_path`), else None;
        no cache folder. ``name`` and ``sha256`` still say which images were used."""
        def near(value: str | None) -> str | None:
            return None if value is None or base is None else near_path(value, base)

        return dataclasses.replace(self, path=near(self.path), labels=near(self.labels), subset=near(self.subset),
                                   cache_dir=None)

    def located(self, base: str | os.PathLike) -> DataConfig:
        """The paths of a config read from a file in folder ``base``: relative ones taken from there."""
        def absolute(value: str | None) -> str | None:
            return value if value is None or os.path.isabs(value) else os.path.normpath(os.path.join(base, value))

        return dataclasses.replace(self, path=absolute(self.path), labels=absolute(self.labels),
                                   subset=absolute(self.subset))


NEAR_LEVELS = 2  # a run folder's parent (runs/) and the folder holding it: the project a run belongs to


def near_path(path: str | os.PathLike, base: str | os.PathLike) -> str | None:
    """``path`` relative to folder ``base`` (POSIX separators) when it lies below ``base``'s
    :data:`NEAR_LEVELS`-th parent (``../../data/isic2017`` from ``runs/00001-dcgan-isic2017-64``); None for
    anything farther: a path that climbs to the top of the disk says where one machine keeps its files."""
    target = os.path.abspath(path)
    start = os.path.abspath(base)
    try:
        rel = Path(os.path.relpath(target, start))
    except ValueError:  # another drive
        return None
    ups = sum(part == ".." for part in rel.parts)
    return rel.as_posix() if ups <= NEAR_LEVELS and ".." not in rel.parts[ups:] else None


def dataset_name(ds: ImageSet) -> str:
    """A data set's name in configs and run-folder names: its layout for the known data sets
    (``isic2017``, ``ham10000``, ``isic-archive``), the folder's name for the folder layouts."""
    return ds.layout if ds.layout not in ("folder", "imagefolder") else Path(ds.source).name


def content_sha256(ds: ImageSet) -> str:
    """SHA-256 of what a run trains on: the image names, then the decoded uint8 images (N, 3, S, S), in
    order. The same images read from another folder (or machine) give the same hash."""
    h = hashlib.sha256()
    h.update(json.dumps(list(ds.names)).encode("utf-8"))
    h.update(ds.images.contiguous().numpy().data)
    return h.hexdigest()


@dataclass
class ImageSet:
    """Decoded images of one data set, with their ids and labels in the same order.

    Args:
        images: uint8 tensor (N, 3, size, size), RGB, NCHW.
        names: image ids ("ISIC_0000000"; for the folder layouts, the path relative to ``source``).
        labels: class of each image in the canonical vocabulary of :mod:`gan.data.labels`
            ("melanoma", "nevus", "benign_keratosis", ...; a class outside it keeps its own name, e.g.
            an imagefolder's folder name), None if unlabelled.
        layout: one of ``LAYOUTS``.
        source: absolute path of the data set's folder.
        size: side of the images in pixels.
        split: the isic2017 split loaded, else None.
        skipped: (name, reason) for every image or metadata row that could not be used.
        cache_path: the cache file these images were read from or written to.
        info: how the images were made: "resize" (the preprocessing, in words), "preprocessing"
            (each step), "label_field", "code_field", "pillow" (version that decoded them), "from_cache".
        codes: each image's class as the data set itself spells it (HAM10000's ``mel``, the ISIC
            archive's ``benign``/``malignant``, the ISIC 2017 ground-truth column, the imagefolder's
            folder name), None if it gives none; None for the whole field: all None.
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
    codes: list[str | None] | None = None

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.codes is None:
            self.codes = [None] * n
        if tuple(self.images.shape) != (n, 3, self.size, self.size) or len(self.labels) != n or len(self.codes) != n:
            raise ValueError(f"ImageSet of {self.source}: images {tuple(self.images.shape)}, {n} names, "
                             f"{len(self.labels)} labels, {len(self.codes)} codes and size {self.size} do not agree")

    def __len__(self) -> int:
        return len(self.names)

    def class_counts(self) -> dict[str, int]:
        """Images per label, most frequent first (ties by name); unlabelled images are not counted."""
        counts = Counter(label for label in self.labels if label is not None)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def code_counts(self) -> dict[str, int]:
        """Images per code (the data set's own spelling), most frequent first (ties by name)."""
        counts = Counter(code for code in self.codes if code is not None)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def class_names(self) -> list[str]:
        """The classes present, numbered by position: :func:`gan.data.labels.class_order` of the labels."""
        return class_order(self.labels)

    def summary(self) -> str:
        """One line: count, size, layout and split, class counts, unlabelled and skipped counts, source."""
        classes = ", ".join(f"{k} {v}" for k, v in self.class_counts().items()) or "none"
        unlabelled = sum(label is None for label in self.labels)
        split = f"/{self.split}" if self.split else ""
        return (f"{len(self)} images {self.size}px, layout {self.layout}{split}; classes: {classes}; "
                f"unlabelled {unlabelled}; skipped {len(self.skipped)}; from {self.source}")


_SYNTHETIC_NAME = re.compile(r"^SYN_\d{7}\.png$")


def _warn_if_unfinished_synthetic_set(source: Path, listing: Listing) -> None:
    """Warn when ``source`` is a set ``gan.synthesize`` did not finish: its manifest says so, or it holds
    the command's ``SYN_*.png`` images in class folders without a manifest (an older writer, interrupted;
    an isic2017 set's ground-truth CSV was written after its last image, so it needs no such guess)."""
    from gan.data.manifest import MANIFEST, set_status

    status = set_status(source)
    if status == "incomplete":
        warnings.warn(f"{source}: its {MANIFEST} marks the set incomplete: gan.synthesize did not finish it "
                      f"(interrupted?), so only part of its images are here; rerun gan.synthesize with --overwrite",
                      DataWarning, stacklevel=3)
    elif status is None and listing.layout in ("imagefolder", "folder") and not (source / MANIFEST).exists() and \
            any(_SYNTHETIC_NAME.match(e.path.name) for e in listing.entries):
        warnings.warn(f"{source}: holds gan.synthesize images (SYN_*.png) but no {MANIFEST}: the set may be "
                      f"incomplete (an interrupted run)", DataWarning, stacklevel=3)


def load_dataset(path: str | os.PathLike | DataConfig, size: int = 64, layout: str = "auto",
                 split: str | None = None, cache_dir: str | os.PathLike | None = None,
                 progress: bool = True, workers: int | None = None,
                 labels: str | os.PathLike | None = None) -> ImageSet:
    """Load a data set folder as uint8 tensors, decoding each image at most once (then cached).

    Layouts (detected from the folder, or forced with ``layout``); labels are canonical class names
    (:mod:`gan.data.labels`), codes the data set's own (``ImageSet.codes``):

    - "isic2017": the ISIC 2017 challenge: ``ISIC-2017_{Training,Validation,Test_v2}_Data/*.jpg``
      (or ``.png``; any ids, e.g. ``SYN_0000001``) and ``ISIC-2017_*_Part3_GroundTruth.csv`` beside
      them; labels "melanoma", "seborrheic_keratosis" or "nevus", code the column that is 1
      ("neither" for nevus). ``path`` is the folder holding both, or one ``*_Data`` folder.
    - "isic-archive": images with a JSON file each (label: ``meta.clinical.diagnosis``, code:
      ``meta.clinical.benign_malignant``) or an isic-cli ``metadata.csv`` (``isic_id``; label:
      ``diagnosis_3``, else ``diagnosis``; code: ``diagnosis_1``, else ``benign_malignant``,
      lowercased). Diagnoses outside the vocabulary keep their slug ("lentigo NOS" -> "lentigo_nos").
    - "ham10000": ``HAM10000_metadata.csv`` (code: ``dx``, label: ``dx`` in the vocabulary,
      e.g. ``bkl`` -> "benign_keratosis") and ``HAM10000_images/`` or ``HAM10000_images_part_1/``, ``_part_2/``.
    - "imagefolder": one subfolder per class, images in it (or below it), as torchvision's
      ``ImageFolder`` reads it; detected when the folder holds no images itself and every
      subfolder holds some. Label: the folder name in the vocabulary, else the folder name; code:
      the folder name.
    - "folder": every image below ``path``, recursively, unlabelled.

    Any layout takes ``labels``: a CSV file with ``image`` and ``label`` columns that replaces the
    layout's labels (:func:`gan.data.layouts.apply_labels_csv`).

    Images are centre-cropped to a square and resized with PIL's LANCZOS filter (see
    :mod:`gan.data.decode`). Files that cannot be used (corrupt, truncated, empty, not images,
    decompression bombs, smaller than ``size``, dangling symlinks, symlink loops, or without
    matching metadata) are skipped, listed in ``ImageSet.skipped`` and reported with a
    :class:`DataWarning`. A file that could not be read for a passing reason (permissions, an I/O
    error) is skipped too, but tried again on the next load rather than remembered by the cache.

    Args:
        path: the data set's folder, or a :class:`DataConfig` (then leave the arguments from
            ``size`` to ``cache_dir`` and ``labels`` at their defaults).
        size: side of the output squares in pixels, one of ``SIZES``.
        layout: "auto" or one of ``LAYOUTS``.
        split: isic2017 only: "train", "validation" or "test" (None: "train", or the folder's own split).
        cache_dir: cache folder (None: ``$LESIONGAN_CACHE``, else ``~/.cache/lesiongan``). Dead
            writers' temporary files in it are removed when it is opened.
        progress: show a progress bar on stderr while decoding.
        workers: decoding threads (None: the CPUs this process may use, at most 8).
        labels: a labels CSV file (see above); part of the cache key.

    Returns:
        The :class:`ImageSet`.

    Raises:
        ValueError: naming the folder or file, when the folder is missing or empty, the layout or
            split does not fit it, a metadata or labels file is unreadable or wrong, no image is
            usable, or the cache folder cannot be used (checked before any image is decoded).
    """
    if isinstance(path, DataConfig):
        if (size, layout, split, cache_dir, labels) != (64, "auto", None, None, None):
            raise ValueError("pass either a DataConfig or size/layout/split/cache_dir/labels, not both")
        cfg = path
        if cfg.path is None:
            raise ValueError("the data config names no folder (--data)")
    else:
        cfg = DataConfig(os.fspath(path), size=size, layout=layout, split=split,
                         labels=None if labels is None else os.fspath(labels),
                         cache_dir=None if cache_dir is None else os.fspath(cache_dir))
    source = Path(cfg.path).expanduser().resolve()
    labels_path = Path(cfg.labels).expanduser().resolve() if cfg.labels else None
    if labels_path is not None and not labels_path.is_file():
        raise ValueError(f"{labels_path}: no such labels file")
    folder = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache.default_cache_dir()
    cache.open_folder(folder)
    listing = scan(source, cfg.layout, cfg.split, labels_path)
    _warn_if_unfinished_synthetic_set(source, listing)
    key = cache.cache_key(_key_doc(source, listing, cfg.size, labels_path))
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
        if doc.get("retry"):
            images, doc, changed = _retry(source, listing, images, doc, cfg.size, progress, workers)
            if changed:
                _write_cache(cache_path, images, doc, key)
    else:
        cache.check_writable(folder)  # before decoding, not after
        images, doc = _build(source, listing, cfg.size, progress, workers)
        _write_cache(cache_path, images, doc, key)
        from_cache = False

    ds = ImageSet(images=images, names=doc["names"], labels=doc["labels"], codes=doc["codes"],
                  layout=listing.layout, source=str(source), size=cfg.size, split=listing.split,
                  skipped=[(n, r) for n, r in doc["skipped"]], cache_path=str(cache_path),
                  info={**doc["info"], "from_cache": from_cache})
    if ds.skipped:
        shown = "; ".join(f"{n} ({r})" for n, r in ds.skipped[:_SHOW_SKIPPED])
        more = f"; and {len(ds.skipped) - _SHOW_SKIPPED} more" if len(ds.skipped) > _SHOW_SKIPPED else ""
        warnings.warn(f"{source}: skipped {len(ds.skipped)} of {len(ds) + len(ds.skipped)} images: {shown}{more}",
                      DataWarning, stacklevel=2)
    if cfg.subset:
        from gan.data.subset import select

        ds = select(ds, cfg.subset)
    return ds


def _key_doc(source: Path, listing: Listing, size: int, labels_path: Path | None) -> dict[str, Any]:
    """Everything a cached result depends on; its hash names the cache file."""
    files = [e.path for e in listing.entries] + listing.metadata_files
    stats = []
    for p in files:
        try:
            st = p.stat()
        except OSError as e:  # listed a moment ago: it changed under us
            raise ValueError(f"{p}: {e.strerror or e} (the file changed while the data set was read)") from None
        stats.append([os.path.relpath(p, source), st.st_size, st.st_mtime_ns])
    return {
        "format": cache.CACHE_FORMAT, "source": str(source), "layout": listing.layout, "split": listing.split,
        "size": size, "preprocessing": decode.PREPROCESSING, "pillow": PIL.__version__,
        "max_image_pixels": Image.MAX_IMAGE_PIXELS, "labels_csv": None if labels_path is None else str(labels_path),
        "files": stats, "names": [[e.name, e.label, e.code] for e in listing.entries],
        "listing_skipped": listing.skipped,
    }


def _write_cache(cache_path: Path, images: torch.Tensor, doc: dict[str, Any], key: str) -> None:
    """Write the cache file; a failure (disk full) costs only the cache, so it warns."""
    try:
        cache.write_cache(cache_path, images, {**doc, "format": cache.CACHE_FORMAT, "key": key})
    except OSError as e:  # gan.fileio's WriteError names the file and says nothing was left
        why = str(e) if isinstance(e, WriteError) else f"{cache_path}: {e}"
        warnings.warn(f"cache not written: {why}; continuing without it", DataWarning, stacklevel=3)


def _decode(entries: list, size: int, progress: bool, workers: int | None,
            desc: str) -> tuple[torch.Tensor, list[tuple[str, bool] | None]]:
    """Decode ``entries`` in parallel: the images (rows of failures left unset) and, per entry,
    None or (reason, transient); transient: a passing read failure, worth trying again."""
    images = torch.empty((len(entries), 3, size, size), dtype=torch.uint8)

    def work(i: int) -> tuple[str, bool] | None:
        try:
            images[i] = torch.from_numpy(decode.decode_image(entries[i].path, size)).permute(2, 0, 1)
        except decode.Unusable as e:
            return str(e), isinstance(e, decode.Unreadable)
        return None

    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        workers = min(8, cpus)
    # decode_image refuses bombs itself; silence Pillow's duplicate warning meanwhile. The filter
    # is process-wide, so it is set once here around the pool, not in each thread.
    with warnings.catch_warnings(), ThreadPoolExecutor(max(1, workers)) as pool:
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        reasons = list(tqdm(pool.map(work, range(len(entries))), total=len(entries), disable=not progress,
                            file=sys.stderr, desc=desc, unit="img"))
    return images, reasons


def _document(source: Path, listing: Listing, size: int, images: torch.Tensor, keep: list[int],
              failed: dict[int, tuple[str, bool]]) -> tuple[torch.Tensor, dict[str, Any]]:
    """The cache document for ``listing``: ``images`` holds the rows of the entries ``keep`` (in
    order); ``failed`` gives the others' reasons by entry index."""
    entries = listing.entries
    skipped = listing.skipped + [(entries[i].name, r) for i, (r, _) in sorted(failed.items())]
    if not keep:
        shown = "; ".join(f"{n} ({r})" for n, r in skipped[:_SHOW_SKIPPED])
        raise ValueError(f"{source}: no usable images ({len(skipped)} skipped: {shown})")
    doc = {
        "names": [entries[i].name for i in keep], "labels": [entries[i].label for i in keep],
        "codes": [entries[i].code for i in keep], "skipped": skipped, "size": size,
        # Passing read failures: kept out of the cached decision, tried again on the next load.
        "retry": [entries[i].name for i, (_, transient) in sorted(failed.items()) if transient],
        "info": {"resize": decode.RESIZE, "preprocessing": decode.PREPROCESSING,
                 "label_field": listing.label_field, "code_field": listing.code_field, "pillow": PIL.__version__},
    }
    return images, doc


def _build(source: Path, listing: Listing, size: int, progress: bool,
           workers: int | None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Decode every listed image; returns the kept images and the cache document."""
    images, reasons = _decode(listing.entries, size, progress, workers, f"decoding {source.name} at {size}px")
    keep = [i for i, r in enumerate(reasons) if r is None]
    failed = {i: r for i, r in enumerate(reasons) if r is not None}
    if keep and len(keep) < len(images):
        images = images[keep]
    return _document(source, listing, size, images, keep, failed)


def _retry(source: Path, listing: Listing, images: torch.Tensor, doc: dict[str, Any], size: int, progress: bool,
           workers: int | None) -> tuple[torch.Tensor, dict[str, Any], bool]:
    """Try again the files a cached result could not read for a passing reason; returns the
    images, the document, and whether anything changed (then the cache is rewritten)."""
    index = {e.name: i for i, e in enumerate(listing.entries)}
    todo = [index[n] for n in doc["retry"] if n in index]
    new, reasons = _decode([listing.entries[i] for i in todo], size, progress, workers,
                           f"retrying {len(todo)} unread file(s) of {source.name}")
    if all(r is not None and r[1] for r in reasons):
        return images, doc, False  # all still unreadable for a passing reason: nothing to record
    rows = {index[n]: images[j] for j, n in enumerate(doc["names"])}
    # doc["skipped"] is the listing's skips, then the decoding failures (see _document).
    failed = {index[n]: (r, False) for n, r in doc["skipped"][len(listing.skipped):]}
    for j, (i, r) in enumerate(zip(todo, reasons, strict=True)):
        if r is None:
            rows[i] = new[j]
            failed.pop(i, None)
        else:
            failed[i] = r
    keep = sorted(rows)
    return (*_document(source, listing, size, torch.stack([rows[i] for i in keep]), keep, failed), True)
