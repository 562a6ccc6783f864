"""Find a data set's images and labels, for each folder layout LesionGAN reads.

Every reader returns a :class:`Listing`: the images to decode (name, file, label, code), what it had
to leave out and why, and the metadata files the labels came from (they are part of the cache key).
Labels are canonical class names (:mod:`gan.data.labels`); codes are the data set's own spelling.
Nothing here decodes an image.
"""
from __future__ import annotations

import csv
import errno
import json
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from gan.data.labels import canonical, class_name_problem, slug

LAYOUTS = ("isic2017", "isic-archive", "ham10000", "imagefolder", "folder")
SPLITS = ("train", "validation", "test")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

_ISIC2017_PART = {"train": "Training", "validation": "Validation", "test": "Test_v2"}
_ISIC2017_DATA_DIR = re.compile(r"^ISIC-2017_(Training|Validation|Test_v2)_Data$")
_HAM_CSV = "HAM10000_metadata.csv"
_HAM_IMAGE_DIR = re.compile(r"^HAM10000_images(_part_[12])?$", re.IGNORECASE)
_ARCHIVE_CSV = "metadata.csv"
# isic-cli's metadata.csv: the label is the specific diagnosis (diagnosis_3 in the archive's current
# taxonomy, "diagnosis" in older isic-cli files), the code is benign/malignant (diagnosis_1, or the
# older benign_malignant); in each row the first non-empty column of each pair counts.
ARCHIVE_LABEL_COLUMNS = ("diagnosis_3", "diagnosis")
ARCHIVE_CODE_COLUMNS = ("diagnosis_1", "benign_malignant")
ISIC2017_NEITHER = "neither"  # the ISIC 2017 code of a nevus: neither ground-truth column is 1


@dataclass(frozen=True)
class Entry:
    """One image to decode: its id, its file, its canonical label and the data set's own code
    (None: unlabelled)."""

    name: str
    path: Path
    label: str | None
    code: str | None = None


@dataclass(frozen=True)
class Listing:
    """What a layout reader found in a folder (before any image is decoded)."""

    layout: str
    split: str | None
    entries: list[Entry]
    skipped: list[tuple[str, str]]
    metadata_files: list[Path]
    label_field: str | None
    code_field: str | None = None


