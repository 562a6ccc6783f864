"""eval.utility and eval.classifier on made data: the recipe learns, settings share seeds, noise does not
help, the bootstrap is right, the CLI runs end to end. Small images and few steps: seconds, not minutes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from eval import utility as U
from eval.classifier import RecipeConfig, predict_proba, train_classifier
from eval.testing import lesion_images, write_tiny_generator

CLASSES = ["melanoma", "nevus"]
FAST = RecipeConfig(steps=60, batch=32)


def made_problem(n: int, seed: int, size: int = 16) -> tuple[torch.Tensor, np.ndarray]:
    """Two classes a CNN can tell apart: 'melanoma' lesions carry a bright blue-white dot, 'nevus' ones do
    not; everything else (lesion colour, place, size, noise) is the same random draw."""
    x = lesion_images(n, size, seed=seed)
    y = np.random.default_rng(seed + 1).integers(0, 2, n)
    c = size // 2
    x[y == 0, c - 2:c + 2, c - 2:c + 2] = (200, 220, 255)
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), y.astype(np.int64)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks run fastest on one thread (and do not fight a busy CPU); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def problem():
    return made_problem(300, 0), made_problem(200, 100)


class NoiseSource:
    """Stands in for a SyntheticSource: labelled images of pure uniform noise, seeded."""

    kind = "noise"

    def __init__(self, size: int = 16):
        self.size = size

    def images(self, counts: dict[str, int], seed: int):
        g = torch.Generator().manual_seed(seed)
        xs = [torch.randint(0, 256, (n, 3, self.size, self.size), generator=g, dtype=torch.uint8)
              for c, n in counts.items()]
        ys = [np.full(n, CLASSES.index(c), np.int64) for c, n in counts.items()]
        return torch.cat(xs), np.concatenate(ys)


def test_recipe_learns_a_made_two_class_problem(problem):
    (x, y), (xt, yt) = problem
    net = train_classifier(x, y, 2, seed=0, recipe=FAST)
    p = predict_proba(net, xt)
    assert p.shape == (len(yt), 2) and np.allclose(p.sum(1), 1, atol=1e-5)
    assert roc_auc_score(yt == 0, p[:, 0]) > 0.9
    assert balanced_accuracy_score(yt, p.argmax(1)) > 0.75


def test_training_is_deterministic_per_seed(problem):
    (x, y), _ = problem
    small = RecipeConfig(steps=5, batch=16)
    a, b = train_classifier(x, y, 2, 3, small), train_classifier(x, y, 2, 3, small)
    c = train_classifier(x, y, 2, 4, small)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def _spy_trainings(monkeypatch):
    """Record (seed, images, labels, steps) of every training; train 2 steps whatever the recipe asks."""
    calls = []
    real = U.train_classifier

    def spy(images, labels, num_classes, seed, recipe, progress=None):
        calls.append((seed, images, labels, recipe.steps))
        return real(images, labels, num_classes, seed, RecipeConfig(steps=2, batch=8), progress)

    monkeypatch.setattr(U, "train_classifier", spy)
    return calls


def test_v1_settings_share_seeds_real_images_and_steps(problem, monkeypatch):
    (x, y), (xt, yt) = problem
    calls = _spy_trainings(monkeypatch)
    test = U.TestSet("made", "made", xt, yt)
    doc = U.run_utility(x, y, CLASSES, [test], NoiseSource(), protocol=U.PROTOCOL_V1, seeds=(0, 1),
                        recipe=RecipeConfig(steps=7, batch=8), bootstrap=20, progress=False)
    assert [c[0] for c in calls] == [0, 1] * 4  # every setting, the same seeds in the same order
    assert {c[3] for c in calls} == {7}  # v1: the same steps whatever the setting's size
    by_setting = dict(zip(U.SETTINGS_V1, [calls[i:i + 2] for i in range(0, 8, 2)]))
    for s in ("real+synthetic", "real+augment"):  # the real images first, unchanged, in their order
        for seed, images, labels, _ in by_setting[s]:
            assert torch.equal(images[:len(x)], x) and np.array_equal(labels[:len(y)], y)
    # Fill mode: every class up to the majority's count; synthetic-only: the real counts.
    counts = np.bincount(y)
    assert doc["train_counts"]["real+synthetic"] == {c: int(counts.max()) for c in CLASSES}
    assert doc["train_counts"]["synthetic"] == {c: int(n) for c, n in zip(CLASSES, counts)}
    assert doc["train_counts"]["real+augment"] == doc["train_counts"]["real+synthetic"]
    assert doc["seeds"] == [0, 1] and set(doc["tests"][0]["results"]) == set(U.SETTINGS_V1)


def test_v2_exposure_matched_steps_and_uniform_share(problem, monkeypatch):
    (x, y), (xt, yt) = problem
    calls = _spy_trainings(monkeypatch)
    test = U.TestSet("made", "made", xt, yt)
    doc = U.run_utility(x, y, CLASSES, [test], NoiseSource(), seeds=(0, 1), recipe=RecipeConfig(steps=100, batch=8),
                        synthetic_ratio=0.5, bootstrap=20, progress=False)
    counts = np.bincount(y)  # 300 images
    extra = {c: int(round(0.5 * n)) for c, n in zip(CLASSES, counts)}
    n_big = len(y) + sum(extra.values())
    want = round(100 * n_big / len(y))  # every real image seen as often as in `real`
    assert doc["steps"] == {"real": 100, "real-long": want, "real+synthetic": want, "real+augment": want}
    assert sorted(c[3] for c in calls) == sorted([100, 100] + [want] * 6)
    for s in ("real+synthetic", "real+augment"):  # the same share of extra images in every class
        assert doc["train_counts"][s] == {c: int(n) + extra[c] for c, n in zip(CLASSES, counts)}
    assert doc["train_counts"]["real-long"] == doc["train_counts"]["real"]
    for seed, images, labels, steps in calls:  # real-long trains on exactly the real images
        if steps == want and len(images) == len(x):
            assert torch.equal(images, x)
    t = doc["tests"][0]
    assert set(t["deltas"]) == {"real-long", "real+synthetic", "real+augment"}
    assert set(t["pairs"]) == {"real+synthetic vs real+augment", "real+synthetic vs real-long"}
    assert doc["interval"] == "seeds x images" and doc["exposure"] == "matched" and doc["share"] == "uniform"


def test_setting_steps_and_dev_split_by_hand():
    proto = U.replace(U.PROTOCOL_V2, recipe=RecipeConfig(steps=1000))
    sizes = U.training_sizes(U.SETTINGS, 2000, {"a": 1500, "b": 500}, {"a": 750, "b": 250})
    assert sizes == {"real": 2000, "real-long": 2000, "real+synthetic": 3000, "synthetic": 2000, "real+augment": 3000}
    assert U.setting_steps(proto, sizes, 2000) == {"real": 1000, "real+synthetic": 1500, "synthetic": 1000,
                                                   "real+augment": 1500, "real-long": 1500}
    fixed = U.replace(proto, exposure="fixed")
    assert set(U.setting_steps(fixed, sizes, 2000).values()) == {1000}
    y = np.array([0] * 374 + [1] * 1372 + [2] * 254)
    train, held = U.dev_split(y)
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == len(y)
    assert np.bincount(y[held]).tolist() == [75, 274, 51]  # 20% of every class, rounded
    again = U.dev_split(y)
    assert np.array_equal(held, again[1]) and not np.array_equal(held, U.dev_split(y, seed=1)[1])


def test_workers_and_cache_give_identical_results(problem, tmp_path, monkeypatch):
    """Two worker processes give the numbers one in-process worker gives (one thread each), and a rerun
    with the same cache folder reads every training instead of running it."""
    (x, y), (xt, yt) = problem
    x, y = x[:120], y[:120]
    test = U.TestSet("made", "made", xt[:60], yt[:60])
    kw = dict(settings=("real", "real+augment"), seeds=(0, 1), recipe=RecipeConfig(steps=6, batch=16),
              synthetic_ratio=0.5, bootstrap=20, progress=False)
    one = U.run_utility(x, y, CLASSES, [test], None, workers=1, cache=tmp_path / "c", **kw)
    two = U.run_utility(x, y, CLASSES, [test], None, workers=2, **kw)
    r1, r2 = one["tests"][0]["results"], two["tests"][0]["results"]
    assert r1 == r2
    assert len(list((tmp_path / "c").glob("*.npz"))) == 4

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr(U, "train_classifier", boom)
    again = U.run_utility(x, y, CLASSES, [test], None, workers=1, cache=tmp_path / "c", **kw)
    assert again["tests"][0]["results"] == r1
    # `real` does not depend on the synthetic ratio: a run at another ratio reads it too
    kw.update(settings=("real",), synthetic_ratio=1.0)
    other = U.run_utility(x, y, CLASSES, [test], None, workers=1, cache=tmp_path / "c", **kw)
    assert other["tests"][0]["results"]["real"] == r1["real"]


def test_interval_covers_seed_spread():
    """The paired difference's interval resamples seeds as well as images: two settings whose per-seed
    differences alternate (about -0.07 and 0) on the same images get an interval at least as wide as the
    seeds' spread alone implies."""
    rng = np.random.default_rng(0)
    y = (rng.random(400) < 0.5).astype(np.int64)
    s = rng.normal(y.astype(float), 1.0)

    def probs(score):
        p = 1 / (1 + np.exp(-score))
        return np.stack([1 - p, p], 1)  # melanoma = class 0, scored by -score

    noise = rng.normal(0, 1, 400)
    base = probs(s)
    test = U.TestSet("made", "made", torch.zeros(0), y)
    runs = {"real": [base] * 6, "real+synthetic": [probs(s + 1.2 * noise), probs(s)] * 3}
    rep = U.summarize(test, runs, CLASSES, B=400, seed=3)
    d = rep["deltas"]["real+synthetic"]["melanoma_auc"]
    per = np.array(rep["results"]["real+synthetic"]["melanoma_auc"]["per_seed"])
    assert per[0] < per[1] - 0.05  # the noisy seeds score lower
    assert d["sd_seeds"] > 0.03
    half = (d["ci95"][1] - d["ci95"][0]) / 2
    assert half > 1.96 * d["sd_seeds"] / np.sqrt(6) * 0.9, (half, d)
    assert rep["detectable"]["melanoma_auc"] == pytest.approx(2.8 * d["se"])


