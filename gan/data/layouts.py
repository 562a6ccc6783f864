"""Find a data set's images and labels, for each folder layout LesionGAN reads.

Every reader returns a :class:`Listing`: the images to decode (name, file, label), what it had to
leave out and why, and the metadata files the labels came from (they are part of the cache key).
Nothing here decodes an image.
"""
from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LAYOUTS = ("isic2017", "isic-archive", "ham10000", "folder")
SPLITS = ("train", "validation", "test")
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

_ISIC2017_PART = {"train": "Training", "validation": "Validation", "test": "Test_v2"}
_ISIC2017_DATA_DIR = re.compile(r"^ISIC-2017_(Training|Validation|Test_v2)_Data$")
_HAM_CSV = "HAM10000_metadata.csv"
_HAM_IMAGE_DIR = re.compile(r"^HAM10000_images(_part_[12])?$", re.IGNORECASE)
_ARCHIVE_CSV = "metadata.csv"
# isic-cli's metadata.csv: the first of these columns present gives the label.
ARCHIVE_LABEL_COLUMNS = ("diagnosis", "diagnosis_1", "benign_malignant")


@dataclass(frozen=True)
class Entry:
    """One image to decode: its id, its file and its label (None: unlabelled)."""

    name: str
    path: Path
    label: str | None


@dataclass(frozen=True)
class Listing:
    """What a layout reader found in a folder (before any image is decoded)."""

    layout: str
    split: str | None
    entries: list[Entry]
    skipped: list[tuple[str, str]]
    metadata_files: list[Path]
    label_field: str | None


def scan(path: Path, layout: str = "auto", split: str | None = None) -> Listing:
    """List the images of the data set at ``path`` with their labels.

    Args:
        path: the data set's folder.
        layout: one of ``LAYOUTS``, or "auto" to detect it from the folder's contents.
        split: "train", "validation" or "test" for the isic2017 layout (None: "train", or the
            split folder ``path`` names); must be None for the other layouts, which have no splits.

    Returns:
        The listing; images that metadata does not cover (and metadata rows without an image)
        are in ``skipped`` with the reason.

    Raises:
        ValueError: naming the folder or file, when the folder is missing or holds no images, when
            a forced layout does not match, or when a metadata file cannot be read.
    """
    if not path.exists():
        raise ValueError(f"{path}: no such folder")
    if not path.is_dir():
        raise ValueError(f"{path}: not a folder")
    if layout == "auto":  # most specific first; any folder of images is a "folder"
        layout = next((name for name in ("isic2017", "ham10000", "isic-archive") if _mismatch(name, path) is None),
                      "folder")
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
    return listing


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
    return None


def _hidden(name: str) -> bool:
    # Dot files include macOS "._ISIC_0000000.jpg" resource forks, which are not images.
    return name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (by suffix), sorted."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(p.name) and p.is_file())


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


def _labels_from_rows(rows: list[dict[str, str]], id_column: str, label_of: Callable[[dict], str | None],
                      csv_path: Path, skipped: list[tuple[str, str]]) -> tuple[dict[str, str | None], set[str]]:
    """Labels by image id from CSV rows; bad or repeated rows are skipped.

    Returns the labels and the ids whose row was rejected (their images are not also reported as
    having no row).
    """
    labels: dict[str, str | None] = {}
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


def _match(images: dict[str, Path], labels: dict[str, str | None], rejected: set[str], meta_name: str,
           skipped: list[tuple[str, str]]) -> list[Entry]:
    """Entries for images that have metadata; both kinds of mismatch are skipped."""
    skipped += [(n, f"listed in {meta_name} but no image file") for n in sorted(labels.keys() - images.keys())]
    skipped += [(n, f"no row in {meta_name}") for n in sorted(images.keys() - labels.keys() - rejected)]
    return [Entry(n, images[n], labels[n]) for n in sorted(images.keys() & labels.keys())]


