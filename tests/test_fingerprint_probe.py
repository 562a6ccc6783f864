"""bench/fingerprint_probe.py: each probe changes the one statistic it targets, to the requested value;
``none`` is the images themselves; PNG folders read back bit-exact; bad input is one line and exit 2."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.testing import lesion_images, write_tiny_generator

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "fingerprint_probe.py"
_spec = importlib.util.spec_from_file_location("fingerprint_probe", SCRIPT)
fp = importlib.util.module_from_spec(_spec)
sys.modules["fingerprint_probe"] = fp  # dataclasses look their module up there
_spec.loader.exec_module(fp)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return lesion_images(24, 64, seed=1)


def _bands(x: np.ndarray) -> np.ndarray:
    return np.median(fp.band_shares(x), axis=0)


def test_nyquist_patterns_put_their_energy_on_their_own_cells_only():
    h = 32
    cells = {(h, 0): (1, 0, 0), (0, h): (0, 1, 0), (h, h): (0, 0, 1)}
    for cell, w in cells.items():
        power = np.abs(np.fft.fft2(fp.nyquist_pattern(64, w))) ** 2
        assert power[cell] == pytest.approx(64 ** 4)
        assert power.sum() == pytest.approx(64 ** 4)


def test_cell_weights_follow_the_generators_excess_per_cell():
    ref = fp.set_stats(lesion_images(4, 64, seed=2))
    excess = np.array([1e-5, 0.0, 3e-5])
    target = fp.SetStats(nyquist=0.0, cells=tuple(np.add(ref.cells, excess)), bands=ref.bands, mean=ref.mean,
                         sd=ref.sd, hist=ref.hist)
    assert fp.cell_weights(target, ref) == pytest.approx((0.5, 0.0, 0.75 ** 0.5))
    assert fp.cell_weights(ref, ref) == (0.0, 0.0, 1.0)  # no excess: the plain checkerboard


def test_checkerboard_probe_reaches_the_requested_nyquist_ratio_and_leaves_the_rest(images):
    ref = fp.set_stats(images)
    a = fp.fit_checkerboard(images, 5.0 * ref.nyquist, (0.5, 0.6, 0.6))
    out = fp.add_pattern(images, fp.nyquist_pattern(64, (0.5, 0.6, 0.6)), a)
    assert 0 < a * 255 < 2  # below two grey levels: stochastic rounding keeps it
    assert fp.median_nyquist(out) / ref.nyquist == pytest.approx(5.0, rel=0.10)
    assert _bands(out)[:2] / np.array(ref.bands[:2]) == pytest.approx([1, 1], abs=0.03)
    assert np.abs(out.reshape(-1, 3).mean(0) - images.reshape(-1, 3).mean(0)).max() < 0.1
    assert np.array_equal(fp.add_pattern(images, fp.nyquist_pattern(64, (0, 0, 1)), 0.0), images)
    assert fp.fit_checkerboard(images, 0.5 * ref.nyquist, (0, 0, 1)) == 0.0  # already above the target


def test_lowpass_probe_lowers_the_two_bands_to_their_targets_and_keeps_the_highest(images):
    own = _bands(images)
    targets = {0: 0.7 * own[0], 1: 0.75 * own[1]}
    gains = fp.fit_band_gains(images, targets)
    out = fp.band_gains_filter(images, gains)
    got = _bands(out)
    assert gains[0] < 1 and gains[1] < 1 and gains[2] == 1.0
    assert got[0] == pytest.approx(targets[0], rel=0.10)
    assert got[1] == pytest.approx(targets[1], rel=0.10)
    assert got[2] == pytest.approx(own[2], rel=0.10)
    assert np.array_equal(fp.band_gains_filter(images, [1.0, 1.0, 1.0]), images)


def test_colour_probe_takes_the_targets_histograms_class_by_class(images):
    target = np.clip(lesion_images(30, 64, seed=7).astype(int) + [20, -15, 5], 0, 255).astype(np.uint8)
    labels = ["a", "b"] * 12
    target_labels = ["a"] * 10 + ["b"] * 20
    target[10:] = np.clip(target[10:].astype(int) - 40, 0, 255).astype(np.uint8)  # class b darker
    out = fp.colour_match(images, labels, target, target_labels)
    assert out.shape == images.shape and out.dtype == np.uint8
    for cls, mine, theirs in (("a", out[0::2], target[:10]), ("b", out[1::2], target[10:])):
        got, want = mine.reshape(-1, 3), theirs.reshape(-1, 3)
        assert np.abs(got.mean(0) - want.mean(0)).max() < 0.1, cls
        assert np.abs(got.std(0) - want.std(0)).max() < 0.1, cls
        assert fp.colour_jsd(fp.set_stats(mine), fp.set_stats(theirs)) < 1e-3, cls
    assert fp.colour_jsd(fp.set_stats(images[0::2]), fp.set_stats(target[:10])) > 1e-2


def test_none_is_the_images_bit_exact_and_pngs_read_back_bit_exact(images, tmp_path, monkeypatch):
    from eval import sources

    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    gen = fp.add_pattern(lesion_images(24, 64, seed=3), fp.nyquist_pattern(64, (0, 0, 1)), 2 / 255)
    probes = {p.name: p for p in fp.build_probes(images, None, gen, None)}
    assert list(probes) == list(fp.PROBES)
    assert np.array_equal(probes["none"].images, images)
    for name in ("none", "all"):
        folder = tmp_path / name
        fp.write_png_folder(probes[name].images, [f"{i:05d}" for i in range(len(images))], folder)
        back = sources.resolve(str(folder), "fake", size=64).images
        assert np.array_equal(back, probes[name].images), name


def _one_line_error(capsys, argv) -> str:
    assert fp.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err


def test_bad_input_is_one_line_naming_the_flag(tmp_path, capsys):
    real = tmp_path / "isic"
    (real / fp.HELDOUT).mkdir(parents=True)
    out = ["--out", str(tmp_path / "out")]
    err = _one_line_error(capsys, ["--real", str(tmp_path / "missing"), "--generator", "x.pt", *out])
    assert "--real" in err and "no such folder" in err
    err = _one_line_error(capsys, ["--real", str(real), "--generator", str(tmp_path / "nope.pt"), *out])
    assert "--generator" in err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    err = _one_line_error(capsys, ["--real", str(real), "--generator", str(junk), *out])
    assert "--generator" in err and "not a usable generator" in err
    tiny = write_tiny_generator(tmp_path / "tiny.pt", resolution=64)
    err = _one_line_error(capsys, ["--real", str(real), "--generator", str(tiny), *out])
    assert "unconditional" in err
    err = _one_line_error(capsys, ["--real", str(real), "--generator", str(tiny), "--n", "5", *out])
    assert "--n 5" in err
    assert not (tmp_path / "out").exists()  # nothing written before the inputs are checked


def test_the_script_run_as_a_command_exits_2_with_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), "--real", str(tmp_path / "missing"), "--generator", "g.pt",
                        "--out", str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: --real {tmp_path / 'missing'}: no such folder"]