def test_primary_outcome_readings():
    po = U.primary_outcome
    assert po({"mean": 0.03, "ci95": [0.01, 0.05]}, {"mean": 0.02})["outcome"] == "superior"
    r = po({"mean": 0.005, "ci95": [-0.005, 0.015]}, {"mean": 0.01})
    assert r["outcome"] == "non-inferior" and r["success"] and not r["stretch"]
    assert not po({"mean": 0.005, "ci95": [-0.005, 0.015]}, {"mean": -0.01})["success"]  # below real+augment
    assert po({"mean": -0.03, "ci95": [-0.05, -0.01]}, {"mean": 0.0})["outcome"] == "inferior"
    assert po({"mean": -0.01, "ci95": [-0.03, 0.01]}, None)["outcome"] == "inconclusive"
    assert po({"mean": 0.025, "ci95": [0.005, 0.04]}, {"mean": 0.01})["stretch"]


class MadeSource:
    """Synthetic images drawn like made_problem's real ones (indistinguishable), or marked with a bright
    corner (a fingerprint a classifier can pick up)."""

    kind = "made"

    def __init__(self, marked: bool):
        self.marked = marked

    def images(self, counts: dict[str, int], seed: int):
        xs, ys = [], []
        for c, n in counts.items():
            x, y = made_problem(4 * n + 8, 10_000 + seed + CLASSES.index(c))
            keep = np.flatnonzero(y == CLASSES.index(c))[:n]
            x = x[keep].clone()
            if self.marked:
                x[:, :, :3, :3] = 255
            xs.append(x)
            ys.append(np.full(len(keep), CLASSES.index(c), np.int64))
        return torch.cat(xs), np.concatenate(ys)


