"""bench/metric_validity.py: its degradations do what they say, deterministically; and, through the
shipped dermoscopy encoder, the derm metrics rank made sets the way the validity table expects."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.testing import lesion_images

ROOT = Path(__file__).resolve().parents[1]


def _load_harness():
    # bench/ is a folder of scripts, not a package: load the file itself.
    spec = importlib.util.spec_from_file_location("metric_validity", ROOT / "bench" / "metric_validity.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file runs
    spec.loader.exec_module(mod)
    return mod


mv = _load_harness()


@pytest.fixture(scope="module")
def made():
    return lesion_images(30, 64, seed=3)


def _grey(n=8, size=64, value=128):
    return np.full((n, size, size, 3), value, np.uint8)


def _high_freq_energy(x: np.ndarray) -> float:
    """Share of spectral power above a quarter of the sampling rate (mean-free, per image and channel)."""
    f = np.fft.fftshift(np.abs(np.fft.fft2(x.astype(np.float64) - x.mean((1, 2), keepdims=True), axes=(1, 2))) ** 2,
                        axes=(1, 2))
    s = x.shape[1]
    yy, xx = np.mgrid[:s, :s] - s // 2
    high = np.hypot(yy, xx) > s / 4
    return float(f[:, high].sum() / f.sum())


def test_every_condition_is_deterministic_and_keeps_shape(made):
    assert [c.name for c in mv.CONDITIONS][0] == "clean"
    for c in mv.CONDITIONS:
        a, b = c.apply(made, 0), c.apply(made, 0)
        assert a.shape == made.shape and a.dtype == np.uint8, c.name
        assert np.array_equal(a, b), c.name
        if c.name != "clean":
            assert not np.array_equal(a, made), f"{c.name} left the images unchanged"
    # Seeded ones change with the seed, and leave their input alone.
    before = made.copy()
    assert not np.array_equal(mv.gaussian_noise(made, 0.05, 0), mv.gaussian_noise(made, 0.05, 1))
    assert not np.array_equal(mv.collapse(made, 10, 0), mv.collapse(made, 10, 1))
    assert np.array_equal(made, before)


def test_blur_removes_high_frequencies_and_more_with_sigma(made):
    noisy = mv.gaussian_noise(made, 0.05, 0)  # some high-frequency content to remove
    e0 = _high_freq_energy(noisy)
    e1 = _high_freq_energy(mv.gaussian_blur(noisy, 1.0))
    e2 = _high_freq_energy(mv.gaussian_blur(noisy, 2.0))
    assert e2 < e1 < 0.5 * e0
    # A flat image stays flat; the mean is kept.
    assert np.array_equal(mv.gaussian_blur(_grey(), 2.0), _grey())
    assert abs(mv.gaussian_blur(made, 2.0).mean() - made.mean()) < 0.5


def test_jpeg_changes_pixels_and_more_at_low_quality(made):
    q10, q95 = mv.jpeg(made, 10), mv.jpeg(made, 95)
    err10 = np.abs(q10.astype(int) - made).mean()
    err95 = np.abs(q95.astype(int) - made).mean()
    assert err10 > 2 * err95 > 0
    # 8x8 DCT blocks: the error is discontinuous at block edges far more than inside blocks.
    d = np.abs(np.diff(q10.astype(float) - made, axis=2)).mean((0, 1, 3))
    assert d[7::8].mean() > d[np.arange(len(d)) % 8 != 7].mean()


@pytest.mark.parametrize("sigma", [0.05, 0.1])
def test_noise_has_the_stated_sd_on_unit_intensities(sigma):
    x = _grey(16)  # mid-grey: clipping at 0 or 1 is more than 5 sd away
    d = (mv.gaussian_noise(x, sigma, 0).astype(np.float64) - x) / 255.0
    assert abs(d.mean()) < 0.002
    assert d.std() == pytest.approx(sigma, rel=0.02)


def test_checkerboard_has_period_8_and_low_contrast():
    x = _grey(2)
    d = mv.checkerboard(x, 8, 0.03).astype(np.int64) - x
    assert set(np.unique(d)) == {-8, 8}  # +-0.03 * 255, rounded
    for axis in (1, 2):
        assert np.array_equal(np.roll(d, 8, axis=axis), d)  # repeats every 8 px
        assert np.array_equal(np.roll(d, 4, axis=axis), -d)  # 4 px squares alternate
    assert np.array_equal(d[..., 0], d[..., 2])  # the same on every channel
    with pytest.raises(ValueError, match="period"):
        mv.checkerboard(x, 7)


def test_hue_saturation_shift_turns_hue_and_keeps_greys(made):
    from eval.images import rgb_to_hsv

    out = mv.hue_saturation_shift(made, 0.05, 1.3)
    h0, h1 = rgb_to_hsv(made)[..., 0].astype(int), rgb_to_hsv(out)[..., 0].astype(int)
    s0, s1 = rgb_to_hsv(made)[..., 1].astype(float), rgb_to_hsv(out)[..., 1].astype(float)
    turn = np.median((h1 - h0) % 256)
    assert turn == pytest.approx(0.05 * 256, abs=1.5)  # 18 degrees of 360
    assert np.median(s1[s0 > 40] / s0[s0 > 40]) == pytest.approx(1.3, abs=0.05)
    assert np.array_equal(mv.hue_saturation_shift(_grey(), 0.05, 1.3), _grey())  # no hue to turn


def test_collapse_gives_10_distinct_images_repeated_alike(made):
    out = mv.collapse(made, 10, 0)
    assert out.shape == made.shape
    distinct, counts = np.unique(out.reshape(len(out), -1), axis=0, return_counts=True)
    assert len(distinct) == 10 and set(counts) == {3}
    originals = {m.tobytes() for m in made}
    assert all(o.tobytes() in originals for o in out)
    with pytest.raises(ValueError, match="same count"):
        mv.collapse(made[:25], 10, 0)


def test_expectations_and_table_from_made_rows():
    rows = {c.name: {"fd_derm": 1.0, "precision_derm": 0.8, "recall_derm": 0.7, "coverage_derm": 0.9, "what": c.what,
                     "timing": {"hist_js": 0.01}} for c in mv.CONDITIONS}
    for name, fd in (("blur-1", 2.0), ("blur-2", 3.0), ("noise-0.05", 2.0), ("noise-0.1", 1.5), ("jpeg-10", 4.0),
                     ("hue-sat", 2.0), ("checker-8", 2.0), ("collapsed", 2.0)):
        rows[name]["fd_derm"] = fd
    for name in ("blur-1", "blur-2", "noise-0.05", "noise-0.1"):
        rows[name]["precision_derm"] = 0.5
    rows["collapsed"].update(recall_derm=0.2, coverage_derm=0.3)
    for name in rows:  # the C2STs: every degradation above the clean floor but the checkerboard's pixel one
        rows[name].update(c2st_derm=0.55 if name == "clean" else 0.8, c2st_pixel=0.55 if name == "clean" else 0.9)
    rows["checker-8"]["c2st_pixel"] = 0.55
    rows["blur-1"].update(c2st_pixel_lo95=0.85, c2st_pixel_hi95=0.95)
    checks = mv.check(rows)
    failed = [(n, c["check"]) for n, cs in checks.items() for c in cs if c["passed"] is False]
    assert failed == [("noise-0.1", "FD > noise-0.05"), ("checker-8", "C2ST pixel > clean")]
    assert checks["clean"] == []
    assert len(checks["jpeg-10"]) == 3  # FD, C2ST derm, C2ST pixel
    del rows["jpeg-10"]["fd_derm"]
    assert mv.check(rows)["jpeg-10"][0] == {"check": "FD > clean", "passed": None}  # missing: n/a, not a pass
    table = mv.markdown({"rows": rows, "checks": mv.check(rows)}, "python bench/metric_validity.py")
    assert table.count("\n| ") == len(mv.CONDITIONS) + 2  # header, rule, rows and "**FAIL**" in table and "n/a" in table
    assert "| C2ST derm | C2ST pixel |" in table and "| 0.9 [0.85, 0.95] |" in table  # a C2ST with its interval


# ---------------------------------------------------------------------------------------------
# Through the shipped dermoscopy encoder (checkpoints/derm-encoder)
# ---------------------------------------------------------------------------------------------

ENCODER_DIR = ROOT / "checkpoints" / "derm-encoder"


def made_lesions(n: int, seed: int, kind: str, size: int = 64) -> np.ndarray:
    """uint8 (n, size, size, 3) made lesions of one of two kinds, in the same skin tones and sizes:
    "nevus": a round disc of one brown; "melanoma": an irregular border (two sine lobes) with dark and
    blue-grey blotches inside, the ABCD rule's asymmetry, border and colour variegation."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        skin = np.array([215, 160, 140]) + rng.integers(-25, 26, 3)
        cy, cx = rng.uniform(0.4, 0.6, 2) * size
        rr, ang = np.hypot(yy - cy, xx - cx), np.arctan2(yy - cy, xx - cx)
        r = rng.uniform(0.2, 0.28) * size
        brown = np.array([140, 90, 60]) + rng.integers(-15, 16, 3)
        if kind == "nevus":
            inside = rr < r
            img = np.where(inside[..., None], brown, skin).astype(np.float64)
        else:
            k, ph = rng.integers(3, 7), rng.uniform(0, 2 * np.pi, 2)
            inside = rr < r * (1 + 0.25 * np.sin(k * ang + ph[0]) + 0.15 * np.sin((k + 2) * ang + ph[1]))
            img = np.where(inside[..., None], brown, skin).astype(np.float64)
            for _ in range(3):
                by, bx = cy + rng.normal(0, r / 3), cx + rng.normal(0, r / 3)
                blotch = (np.hypot(yy - by, xx - bx) < rng.uniform(0.2, 0.4) * r) & inside
                img[blotch] = (np.array([60, 35, 30]), np.array([110, 110, 140]))[rng.integers(0, 2)]
        out[i] = np.clip(np.rint(img + rng.normal(0, 4, img.shape)), 0, 255).astype(np.uint8)
    return out


