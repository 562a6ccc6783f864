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


def test_settings_share_seeds_and_real_images(problem, monkeypatch):
    (x, y), (xt, yt) = problem
    calls = []
    real = U.train_classifier

    def spy(images, labels, num_classes, seed, recipe, progress=None):
        calls.append((seed, images, labels))
        return real(images, labels, num_classes, seed, RecipeConfig(steps=2, batch=8), progress)

    monkeypatch.setattr(U, "train_classifier", spy)
    test = U.TestSet("made", "made", xt, yt)
    doc = U.run_utility(x, y, CLASSES, [test], NoiseSource(), seeds=(0, 1), recipe=RecipeConfig(steps=2, batch=8),
                        bootstrap=20, progress=False)
    assert [c[0] for c in calls] == [0, 1] * 4  # every setting, the same seeds in the same order
    by_setting = dict(zip(U.SETTINGS, [calls[i:i + 2] for i in range(0, 8, 2)]))
    for s in ("real+synthetic", "real+augment"):  # the real images first, unchanged, in their order
        for seed, images, labels in by_setting[s]:
            assert torch.equal(images[:len(x)], x) and np.array_equal(labels[:len(y)], y)
    # Fill mode: every class up to the majority's count; synthetic-only: the real counts.
    counts = np.bincount(y)
    assert doc["train_counts"]["real+synthetic"] == {c: int(counts.max()) for c in CLASSES}
    assert doc["train_counts"]["synthetic"] == {c: int(n) for c, n in zip(CLASSES, counts)}
    assert doc["train_counts"]["real+augment"] == doc["train_counts"]["real+synthetic"]
    assert doc["seeds"] == [0, 1] and set(doc["tests"][0]["results"]) == set(U.SETTINGS)


def test_pure_noise_synthetic_does_not_raise_auc(problem):
    (x, y), (xt, yt) = problem
    # Few real images so that there is room to improve; noise still cannot help.
    x, y = x[:80], y[:80]
    test = U.TestSet("made", "made", xt, yt)
    doc = U.run_utility(x, y, CLASSES, [test], NoiseSource(), settings=("real", "real+synthetic"), seeds=(0, 1),
                        recipe=RecipeConfig(steps=40, batch=32), synthetic_ratio=1.0, bootstrap=200, progress=False)
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
                 "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == U.FORMAT and doc["settings"] == list(U.SETTINGS) and doc["seeds"] == [0, 1]
    t = doc["tests"][0]
    assert t["n"] == 30 and set(t["deltas"]) == {"real+synthetic", "synthetic", "real+augment"}
    assert "melanoma_auc" in t["results"]["real"] and (out / "utility.md").read_text().count("| `") == 4
    assert json.loads((out / "utility.json").read_text())["seconds_per_setting"].keys() == set(U.SETTINGS)


def test_cli_refuses_missing_synthetic_and_unlabelled(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(SystemExit):
        U.main(["--real", str(tmp_path)])
    (tmp_path / "plain").mkdir()
    for i in range(3):
        Image.fromarray(lesion_images(1, 64, i)[0]).save(tmp_path / "plain" / f"{i}.png")
    assert U.main(["--real", str(tmp_path / "plain"), "--settings", "real", "--test", str(tmp_path / "plain")]) == 2
    assert "needs a labelled set" in capsys.readouterr().err
