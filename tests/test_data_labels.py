"""Tests of gan.data's labels: the canonical vocabulary, its aliases and class numbering, and the labels and
codes every layout reader gives (imagefolder against torchvision's ImageFolder, the labels CSV, both ISIC
archive forms), on tiny data sets made here."""
from __future__ import annotations

import doctest
import json
import os
from pathlib import Path

import pytest
import torchvision

import gan.data.labels
from gan.data import DataConfig, DataWarning, load_dataset
from gan.data.labels import ALIASES, VOCABULARY, canonical, class_order, slug
from test_data import disc, load, make_ham, make_isic2017, save, write_csv  # the shared tiny-data builders


def test_vocabulary_is_canonical_and_unique():
    assert len(set(VOCABULARY)) == len(VOCABULARY)
    assert VOCABULARY[:8] == ("melanoma", "nevus", "seborrheic_keratosis", "basal_cell_carcinoma",
                              "actinic_keratosis", "benign_keratosis", "dermatofibroma", "vascular_lesion")
    assert all(slug(c) == c for c in VOCABULARY)
    assert set(ALIASES.values()) <= set(VOCABULARY) and not set(ALIASES) & set(VOCABULARY)


@pytest.mark.parametrize("text, expected", [
    ("melanoma", "melanoma"), ("Melanoma", "melanoma"), (" seborrheic keratosis ", "seborrheic_keratosis"),
    ("Seborrheic-Keratosis", "seborrheic_keratosis"), ("Melanoma Invasive", "melanoma"),
    ("Melanoma in situ", "melanoma"), ("Melanoma, NOS", "melanoma"), ("Nevus", "nevus"),
    ("mel", "melanoma"), ("nv", "nevus"), ("bkl", "benign_keratosis"), ("bcc", "basal_cell_carcinoma"),
    ("akiec", "actinic_keratosis"), ("df", "dermatofibroma"), ("vasc", "vascular_lesion"),
    ("Solar or actinic keratosis", "actinic_keratosis"), ("Pigmented benign keratosis", "benign_keratosis"),
    ("lentigo NOS", "lentigo_nos"), ("cafe-au-lait macule", "cafe_au_lait_macule"),
    ("Squamous cell carcinoma in situ", "squamous_cell_carcinoma"),
    ("benign", None), ("Malignant", None), ("my lesions", None), ("", None), (None, None),
])
def test_canonical(text, expected):
    assert canonical(text) == expected


def test_class_order_vocabulary_first_then_alphabetical():
    labels = ["zeta", "nevus", None, "alpha", "melanoma", "nevus", "dermatofibroma", "Beta"]
    assert class_order(labels) == ["melanoma", "nevus", "dermatofibroma", "Beta", "alpha", "zeta"]
    assert class_order(reversed(labels)) == class_order(labels)  # order and counts do not matter
    assert class_order([None, None]) == [] and class_order([]) == []


def test_module_examples():
    assert doctest.testmod(gan.data.labels).failed == 0


# ---------------------------------------------------------------------------------------------
# Labels and codes as the readers give them (data sets made here from tiny PNG/JPEG files)



def test_isic2017_labels_codes_and_class_order(tmp_path):
    ds = load(make_isic2017(tmp_path / "isic2017"), tmp_path)
    assert ds.labels == ["nevus", "melanoma", "seborrheic_keratosis", "nevus"]
    assert ds.codes == ["neither", "melanoma", "seborrheic_keratosis", "neither"]
    assert ds.class_names() == ["melanoma", "nevus", "seborrheic_keratosis"]
    assert ds.code_counts() == {"neither": 2, "melanoma": 1, "seborrheic_keratosis": 1}


def make_synthetic_isic2017(root: Path, counts: dict[str, int]) -> Path:
    """What a synthetic set written in the ISIC 2017 layout looks like: SYN_ ids, PNG files."""
    columns = {"melanoma": "1,0", "seborrheic_keratosis": "0,1", "nevus": "0,0"}
    rows, i = [], 0
    for cls, n in counts.items():
        for _ in range(n):
            i += 1
            save(disc(16, 16), root / "ISIC-2017_Training_Data" / f"SYN_{i:07d}.png")
            rows.append(f"SYN_{i:07d},{columns[cls]}")
    write_csv(root / "ISIC-2017_Training_Part3_GroundTruth.csv", "image_id,melanoma,seborrheic_keratosis", rows)
    return root


def test_isic2017_synthetic_set_with_syn_ids_and_png(tmp_path):
    root = make_synthetic_isic2017(tmp_path / "syn", {"melanoma": 3, "nevus": 2, "seborrheic_keratosis": 1})
    ds = load(root, tmp_path)
    assert ds.layout == "isic2017" and ds.split == "train" and ds.skipped == []
    assert ds.names == [f"SYN_{i:07d}" for i in range(1, 7)]
    assert ds.class_counts() == {"melanoma": 3, "nevus": 2, "seborrheic_keratosis": 1}
    assert ds.labels[:3] == ["melanoma"] * 3 and ds.labels[5] == "seborrheic_keratosis"


