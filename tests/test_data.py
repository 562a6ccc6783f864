"""Tests of gan.data: layout readers, preprocessing, bad input, the cache and augmentation.

Every data set here is built in tmp_path from tiny PIL-drawn images; none uses real data.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, JpegImagePlugin
from safetensors.torch import load_file

import gan.data.cache
import gan.fileio
import gan.data.decode
from gan.data import DataConfig, DataWarning, ImageSet, augment, load_dataset

GREEN, RED, SKIN = (0, 200, 0), (220, 30, 30), (230, 190, 170)


def disc(w: int = 24, h: int = 24, fg: tuple = (120, 60, 40), bg: tuple = SKIN) -> Image.Image:
    """A dark lesion-like disc on a skin-coloured background."""
    img = Image.new("RGB", (w, h), bg)
    ImageDraw.Draw(img).ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=fg)
    return img


def save(img: Image.Image, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def load(path: Path, tmp_path: Path, size: int = 16, **kw) -> ImageSet:
    return load_dataset(path, size=size, cache_dir=tmp_path / "cache", progress=False, **kw)


def write_csv(path: Path, header: str, rows: list[str]) -> None:
    path.write_text("\n".join([header, *rows]) + "\n")


def make_isic2017(root: Path) -> Path:
    """Training: 2 nevus, 1 melanoma, 1 seborrheic keratosis (+ a superpixel mask); Validation: 2."""
    train = {"ISIC_0000000": "0.0,0.0", "ISIC_0000001": "1.0,0.0", "ISIC_0000002": "0.0,1.0", "ISIC_0000003": "0,0"}
    val = {"ISIC_0000010": "1.0,0.0", "ISIC_0000011": "0.0,0.0"}
    for part, rows in (("Training", train), ("Validation", val)):
        for i, name in enumerate(rows):
            save(disc(40 + i, 34 + 2 * i), root / f"ISIC-2017_{part}_Data" / f"{name}.jpg")
        write_csv(root / f"ISIC-2017_{part}_Part3_GroundTruth.csv", "image_id,melanoma,seborrheic_keratosis",
                  [f"{n},{v}" for n, v in rows.items()])
    save(Image.new("RGB", (24, 20)), root / "ISIC-2017_Training_Data" / "ISIC_0000000_superpixels.png")
    return root


def make_ham(root: Path) -> Path:
    save(disc(32, 24), root / "HAM10000_images_part_1" / "ISIC_0024306.jpg")
    save(disc(30, 22), root / "HAM10000_images_part_1" / "ISIC_0024307.jpg")
    save(disc(28, 20), root / "HAM10000_images_part_2" / "ISIC_0029999.jpg")
    write_csv(root / "HAM10000_metadata.csv", "lesion_id,image_id,dx,dx_type,age,sex,localization",
              ["HAM_1,ISIC_0024306,nv,histo,50.0,male,back", "HAM_2,ISIC_0024307,mel,histo,60.0,female,face",
               "HAM_3,ISIC_0029999,nv,follow_up,40.0,male,trunk"])
    return root


def archive_json(diagnosis: str | None) -> str:
    return json.dumps({"meta": {"clinical": {"benign_malignant": "benign", "diagnosis": diagnosis}},
                      "name": "x"})


def make_archive_json(root: Path) -> Path:
    for name, dx in (("ISIC_0000000", "nevus"), ("ISIC_0000001", "melanoma"), ("ISIC_0000002", None)):
        save(disc(40, 30), root / f"{name}.jpg")
        (root / f"{name}.json").write_text(archive_json(dx))
    return root


def make_folder(root: Path) -> Path:
    save(disc(24, 24), root / "a" / "b" / "x.png")
    save(disc(20, 30), root / "y.jpg")
    save(disc(24, 24), root / ".hidden.jpg")
    save(disc(24, 24), root / ".thumbnails" / "x.png")
    (root / "notes.txt").write_text("not an image, not a candidate")
    return root


# ---------------------------------------------------------------------------------------------
# Layouts


def test_isic2017_root_train(tmp_path):
    ds = load(make_isic2017(tmp_path / "isic2017"), tmp_path)
    assert ds.layout == "isic2017" and ds.split == "train"
    assert ds.names == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    assert ds.labels == ["nevus", "melanoma", "seborrheic_keratosis", "nevus"]
    assert list(ds.class_counts().items()) == [("nevus", 2), ("melanoma", 1), ("seborrheic_keratosis", 1)]
    assert ds.images.shape == (4, 3, 16, 16) and ds.images.dtype == torch.uint8
    assert ds.skipped == []  # the superpixel mask is not an image of the set, nor an unlisted one
    assert len(ds) == 4 and ds.source == str((tmp_path / "isic2017").resolve())


def test_isic2017_validation_by_split_or_by_folder(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    by_split = load(root, tmp_path, split="validation")
    by_folder = load(root / "ISIC-2017_Validation_Data", tmp_path)
    for ds in (by_split, by_folder):
        assert ds.split == "validation"
        assert ds.names == ["ISIC_0000010", "ISIC_0000011"] and ds.labels == ["melanoma", "nevus"]
    assert torch.equal(by_split.images, by_folder.images)


def test_isic2017_split_errors(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    with pytest.raises(ValueError, match=r"isic2017.*ISIC-2017_Test_v2_Data"):
        load(root, tmp_path, split="test")
    with pytest.raises(ValueError, match=r"ISIC-2017_Validation_Data.*'validation' folder"):
        load(root / "ISIC-2017_Validation_Data", tmp_path, split="train")
    (root / "ISIC-2017_Validation_Part3_GroundTruth.csv").unlink()
    with pytest.raises(ValueError, match="ISIC-2017_Validation_Part3_GroundTruth.csv not found"):
        load(root, tmp_path, split="validation")


def test_isic2017_csv_and_disk_disagree(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    data = root / "ISIC-2017_Training_Data"
    save(disc(), data / "ISIC_0000050.jpg")  # on disk, not in the CSV
    with open(root / "ISIC-2017_Training_Part3_GroundTruth.csv", "a") as f:
        f.write("ISIC_0000099,1.0,0.0\n")  # in the CSV, not on disk
        f.write("ISIC_0000003,1.0,0.0\n")  # repeated row: the first one counts
    (data / "ISIC_0000002.jpg").rename(data / "ISIC_0000002.jpeg")  # other suffix, same id: fine
    with pytest.warns(DataWarning, match=r"skipped 3 of 7 images: .*ISIC_0000003.*ISIC_0000099") as rec:
        ds = load(root, tmp_path)
    assert str(root) in str(rec[0].message)
    reasons = dict(ds.skipped)
    assert "no row in ISIC-2017_Training_Part3_GroundTruth.csv" in reasons["ISIC_0000050"]
    assert "listed in ISIC-2017_Training_Part3_GroundTruth.csv but no image file" in reasons["ISIC_0000099"]
    assert "repeated row" in reasons["ISIC_0000003"]
    assert ds.names == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]
    assert ds.labels[3] == "nevus"


def test_isic2017_bad_label_rows(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    write_csv(root / "ISIC-2017_Training_Part3_GroundTruth.csv", "image_id,melanoma,seborrheic_keratosis",
              ["ISIC_0000000,1.0,1.0", "ISIC_0000001,0.5,0.0", "ISIC_0000002,yes,0", "ISIC_0000003,0.0,0.0"])
    with pytest.warns(DataWarning, match="skipped 3 of 4"):
        ds = load(root, tmp_path)
    assert ds.names == ["ISIC_0000003"]
    reasons = dict(ds.skipped)
    assert "both melanoma and seborrheic_keratosis" in reasons["ISIC_0000000"]
    assert "not 0/1" in reasons["ISIC_0000001"] and "bad labels" in reasons["ISIC_0000002"]


def test_isic2017_csv_missing_column(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    write_csv(root / "ISIC-2017_Training_Part3_GroundTruth.csv", "image_id,melanoma", ["ISIC_0000000,1.0"])
    with pytest.raises(ValueError, match=r"ISIC-2017_Training_Part3_GroundTruth.csv: CSV lacks .*seborrheic"):
        load(root, tmp_path)


def test_ham10000_parts(tmp_path):
    ds = load(make_ham(tmp_path / "ham"), tmp_path)
    assert ds.layout == "ham10000" and ds.split is None
    assert ds.names == ["ISIC_0024306", "ISIC_0024307", "ISIC_0029999"]
    assert ds.labels == ["nevus", "melanoma", "nevus"] and ds.class_counts() == {"nevus": 2, "melanoma": 1}
    assert ds.codes == ["nv", "mel", "nv"] and ds.code_counts() == {"nv": 2, "mel": 1}
    assert ds.info["label_field"] == "dx" and ds.info["code_field"] == "dx"


def test_ham10000_single_image_folder_and_unlisted_image(tmp_path):
    root = tmp_path / "ham"
    save(disc(), root / "HAM10000_images" / "ISIC_0000001.jpg")
    save(disc(), root / "HAM10000_images" / "ISIC_0000002.jpg")
    write_csv(root / "HAM10000_metadata.csv", "image_id,dx", ["ISIC_0000001,bkl"])
    with pytest.warns(DataWarning, match="ISIC_0000002 .no row in HAM10000_metadata.csv"):
        ds = load(root, tmp_path)
    assert ds.names == ["ISIC_0000001"] and ds.labels == ["benign_keratosis"] and ds.codes == ["bkl"]


def test_ham10000_without_image_folder(tmp_path):
    root = tmp_path / "ham"
    root.mkdir()
    write_csv(root / "HAM10000_metadata.csv", "image_id,dx", ["ISIC_0000001,bkl"])
    with pytest.raises(ValueError, match=r"ham: no HAM10000_images"):
        load(root, tmp_path)


def test_isic_archive_json(tmp_path):
    root = make_archive_json(tmp_path / "archive")
    save(disc(), root / "ISIC_0000003.jpg")  # no JSON
    (root / "ISIC_0000004.json").write_text(archive_json("nevus"))  # no image
    save(disc(), root / "ISIC_0000005.jpg")
    (root / "ISIC_0000005.json").write_text("{not json")
    with pytest.warns(DataWarning, match="skipped 3 of 6"):
        ds = load(root, tmp_path)
    assert ds.layout == "isic-archive"
    assert ds.names == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"]
    assert ds.labels == ["nevus", "melanoma", None]
    assert ds.class_counts() == {"melanoma": 1, "nevus": 1}  # the unlabelled one is not a class
    assert "unlabelled 1" in ds.summary()
    reasons = dict(ds.skipped)
    assert reasons["ISIC_0000003"] == "no metadata file ISIC_0000003.json"
    assert "but no image file" in reasons["ISIC_0000004"]
    assert "unreadable metadata ISIC_0000005.json" in reasons["ISIC_0000005"]


@pytest.mark.parametrize("columns, values, label_field, code_field, labels, codes", [
    # isic-cli's current columns: diagnosis_3 is the label, diagnosis_1 the code
    ("diagnosis_1,diagnosis_2,diagnosis_3",
     ["Benign,Benign melanocytic proliferations,Nevus",
      "Malignant,Malignant melanocytic proliferations (Melanoma),Melanoma in situ", "Benign,,"],
     "diagnosis_3", "diagnosis_1", ["nevus", "melanoma", None], ["benign", "malignant", "benign"]),
    # older isic-cli files
    ("diagnosis,benign_malignant", ["nevus,benign", "melanoma,malignant", ","],
     "diagnosis", "benign_malignant", ["nevus", "melanoma", None], ["benign", "malignant", None]),
    # benign/malignant alone is a code, not a class
    ("benign_malignant", ["benign", "malignant", ""], None, "benign_malignant", [None] * 3,
     ["benign", "malignant", None]),
    ("age_approx", ["30", "40", ""], None, None, [None] * 3, [None] * 3),
])
def test_isic_archive_isic_cli_csv(tmp_path, columns, values, label_field, code_field, labels, codes):
    root = tmp_path / "archive"
    names = ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"]
    for n in names:
        save(disc(30, 24), root / f"{n}.jpg")
    write_csv(root / "metadata.csv", f"isic_id,copyright_license,{columns}",
              [f"{n},CC-0,{v}" for n, v in zip(names, values, strict=True)])
    ds = load(root, tmp_path)
    assert ds.layout == "isic-archive" and ds.names == names
    assert ds.labels == labels and ds.codes == codes
    assert (ds.info["label_field"], ds.info["code_field"]) == (label_field, code_field)


def test_folder_recursive_unlabelled(tmp_path):
    ds = load(make_folder(tmp_path / "imgs"), tmp_path)
    assert ds.layout == "folder"
    assert ds.names == ["a/b/x.png", "y.jpg"] and ds.labels == [None, None]
    assert ds.class_counts() == {} and ds.skipped == []


@pytest.mark.parametrize("make, layout", [(make_isic2017, "isic2017"), (make_ham, "ham10000"),
                                          (make_archive_json, "isic-archive"), (make_folder, "folder")])
def test_layout_detection(tmp_path, make, layout):
    assert load(make(tmp_path / "data"), tmp_path).layout == layout


@pytest.mark.parametrize("make, forced", [(make_isic2017, "ham10000"), (make_folder, "isic2017"),
                                          (make_folder, "isic-archive"), (make_ham, "isic2017")])
def test_forced_layout_mismatch_names_the_path(tmp_path, make, forced):
    root = make(tmp_path / "data")
    with pytest.raises(ValueError, match=rf"{re.escape(str(root))}: does not match layout '{forced}'"):
        load(root, tmp_path, layout=forced)


def test_forced_folder_layout_reads_any_layout(tmp_path):
    ds = load(make_ham(tmp_path / "ham"), tmp_path, layout="folder")
    assert ds.layout == "folder" and len(ds) == 3 and ds.labels == [None] * 3


def test_split_only_for_isic2017(tmp_path):
    with pytest.raises(ValueError, match=r"ham: split='validation' applies only to the isic2017 layout"):
        load(make_ham(tmp_path / "ham"), tmp_path, split="validation")


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_missing_or_empty_folder(tmp_path, kind):
    path = tmp_path / "data"
    if kind == "empty":
        path.mkdir()
        (path / "readme.txt").write_text("no images")
    elif kind == "file":
        path.write_text("x")
    message = {"missing": "no such folder", "empty": "no image files found", "file": "not a folder"}[kind]
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: {message}"):
        load(path, tmp_path)


# ---------------------------------------------------------------------------------------------
# Preprocessing


@pytest.mark.parametrize("w, h", [(48, 32), (32, 48), (33, 21)])
def test_centre_crop_then_resize(tmp_path, w, h):
    """Only the centred square (green) may reach the output; the red margins must not."""
    img = Image.new("RGB", (w, h), RED)
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img.paste(Image.new("RGB", (side, side), GREEN), (left, top))
    save(img, tmp_path / "imgs" / "x.png")
    ds = load(tmp_path / "imgs", tmp_path)
    assert (ds.images[0] == torch.tensor(GREEN, dtype=torch.uint8).view(3, 1, 1)).all()
    assert "LANCZOS" in ds.info["resize"] and "centre" in ds.info["resize"]


def test_resize_keeps_orientation(tmp_path):
    img = Image.new("RGB", (32, 32))
    colours = {(0, 0): RED, (16, 0): GREEN, (0, 16): (0, 0, 255), (16, 16): (255, 255, 255)}
    for (x, y), c in colours.items():
        img.paste(Image.new("RGB", (16, 16), c), (x, y))
    save(img, tmp_path / "imgs" / "q.png")
    out = load(tmp_path / "imgs", tmp_path).images[0].permute(1, 2, 0)  # HWC
    assert out[0, 0].tolist() == list(RED) and out[0, 15].tolist() == list(GREEN)
    assert out[15, 0].tolist() == [0, 0, 255] and out[15, 15].tolist() == [255, 255, 255]


def test_resize_is_antialiased(tmp_path):
    """A 1-px checkerboard must average to grey, not alias to black or white (as NEAREST would)."""
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)
    save(Image.fromarray(board).convert("RGB"), tmp_path / "imgs" / "c.png")
    out = load(tmp_path / "imgs", tmp_path).images.float()
    assert (out - 127.5).abs().max() < 8


def test_large_jpeg_decodes_in_draft_mode(tmp_path, monkeypatch):
    calls = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        result = real_draft(self, mode, size)
        calls.append((size, self.size))
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    img = Image.new("RGB", (160, 128), RED)
    img.paste(Image.new("RGB", (128, 128), GREEN), (16, 0))
    save(img, tmp_path / "imgs" / "big.jpg", quality=95)
    out = load(tmp_path / "imgs", tmp_path).images[0].permute(1, 2, 0).int()
    assert calls == [((16, 16), (20, 16))]  # DCT-scaled by 1/8: shorter side still >= 16
    assert (out - torch.tensor(GREEN)).abs().max() <= 12


@pytest.mark.parametrize("make, expected", [
    (lambda: Image.new("L", (24, 24), 100), (100, 100, 100)),
    (lambda: Image.new("1", (24, 24), 1), (255, 255, 255)),
    (lambda: Image.new("RGB", (24, 24), (10, 20, 30)).convert("P", palette=Image.Palette.ADAPTIVE), (10, 20, 30)),
    (lambda: Image.new("LA", (24, 24), (200, 255)), (200, 200, 200)),
    (lambda: Image.new("RGBA", (24, 24), (200, 100, 50, 255)), (200, 100, 50)),
    (lambda: Image.new("RGBA", (24, 24), (200, 100, 50, 128)), (100, 50, 25)),  # over black
    (lambda: Image.new("RGBA", (24, 24), (200, 100, 50, 0)), (0, 0, 0)),
    (lambda: Image.fromarray(np.full((24, 24), 128 * 257, np.uint16)), (128, 128, 128)),
    (lambda: Image.fromarray(np.full((24, 24), 65535, np.uint16)), (255, 255, 255)),
    (lambda: Image.fromarray(np.full((24, 24), 1000, np.uint16)), (4, 4, 4)),
], ids=["L", "1", "P", "LA", "RGBA-opaque", "RGBA-half", "RGBA-clear", "I16-mid", "I16-max", "I16-low"])
def test_png_modes_convert_to_rgb(tmp_path, make, expected):
    img = make()
    save(img, tmp_path / "imgs" / "m.png")
    assert Image.open(tmp_path / "imgs" / "m.png").mode == img.mode  # the file really is in that mode
    out = load(tmp_path / "imgs", tmp_path).images[0]
    assert (out.int() - torch.tensor(expected).view(3, 1, 1)).abs().max() <= 1


def test_palette_transparency_over_black(tmp_path):
    img = Image.new("P", (24, 24), 1)
    img.putpalette([0, 255, 0, 250, 10, 10] + [0] * 762)
    img.paste(0, (0, 0, 12, 24))  # left half: index 0, which is transparent
    save(img, tmp_path / "imgs" / "p.png", transparency=0)
    out = load(tmp_path / "imgs", tmp_path).images[0].permute(1, 2, 0)
    assert out[8, 0].tolist() == [0, 0, 0] and out[8, 15].tolist() == [250, 10, 10]


@pytest.mark.parametrize("mode, colour, expected", [("CMYK", (0, 255, 255, 0), (255, 0, 0)), ("L", 90, (90, 90, 90))])
def test_jpeg_cmyk_and_grayscale(tmp_path, mode, colour, expected):
    save(Image.new(mode, (32, 24), colour), tmp_path / "imgs" / "c.jpg", quality=95)
    assert Image.open(tmp_path / "imgs" / "c.jpg").mode == mode
    out = load(tmp_path / "imgs", tmp_path).images[0].int()
    assert (out - torch.tensor(expected).view(3, 1, 1)).abs().max() <= 6


# ---------------------------------------------------------------------------------------------
# Bad input


def truncated(path: Path, fmt: str) -> Path:
    rng = np.random.default_rng(0)
    save(Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)), path, format=fmt)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_bad_files_are_skipped_and_reported(tmp_path):
    root = tmp_path / "imgs"
    save(disc(), root / "good1.png")
    save(disc(30, 20), root / "good2.jpg")
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.png").write_text("this is not a PNG")
    truncated(root / "trunc.jpg", "JPEG")
    truncated(root / "trunc.png", "PNG")
    save(disc(12, 40), root / "small.png")
    save(Image.fromarray(np.ones((24, 24), np.float32)), root / "float.tif")
    with pytest.warns(DataWarning, match=rf"{re.escape(str(root))}: skipped 6 of 8 images: .*empty.jpg") as rec:
        ds = load(root, tmp_path)
    assert "and 1 more" in str(rec[0].message)
    assert ds.names == ["good1.png", "good2.jpg"]
    reasons = dict(ds.skipped)
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["text.png"] == "not a readable image"
    assert "truncated" in reasons["trunc.jpg"] and "truncated" in reasons["trunc.png"]
    assert reasons["small.png"] == "smaller than 16 px (12x40)"
    assert "floating-point" in reasons["float.tif"]
    assert f"skipped {len(ds.skipped)}" in ds.summary()


def test_decompression_bombs_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    root = tmp_path / "imgs"
    save(disc(24, 24), root / "ok.png")  # 576 px
    save(disc(40, 40), root / "warn.png")  # 1600 px: Pillow only warns
    save(disc(48, 48), root / "error.png")  # 2304 px > 2 * limit: Pillow raises
    with pytest.warns(DataWarning, match="skipped 2 of 3") as rec:
        ds = load(root, tmp_path)
    assert ds.names == ["ok.png"]
    assert all(r.startswith("decompression bomb") for _, r in ds.skipped)
    assert not [w for w in rec if issubclass(w.category, Image.DecompressionBombWarning)]


def test_nothing_usable_names_the_folder(tmp_path):
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.jpg").write_bytes(b"")
    save(disc(8, 8), root / "b.png")
    with pytest.raises(ValueError, match=rf"{re.escape(str(root))}: no usable images .2 skipped") as err:
        load(root, tmp_path)
    assert "sub/a.jpg (empty file)" in str(err.value) and "b.png (smaller than 16 px" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Cache


def forbid_decoding(monkeypatch):
    def fail(path, size):
        raise AssertionError(f"decoded {path} although it is cached")
    monkeypatch.setattr(gan.data.decode, "decode_image", fail)


def count_decoding(monkeypatch) -> list:
    calls, real = [], gan.data.decode.decode_image

    def counting(path, size):
        calls.append(path)
        return real(path, size)
    monkeypatch.setattr(gan.data.decode, "decode_image", counting)
    return calls


def test_cache_hit_does_not_decode(tmp_path, monkeypatch):
    root = make_isic2017(tmp_path / "isic2017")
    first = load(root, tmp_path)
    assert not first.info["from_cache"] and Path(first.cache_path).is_file()
    assert Path(first.cache_path).parent == tmp_path / "cache"
    forbid_decoding(monkeypatch)
    second = load(root, tmp_path)
    assert second.info["from_cache"] and second.cache_path == first.cache_path
    assert torch.equal(first.images, second.images)
    assert (second.names, second.labels, second.skipped) == (first.names, first.labels, first.skipped)
    assert load_file(first.cache_path).keys() == {"images"}  # plain tensors; no pickled objects


def test_cache_keeps_skipped_and_warns_again(tmp_path, monkeypatch):
    root = tmp_path / "imgs"
    save(disc(), root / "good.png")
    (root / "bad.jpg").write_bytes(b"")
    with pytest.warns(DataWarning, match="skipped 1 of 2"):
        load(root, tmp_path)
    forbid_decoding(monkeypatch)
    with pytest.warns(DataWarning, match="skipped 1 of 2"):
        ds = load(root, tmp_path)
    assert ds.info["from_cache"] and ds.skipped == [("bad.jpg", "empty file")]


def test_cache_invalidated_by_changed_image(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "imgs")
    first = load(root, tmp_path)
    target = root / "y.jpg"
    save(disc(20, 30, fg=(10, 10, 200)), target)
    st = target.stat()
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    calls = count_decoding(monkeypatch)
    second = load(root, tmp_path)
    assert not second.info["from_cache"] and len(calls) == 2
    assert second.cache_path != first.cache_path
    i = second.names.index("y.jpg")
    assert not torch.equal(first.images[i], second.images[i])


def test_cache_invalidated_by_changed_labels_and_size(tmp_path, monkeypatch):
    root = make_isic2017(tmp_path / "isic2017")
    load(root, tmp_path)
    csv_path = root / "ISIC-2017_Training_Part3_GroundTruth.csv"
    csv_path.write_text(csv_path.read_text().replace("ISIC_0000003,0,0", "ISIC_0000003,1,0"))
    assert load(root, tmp_path).labels[3] == "melanoma"
    calls = count_decoding(monkeypatch)
    ds = load(root, tmp_path, size=32)
    assert ds.images.shape == (4, 3, 32, 32) and len(calls) == 4


@pytest.mark.parametrize("damage", ["garbage", "truncate", "flip-last-byte", "empty"])
def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch, damage):
    root = make_isic2017(tmp_path / "isic2017")
    first = load(root, tmp_path)
    path = Path(first.cache_path)
    data = path.read_bytes()
    damaged = {"garbage": os.urandom(len(data)), "truncate": data[: len(data) // 2],
               "flip-last-byte": data[:-1] + bytes([data[-1] ^ 0xFF]), "empty": b""}[damage]
    path.write_bytes(damaged)
    calls = count_decoding(monkeypatch)
    with pytest.warns(DataWarning, match=rf"ignoring unusable cache file {re.escape(str(path))}"):
        second = load(root, tmp_path)
    assert len(calls) == 4 and not second.info["from_cache"]
    assert torch.equal(first.images, second.images)
    assert path.read_bytes() == data  # rewritten whole
    assert load(root, tmp_path).info["from_cache"]


def test_cache_of_other_data_is_not_trusted(tmp_path, monkeypatch):
    """A cache file whose stored key is not the expected one (copied, renamed) is rebuilt."""
    a = load(make_folder(tmp_path / "a"), tmp_path)
    b = load(make_ham(tmp_path / "b"), tmp_path)
    Path(b.cache_path).write_bytes(Path(a.cache_path).read_bytes())
    with pytest.warns(DataWarning, match="do not match"):
        again = load(tmp_path / "b", tmp_path)
    assert torch.equal(again.images, b.images) and again.names == b.names


def test_cache_write_is_atomic(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "imgs")

    def broken_fsync(fd):  # the bytes went out, then the disk filled up
        raise OSError("disk full while writing")

    monkeypatch.setattr(gan.fileio.os, "fsync", broken_fsync)
    with pytest.warns(DataWarning, match=r"cache not written: .*disk full.*; continuing without it"):
        first = load(root, tmp_path)  # the decoded images are still used
    assert len(first) == 2 and not first.info["from_cache"]
    assert list((tmp_path / "cache").iterdir()) == []  # neither a cache file nor a temporary left
    monkeypatch.undo()
    ds = load(root, tmp_path)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [Path(ds.cache_path).name]


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "envcache"))
    ds = load_dataset(make_folder(tmp_path / "imgs"), size=16, progress=False)
    assert Path(ds.cache_path).parent == tmp_path / "envcache" and Path(ds.cache_path).is_file()


def test_thread_count_does_not_change_result(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    one = load_dataset(root, size=16, cache_dir=tmp_path / "c1", progress=False, workers=1)
    two = load_dataset(root, size=16, cache_dir=tmp_path / "c2", progress=False, workers=2)
    assert torch.equal(one.images, two.images) and one.names == two.names


def test_progress_bar_on_stderr(tmp_path, capsys):
    load_dataset(make_folder(tmp_path / "imgs"), size=16, cache_dir=tmp_path / "cache", progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "decoding imgs at 16px" in err


# ---------------------------------------------------------------------------------------------
# DataConfig and ImageSet


def test_data_config_validates_and_loads(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    cfg = DataConfig(root, size=16, cache_dir=tmp_path / "cache")
    assert cfg.path == str(root) and isinstance(cfg.cache_dir, str)
    json.dumps(dataclasses.asdict(cfg))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.size = 32
    ds = load_dataset(cfg, progress=False)
    assert ds.images.shape == (4, 3, 16, 16) and ds.info["from_cache"] is False
    with pytest.raises(ValueError, match="either a DataConfig"):
        load_dataset(cfg, size=32)
    for bad, flag in (({"size": 48}, "size"), ({"layout": "kaggle"}, "layout"), ({"split": "val"}, "split")):
        with pytest.raises(ValueError, match=f"data {flag}"):
            DataConfig(root, **bad)


def test_summary_is_one_line_with_counts(tmp_path):
    root = make_isic2017(tmp_path / "isic2017")
    save(disc(), root / "ISIC-2017_Training_Data" / "ISIC_0000050.jpg")
    with pytest.warns(DataWarning):
        s = load(root, tmp_path).summary()
    assert "\n" not in s
    for part in ("4 images 16px", "isic2017/train", "nevus 2, melanoma 1, seborrheic_keratosis 1", "skipped 1"):
        assert part in s


def test_image_set_checks_consistency():
    with pytest.raises(ValueError, match="do not agree"):
        ImageSet(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), ["a"], [None], "folder", "/x", 16)


# ---------------------------------------------------------------------------------------------
# Augmentation


def orientations(img: torch.Tensor) -> list[torch.Tensor]:
    """The 8 orientations of a CHW image: 4 rotations of it and of its mirror image."""
    return [torch.rot90(m, k, dims=(1, 2)) for m in (img, img.flip(2)) for k in range(4)]


def orientation_ids(x: torch.Tensor, y: torch.Tensor) -> list[int]:
    ids = []
    for a, b in zip(x, y, strict=True):
        found = [i for i, o in enumerate(orientations(a)) if torch.equal(o, b)]
        assert found, "output is not a flip/rotation of its input"
        ids.append(found[0])
    return ids


def batch(n: int = 256, dtype=torch.uint8) -> torch.Tensor:
    g = torch.Generator().manual_seed(123)
    return torch.randint(0, 256, (n, 3, 8, 8), generator=g).to(dtype)


def test_augment_is_deterministic_per_generator():
    x = batch(64)
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    c = augment(x, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(augment(x.float(), torch.Generator().manual_seed(1)), a.float())  # same for floats


@pytest.mark.parametrize("flags, allowed", [
    ({}, set(range(8))),
    ({"yflip": False, "rot90": False}, {0, 4}),  # identity, horizontal mirror
    ({"xflip": False, "rot90": False}, {0, 6}),  # identity, vertical mirror
    ({"xflip": False, "yflip": False}, {0, 1, 2, 3}),  # rotations only
    ({"rot90": False}, {0, 2, 4, 6}),  # both flips reach the 180-degree turn as well
    ({"xflip": False, "yflip": False, "rot90": False}, {0}),
])
def test_augment_moves_pixels_only_within_allowed_orientations(flags, allowed):
    x = batch(256, torch.float32)
    y = augment(x, torch.Generator().manual_seed(0), **flags)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert torch.equal(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))
    ids = orientation_ids(x, y)
    assert set(ids) == allowed  # every allowed orientation occurs, no other does
    if len(allowed) == 8:
        assert min(ids.count(i) for i in range(8)) > 15  # roughly uniform: 32 expected each


def test_augment_rejects_non_square():
    with pytest.raises(ValueError, match="square"):
        augment(torch.zeros(2, 3, 8, 6), torch.Generator())