def _isic2017_label(row: dict[str, str]) -> str:
    mel, sk = float(row["melanoma"]), float(row["seborrheic_keratosis"])
    if not {mel, sk} <= {0.0, 1.0}:
        raise ValueError(f"melanoma={row['melanoma']}, seborrheic_keratosis={row['seborrheic_keratosis']} are not 0/1")
    if mel and sk:
        raise ValueError("both melanoma and seborrheic_keratosis are 1")
    return "melanoma" if mel else "seborrheic_keratosis" if sk else "nevus"


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
    return Listing("isic2017", split, entries, skipped, [csv_path], "melanoma/seborrheic_keratosis")


def _list_ham10000(path: Path, split: str | None) -> Listing:
    dirs = sorted(p for p in path.iterdir() if p.is_dir() and _HAM_IMAGE_DIR.match(p.name))
    if not dirs:
        raise ValueError(f"{path}: no HAM10000_images or HAM10000_images_part_1/_part_2 folder")
    csv_path = path / _HAM_CSV
    skipped: list[tuple[str, str]] = []
    _, rows = _read_csv(csv_path, ("image_id", "dx"))
    labels, rejected = _labels_from_rows(rows, "image_id", lambda r: (r["dx"] or "").strip() or None,
                                         csv_path, skipped)
    images = _by_stem([p for d in dirs for p in _image_files(d)], skipped)
    entries = _match(images, labels, rejected, csv_path.name, skipped)
    return Listing("ham10000", split, entries, skipped, [csv_path], "dx")


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


def _json_diagnosis(path: Path) -> str | None:
    """``meta.clinical.diagnosis`` of an ISIC archive JSON file (None when absent or null)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    try:
        diagnosis = doc.get("meta", {}).get("clinical", {}).get("diagnosis")
    except AttributeError:
        raise ValueError("meta.clinical is not a JSON object") from None
    return None if diagnosis is None else str(diagnosis)


def _list_isic_archive(path: Path, split: str | None) -> Listing:
    skipped: list[tuple[str, str]] = []
    images = _by_stem(_image_files(path), skipped)
    if _archive_source(path) == "csv":
        csv_path = path / _ARCHIVE_CSV
        header, rows = _read_csv(csv_path, ("isic_id",))
        column = next((c for c in ARCHIVE_LABEL_COLUMNS if c in header), None)
        labels, rejected = _labels_from_rows(
            rows, "isic_id", lambda r: ((r[column] or "").strip() or None) if column else None, csv_path, skipped)
        entries = _match(images, labels, rejected, csv_path.name, skipped)
        return Listing("isic-archive", split, entries, skipped, [csv_path], column)
    entries, json_files = [], []
    for name, image in images.items():
        meta = image.with_suffix(".json")
        if not meta.is_file():
            skipped.append((name, f"no metadata file {meta.name}"))
            continue
        try:
            entries.append(Entry(name, image, _json_diagnosis(meta)))
            json_files.append(meta)
        except (OSError, UnicodeDecodeError, ValueError) as e:
            skipped.append((name, f"unreadable metadata {meta.name}: {e}"))
    skipped += [(p.stem, f"metadata {p.name} but no image file")
                for p in sorted(path.glob("*.json")) if p.stem not in images and not _hidden(p.name)]
    return Listing("isic-archive", split, entries, skipped, json_files, "meta.clinical.diagnosis")


def _list_folder(path: Path, split: str | None) -> Listing:
    entries = []
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not _hidden(d))
        for f in sorted(files):
            p = Path(root, f)
            if p.suffix.lower() in IMAGE_SUFFIXES and not _hidden(f):
                entries.append(Entry(p.relative_to(path).as_posix(), p, None))
    return Listing("folder", split, sorted(entries, key=lambda e: e.name), [], [], None)


_READERS: dict[str, Callable[[Path, str | None], Listing]] = {
    "isic2017": _list_isic2017, "isic-archive": _list_isic_archive,
    "ham10000": _list_ham10000, "folder": _list_folder,
}
