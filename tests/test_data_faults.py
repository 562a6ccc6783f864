"""Tests of gan.data against faults a user's machine produces: symlink loops and dangling
symlinks, unusable cache folders, stale temp files, passing read failures, and how warnings print.

Tests run as root, which ignores file permissions: unwritable folders and unreadable files are
simulated by injecting the operating system's answer (monkeypatch), never by chmod.
"""
from __future__ import annotations

import errno
import os
import re
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

import gan.data.decode
import gan.fileio
from gan.data import DataWarning, load_dataset, show_warnings_plainly
from test_data import count_decoding, disc, forbid_decoding, load, make_isic2017, save  # shared tiny-data builders


def make_links(root: Path) -> Path:
    """Two good images, a file symlink loop, a dangling symlink, and a folder symlink back to the root."""
    save(disc(), root / "good.png")
    save(disc(20, 18), root / "sub" / "x.png")
    os.symlink("loop.png", root / "loop.png")  # points at itself
    os.symlink("missing.jpg", root / "dangling.jpg")
    os.symlink("..", root / "sub" / "back")  # sub/back -> root: reading it would go round forever
    return root


def test_symlink_loops_and_dangling_links_are_skipped_and_reported(tmp_path):
    root = make_links(tmp_path / "imgs")
    with pytest.warns(DataWarning, match=r"skipped 3 of 5 images") as rec:
        ds = load(root, tmp_path)
    assert ds.names == ["good.png", "sub/x.png"] and ds.images.shape == (2, 3, 16, 16)
    assert dict(ds.skipped) == {"dangling.jpg": "dangling symlink (to missing.jpg)", "loop.png": "symlink loop",
                                "sub/back": "symlink loop: a folder already read"}
    assert "dangling.jpg (dangling symlink" in str(rec[0].message)
    with pytest.warns(DataWarning, match="skipped 3 of 5"):  # the same from the cache
        again = load(root, tmp_path)
    assert again.info["from_cache"] and again.skipped == ds.skipped


def test_symlinked_image_and_class_folders_are_read(tmp_path):
    elsewhere = tmp_path / "store"
    save(disc(), elsewhere / "m1.png")
    save(disc(), elsewhere / "m2.png")
    root = tmp_path / "syn"
    save(disc(), root / "nevus" / "n1.png")
    os.symlink(elsewhere, root / "melanoma")  # a class folder that is a link, as torchvision follows it
    os.symlink(elsewhere / "m1.png", root / "nevus" / "n2.png")
    ds = load(root, tmp_path)
    assert ds.layout == "imagefolder" and ds.class_counts() == {"melanoma": 2, "nevus": 2} and ds.skipped == []


@pytest.mark.parametrize("kind", ["loop", "dangling"])
def test_links_in_metadata_layouts(tmp_path, kind):
    root = make_isic2017(tmp_path / "isic2017")
    image = root / "ISIC-2017_Training_Data" / "ISIC_0000001.jpg"
    image.unlink()
    os.symlink(image.name if kind == "loop" else "gone.jpg", image)
    with pytest.warns(DataWarning, match="skipped 1 of 4"):
        ds = load(root, tmp_path)
    assert "ISIC_0000001" not in ds.names and len(ds) == 3
    assert dict(ds.skipped)["ISIC_0000001"] == ("symlink loop" if kind == "loop" else "dangling symlink (to gone.jpg)")


