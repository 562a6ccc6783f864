"""Fingerprints: a data file (no pickle) that stands in for the real set in every metric."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval import (KEY_COPY_RATE, KEY_JS_RGB, KEY_MSSSIM_REAL, KEY_WASSERSTEIN_RGB, evaluate, load_fingerprint,
                  make_fingerprint, save_fingerprint)
from eval.testing import lesion_images

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def train():
    return lesion_images(120, 32, 0)


def test_round_trip_is_a_plain_data_file(tmp_path, train):
    fp = make_fingerprint(train, size=32, bank_size=16, n_thumbs=10, seed=3)
    path = tmp_path / "fp.npz"
    assert save_fingerprint(fp, path) == path and fp.path is None  # the path is returned, fp left as it was
    with np.load(path, allow_pickle=False) as z:  # would raise on any object array
        assert set(z.files) == {"meta", "hist_rgb256", "hist_hsv256", "nn_bank", "thumbs", "thumb_index",
                                "derm_features", "derm_mu", "derm_sigma"}
        assert all(z[k].dtype != object for k in z.files)
    back = load_fingerprint(path)
    assert back.path == str(path) and back.meta == json.loads(json.dumps(fp.meta))
    for k in ("hist_rgb256", "hist_hsv256", "nn_bank", "thumbs", "thumb_index"):
        np.testing.assert_array_equal(getattr(back, k), getattr(fp, k))
    assert back.nn_bank.shape == (120, 16, 16, 3) and back.thumbs.shape == (10, 32, 32, 3)
    np.testing.assert_array_equal(back.thumbs, train[back.thumb_index])
    m = back.meta
    assert (m["format"], m["image_count"], m["size"], m["bank"]["size"]) == ("lesiongan-fingerprint", 120, 32, 16)
    assert m["inception"] is None and m["created"] and m["preprocessing"] and m["derm"]["metric_version"] == "derm1"
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode


def test_metrics_from_fingerprint_equal_metrics_from_images(tmp_path, train):
    fake = lesion_images(40, 32, 1)
    path = tmp_path / "fp.npz"
    save_fingerprint(make_fingerprint(train, size=32), path)
    a = evaluate(train, fake, ["hist_js", "wasserstein", "hist_js_hsv"], bins=48)
    b = evaluate(str(path), fake, ["hist_js", "wasserstein", "hist_js_hsv"], bins=48)
    for k in ("js_rgb_hist48", "js_rgb_hist48_b", KEY_WASSERSTEIN_RGB, "wasserstein_rgb_g", "js_hsv_hist48"):
        assert a[k] == b[k]
    assert b["real"]["kind"] == "fingerprint" and b["n_real"] == 120 and b["resolution"] == 32


def test_memorization_and_diversity_from_fingerprints(tmp_path, train):
    held = lesion_images(100, 32, 2)
    save_fingerprint(make_fingerprint(train, size=32, bank_size=16, n_thumbs=20), tmp_path / "t.npz")
    save_fingerprint(make_fingerprint(held, size=32, bank_size=16), tmp_path / "v.npz")
    r = evaluate(str(tmp_path / "t.npz"), train[:5].copy(), ["memorization", "diversity"],
                 heldout=str(tmp_path / "v.npz"), msssim_pairs=50)
    assert r[KEY_COPY_RATE] == 1.0 and r["config"]["memorization"]["space"] == "pixel_16"
    assert r["config"]["memorization"]["train_from"] == "fingerprint bank"
    assert r["config"]["diversity"]["real_from"] == "fingerprint thumbnails" and r[KEY_MSSSIM_REAL] > 0
    noise = np.random.default_rng(0).integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)
    r = evaluate(str(tmp_path / "t.npz"), noise, ["memorization"], heldout=str(tmp_path / "v.npz"))
    assert r[KEY_COPY_RATE] == 0.0


def test_fingerprint_without_bank_says_memorization_is_unavailable(tmp_path, train):
    save_fingerprint(make_fingerprint(train, size=32, bank_size=None), tmp_path / "nb.npz")
    r = evaluate(str(tmp_path / "nb.npz"), train[:3], ["memorization"], heldout=lesion_images(100, 32, 5))
    assert "no image bank" in r["unavailable"]["memorization"]


def test_size_mismatch_and_bad_files_are_refused(tmp_path, train):
    path = tmp_path / "fp.npz"
    save_fingerprint(make_fingerprint(train[:10], size=32), path)
    with pytest.raises(ValueError, match="--size"):
        evaluate(str(path), train[:4], ["hist_js"], size=16)
    np.savez(tmp_path / "obj.npz", meta=np.array([{"format": "x"}], dtype=object))
    with pytest.raises(ValueError, match="obj.npz"):
        load_fingerprint(tmp_path / "obj.npz")
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(ValueError, match="format"):
        load_fingerprint(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_fingerprint(tmp_path / "junk.npz")


def test_cli_on_a_folder(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    for i, im in enumerate(lesion_images(12, 32, 7)):
        Image.fromarray(im).save(data / f"img{i:02d}.png")
    (data / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "fp.npz"
    env = {**os.environ, "LESIONGAN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "eval.fingerprint", "--data", str(data), "--size", "16", "--out", str(out)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    fp = load_fingerprint(out)
    assert fp.count == 12 and fp.size == 16 and fp.meta["skipped"] == 1 and fp.meta["layout"] == "folder"
    assert fp.meta["source"] == "imgs"  # the data set by name, not this machine's path
    assert zipfile.is_zipfile(out) and "LANCZOS" in fp.meta["preprocessing"]
    p = subprocess.run([sys.executable, "-m", "eval.fingerprint", "--data", str(data), "--out", str(tmp_path / "x.txt")],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and ".npz" in p.stderr