def test_shortcut_check_sees_a_fingerprint_and_not_its_absence(problem):
    (x, y), (xt, yt) = problem
    net = train_classifier(x, y, 2, seed=0, recipe=FAST)
    test = U.TestSet("made", "made", xt, yt)
    clean = U.shortcut_check(net, MadeSource(False), CLASSES, test, seed=0)
    marked = U.shortcut_check(net, MadeSource(True), CLASSES, test, seed=0)
    assert {c: v["n"] for c, v in clean["per_class"].items()} == {c: int((yt == i).sum()) for i, c in enumerate(CLASSES)}
    assert marked["probe_auc"] > 0.95 > clean["probe_auc"] + 0.2
    assert abs(clean["probe_auc"] - 0.5) < 0.15
    for c, v in clean["per_class"].items():
        assert abs(v["auc_synthetic_vs_real"] - 0.5) < 0.15 and abs(v["recall_synthetic"] - v["recall_real"]) < 0.15


def test_pure_noise_synthetic_does_not_raise_auc(problem):
    (x, y), (xt, yt) = problem
    # Few real images so that there is room to improve; noise still cannot help.
    x, y = x[:80], y[:80]
    test = U.TestSet("made", "made", xt, yt)
    doc = U.run_utility(x, y, CLASSES, [test], NoiseSource(), settings=("real", "real+synthetic"), seeds=(0, 1),
                        recipe=RecipeConfig(steps=40, batch=32), synthetic_ratio=1.0, bootstrap=200, progress=False,
                        protocol=U.replace(U.PROTOCOL_V2, exposure="fixed", shortcut=False))
    d = doc["tests"][0]["deltas"]["real+synthetic"]["melanoma_auc"]
    assert d["ci95"][0] <= 0.0, d  # not a measurable gain
    assert d["mean"] < 0.02