def test_only_broken_links_names_the_folder(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    os.symlink("nowhere.png", root / "a.png")
    with pytest.raises(ValueError, match=rf"{re.escape(str(root))}: no usable images .1 skipped: a.png .dangling"):
        load(root, tmp_path)


# ---------------------------------------------------------------------------------------------
# The cache folder


@pytest.mark.parametrize("where, message", [
    ("file", r"cache folder .*hostname: is a file, not a folder; choose another with --cache-dir"),
    ("under-file", r"cache folder .*hostname/sub: .*hostname is a regular file"),
])
def test_cache_folder_that_is_or_lies_under_a_file(tmp_path, monkeypatch, where, message):
    root = make_isic2017(tmp_path / "isic2017")
    (tmp_path / "hostname").write_text("box\n")
    cache_dir = tmp_path / "hostname" if where == "file" else tmp_path / "hostname" / "sub"
    forbid_decoding(monkeypatch)  # the error comes before any image is decoded
    with pytest.raises(ValueError, match=message) as err:
        load_dataset(root, size=16, cache_dir=cache_dir, progress=False)
    assert "\n" not in str(err.value)


def test_unwritable_cache_folder_fails_before_decoding_but_a_cached_result_still_reads(tmp_path, monkeypatch):
    root = make_isic2017(tmp_path / "isic2017")
    first = load(root, tmp_path)  # cached while writable
    cache_dir = tmp_path / "cache"
    real_access = os.access
    monkeypatch.setattr(gan.fileio.os, "access", lambda p, mode: Path(p) != cache_dir and real_access(p, mode))
    forbid_decoding(monkeypatch)
    assert load(root, tmp_path).info["from_cache"]  # reading needs no write permission
    with pytest.raises(ValueError, match=rf"cache folder {re.escape(str(cache_dir))}: .*not writable"):
        load(root, tmp_path, size=32)  # not cached: must write, so it says so before decoding
    assert [p.name for p in cache_dir.iterdir()] == [Path(first.cache_path).name]


def test_stale_temp_files_are_removed_when_the_cache_folder_is_opened(tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    dead = gan.fileio.temp_name(cache_dir / "x-64px.safetensors", 999999999)  # its writer was killed
    alive = gan.fileio.temp_name(cache_dir / "y-64px.safetensors")  # being written now
    dead.write_bytes(b"half")
    alive.write_bytes(b"half")
    load(make_isic2017(tmp_path / "isic2017"), tmp_path)
    assert not dead.exists() and alive.exists()


# ---------------------------------------------------------------------------------------------
# Passing read failures are not remembered as skips


def deny_once(monkeypatch, name: str, times: int = 1) -> list:
    """Image.open raises PermissionError for file ``name`` the first ``times`` times, as it does
    for a file without read permission (until chmod fixes it)."""
    real_open, denied = Image.open, []

    def open_(fp, *a, **kw):
        if Path(fp).name == name and len(denied) < times:
            denied.append(fp)
            raise PermissionError(errno.EACCES, "Permission denied", str(fp))
        return real_open(fp, *a, **kw)

    monkeypatch.setattr(gan.data.decode.Image, "open", open_)
    return denied


def test_permission_fixed_file_is_read_on_the_next_load(tmp_path, monkeypatch):
    root = make_isic2017(tmp_path / "isic2017")
    reference = load_dataset(root, size=16, cache_dir=tmp_path / "reference", progress=False)
    deny_once(monkeypatch, "ISIC_0000002.jpg")
    with pytest.warns(DataWarning, match=r"ISIC_0000002 \(cannot read \(PermissionError: Permission denied\)"):
        first = load(root, tmp_path)
    assert "ISIC_0000002" not in first.names and len(first) == 3
    calls = count_decoding(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # nothing skipped any more
        second = load(root, tmp_path)
    assert [Path(p).name for p in calls] == ["ISIC_0000002.jpg"]  # only the failed file was read again
    assert second.info["from_cache"] and second.cache_path == first.cache_path
    assert second.names == reference.names and second.labels == reference.labels and second.skipped == []
    assert torch.equal(second.images, reference.images)
    forbid_decoding(monkeypatch)  # and the cache now holds it
    third = load(root, tmp_path)
    assert third.names == reference.names and torch.equal(third.images, reference.images)


def test_still_unreadable_file_stays_skipped_and_retried(tmp_path, monkeypatch):
    root = make_isic2017(tmp_path / "isic2017")
    deny_once(monkeypatch, "ISIC_0000000.jpg", times=2)
    with pytest.warns(DataWarning, match="skipped 1 of 4"):
        load(root, tmp_path)
    with pytest.warns(DataWarning, match="skipped 1 of 4"):
        second = load(root, tmp_path)  # retried, failed again: still skipped
    assert dict(second.skipped)["ISIC_0000000"].startswith("cannot read (PermissionError")
    assert len(second) == 3
    assert load(root, tmp_path).names == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002", "ISIC_0000003"]


def test_retried_file_that_now_fails_to_decode_is_remembered(tmp_path, monkeypatch):
    root = make_isic2017(tmp_path / "isic2017")
    deny_once(monkeypatch, "ISIC_0000001.jpg")
    with pytest.warns(DataWarning, match="skipped 1 of 4"):
        load(root, tmp_path)

    def broken(path, size):  # readable now, but not an image (as if the permission hid a broken file)
        raise gan.data.decode.Unusable("not a readable image")

    monkeypatch.setattr(gan.data.decode, "decode_image", broken)
    with pytest.warns(DataWarning, match=r"ISIC_0000001 \(not a readable image\)"):
        load(root, tmp_path)
    forbid_decoding(monkeypatch)  # the cache now remembers the decoding failure
    with pytest.warns(DataWarning, match=r"ISIC_0000001 \(not a readable image\)"):
        assert len(load(root, tmp_path)) == 3


def test_corrupt_file_is_remembered_as_a_skip(tmp_path, monkeypatch):
    root = make_isic2017(tmp_path / "isic2017")
    (root / "ISIC-2017_Training_Data" / "ISIC_0000003.jpg").write_bytes(b"not a jpeg")
    with pytest.warns(DataWarning, match="skipped 1 of 4"):
        load(root, tmp_path)
    forbid_decoding(monkeypatch)  # a decoding failure is not retried
    with pytest.warns(DataWarning, match="ISIC_0000003 .not a readable image"):
        assert load(root, tmp_path).info["from_cache"]


# ---------------------------------------------------------------------------------------------
# Warnings as one line for the command-line entry points


def test_show_warnings_plainly_prints_one_line(tmp_path, capsys):
    root = tmp_path / "imgs"
    save(disc(), root / "good.png")
    (root / "bad.jpg").write_bytes(b"")
    before = warnings.showwarning
    with pytest.warns(UserWarning, match="not ours"), show_warnings_plainly():
        warnings.simplefilter("always")
        load(root, tmp_path)
        warnings.warn("not ours", UserWarning)  # other categories go to the previous handler
    assert warnings.showwarning is before
    err = capsys.readouterr().err
    assert err == f"warning: {root.resolve()}: skipped 1 of 2 images: bad.jpg (empty file)\n"


def test_show_warnings_plainly_installs_without_with(monkeypatch, capsys):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the test
    show_warnings_plainly((Warning,))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning("anything", RuntimeWarning, "f.py", 3)
    assert capsys.readouterr().err == "warning: anything\n"