def scan(path: Path, layout: str = "auto", split: str | None = None, labels: Path | None = None) -> Listing:
    """List the images of the data set at ``path`` with their labels.

    Args:
        path: the data set's folder.
        layout: one of ``LAYOUTS``, or "auto" to detect it from the folder's contents.
        split: "train", "validation" or "test" for the isic2017 layout (None: "train", or the
            split folder ``path`` names); must be None for the other layouts, which have no splits.
        labels: a CSV file with ``image`` and ``label`` columns whose labels replace the layout's
            (see :func:`apply_labels_csv`); None: the layout's own labels.

    Returns:
        The listing; images that metadata does not cover (and metadata rows without an image),
        dangling symlinks, symlink loops and files that cannot be opened are in ``skipped`` with
        the reason.

    Raises:
        ValueError: naming the folder or file, when the folder is missing or holds no images, when
            a forced layout does not match, or when a metadata or labels file cannot be read or
            names images that are not there.
    """
    if not path.exists():
        raise ValueError(f"{path}: no such folder")
    if not path.is_dir():
        raise ValueError(f"{path}: not a folder")
    if layout == "auto":  # most specific first; any folder of images is a "folder"
        layout = next((name for name in ("isic2017", "ham10000", "isic-archive", "imagefolder")
                       if _mismatch(name, path) is None), "folder")
    elif layout not in LAYOUTS:
        raise ValueError(f"{path}: unknown layout {layout!r}; expected 'auto' or one of {', '.join(LAYOUTS)}")
    else:
        reason = _mismatch(layout, path)
        if reason is not None:
            raise ValueError(f"{path}: does not match layout {layout!r} ({reason})")
    if split is not None and split not in SPLITS:
        raise ValueError(f"{path}: unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    if split is not None and layout != "isic2017":
        raise ValueError(f"{path}: split={split!r} applies only to the isic2017 layout; this is {layout!r}")
    listing = _READERS[layout](path, split)
    if not listing.entries and not listing.skipped:
        raise ValueError(f"{path}: no image files found (layout {layout!r})")
    if labels is not None:
        listing = apply_labels_csv(listing, path, labels)
    return _drop_unopenable(listing)


def _mismatch(layout: str, path: Path) -> str | None:
    """Why ``path`` is not in ``layout`` (None: it is)."""
    if layout == "isic2017":
        if _ISIC2017_DATA_DIR.match(path.name) or any(
                _ISIC2017_DATA_DIR.match(p.name) and p.is_dir() for p in path.iterdir()):
            return None
        return "no ISIC-2017_{Training,Validation,Test_v2}_Data folder"
    if layout == "ham10000":
        return None if (path / _HAM_CSV).is_file() else f"no {_HAM_CSV}"
    if layout == "isic-archive":
        return None if _archive_source(path) else \
            f"neither a {_ARCHIVE_CSV} with an isic_id column nor JSON metadata beside the images"
    if layout == "imagefolder":
        if _image_files(path):
            return "image files directly in the folder; an imagefolder holds them in one subfolder per class"
        classes = _class_folders(path)
        if not classes:
            return "no class subfolders"
        empty = [d.name for d in classes if not _has_image(d)]
        if empty:
            return f"subfolder(s) without images: {', '.join(empty[:5])}"
    return None


def _hidden(name: str) -> bool:
    # Dot files include macOS "._ISIC_0000000.jpg" resource forks, which are not images.
    return name.startswith(".")


def _is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES and not _hidden(name)


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix), sorted. Dangling symlinks and symlink loops
    are included, so that :func:`_drop_unopenable` reports them rather than they vanish."""
    return sorted(p for p in folder.iterdir() if _is_image_name(p.name) and not p.is_dir())


def _class_folders(path: Path) -> list[Path]:
    """The subfolders of an imagefolder (symlinked folders included, hidden ones not), sorted by name."""
    return sorted((p for p in path.iterdir() if p.is_dir() and not _hidden(p.name)), key=lambda p: p.name)


def _has_image(folder: Path) -> bool:
    return any(_is_image_name(f) for _, _, files in os.walk(folder, followlinks=True) for f in files)


def _folder_id(folder: Path) -> tuple[int, int] | None:
    """The real folder a path leads to (device, inode), or None when it cannot be stat-ed."""
    try:
        st = folder.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _walk_images(root: Path, base: Path, skipped: list[tuple[str, str]],
                 claimed: dict[tuple[int, int], tuple[str, str]] | None = None,
                 owner: str = "") -> list[tuple[str, Path]]:
    """(name, file) of every image below ``root``, names relative to ``base``, following symlinked
    folders (as torchvision's ImageFolder does) but reading each real folder once: a symlink back
    to a folder already read (a loop) is skipped with the reason.

    ``claimed`` maps real folders (:func:`_folder_id`) to (owner, what it is: ``"the data root"``,
    ``"the class folder 'nevus'"``); a folder reached here that another owner claimed is refused (its
    images would be filed under two classes), and each folder read is claimed for ``owner``."""
    found, seen = [], set()
    for root_dir, dirs, files in os.walk(root, followlinks=True):
        here = Path(root_dir)
        try:
            st = here.stat()
        except OSError as e:
            skipped.append((here.relative_to(base).as_posix(), _unopenable_reason(here, e)))
            dirs[:] = []
            continue
        if (st.st_dev, st.st_ino) in seen:
            skipped.append((here.relative_to(base).as_posix(), "symlink loop: a folder already read"))
            dirs[:] = []
            continue
        if claimed is not None:
            name = here.relative_to(base).as_posix()
            other, what = claimed.setdefault((st.st_dev, st.st_ino), (owner, repr(name)))
            if other != owner:
                raise ValueError(f"{base}: {name!r} and {what} are the same folder (a link), so its images would be "
                                 f"filed under two classes; remove or replace the link")
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        found += [((here / f).relative_to(base).as_posix(), here / f) for f in sorted(files) if _is_image_name(f)]
    return sorted(found)


def _unopenable_reason(path: Path, e: OSError) -> str:
    if e.errno == errno.ELOOP:
        return "symlink loop"
    if e.errno == errno.ENOENT and path.is_symlink():
        try:
            return f"dangling symlink (to {os.readlink(path)})"
        except OSError:
            return "dangling symlink"
    return f"cannot open ({e.strerror or e})"


def _drop_unopenable(listing: Listing) -> Listing:
    """Move entries whose file cannot be stat-ed (dangling symlink, symlink loop, vanished) or is
    not a regular file to ``skipped``, with the reason."""
    keep, skipped = [], list(listing.skipped)
    for e in listing.entries:
        try:
            mode = e.path.stat().st_mode
        except OSError as err:
            skipped.append((e.name, _unopenable_reason(e.path, err)))
            continue
        if not stat.S_ISREG(mode):
            skipped.append((e.name, "not a regular file"))
            continue
        keep.append(e)
    if len(keep) == len(listing.entries):
        return listing
    return replace(listing, entries=keep, skipped=skipped)


def _by_stem(files: list[Path], skipped: list[tuple[str, str]]) -> dict[str, Path]:
    """Map image id (file stem) to file; a second file with the same id is skipped."""
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            skipped.append((p.stem, f"duplicate of {out[p.stem]} ({p})"))
        else:
            out[p.stem] = p
    return out


def _read_csv(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of a CSV file; a ValueError naming the file if it is unreadable."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = list(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ValueError(f"{path}: cannot read CSV ({e})") from e
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(f"{path}: CSV lacks column(s) {', '.join(missing)} (has {', '.join(header)})")
    return header, rows


Label = tuple[str | None, str | None]  # (canonical label, the data set's code)


def _labels_from_rows(rows: list[dict[str, str]], id_column: str, label_of: Callable[[dict], Label],
                      csv_path: Path, skipped: list[tuple[str, str]]) -> tuple[dict[str, Label], set[str]]:
    """(label, code) by image id from CSV rows; bad or repeated rows are skipped.

    Returns the labels and the ids whose row was rejected (their images are not also reported as
    having no row).
    """
    labels: dict[str, Label] = {}
    rejected: set[str] = set()
    for line, row in enumerate(rows, start=2):
        name = (row.get(id_column) or "").strip()
        if not name:
            skipped.append((f"{csv_path.name}:{line}", f"row without {id_column}"))
        elif name in labels or name in rejected:
            skipped.append((name, f"repeated row in {csv_path.name} (line {line}); the first is used"))
        else:
            try:
                labels[name] = label_of(row)
            except (TypeError, ValueError) as e:
                skipped.append((name, f"bad labels in {csv_path.name} line {line}: {e}"))
                rejected.add(name)
    return labels, rejected


def _match(images: dict[str, Path], labels: dict[str, Label], rejected: set[str], meta_name: str,
           skipped: list[tuple[str, str]]) -> list[Entry]:
    """Entries for images that have metadata; both kinds of mismatch are skipped."""
    skipped += [(n, f"listed in {meta_name} but no image file") for n in sorted(labels.keys() - images.keys())]
    skipped += [(n, f"no row in {meta_name}") for n in sorted(images.keys() - labels.keys() - rejected)]
    return [Entry(n, images[n], *labels[n]) for n in sorted(images.keys() & labels.keys())]


def _vocabulary_label(text: str | None) -> Label:
    """(canonical label, code) of a data set's diagnosis text: the vocabulary class it names, else
    its slug; the code is the text as the data set spells it."""
    text = (text or "").strip()
    if not text:
        return None, None
    return canonical(text) or slug(text) or None, text


def _isic2017_label(row: dict[str, str]) -> Label:
    mel, sk = float(row["melanoma"]), float(row["seborrheic_keratosis"])
    if not {mel, sk} <= {0.0, 1.0}:
        raise ValueError(f"melanoma={row['melanoma']}, seborrheic_keratosis={row['seborrheic_keratosis']} are not 0/1")
    if mel and sk:
        raise ValueError("both melanoma and seborrheic_keratosis are 1")
    if mel:
        return "melanoma", "melanoma"
    return ("seborrheic_keratosis", "seborrheic_keratosis") if sk else ("nevus", ISIC2017_NEITHER)


def _list_isic2017(path: Path, split: str | None) -> Listing:
    m = _ISIC2017_DATA_DIR.match(path.name)
    if m:  # pointed straight at one split's folder; its ground truth sits beside it
        folder_split = next(s for s, part in _ISIC2017_PART.items() if part == m.group(1))
        if split is not None and split != folder_split:
            raise ValueError(f"{path}: split={split!r} given, but this is the {folder_split!r} folder")
        split, data_dir, root = folder_split, path, path.parent
    else:
        split = split or "train"
        root, data_dir = path, path / f"ISIC-2017_{_ISIC2017_PART[split]}_Data"
        if not data_dir.is_dir():
            raise ValueError(f"{path}: no {data_dir.name} folder for split {split!r}")
    csv_path = root / f"ISIC-2017_{_ISIC2017_PART[split]}_Part3_GroundTruth.csv"
    if not csv_path.is_file():
        raise ValueError(f"{data_dir}: ground truth {csv_path} not found")
    skipped: list[tuple[str, str]] = []
    _, rows = _read_csv(csv_path, ("image_id", "melanoma", "seborrheic_keratosis"))
    labels, rejected = _labels_from_rows(rows, "image_id", _isic2017_label, csv_path, skipped)
    # The challenge's training folder also holds ISIC_*_superpixels.png masks: not lesion images.
    files = [p for p in _image_files(data_dir) if not p.stem.endswith("_superpixels")]
    entries = _match(_by_stem(files, skipped), labels, rejected, csv_path.name, skipped)
    return Listing("isic2017", split, entries, skipped, [csv_path], "melanoma/seborrheic_keratosis",
                   f"the ground-truth column that is 1, or {ISIC2017_NEITHER!r}")


def _list_ham10000(path: Path, split: str | None) -> Listing:
    dirs = sorted(p for p in path.iterdir() if p.is_dir() and _HAM_IMAGE_DIR.match(p.name))
    if not dirs:
        raise ValueError(f"{path}: no HAM10000_images or HAM10000_images_part_1/_part_2 folder")
    csv_path = path / _HAM_CSV
    skipped: list[tuple[str, str]] = []
    _, rows = _read_csv(csv_path, ("image_id", "dx"))
    labels, rejected = _labels_from_rows(rows, "image_id", lambda r: _vocabulary_label(r["dx"]), csv_path, skipped)
    images = _by_stem([p for d in dirs for p in _image_files(d)], skipped)
    entries = _match(images, labels, rejected, csv_path.name, skipped)
    return Listing("ham10000", split, entries, skipped, [csv_path], "dx", "dx")


def _archive_source(path: Path) -> str | None:
    """How an ISIC-archive folder carries metadata: "csv" (isic-cli), "json" (one per image) or None."""
    csv_path = path / _ARCHIVE_CSV
    if csv_path.is_file():
        try:
            with csv_path.open(newline="", encoding="utf-8-sig") as f:
                header = next(csv.reader(f), [])
        except (OSError, UnicodeDecodeError, csv.Error):
            header = []
        if "isic_id" in header:
            return "csv"
    if any(p.with_suffix(".json").is_file() for p in _image_files(path)):
        return "json"
    return None


def _first(row: dict[str, str], columns: tuple[str, ...]) -> str | None:
    """The first non-empty value of ``columns`` in ``row``."""
    return next((v.strip() for c in columns if (v := row.get(c)) and v.strip()), None)


def _archive_label(diagnosis: str | None, benign_malignant: str | None) -> Label:
    """The ISIC archive's (label, code): the specific diagnosis in the vocabulary, benign/malignant
    (lowercase) as the code."""
    code = benign_malignant.strip().lower() if benign_malignant and benign_malignant.strip() else None
    return _vocabulary_label(diagnosis)[0], code


def _json_label(path: Path) -> Label:
    """(label, code) from ``meta.clinical.diagnosis`` and ``meta.clinical.benign_malignant`` of an
    ISIC archive JSON file (None when absent or null)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise ValueError("its JSON is nested too deep to read") from None
    try:
        clinical = doc.get("meta", {}).get("clinical", {})
        diagnosis, bm = clinical.get("diagnosis"), clinical.get("benign_malignant")
    except AttributeError:
        raise ValueError("meta.clinical is not a JSON object") from None
    return _archive_label(None if diagnosis is None else str(diagnosis), None if bm is None else str(bm))


def _list_isic_archive(path: Path, split: str | None) -> Listing:
    skipped: list[tuple[str, str]] = []
    images = _by_stem(_image_files(path), skipped)
    if _archive_source(path) == "csv":
        csv_path = path / _ARCHIVE_CSV
        header, rows = _read_csv(csv_path, ("isic_id",))
        def label_of(row: dict[str, str]) -> Label:
            return _archive_label(_first(row, ARCHIVE_LABEL_COLUMNS), _first(row, ARCHIVE_CODE_COLUMNS))

        labels, rejected = _labels_from_rows(rows, "isic_id", label_of, csv_path, skipped)
        entries = _match(images, labels, rejected, csv_path.name, skipped)
        label_field = "/".join(c for c in ARCHIVE_LABEL_COLUMNS if c in header) or None
        code_field = "/".join(c for c in ARCHIVE_CODE_COLUMNS if c in header) or None
        return Listing("isic-archive", split, entries, skipped, [csv_path], label_field, code_field)
    entries, json_files = [], []
    for name, image in images.items():
        meta = image.with_suffix(".json")
        if not meta.is_file():
            skipped.append((name, f"no metadata file {meta.name}"))
            continue
        try:
            entries.append(Entry(name, image, *_json_label(meta)))
            json_files.append(meta)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            skipped.append((name, f"unreadable metadata {meta.name}: {e}"))
    skipped += [(p.stem, f"metadata {p.name} but no image file")
                for p in sorted(path.glob("*.json")) if p.stem not in images and not _hidden(p.name)]
    return Listing("isic-archive", split, entries, skipped, json_files, "meta.clinical.diagnosis",
                   "meta.clinical.benign_malignant")


def _list_imagefolder(path: Path, split: str | None) -> Listing:
    entries: list[Entry] = []
    skipped: list[tuple[str, str]] = []
    folders = _class_folders(path)
    # Each real folder belongs to one class: a link to the root or to another class (or inside one, to
    # either) would file the same images under several classes. Real class folders claim theirs first,
    # so that the message names the link.
    claimed = {_folder_id(path): ("", "the data root")}
    for folder in sorted(folders, key=lambda f: f.is_symlink()):
        why = class_name_problem(folder.name)
        if why is not None:
            raise ValueError(f"{path}: the class folder {folder.name!r} cannot be a class name: it {why}; rename it")
        claimed.setdefault(_folder_id(folder), (folder.name, f"the class folder {folder.name!r}"))
    for folder in folders:
        label = canonical(folder.name) or folder.name
        found = _walk_images(folder, path, skipped, claimed, folder.name)
        entries += [Entry(name, p, label, folder.name) for name, p in found]
    return Listing("imagefolder", split, entries, skipped, [], "class folder (in the vocabulary)", "class folder")


def _list_folder(path: Path, split: str | None) -> Listing:
    skipped: list[tuple[str, str]] = []
    entries = [Entry(name, p, None) for name, p in _walk_images(path, path, skipped)]
    return Listing("folder", split, entries, skipped, [], None)


_READERS: dict[str, Callable[[Path, str | None], Listing]] = {
    "isic2017": _list_isic2017, "isic-archive": _list_isic_archive,
    "ham10000": _list_ham10000, "imagefolder": _list_imagefolder, "folder": _list_folder,
}

_SHOW = 5


def apply_labels_csv(listing: Listing, root: Path, csv_path: Path) -> Listing:
    """Replace a listing's labels with those of a researcher's CSV file (``image,label`` columns).

    An ``image`` value names an image by its id as the listing has it (for the folder layouts the
    path relative to ``root``, e.g. ``melanoma/x.png``), by that path without its suffix, or by its
    file name or stem alone when that is unique. A ``label`` is mapped through
    :func:`gan.data.labels.canonical` when it names a vocabulary class and kept as written
    otherwise; the code is the label as written; an empty label leaves the image unlabelled.
    Images without a row are skipped with the reason.

    Raises:
        ValueError: naming the CSV file, when it cannot be read, lacks a column, names an image
            that is not in the listing (or more than one), or lists an image twice.
    """
    _, rows = _read_csv(csv_path, ("image", "label"))
    exact = {e.name: i for i, e in enumerate(listing.entries)}
    loose: dict[str, set[int]] = {}
    for i, e in enumerate(listing.entries):
        for key in (str(PurePosixPath(e.name).with_suffix("")), e.path.name, e.path.stem):
            loose.setdefault(key, set()).add(i)
    problems: list[str] = []
    chosen: dict[int, tuple[int, Label]] = {}  # entry index -> (CSV line, label)
    for line, row in enumerate(rows, start=2):
        image = (row.get("image") or "").strip()
        if not image:
            problems.append(f"line {line} has no image")
            continue
        i = exact.get(image)
        if i is None:
            hits = loose.get(image, set())
            if len(hits) > 1:
                names = ", ".join(sorted(listing.entries[j].name for j in hits)[:_SHOW])
                problems.append(f"line {line}: {image!r} matches {len(hits)} images ({names}); "
                                f"give the path relative to {root}")
                continue
            if not hits:
                problems.append(f"line {line}: no image {image!r} in {root}")
                continue
            i = next(iter(hits))
        if i in chosen:
            problems.append(f"line {line}: {listing.entries[i].name} already labelled on line {chosen[i][0]}")
            continue
        text = (row.get("label") or "").strip()
        why = None if not text or canonical(text) else class_name_problem(text)
        if why is not None:
            problems.append(f"line {line}: the label {text!r} cannot be a class name: it {why}")
            continue
        chosen[i] = (line, (canonical(text) or text, text) if text else (None, None))
    if problems:
        more = f"; and {len(problems) - _SHOW} more" if len(problems) > _SHOW else ""
        raise ValueError(f"{csv_path}: {'; '.join(problems[:_SHOW])}{more}")
    entries = [replace(e, label=chosen[i][1][0], code=chosen[i][1][1])
               for i, e in enumerate(listing.entries) if i in chosen]
    skipped = listing.skipped + [(e.name, f"no row in {csv_path.name}")
                                 for i, e in enumerate(listing.entries) if i not in chosen]
    return replace(listing, entries=entries, skipped=skipped, metadata_files=[*listing.metadata_files, csv_path],
                   label_field=f"{csv_path.name} label (in the vocabulary)", code_field=f"{csv_path.name} label")