def test_weighted_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    s = np.round(rng.random(200), 1)  # many ties
    pos = rng.random(200) < 0.3
    W = U.bootstrap_weights(200, 7, seed=1)
    got = U.weighted_auc(s, pos, W)
    want = [roc_auc_score(pos, s, sample_weight=w) for w in W]
    assert np.allclose(got, want)
    rec = U.weighted_recalls(np.zeros(200, int), pos.astype(int), W, 2)
    assert np.allclose(rec[:, 0], 1) and np.allclose(rec[:, 1], 0)


def test_bootstrap_interval_covers_known_auc():
    """Scores N(1, 1) for positives and N(0, 1) for negatives: AUC = Phi(1/sqrt 2) = 0.760. The 95% interval
    of the seed-mean covers it in most of 40 made test sets; a paired difference of a setting with itself
    is exactly 0 with a zero-width interval."""
    from scipy.stats import norm

    true = norm.cdf(1 / np.sqrt(2))
    covered = 0
    for k in range(40):
        rng = np.random.default_rng(k)
        y = (rng.random(300) < 0.4).astype(np.int64)
        s = rng.normal(y.astype(float), 1.0)
        probs = np.stack([1 / (1 + np.exp(-s)), 1 - 1 / (1 + np.exp(-s))], 1)  # melanoma = class 0
        test = U.TestSet("made", "made", torch.zeros(0), 1 - y)
        rep = U.summarize(test, {"real": [probs], "same": [probs]}, CLASSES, B=300, seed=10_000 + k)
        lo, hi = rep["results"]["real"]["melanoma_auc"]["ci95"]
        covered += lo <= true <= hi
        d = rep["deltas"]["same"]["melanoma_auc"]
        assert d["mean"] == 0 and d["ci95"] == [0.0, 0.0]
    assert covered >= 34, covered  # 95% nominal; 34/40 leaves room for chance, not for a broken interval


