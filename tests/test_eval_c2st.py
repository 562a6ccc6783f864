"""The classifier two-sample tests (``eval.metrics.c2st``): the test's arithmetic by hand, chance on one
distribution and near 1 on two, determinism under a seed, the floor beside every value, and one-line
reasons when held-out images are missing. Made data only; the pixel CNN with a tiny recipe."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from eval import evaluate, make_fingerprint
from eval.classifier import RecipeConfig
from eval.keys import (KEY_C2ST_DERM, KEY_C2ST_DERM_FLOOR, KEY_C2ST_PIXEL, KEY_C2ST_PIXEL_FLOOR, KEY_UNAVAILABLE,
                       key_c2st)
from eval.metrics import c2st
from eval.sources import resolve
from eval.testing import lesion_images

KEY_C2ST_DERM_LO95 = key_c2st("derm", "lo95")


def _gauss(n: int, seed: int, shift: float = 0.0, dim: int = 16) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim))
    x[:, :4] += shift
    return x


# -- the arithmetic ------------------------------------------------------------------------------

def test_accuracy_counts_ties_half_and_auc_is_mann_whitney():
    from sklearn.metrics import roc_auc_score

    p_real = np.array([0.1, 0.5, 0.7, 0.2])
    p_other = np.array([0.9, 0.4, 0.5, 0.8])
    # real right: 0.1, 0.2 (+ 0.5 half) = 2.5 of 4; other right: 0.9, 0.8 (+ 0.5 half) = 2.5 of 4
    assert c2st.accuracy(p_real, p_other) == pytest.approx(2.5 / 4)
    y = np.r_[np.zeros(4), np.ones(4)]
    assert c2st.auc(p_real, p_other) == pytest.approx(roc_auc_score(y, np.r_[p_real, p_other]))
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 50)), rng.random((3, 50))  # the last axis, per draw
    assert np.allclose(c2st.auc(a, b), [roc_auc_score(np.r_[np.zeros(50), np.ones(50)], np.r_[x, z])
                                        for x, z in zip(a, b)])


def test_draws_are_balanced_disjoint_and_seeded():
    real, other = c2st.draw_indices(150, 2000, seed=0, max_draws=3)
    assert np.array_equal(real, np.arange(150)) and other.shape == (3, 150)
    assert len(np.unique(other)) == 450  # disjoint draws
    again = c2st.draw_indices(150, 2000, seed=0, max_draws=3)
    assert np.array_equal(other, again[1]) and not np.array_equal(other, c2st.draw_indices(150, 2000, 1, 3)[1])
    real, other = c2st.draw_indices(150, 100, seed=0, max_draws=3)  # fewer others: n = 100 a side, one draw
    assert len(real) == 100 and len(set(real)) == 100 and other.shape == (1, 100)


def test_the_bootstrap_interval_is_as_wide_as_the_binomial_one():
    # Coin-flip predictions at n = 150 a side: the accuracy's sd is sqrt(0.25 / 300), so a 95% interval
    # spans about 2 x 1.96 x 0.0289 = 0.113.
    rng = np.random.default_rng(1)
    p_real, p_other = rng.random((1, 150)), rng.random((1, 150))
    lo, hi = c2st.bootstrap_interval(p_real, p_other, seed=0)
    assert lo < c2st.accuracy(p_real, p_other)[0] < hi
    assert hi - lo == pytest.approx(2 * 1.96 * (0.25 / 300) ** 0.5, rel=0.15)
    # Three draws against the same real images, each scored alike in every draw: only the generated
    # side has 3 x 150 images, sd sqrt(0.25 * (1/150 + 1/450) / 4), width 0.092 (0.065 if the draws
    # were wrongly taken as three independent tests).
    lo3, hi3 = c2st.bootstrap_interval(np.repeat(p_real, 3, axis=0), rng.random((3, 150)), seed=0)
    assert hi3 - lo3 == pytest.approx(2 * 1.96 * (0.25 * (1 / 150 + 1 / 450) / 4) ** 0.5, rel=0.15)


def test_a_test_on_the_same_data_is_trained_once():
    calls = []

    def fit_predict(x_train, y_train, x_test, seed):
        calls.append(seed)
        return np.full(len(x_test), 0.25)

    a, b = _gauss(30, 0), _gauss(30, 1)
    first = c2st.kept_test(a, b, fit_predict, "constant", seed=0, draws=1)
    assert len(calls) == 5 and first.accuracy == 0.5  # every image called real: half right
    assert c2st.kept_test(a.copy(), b.copy(), fit_predict, "constant", seed=0, draws=1) == first and len(calls) == 5
    c2st.kept_test(a, b, fit_predict, "constant", seed=1, draws=1)  # another seed, another classifier, other data
    c2st.kept_test(a, b, fit_predict, "other", seed=0, draws=1)
    c2st.kept_test(a, b + 1, fit_predict, "constant", seed=0, draws=1)
    assert len(calls) == 20


# -- the MLP test on features (c2st_derm's classifier) -------------------------------------------

def test_one_distribution_reads_chance_and_its_interval_covers_half():
    r = c2st.two_sample_test(_gauss(100, 0), _gauss(100, 1), c2st.mlp_fit_predict, seed=0)
    assert abs(r.accuracy - 0.5) < 0.08 and abs(r.auc - 0.5) < 0.1
    assert r.lo95 < 0.5 < r.hi95
    assert (r.n, r.draws) == (100, 1)


def test_two_distributions_read_near_one_and_the_same_numbers_twice():
    a, b = _gauss(60, 0), _gauss(120, 2, shift=2.5)  # Bayes accuracy 0.994
    r = c2st.two_sample_test(a, b, c2st.mlp_fit_predict, seed=3, draws=2)
    assert r.accuracy > 0.9 and r.auc > 0.95 and r.lo95 > 0.85 and r.draws == 2
    assert c2st.two_sample_test(a, b, c2st.mlp_fit_predict, seed=3, draws=2) == r
    # The seed drives the draws, folds and weights.
    assert c2st.two_sample_test(a, b, c2st.mlp_fit_predict, seed=4, draws=1).accuracy != r.accuracy


# -- through evaluate: keys, floor, reasons ------------------------------------------------------

@pytest.fixture(autouse=True)
def one_thread():
    with c2st.one_torch_thread():  # the CNN's small tensors, too, run faster on one thread of a busy CPU
        yield


@pytest.fixture(scope="module")
def made():
    """(training images, held-out images, generated images) at 64 px: held-out and training alike;
    the generated ones noisier."""
    train = lesion_images(80, 64, seed=10)
    held = lesion_images(40, 64, seed=11)
    fake = lesion_images(40, 64, seed=12, noise=40.0)
    return train, held, fake


@pytest.fixture
def small_cnn(monkeypatch):
    """c2st_pixel at 32 px with a few steps: its plumbing, cheaply."""
    monkeypatch.setattr(c2st, "PIXEL_RECIPE", RecipeConfig(steps=6, batch=16, width=4))
    monkeypatch.setattr(c2st, "PIXEL_SIZE", 32)


def test_c2st_derm_gives_value_and_floor_and_repeats_exactly(made):
    train, held, fake = made
    r1 = evaluate(train, fake, ["c2st_derm"], heldout=held, seed=0)
    c2st._TESTS.clear()  # trained again, not read from the first call
    r2 = evaluate(train, fake, ["c2st_derm"], heldout=held, seed=0)
    assert r1[KEY_UNAVAILABLE] == {}
    keys = [key_c2st("derm", part, floor) for floor in (False, True) for part in (None, "auc", "lo95", "hi95")]
    assert all(k in r1 for k in keys)
    assert {k: r1[k] for k in keys} == {k: r2[k] for k in keys}
    # Noisy samples are easy to pick out; two sets of the same made lesions are not.
    assert r1[KEY_C2ST_DERM] > 0.9 and r1[KEY_C2ST_DERM_FLOOR] < r1[KEY_C2ST_DERM_LO95]
    cfg = r1["config"]["c2st_derm"]
    assert cfg["n_per_side"] == 40 and cfg["draws"] == 1 and cfg["floor"]["draws"] == 2 and cfg["k"] == 5


def test_a_training_split_is_refused_as_the_held_out_set(made):
    train, held, fake = made
    as_train = replace(resolve(held, "heldout", size=64), split="train")
    r = evaluate(train, fake, ["c2st_derm", "c2st_pixel"], heldout=as_train)
    for m in ("c2st_derm", "c2st_pixel"):
        assert "training split" in r[KEY_UNAVAILABLE][m] and "\n" not in r[KEY_UNAVAILABLE][m]
    assert KEY_C2ST_DERM not in r and KEY_C2ST_PIXEL not in r


def test_c2st_pixel_says_why_without_held_out_images(made):
    train, held, fake = made
    r = evaluate(train, fake, ["c2st_pixel"])  # no held-out set at all
    assert "needs a held-out real set" in r[KEY_UNAVAILABLE]["c2st_pixel"]
    fp = make_fingerprint(held, size=64, bank_size=None, derm_encoder=False)  # a fingerprint: no pixels
    r = evaluate(train, fake, ["c2st_pixel"], heldout=fp)
    why = r[KEY_UNAVAILABLE]["c2st_pixel"]
    assert "needs the held-out images" in why and "--heldout" in why and "\n" not in why
    assert KEY_C2ST_PIXEL not in r and KEY_C2ST_PIXEL_FLOOR not in r


def test_c2st_pixel_value_and_floor_repeat_exactly_and_the_floor_needs_training_pixels(made, small_cnn):
    train, held, fake = made
    r1 = evaluate(train, fake, ["c2st_pixel"], heldout=held, seed=0)
    c2st._TESTS.clear()  # trained again, not read from the first call
    r2 = evaluate(train, fake, ["c2st_pixel"], heldout=held, seed=0)
    keys = [key_c2st("pixel", part, floor) for floor in (False, True) for part in (None, "auc", "lo95", "hi95")]
    assert r1[KEY_UNAVAILABLE] == {} and {k: r1[k] for k in keys} == {k: r2[k] for k in keys}
    assert 0 <= r1[KEY_C2ST_PIXEL_FLOOR] <= 1 and r1["config"]["c2st_pixel"]["input_size"] == 32
    # The real set as a fingerprint (no pixels) and held-out images from no data set: the value stands,
    # the floor is unavailable with its reason.
    fp = make_fingerprint(train, size=64, bank_size=None, derm_encoder=False)
    r3 = evaluate(fp, fake, ["c2st_pixel"], heldout=held, seed=0)
    assert r3[KEY_C2ST_PIXEL] == r1[KEY_C2ST_PIXEL] and KEY_C2ST_PIXEL_FLOOR not in r3
    why = r3[KEY_UNAVAILABLE][KEY_C2ST_PIXEL_FLOOR]
    assert "training-split pixels" in why and "fingerprint" in why and "\n" not in why


def test_the_pixel_cnn_tells_noise_from_lesions(made):
    # A gross difference at 32 px, 60 steps: the CNN must read near 1, not chance. (Fewer steps
    # separate the two by rank (AUC) before the 0.5 threshold does.)
    from eval.images import resize_images

    _, held, fake = made
    held, fake = resize_images(held, 32), resize_images(fake, 32)
    r = c2st.two_sample_test(held, fake, c2st.cnn_fit_predict(RecipeConfig(steps=60, batch=16, width=4)), seed=0)
    assert r.accuracy > 0.9 and r.auc > 0.95, r


# -- eval.run: the C2STs merged into scored rows, held-out images from a data set ----------------

def _isic2017(root, n_train: int = 30, n_val: int = 24):
    """A made ISIC 2017 folder (the challenge's layout, 64 px PNGs, all nevus)."""
    from PIL import Image

    for part, n, first in (("Training", n_train, 0), ("Validation", n_val, 500)):
        folder = root / f"ISIC-2017_{part}_Data"
        folder.mkdir(parents=True)
        names = [f"ISIC_{first + i:07d}" for i in range(n)]
        for name, img in zip(names, lesion_images(n, 64, seed=first)):
            Image.fromarray(img).save(folder / f"{name}.png")
        (root / f"ISIC-2017_{part}_Part3_GroundTruth.csv").write_text(
            "image_id,melanoma,seborrheic_keratosis\n" + "".join(f"{name},0.0,0.0\n" for name in names))
    return root


def test_eval_run_merges_the_c2sts_into_scored_rows_and_keeps_every_other_key(tmp_path, monkeypatch, small_cnn):
    import json

    from eval.fingerprint import save_fingerprint
    from eval.run import main as run_main
    from eval.testing import write_tiny_generator

    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    data = _isic2017(tmp_path / "isic2017")
    ck = tmp_path / "checkpoints"
    (ck / "m").mkdir(parents=True)
    write_tiny_generator(ck / "m" / "generator.pt", resolution=32)
    for split, name in (("train", "fingerprint.npz"), ("validation", "fingerprint-val.npz")):
        save_fingerprint(make_fingerprint(str(data), size=64, split=split, bank_size=16), ck / "m" / name)
    base = ["--checkpoints", str(ck), "--n", "40", "--quiet"]
    assert run_main(base + ["--metrics", "hist_js"]) == 0
    before = json.loads((ck / "results.json").read_text())
    merge = base + ["--merge", "--metrics", "c2st_derm,c2st_pixel", "--heldout",
                    str(data / "ISIC-2017_Validation_Data"), "--threads", "1"]
    assert run_main(merge) == 0
    after = json.loads((ck / "results.json").read_text())
    (tr0, va0), (tr, va) = before["rows"], after["rows"]
    for old, new in ((tr0, tr), (va0, va)):  # every key scored before is as it was
        assert {k: new[k] for k in old if k != "unavailable"} == {k: v for k, v in old.items() if k != "unavailable"}
    for key in (KEY_C2ST_DERM, KEY_C2ST_DERM_FLOOR, KEY_C2ST_PIXEL, KEY_C2ST_PIXEL_FLOOR):
        assert 0 <= tr[key] <= 1 and key not in va
    # The pixel floor's training images: the split beside the held-out folder, names as the fingerprint's.
    assert tr["unavailable"] == {} and "held-out" in va["unavailable"]["c2st_pixel"]
    assert after["commands"] == {"m": before["command"]}  # who scored the rest
    assert set(after["metric_commands"]["m"]) == {"c2st_derm", "c2st_pixel"} and "--merge" in after["command"]
    own = json.loads((ck / "m" / "results.json").read_text())
    assert own["command"] == before["command"] and own["metric_commands"]["c2st_pixel"].endswith("--threads 1")
    assert {"hist_js", "c2st_derm", "c2st_pixel"} <= set(own["results"]["train"]["config"])
    assert "names match" in own["results"]["train"]["config"]["c2st_pixel"]["floor"]["other"]
    # Other settings than the collection's: one line, nothing written.
    assert run_main(base[:3] + ["50", "--merge", "--metrics", "c2st_derm"]) == 2
    assert json.loads((ck / "results.json").read_text()) == after


# -- the dashboard lists them with their floor ---------------------------------------------------

def test_the_dashboard_lists_the_c2sts_beside_their_floor_when_results_have_them(tmp_path):
    from dashboard import comparison
    from dashboard.discovery import ModelEntry
    from dashboard.results import Results
    from gan.rundir import RunDir

    row = {"model": "m", "reference": "train", KEY_C2ST_DERM: 0.66, f"{KEY_C2ST_DERM}_sd": 0.01,
           KEY_C2ST_DERM_FLOOR: 0.56, f"{KEY_C2ST_DERM_FLOOR}_sd": 0.02, KEY_C2ST_DERM_LO95: 0.62,
           key_c2st("derm", "hi95"): 0.7, KEY_C2ST_PIXEL: 0.9,
           KEY_UNAVAILABLE: {KEY_C2ST_PIXEL_FLOOR: "the real-vs-real floor needs training-split pixels: none here"}}
    val = {"model": "m", "reference": "validation",
           KEY_UNAVAILABLE: {"c2st_derm": "needs a held-out real set", "c2st_pixel": "needs a held-out real set"}}
    results = Results(rows=[row, val], meta={"version": 2}, path=tmp_path / "results.json")
    assert [m.name for m in comparison.scored_metrics(results)][-2:] == ["c2st_derm", "c2st_pixel"]
    assert "c2st_derm" not in [m.name for m in comparison.scored_metrics(None)]  # not in eval.run's default
    entries = [ModelEntry(RunDir(tmp_path / "m"))]
    table, _ = comparison.overview_table(entries, {}, {}, results)
    assert table.loc["m", "C2ST derm"] == 0.66 and table.loc["m", "C2ST derm floor"] == 0.56
    assert table.loc["m", "C2ST derm floor sd"] == 0.02 and np.isnan(table.loc["m", "C2ST pixel floor"])
    groups = [comparison.score_columns(table, keys) for _, keys in comparison.SCORE_GROUPS]
    assert groups[0][-2:] == ["C2ST derm", "C2ST derm floor"] and "C2ST pixel" in groups[1]
    spec = next(m for m in comparison.scored_metrics(results) if m.name == "c2st_derm")
    assert comparison.floor_caption(row, spec) == "95% [0.62, 0.70]; real-vs-real floor 0.560 ± 0.020"
    pixel = next(m for m in comparison.scored_metrics(results) if m.name == "c2st_pixel")
    assert comparison.floor_caption(row, pixel) == row[KEY_UNAVAILABLE][KEY_C2ST_PIXEL_FLOOR]  # no interval here
    # Shown against the validation split, the note points at the train row, where the test was scored.
    _, notes = comparison.overview_table(entries, {}, {}, results, "validation")
    assert any(n.startswith("C2ST derm") and "scored in the train row (0.660 there)" in n for n in notes)
