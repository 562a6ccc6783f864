"""Tests of ``python -m gan.data PATH``: the text report, ``--json``, errors, and the module entry point."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gan.data.cli import main
from test_data import disc, make_isic2017, save, write_csv  # shared tiny-data builders


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*map(str, argv), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_text_report(tmp_path, capsys):
    root = make_isic2017(tmp_path / "isic2017")
    save(disc(), root / "ISIC-2017_Training_Data" / "ISIC_0000050.jpg")  # no row in the CSV
    code, out, err = run(capsys, root, "--size", "16", "--cache-dir", tmp_path / "cache")
    assert code == 0
    assert f"data:     {root.resolve()}" in out and "layout:   isic2017, split train" in out
    assert "images:   4 usable at 16 px (5 listed, 1 skipped)" in out
    assert "classes (index, class, images):" in out
    lines = out.splitlines()
    i = lines.index("classes (index, class, images):")
    assert [line.split() for line in lines[i + 1:i + 4]] == [["0", "melanoma", "1"], ["1", "nevus", "2"],
                                                            ["2", "seborrheic_keratosis", "1"]]
    assert "codes (the data set's own, images):" in out and ["neither", "2"] in [line.split() for line in lines]
    assert "skipped (1):\n  ISIC_0000050: no row in ISIC-2017_Training_Part3_GroundTruth.csv" in out
    assert "cache:    written to" in out
    assert "skipped" not in err and "Traceback" not in err  # listed in the report, not warned again
    code, out, _ = run(capsys, root, "--size", "16", "--cache-dir", tmp_path / "cache")
    assert "cache:    read from" in out


def test_json_report(tmp_path, capsys):
    root = tmp_path / "imgs"
    for name in ("a.png", "b.png", "c.png"):
        save(disc(), root / name)
    (root / "d.png").write_bytes(b"")
    write_csv(tmp_path / "labels.csv", "image,label", ["a.png,mel", "b.png,Melanoma", "c.png,my_class", "d.png,nv"])
    code, out, _ = run(capsys, root, "--labels", tmp_path / "labels.csv", "--size", "16",
                       "--cache-dir", tmp_path / "cache", "--json")
    assert code == 0
    r = json.loads(out)
    assert (r["layout"], r["split"], r["size"]) == ("folder", None, 16)
    assert (r["images"], r["listed"], r["unlabelled"]) == (3, 4, 0)
    assert r["class_order"] == ["melanoma", "my_class"] and r["classes"] == {"melanoma": 2, "my_class": 1}
    assert r["codes"] == {"Melanoma": 1, "mel": 1, "my_class": 1}
    assert r["skipped"] == [{"name": "d.png", "reason": "empty file"}]
    assert r["cache"]["from_cache"] is False and r["cache"]["path"].endswith(".safetensors")


def test_unlabelled_folder(tmp_path, capsys):
    save(disc(), tmp_path / "imgs" / "a.png")
    code, out, _ = run(capsys, tmp_path / "imgs", "--size", "16", "--cache-dir", tmp_path / "cache")
    assert code == 0 and "classes:  none (unlabelled)" in out and "codes" not in out


def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    code, out, err = run(capsys, tmp_path / "nothing", "--cache-dir", tmp_path / "cache")
    assert code == 2 and out == "" and err == f"error: {(tmp_path / 'nothing').resolve()}: no such folder\n"
    root = make_isic2017(tmp_path / "isic2017")
    (tmp_path / "afile").write_text("x")
    code, _, err = run(capsys, root, "--cache-dir", tmp_path / "afile")
    assert code == 2 and err.startswith("error: cache folder") and err.count("\n") == 1


def test_module_entry_point(tmp_path):
    save(disc(), tmp_path / "syn" / "melanoma" / "a.png")
    save(disc(), tmp_path / "syn" / "nevus" / "b.png")
    os.symlink("missing.png", tmp_path / "syn" / "nevus" / "c.png")
    proc = subprocess.run([sys.executable, "-m", "gan.data", str(tmp_path / "syn"), "--size", "16", "--json",
                           "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["layout"] == "imagefolder" and r["classes"] == {"melanoma": 1, "nevus": 1}
    assert r["skipped"] == [{"name": "nevus/c.png", "reason": "dangling symlink (to missing.png)"}]
    assert "Traceback" not in proc.stderr


def test_sample_names_keeps_each_class_share_and_repeats_exactly():
    from gan.data.subset import sample_names

    names = [f"img{i:03d}" for i in range(100)]
    labels = ["nevus"] * 70 + ["melanoma"] * 19 + ["seborrheic_keratosis"] * 10 + [None]
    picked = sample_names(names, labels, 20, seed=0)
    got = {c: sum(labels[names.index(n)] == c for n in picked) for c in dict.fromkeys(labels)}
    # one each first; the other 16 by the 69 / 18 / 9 / 0 images left: 11.5 / 3.0 / 1.5 / 0, and the one
    # left over to the largest remainder, a tie of nevus and seborrheic keratosis won by the larger group
    assert got == {"nevus": 13, "melanoma": 4, "seborrheic_keratosis": 2, None: 1}
    assert picked == sorted(picked) and len(set(picked)) == 20  # the data set's order, no repeats
    assert sample_names(names, labels, 20, seed=0) == picked
    assert sample_names(names, labels, 20, seed=1) != picked
    assert sample_names(names, labels, 100, seed=3) == names
    for bad in (0, 101):
        with pytest.raises(ValueError, match="between 1 and the 100 images"):
            sample_names(names, labels, bad, seed=0)


def test_sample_writes_an_image_list_that_subset_reads(tmp_path, capsys):
    from gan.data.subset import read_image_list, select

    root = make_isic2017(tmp_path / "isic2017")
    lst = tmp_path / "subset-3.txt"
    code, out, err = run(capsys, root, "--size", "16", "--cache-dir", tmp_path / "cache",
                         "--sample", "3", "--seed", "0", "--write-list", lst)
    assert code == 0, err
    assert out.splitlines()[-1] == (f"wrote {lst}: 3 images, seed 0 "
                                   "(nevus 1, melanoma 1, seborrheic_keratosis 1)")
    names = read_image_list(lst)
    assert len(names) == 3 and lst.read_text().startswith("# 3 of 4 images of isic2017 (train), seed 0")
    from gan.data import load_dataset
    ds = select(load_dataset(root, size=16, cache_dir=tmp_path / "cache", progress=False), lst)
    assert ds.names == names and sorted(ds.class_counts().values()) == [1, 1, 1]
    code, _, err = run(capsys, root, "--size", "16", "--cache-dir", tmp_path / "cache", "--sample", "9",
                       "--write-list", tmp_path / "x.txt")
    assert code == 2 and err == f"error: --write-list {tmp_path / 'x.txt'}: the sample size must be between 1 and the 4 images, got 9\n"
    assert not (tmp_path / "x.txt").exists()
    code, _, err = run(capsys, root, "--sample", "2")
    assert code == 2 and err == "error: --sample and --write-list go together\n"