# The same mini archive in its two forms: (JSON diagnosis, benign_malignant, isic-cli diagnosis_3, diagnosis_1)
ARCHIVE = {
    "ISIC_0000000": ("nevus", "benign", "Nevus", "Benign"),
    "ISIC_0000001": ("melanoma", "malignant", "Melanoma Invasive", "Malignant"),
    "ISIC_0000002": ("melanoma", "malignant", "Melanoma in situ", "Malignant"),
    "ISIC_0000003": ("seborrheic keratosis", "benign", "Seborrheic keratosis", "Benign"),
    "ISIC_0000004": ("pigmented benign keratosis", "benign", "Pigmented benign keratosis", "Benign"),
    "ISIC_0000005": ("lentigo NOS", "benign", "Lentigo NOS", "Benign"),
    "ISIC_0000006": ("actinic keratosis", "malignant", "Solar or actinic keratosis", "Malignant"),
    "ISIC_0000007": (None, "benign", "", "Benign"),
}


def make_archive(root: Path, form: str) -> Path:
    for name in ARCHIVE:
        save(disc(30, 24), root / f"{name}.jpg")
    if form == "json":
        for name, (dx, bm, _, _) in ARCHIVE.items():
            (root / f"{name}.json").write_text(json.dumps(
                {"meta": {"clinical": {"benign_malignant": bm, "diagnosis": dx}}, "name": name}))
    elif form == "isic-cli":
        write_csv(root / "metadata.csv", "isic_id,attribution,copyright_license,diagnosis_1,diagnosis_2,diagnosis_3",
                  [f"{n},Anonymous,CC-0,{d1},,{d3}" for n, (_, _, d3, d1) in ARCHIVE.items()])
    else:  # older isic-cli files: the legacy diagnosis and benign_malignant columns
        write_csv(root / "metadata.csv", "isic_id,benign_malignant,diagnosis",
                  [f"{n},{bm},{dx or ''}" for n, (dx, bm, _, _) in ARCHIVE.items()])
    return root


def test_isic_archive_forms_give_the_same_labels(tmp_path):
    sets = {form: load(make_archive(tmp_path / form, form), tmp_path) for form in ("json", "isic-cli", "legacy-csv")}
    expected = ["nevus", "melanoma", "melanoma", "seborrheic_keratosis", "benign_keratosis", "lentigo_nos",
                "actinic_keratosis", None]
    for form, ds in sets.items():
        assert ds.layout == "isic-archive", form
        assert ds.labels == expected, form
        assert ds.codes == ["benign", "malignant", "malignant", "benign", "benign", "benign", "malignant", "benign"]
        assert ds.class_counts() == {"melanoma": 2, "actinic_keratosis": 1, "benign_keratosis": 1, "lentigo_nos": 1,
                                     "nevus": 1, "seborrheic_keratosis": 1}
        assert ds.class_names() == ["melanoma", "nevus", "seborrheic_keratosis", "actinic_keratosis",
                                    "benign_keratosis", "lentigo_nos"]
    assert sets["json"].info["label_field"] == "meta.clinical.diagnosis"
    assert sets["isic-cli"].info["label_field"] == "diagnosis_3"
    assert sets["isic-cli"].info["code_field"] == "diagnosis_1"


def test_ham10000_all_seven_dx_codes(tmp_path):
    root = tmp_path / "ham"
    dx = ["akiec", "bcc", "bkl", "df", "mel", "nv", "vasc", "nv", "mel"]
    for i in range(len(dx)):
        save(disc(20, 16), root / "HAM10000_images" / f"ISIC_{i:07d}.jpg")
    write_csv(root / "HAM10000_metadata.csv", "lesion_id,image_id,dx",
              [f"HAM_{i},ISIC_{i:07d},{d}" for i, d in enumerate(dx)])
    ds = load(root, tmp_path)
    assert ds.class_counts() == {"melanoma": 2, "nevus": 2, "actinic_keratosis": 1, "basal_cell_carcinoma": 1,
                                 "benign_keratosis": 1, "dermatofibroma": 1, "vascular_lesion": 1}
    assert ds.class_names() == ["melanoma", "nevus", "basal_cell_carcinoma", "actinic_keratosis",
                                "benign_keratosis", "dermatofibroma", "vascular_lesion"]
    assert ds.codes == dx


def make_imagefolder(root: Path) -> Path:
    """Classes: melanoma 3 (one in a subfolder), Nevus 2 (a vocabulary class in other case), my_class 1."""
    for name in ("a.png", "b.jpg", "deeper/c.png"):
        save(disc(18, 18), root / "melanoma" / name)
    for name in ("d.png", "e.png"):
        save(disc(18, 18), root / "Nevus" / name)
    save(disc(18, 18), root / "my_class" / "f.png")
    (root / "README.md").write_text("synthetic images")  # the synthesizer writes these beside the classes
    (root / "manifest.json").write_text("{}")
    return root


def test_imagefolder_detected_with_exact_counts(tmp_path):
    ds = load(make_imagefolder(tmp_path / "syn"), tmp_path)
    assert ds.layout == "imagefolder" and ds.skipped == []
    assert ds.class_counts() == {"melanoma": 3, "nevus": 2, "my_class": 1}
    assert ds.code_counts() == {"melanoma": 3, "Nevus": 2, "my_class": 1}
    assert ds.class_names() == ["melanoma", "nevus", "my_class"]
    assert ds.names[:3] == ["Nevus/d.png", "Nevus/e.png", "melanoma/a.png"]