def _auc(neg: np.ndarray, pos: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half."""
    return float(np.mean(pos[:, None] > neg[None]) + 0.5 * np.mean(pos[:, None] == neg[None]))


@pytest.fixture(scope="module")
def encoder():
    from eval.encoder import load_encoder

    return load_encoder(ENCODER_DIR)


def test_shipped_encoder_knows_melanoma_like_lesions_a_random_network_does_not(encoder):
    # Random CNN features also rank blur and noise correctly, so the ranking tests below prove little
    # on their own. What the trained encoder adds: its melanoma output (learned on HAM10000, never on
    # made images) ranks made melanoma-like lesions above made nevi. The same network with random
    # weights (BatchNorm statistics taken from these images, so its features are not degenerate) has
    # no such knowledge. (In feature space alone both separate the two kinds: size, border and colours
    # differ, and random features see that too.)
    import torch

    from eval.encoder import DermEncoder, EncoderNet, to_input

    nevi, mels = made_lesions(60, 1, "nevus"), made_lesions(60, 2, "melanoma")
    mel = encoder.class_names.index("melanoma")
    shipped = _auc(encoder.predict_proba(nevi)[:, mel], encoder.predict_proba(mels)[:, mel])
    assert shipped >= 0.75
    both = torch.from_numpy(np.concatenate([nevi, mels])).permute(0, 3, 1, 2)
    for seed in range(5):
        torch.manual_seed(seed)
        net = EncoderNet(encoder.config)
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.momentum = None  # running statistics = this one batch's
        net.train()
        with torch.no_grad():
            net(to_input(both))
        rand = DermEncoder(net, encoder.config)
        r = _auc(rand.predict_proba(nevi)[:, mel], rand.predict_proba(mels)[:, mel])
        assert r < shipped - 0.1, (seed, r, shipped)


def test_the_harness_on_made_lesions_ranks_blur_noise_and_collapse_through_the_shipped_encoder():
    # The table's own code path (run, then check) with its own degradations, on made images: a
    # blurred set ranks worse than a clean one on fd_derm (and sigma 2 worse than 1), noise lowers
    # precision, the collapsed set has lower recall and coverage.
    from eval.registry import list_metrics

    missing = [m for m in ("fd_derm", "precision_derm", "recall_derm", "coverage_derm") if m not in list_metrics()]
    if missing:
        pytest.skip(f"derm metrics not registered: {missing}")
    real = lesion_images(200, 64, seed=10)
    fake = lesion_images(100, 64, seed=11)
    names = ("clean", "blur-1", "blur-2", "noise-0.1", "collapsed")
    conditions = [c for c in mv.CONDITIONS if c.name in names]
    out = mv.run(fake, real, seed=0, conditions=conditions, progress=False,
                 metrics=["fd_derm", "precision_derm", "recall_derm", "coverage_derm"])
    rows = out["rows"]
    assert all(not r["unavailable"] for r in rows.values()), {n: r["unavailable"] for n, r in rows.items()}
    assert rows["clean"]["fd_derm"] < rows["blur-1"]["fd_derm"] < rows["blur-2"]["fd_derm"]
    verdicts = {(n, c["check"]): c["passed"] for n, cs in out["checks"].items() for c in cs if n in names}
    assert verdicts[("blur-2", "FD > blur-1")] and verdicts[("collapsed", "recall < clean")]
    assert False not in verdicts.values(), verdicts  # None: a check against noise-0.05, not run here
    assert list(verdicts.values()).count(True) == 10
    assert out["encoder"]["metric_version"] == "derm1" and out["encoder"]["real_features"] == "images"


def test_the_harness_puts_every_degradation_above_the_clean_c2st_floor(monkeypatch):
    # The C2STs' own path through the table: the degraded images against other real images, the clean
    # row being the real-vs-real floor. c2st_derm through the shipped encoder; c2st_pixel with a small
    # CNN at 32 px, on the degradation made lesions show best.
    from eval.classifier import RecipeConfig
    from eval.metrics import c2st

    monkeypatch.setattr(c2st, "PIXEL_SIZE", 32)
    monkeypatch.setattr(c2st, "PIXEL_RECIPE", RecipeConfig(steps=60, batch=16, width=4))
    images, side = lesion_images(60, 64, seed=11), lesion_images(60, 64, seed=12)
    with c2st.one_torch_thread():  # small networks: faster on one thread of a busy CPU
        _c2st_rows_above_the_floor(images, side)


def _c2st_rows_above_the_floor(images, side):
    for metric, names in (("c2st_derm", ("clean", "blur-2", "noise-0.1", "collapsed")),
                          ("c2st_pixel", ("clean", "noise-0.1"))):
        out = mv.run(images, side, seed=0, conditions=[c for c in mv.CONDITIONS if c.name in names], metrics=[],
                     progress=False, c2st_real=side, c2st=(metric,))
        rows = out["rows"]
        assert all(not r["unavailable"] for r in rows.values()), {n: r["unavailable"] for n, r in rows.items()}
        assert rows["clean"][metric] == rows["clean"][f"{metric}_floor"] < 0.7  # clean: two real sets
        for name in names[1:]:
            assert rows[name][metric] > rows["clean"][f"{metric}_hi95"], (metric, name, rows[name][metric])
            assert rows[name][f"{metric}_floor"] == rows["clean"][metric]
        verdicts = [c["passed"] for n in names[1:] for c in out["checks"][n] if c["check"].startswith("C2ST")]
        assert verdicts.count(True) == len(names) - 1 and False not in verdicts