def test_fill_counts_and_test_class_mapping():
    assert U.fill_counts({"melanoma": 10, "nevus": 50}, CLASSES, None) == {"melanoma": 40, "nevus": 0}
    assert U.fill_counts({"melanoma": 10, "nevus": 50}, CLASSES, 0.5) == {"melanoma": 5, "nevus": 25}

    class DS:
        labels = ["melanoma", "benign_keratosis", "nevus", "dermatofibroma"]
        images = torch.zeros(4, 3, 8, 8, dtype=torch.uint8)
        source = "made"

        def class_counts(self):
            return {}

    t = U.make_test_set(DS(), ["melanoma", "nevus", "seborrheic_keratosis"], "made")
    assert t.y.tolist() == [0, 2, 1]
    assert any("benign_keratosis" in n and "seborrheic_keratosis" in n for n in t.notes)
    assert any("dermatofibroma 1" in n for n in t.notes)


def test_unconditional_generator_is_refused(tmp_path):
    path = write_tiny_generator(tmp_path / "g.pt", resolution=32)
    with pytest.raises(ValueError, match="needs a conditional model"):
        U.SyntheticSource(str(path), CLASSES)


def _write_imagefolder(root, n_per_class: int, seed: int) -> None:
    x, y = made_problem(2 * n_per_class, seed, size=64)
    for c in CLASSES:
        (root / c).mkdir(parents=True, exist_ok=True)
    for i, (img, label) in enumerate(zip(x.permute(0, 2, 3, 1).numpy(), y)):
        Image.fromarray(img).save(root / CLASSES[label] / f"img{i:04d}.png")