def test_imagefolder_matches_torchvision(tmp_path):
    root = make_imagefolder(tmp_path / "syn")
    ds = load(root, tmp_path)
    tv = torchvision.datasets.ImageFolder(str(root))
    ours = dict(zip(ds.names, zip(ds.labels, ds.codes, strict=True), strict=True))
    theirs = {Path(p).relative_to(root).as_posix(): tv.classes[t] for p, t in tv.samples}
    assert set(ours) == set(theirs)  # the same files
    for name, folder in theirs.items():  # and each in torchvision's class
        assert ours[name] == (canonical(folder) or folder, folder)


def test_imagefolder_not_detected_with_loose_images_or_empty_class(tmp_path):
    root = make_imagefolder(tmp_path / "a")
    save(disc(18, 18), root / "loose.png")
    assert load(root, tmp_path).layout == "folder"
    with pytest.raises(ValueError, match="does not match layout 'imagefolder' .image files directly in the folder"):
        load(root, tmp_path, layout="imagefolder")
    root = make_imagefolder(tmp_path / "b")
    (root / "empty_class").mkdir()
    assert load(root, tmp_path).layout == "folder"


def make_plain(root: Path) -> Path:
    for name in ("a.png", "b.png", "sub/c.png", "sub/d.jpg", "e.png"):
        save(disc(18, 18), root / name)
    return root


def test_labels_csv_on_a_folder(tmp_path):
    root = make_plain(tmp_path / "imgs")
    csv_path = tmp_path / "labels.csv"
    # by relative path, by stem, by file name, a class outside the vocabulary, an empty label
    write_csv(csv_path, "image,label,notes", ["a.png,melanoma,x", "b,Nevus,", "sub/c.png,my lesion,", "d.jpg,,"])
    with pytest.warns(DataWarning, match=r"skipped 1 of 5 images: e.png \(no row in labels.csv\)"):
        ds = load(root, tmp_path, labels=csv_path)
    assert ds.layout == "folder" and ds.names == ["a.png", "b.png", "sub/c.png", "sub/d.jpg"]
    assert ds.labels == ["melanoma", "nevus", "my lesion", None]
    assert ds.codes == ["melanoma", "Nevus", "my lesion", None]
    assert ds.class_counts() == {"melanoma": 1, "my lesion": 1, "nevus": 1}
    assert ds.info["label_field"] == "labels.csv label (in the vocabulary)"


def test_labels_csv_replaces_a_layouts_labels_and_is_in_the_cache_key(tmp_path):
    root = make_ham(tmp_path / "ham")
    csv_path = tmp_path / "mine.csv"
    write_csv(csv_path, "image,label", ["ISIC_0024306,melanoma", "ISIC_0024307,melanoma", "ISIC_0029999,nevus"])
    cfg = DataConfig(root, size=16, labels=csv_path, cache_dir=tmp_path / "cache")
    first = load_dataset(cfg, progress=False)
    assert cfg.labels == str(csv_path) and first.class_counts() == {"melanoma": 2, "nevus": 1}
    plain = load(root, tmp_path)
    assert plain.cache_path != first.cache_path and plain.labels == ["nevus", "melanoma", "nevus"]
    write_csv(csv_path, "image,label", ["ISIC_0024306,nevus", "ISIC_0024307,melanoma", "ISIC_0029999,nevus"])
    st = csv_path.stat()
    os.utime(csv_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = load_dataset(cfg, progress=False)
    assert again.class_counts() == {"nevus": 2, "melanoma": 1} and again.cache_path != first.cache_path


@pytest.mark.parametrize("rows, message", [
    (["image,dx", "a.png,melanoma"], r"labels.csv: CSV lacks column\(s\) label \(has image, dx\)"),
    (["image,label", "a.png,melanoma", "zzz.png,nevus"], r"labels.csv: line 3: no image 'zzz.png' in .*imgs"),
    (["image,label", "a.png,melanoma", "b.png,nevus", "a.png,nevus"],
     r"labels.csv: line 4: a.png already labelled on line 2"),
    (["image,label", "a.png,melanoma", "a,nevus"], r"labels.csv: line 3: a.png already labelled on line 2"),
    (["image,label", "x.png,melanoma"], r"line 2: 'x.png' matches 2 images \(p/x.png, q/x.png\); give the path"),
    (["image,label", ",melanoma"], r"labels.csv: line 2 has no image"),
])
def test_labels_csv_errors(tmp_path, rows, message):
    root = make_plain(tmp_path / "imgs")
    save(disc(18, 18), root / "p" / "x.png")
    save(disc(18, 18), root / "q" / "x.png")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=message):
        load(root, tmp_path, labels=tmp_path / "labels.csv")


def test_labels_csv_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope.csv: no such labels file"):
        load(make_plain(tmp_path / "imgs"), tmp_path, labels=tmp_path / "nope.csv")
