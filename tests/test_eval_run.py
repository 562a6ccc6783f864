"""``python -m eval.run`` end to end on temporary folders, a tiny generator file and fingerprints."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval import KEY_JS_RGB, KEY_WASSERSTEIN_RGB, EvalConfig, evaluate, make_fingerprint, save_fingerprint, sources
from eval.run import ROW_FIRST, main as run_main, markdown_table, result_row, table_columns
from eval.testing import FakeGenerator, lesion_images, write_tiny_generator

ROOT = Path(__file__).resolve().parents[1]


def _folder(path: Path, images: np.ndarray, broken: int = 0) -> Path:
    path.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(path / f"img{i:03d}.png")
    for i in range(broken):
        (path / f"broken{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return path


def _run(args: list[str], tmp_path: Path, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LESIONGAN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "eval.run", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_json_on_folders(tmp_path):
    real = _folder(tmp_path / "real", lesion_images(40, 32, 0), broken=2)
    fake = _folder(tmp_path / "fake", lesion_images(20, 32, 1))
    held = _folder(tmp_path / "held", lesion_images(100, 16, 2))
    p = _run(["--real", str(real), "--fake", str(fake), "--heldout", str(held), "--size", "16", "--json", "--offline",
              "--metrics", "hist_js", "wasserstein", "diversity", "memorization", "fid"], tmp_path)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)  # stdout holds the JSON and nothing else
    assert 0 < r[KEY_JS_RGB] < 1 and 0 < r[KEY_WASSERSTEIN_RGB] < 1
    assert {f"{KEY_JS_RGB}_{c}" for c in "rgb"} <= set(r) and {f"{KEY_WASSERSTEIN_RGB}_{c}" for c in "rgb"} <= set(r)
    assert (r["n_real"], r["n_fake"], r["resolution"], r["seed"]) == (40, 20, 16, 0)
    assert r["real"]["skipped"] == 2 and r["real"]["kind"] == "folder"
    assert (r["real"]["source"], r["fake"]["source"]) == ("real", "fake")  # by name: no path of this machine
    assert "LANCZOS" in r["resize"]["real"]
    assert 0 <= r["memorization_copy_rate"] <= 1 and r["diversity_msssim_fake"] > 0
    assert "no Inception weights" in r["unavailable"]["fid"] or "fid_inception_299" in r
    assert isinstance(r["seconds"], float)


def test_generator_file_is_deterministic_under_seed_and_resized(tmp_path, capsys, monkeypatch):
    gen = write_tiny_generator(tmp_path / "generator.pt", resolution=32)
    fp = tmp_path / "fp.npz"
    save_fingerprint(make_fingerprint(lesion_images(30, 16, 0), size=16), fp)
    args = ["--real", str(fp), "--fake", str(gen), "--n", "24", "--json", "--metrics", "hist_js", "wasserstein", "--quiet"]
    a = _run(args + ["--seed", "3"], tmp_path)  # the command itself, once; the same main() in this process after
    assert a.returncode == 0, a.stderr
    assert a.stderr == ""  # --quiet
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))

    def here(argv):
        assert run_main(argv) == 0
        return json.loads(capsys.readouterr().out)

    ra, rb, rc = json.loads(a.stdout), here(args + ["--seed", "3"]), here(args + ["--seed", "4"])
    assert ra[KEY_JS_RGB] == rb[KEY_JS_RGB] and ra[KEY_WASSERSTEIN_RGB] == rb[KEY_WASSERSTEIN_RGB]
    assert ra[KEY_WASSERSTEIN_RGB] != rc[KEY_WASSERSTEIN_RGB]
    assert ra["fake"]["seed"] == 3 and ra["n_fake"] == 24 and ra["fake"]["native_resolution"] == 32
    assert ra["resolution"] == 16 and ra["resize"]["fake"] == "pil-lanczos"
    assert ra["fake"]["source"] == f"{tmp_path.name}/generator.pt" and ra["real"]["source"] == f"{tmp_path.name}/fp.npz"
    # A folder holding generator.pt is the generator, not a folder of images.
    d = here(["--real", str(fp), "--fake", str(tmp_path), "--n", "24", "--seed", "3", "--json", "--quiet",
              "--metrics", "hist_js", "wasserstein"])
    assert d[KEY_JS_RGB] == ra[KEY_JS_RGB]


def test_no_arguments_scores_every_checkpoint(tmp_path):
    ck = tmp_path / "checkpoints"
    train, val = lesion_images(60, 16, 0), lesion_images(100, 16, 1)
    for name, res in (("dcgan-a", 32), ("dcgan-b", 64)):
        (ck / name).mkdir(parents=True)
        write_tiny_generator(ck / name / "generator.pt", resolution=res, seed=res)
        save_fingerprint(make_fingerprint(train, size=16, bank_size=16), ck / name / "fingerprint.npz")
    save_fingerprint(make_fingerprint(val, size=16, bank_size=16), ck / "dcgan-a" / "fingerprint-val.npz")
    p = _run(["--n", "30", "--metrics", "hist_js", "wasserstein", "memorization"], tmp_path, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads((ck / "results.json").read_text())
    rows = doc["rows"]
    assert [(r["model"], r["reference"]) for r in rows] == [("dcgan-a", "train"), ("dcgan-a", "validation"),
                                                          ("dcgan-b", "train")]
    for r in rows:
        assert r["n_fake"] == 30 and r["resolution"] == 16 and r["seed"] == 0 and r["seconds"] > 0
        assert 0 < r[KEY_JS_RGB] <= 1
    assert 0 <= rows[0]["memorization_copy_rate"] <= 1  # held-out from fingerprint-val.npz
    assert "memorization_copy_rate" not in rows[1]  # the validation row has no held-out set of its own
    assert "held-out" in rows[1]["unavailable"]["memorization"] and "held-out" in rows[2]["unavailable"]["memorization"]
    assert rows[0]["unavailable"] == {} and rows[0]["resize"] == {"real": rows[0]["resize"]["real"], "fake": "pil-lanczos"}
    with open(ck / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 and float(table[0][KEY_JS_RGB]) == pytest.approx(rows[0][KEY_JS_RGB])
    # CSV has no nesting: there, and only there, the reasons are folded into text.
    assert table[2]["unavailable"] == f"memorization: {rows[2]['unavailable']['memorization']}"
    per_model = json.loads((ck / "dcgan-a" / "results.json").read_text())
    assert set(per_model["results"]) == {"train", "validation"}
    assert per_model["results"]["train"]["fake"]["native_resolution"] == 32
    assert "| model | reference |" in p.stdout and "dcgan-b" in p.stdout
    assert not list(ck.rglob("*.tmp"))  # atomic writes leave no temp files
    # One run folder given: its own results.json is written, no collection files inside it.
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert run_main(["--checkpoints", str(ck / "dcgan-b"), "--n", "8", "--metrics", "hist_js", "--quiet",
                         "--json"]) == 0
    doc = json.loads(out.getvalue())
    assert doc == json.loads((ck / "dcgan-b" / "results.json").read_text()) and doc["results"]["train"]["n_fake"] == 8
    assert not (ck / "dcgan-b" / "results.csv").exists()
    # Three sample seeds: each number is a mean with its sd; the model's file keeps seed 0's full result.
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_main(["--checkpoints", str(ck), "--n", "12", "--seeds", "3", "--metrics", "hist_js",
                         "--quiet"]) == 0
    rows = json.loads((ck / "results.json").read_text())["rows"]
    assert all(r["seeds"] == [0, 1, 2] and r[f"{KEY_JS_RGB}_sd"] > 0 for r in rows)
    spread = json.loads((ck / "dcgan-a" / "results.json").read_text())["results"]["train"]["spread"]
    assert spread[KEY_JS_RGB]["mean"] == pytest.approx(rows[0][KEY_JS_RGB]) and spread["seeds"] == [0, 1, 2]


def test_model_flag_rescores_one_model_and_keeps_the_others_rows(tmp_path, capsys):
    ck = tmp_path / "checkpoints"
    train = lesion_images(40, 16, 0)
    for name, res in (("dcgan-a", 32), ("dcgan-b", 64)):
        (ck / name).mkdir(parents=True)
        write_tiny_generator(ck / name / "generator.pt", resolution=res, seed=res)
        save_fingerprint(make_fingerprint(train, size=16, bank_size=16), ck / name / "fingerprint.npz")
    args = ["--checkpoints", str(ck), "--n", "12", "--seeds", "2", "--metrics", "hist_js", "--quiet"]
    assert run_main(args) == 0
    before = json.loads((ck / "results.json").read_text())
    a_model_file = (ck / "dcgan-a" / "results.json").read_bytes()
    # dcgan-b is retrained (other weights): rescoring it alone replaces its rows, dcgan-a's stay bit for bit.
    write_tiny_generator(ck / "dcgan-b" / "generator.pt", resolution=64, seed=7)
    assert run_main(args + ["--model", "dcgan-b"]) == 0
    after = json.loads((ck / "results.json").read_text())
    assert [r["model"] for r in after["rows"]] == ["dcgan-a", "dcgan-b"]
    assert after["rows"][0] == before["rows"][0]
    assert after["rows"][1][KEY_JS_RGB] != before["rows"][1][KEY_JS_RGB]
    assert after["rows"][1]["seeds"] == [0, 1]
    assert (ck / "dcgan-a" / "results.json").read_bytes() == a_model_file
    assert after["commands"]["dcgan-a"] == before["command"]
    assert after["commands"]["dcgan-b"].endswith("--model dcgan-b")
    with open(ck / "results.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [r["model"] for r in table] == ["dcgan-a", "dcgan-b"]
    assert float(table[1][KEY_JS_RGB]) == pytest.approx(after["rows"][1][KEY_JS_RGB])
    # Other settings than the collection's, or a model that is not there: one line, nothing written.
    capsys.readouterr()
    stamp = (ck / "results.json").read_bytes()
    assert run_main(["--checkpoints", str(ck), "--n", "10", "--seeds", "2", "--metrics", "hist_js", "--quiet",
                     "--model", "dcgan-b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--n 12" in err and "Traceback" not in err
    assert run_main(args + ["--model", "pggan"]) == 2
    err = capsys.readouterr().err
    assert "--model pggan" in err and "dcgan-a, dcgan-b" in err
    assert (ck / "results.json").read_bytes() == stamp and not list(ck.rglob("*.tmp"))


def test_evaluate_leaves_its_inputs_alone_and_a_cache_shares_features(tmp_path, monkeypatch):
    from eval.metrics import histogram

    calls = []
    real_counts = histogram.channel_histograms
    monkeypatch.setattr(histogram, "channel_histograms", lambda x, *a, **k: calls.append(len(x)) or real_counts(x, *a, **k))
    a, b = sources.resolve(lesion_images(10, 16, 0), "real", size=16), sources.resolve(lesion_images(11, 16, 1), "real", size=16)
    fake = sources.resolve(lesion_images(12, 16, 2), "fake", size=16)
    fp = sources.resolve(make_fingerprint(lesion_images(13, 16, 3), size=16), "real", size=16)
    stored = dict(fp.features)
    calls.clear()  # (making the fingerprint counted its histograms)
    for cache in (None, None):  # a fresh cache per call: the fake set's histograms twice
        evaluate(a, fake, ["hist_js", "wasserstein"], cache=cache)
    assert calls == [10, 12, 10, 12]
    calls.clear()
    cache = sources.FeatureCache()
    r1 = evaluate(a, fake, ["hist_js", "wasserstein"], cache=cache)
    r2 = evaluate(b, fake, ["hist_js", "wasserstein"], cache=cache)
    r3 = evaluate(fp, fake, ["hist_js", "wasserstein"], cache=cache)
    assert calls == [10, 12, 11]  # the fake set once; the fingerprint's stored counts are read, not computed
    assert r1[KEY_JS_RGB] == evaluate(a, fake, ["hist_js"])[KEY_JS_RGB] and r2[KEY_JS_RGB] != r1[KEY_JS_RGB]
    assert 0 < r3[KEY_JS_RGB] < 1
    assert a.features == {} and fake.features == {} and dict(fp.features) == stored
    with pytest.raises(TypeError):
        fp.features["hist_rgb256"] = None  # a set's stored features are read-only


def test_the_histogram_key_follows_bins_and_the_table_follows_the_catalogue():
    from eval.registry import catalogue, get_metric

    x, y = lesion_images(4, 16, 0), lesion_images(4, 16, 1)
    r = evaluate(x, y, ["hist_js", "hist_js_hsv"], bins=32)
    assert "js_rgb_hist32" in r and "js_hsv_hist32" in r and KEY_JS_RGB not in r
    spec = get_metric("hist_js")
    assert spec.key == KEY_JS_RGB == "js_rgb_hist64"  # the registered key is the default's
    assert spec.result_keys(EvalConfig(bins=32)) == ("js_rgb_hist32",)
    assert get_metric("wasserstein").result_keys(EvalConfig(bins=32)) == (KEY_WASSERSTEIN_RGB,)
    cols = table_columns()
    assert cols[:2] == ["model", "reference"] and cols[-1] == "seconds"
    assert cols[len(ROW_FIRST):-1] == [k for m in catalogue() for k in m.keys]
    assert "js_rgb_hist32" in table_columns(["hist_js", "swd"], bins=32) and "swd_pggan_x1e3_avg" in table_columns(["swd"])
    row = result_row(r, model="m", reference="x")
    assert "| js_rgb_hist32 | js_hsv_hist32 |" in markdown_table([row], ["hist_js", "hist_js_hsv"], 32)


def test_the_heldout_set_is_read_only_for_a_metric_that_needs_it():
    x, y = lesion_images(4, 16, 0), lesion_images(4, 16, 1)
    r = evaluate(x, y, ["hist_js"], heldout="/nowhere/at/all")  # no metric needs it: never opened
    assert "heldout" not in r and r["unavailable"] == {}
    r = evaluate(x, y, ["hist_js", "memorization"])
    assert r["unavailable"] == {"memorization": "memorization needs a held-out real set and none was given "
                                                "(--heldout PATH)"}
    with pytest.raises(ValueError, match="does not exist"):
        evaluate(x, y, ["memorization"], heldout="/nowhere/at/all")


@pytest.mark.parametrize("args, message", [
    (["--real", "x"], "--real and --fake go together"),
    (["--real", "nowhere", "--fake", "nowhere"], "does not exist"),
    (["--n", "0"], "--n must be at least 1"),
    (["--bins", "300", "--real", "a", "--fake", "b"], "--bins"),
])
def test_bad_arguments_name_the_flag(tmp_path, args, message):
    p = _run(args, tmp_path, cwd=tmp_path)
    assert p.returncode == 2 and message in p.stderr


def test_unknown_metric_and_missing_checkpoints(tmp_path):
    a = _folder(tmp_path / "a", lesion_images(3, 16))
    p = _run(["--real", str(a), "--fake", str(a), "--metrics", "fid,nonsense"], tmp_path)
    assert p.returncode == 2 and "unknown metric 'nonsense'" in p.stderr
    p = _run([], tmp_path, cwd=tmp_path)
    assert p.returncode == 2 and "generator.pt" in p.stderr


def test_python_api_determinism_and_batch_size():
    real = lesion_images(20, 16, 0)
    G = FakeGenerator(resolution=16)
    r1 = evaluate(real, G, ["hist_js", "diversity"], n=12, seed=1, msssim_pairs=20)
    r2 = evaluate(real, G, ["hist_js", "diversity"], n=12, seed=1, msssim_pairs=20, batch_size=5)
    r3 = evaluate(real, G, ["hist_js", "diversity"], n=12, seed=2, msssim_pairs=20)
    for k in (KEY_JS_RGB, "diversity_msssim_fake", "diversity_msssim_real"):
        assert r1[k] == r2[k]
    assert r1[KEY_JS_RGB] != r3[KEY_JS_RGB] and r1["fake"]["seed"] == 1 and r1["n_fake"] == 12


def test_gan_data_cache_file_is_an_input(tmp_path):
    from gan.data import load_dataset

    folder = _folder(tmp_path / "imgs", lesion_images(8, 32, 5))
    ds = load_dataset(folder, size=16, cache_dir=tmp_path / "cache", progress=False)
    assert str(ds.cache_path).endswith(".safetensors")
    fake = lesion_images(6, 16, 6)
    a = evaluate(ds.cache_path, fake, ["hist_js", "wasserstein"])
    b = evaluate(ds, fake, ["hist_js", "wasserstein"])
    assert a[KEY_JS_RGB] == b[KEY_JS_RGB] and a[KEY_WASSERSTEIN_RGB] == b[KEY_WASSERSTEIN_RGB]
    assert a["n_real"] == 8 and a["real"]["kind"] == "dataset"
    (tmp_path / "bad.safetensors").write_bytes(b"junk")
    with pytest.raises(ValueError, match="bad.safetensors"):
        evaluate(tmp_path / "bad.safetensors", fake, ["hist_js"])


def test_spread_rows_give_mean_and_sd_over_seeds():
    from eval.run import spread_row

    rows = [{"model": "m", "seed": s, "n_fake": 10, "js_rgb_hist64": v, "unavailable": {}, "flag": True}
            for s, v in ((0, 0.01), (1, 0.02), (2, 0.03))]
    row = spread_row(rows)
    assert row["js_rgb_hist64"] == pytest.approx(0.02) and row["js_rgb_hist64_sd"] == pytest.approx(0.01)
    assert row["seeds"] == [0, 1, 2] and row["n_fake"] == 10 and "n_fake_sd" not in row and "seed_sd" not in row
    assert spread_row(rows[:1]) == rows[0]