def test_cli_end_to_end_on_made_folders(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    _write_imagefolder(tmp_path / "real", 20, 0)
    _write_imagefolder(tmp_path / "syn", 30, 1)
    _write_imagefolder(tmp_path / "test", 15, 2)
    out = tmp_path / "out"
    rc = U.main(["--real", str(tmp_path / "real"), "--synthetic", str(tmp_path / "syn"), "--test",
                 str(tmp_path / "test"), "--seeds", "2", "--steps", "3", "--bootstrap", "20", "--out", str(out),
                 "--json", "--workers", "1", "--threads", "1"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == U.FORMAT and doc["settings"] == list(U.SETTINGS_V2) and doc["seeds"] == [0, 1]
    t = doc["tests"][0]
    assert t["n"] == 30 and set(t["deltas"]) == {"real-long", "real+synthetic", "real+augment"}
    # 4 rows of the results table and 4 of the shortcut table (2 classifiers x 2 classes)
    assert "melanoma_auc" in t["results"]["real"] and (out / "utility.md").read_text().count("| `real") == 8
    assert set(t["shortcut"]) == {"real", "real+synthetic"}  # the check runs with every synthetic source
    assert json.loads((out / "utility.json").read_text())["seconds_per_setting"].keys() == set(U.SETTINGS_V2)
    assert len(list((out / "trainings").glob("*.npz"))) == 8
    assert doc["provenance"].keys() >= {"code_commit", "preregistration_commit"}
    assert not doc["preregistered"] and "primary" not in doc  # a folder source is exploratory


def test_cli_dev_fold_never_reads_other_tests(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    _write_imagefolder(tmp_path / "real", 25, 0)
    rc = U.main(["--real", str(tmp_path / "real"), "--dev", "--settings", "real", "--seeds", "1", "--steps", "2",
                 "--bootstrap", "20", "--json", "--workers", "1", "--no-save"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["dev"] and [t["name"] for t in doc["tests"]] == ["development"]
    assert doc["tests"][0]["n"] == 10 and doc["real"]["n"] == 40  # 20% of each class held out


def test_cli_refuses_missing_synthetic_and_unlabelled(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit):
        U.main(["--real", str(tmp_path)])
    (tmp_path / "plain").mkdir()
    for i in range(3):
        Image.fromarray(lesion_images(1, 64, i)[0]).save(tmp_path / "plain" / f"{i}.png")
    assert U.main(["--real", str(tmp_path / "plain"), "--settings", "real", "--test", str(tmp_path / "plain")]) == 2
    assert "needs a labelled set" in capsys.readouterr().err


def test_cli_refuses_one_class_and_a_file_as_out_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    _write_imagefolder(tmp_path / "real", 10, 0)
    (tmp_path / "one" / "melanoma").mkdir(parents=True)
    for i, img in enumerate(lesion_images(4, 64, 3)):
        Image.fromarray(img).save(tmp_path / "one" / "melanoma" / f"{i}.png")
    monkeypatch.setattr(U, "train_classifier", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    (tmp_path / "file").write_text("x")
    assert U.main(["--real", str(tmp_path / "real"), "--settings", "real", "--test", str(tmp_path / "real"),
                   "--out", str(tmp_path / "file")]) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "file").read_text() == "x"
    assert U.main(["--real", str(tmp_path / "real"), "--settings", "real", "--test", str(tmp_path / "one")]) == 2
    assert "one class only" in capsys.readouterr().err


def test_model_card_privacy_lines_point_at_the_evaluation_rows_they_mean():
    from eval.utility_card import card_lines

    priv = {"command": "python -m eval.privacy --checkpoint G --real R --out X", "n_members": 2000, "n_nonmembers": 150,
            "n_samples": 2000, "seed": 0, "disclaimer": "A low AUC is no proof of privacy.",
            "attacks": {"distance_pixel": {"auc": 0.51, "ci95": [0.46, 0.56], "verdict": "no evidence (AUC 0.51)"}},
            "closest_pairs": []}
    text = "\n".join(card_lines({"privacy": priv}, "dcgan", conditional=False))
    assert "Membership-inference audit (`python -m eval.privacy --checkpoint G --real R`)" in text
    assert "| black-box distance, pixels | 0.510 | [0.460, 0.560] | no evidence |" in text
    # the card (tools/ship.py) puts this under its Evaluation section, whose table has a validation-split row
    assert "(the validation-split row of the scores under Evaluation)" in text and "Results above" not in text


def test_model_card_shows_v2_primary_shortcut_and_v1_beside_it():
    from eval.utility_card import card_lines

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    probs = {s: [np.abs(np.eye(2)[y] * 0.3 + rng.random((200, 2))) for _ in range(2)] for s in U.SETTINGS_V2}
    probs = {s: [p / p.sum(1, keepdims=True) for p in ps] for s, ps in probs.items()}
    t = U.summarize(U.TestSet("ham10000", "made", torch.zeros(0), y), probs, CLASSES, B=50, seed=1)
    cell = {"mean": 0.6, "sd": 0.01}
    t["shortcut"] = {"real+synthetic": {"per_class": {c: {"n": 9, "auc_synthetic_vs_real": cell, "recall_synthetic": cell,
                                                          "recall_real": {"mean": 0.2, "sd": 0}} for c in CLASSES},
                                        "probe_auc": {"mean": 0.93, "sd": 0.01}}}
    v2 = {"version": 2, "command": "python -m eval.utility --real R --synthetic G --out X", "recipe": {"steps": 10, "batch": 8},
          "seeds": [0, 1], "tests": [t], "exposure": "matched", "share": "uniform", "synthetic_ratio": 0.5,
          "steps": {"real": 10, "real-long": 15, "real+synthetic": 15, "real+augment": 15}, "preregistered": True}
    U.attach_primary(v2)
    v2["verdicts"] = U.verdicts(v2)
    v1 = {"version": 1, "command": "python -m eval.utility --v1", "recipe": {"steps": 1000, "batch": 64}, "seeds": [0],
          "tests": [U.summarize(U.TestSet("ham10000", "made", torch.zeros(0), y), {"real": probs["real"][:1]},
                                CLASSES, B=20, seed=1)]}
    text = "\n".join(card_lines({"utility": {**v2, "v1": v1}}, "dcgan-cond"))
    p = v2["primary"]
    assert f"**Pre-registered result** (ham10000, `real+synthetic` minus `real`, melanoma AUC): {p['mean']:+.3f}" in text
    assert "protocol v2:" in text and "real 10, real-long 15" in text and "--out" not in text
    assert text.count("| ham10000 | melanoma | 0.600 | 60% | 20% | 0.930 |") == 1
    assert "protocol v1: a small CNN trained from scratch at 64 px for 1,000 steps" in text
    assert "(`python -m eval.utility --v1 --protocol v1`)" in text  # v2 is the default now
    assert text.count("| ham10000 (200) | `real` |") == 2  # the v2 table and the v1 table
