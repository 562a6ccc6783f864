"""eval.class_fidelity: the per-class table against hand computations, and a faithful generator told
apart from one whose labels mean nothing, by a real-only classifier trained for a few seconds."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from eval import class_fidelity as CF
from eval.utility import TestSet

CLASSES = ["melanoma", "nevus"]


def coloured_discs(y: np.ndarray, size: int = 32, seed: int = 0) -> np.ndarray:
    """uint8 NHWC: a dark disc (class 0) or a light one (class 1) on skin, at random places and sizes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((len(y), size, size, 3), np.uint8)
    for i, c in enumerate(y):
        cx, cy, r = rng.uniform(10, size - 10, 2).tolist() + [rng.uniform(5, 9)]
        img = np.full((size, size, 3), (225, 180, 160), np.float64)
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
        img[disc] = (60, 30, 20) if c == 0 else (170, 120, 100)
        out[i] = np.clip(img + rng.normal(0, 4, img.shape), 0, 255)
    return out


class Generator:
    class_names = CLASSES

    def __init__(self, faithful: bool):
        self.faithful = faithful

    def generate(self, n, seed=0, labels=None, batch_size=256):
        c = CLASSES.index(labels)
        y = np.full(n, c) if self.faithful else np.random.default_rng(seed).integers(0, 2, n)
        return coloured_discs(y, seed=seed + 1)


def nchw(x):
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()


def test_table_matches_sklearn_and_hand_counts():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(30, int), np.ones(50, int)]
    probs = rng.dirichlet([1, 1], size=80)
    probs[y == 0, 0] += 0.3
    probs /= probs.sum(1, keepdims=True)
    images = coloured_discs(y)
    t = CF.fidelity_table(probs, y, images, probs, y, images, CLASSES, B=200)
    assert t["melanoma"]["synthetic"]["auc"] == pytest.approx(roc_auc_score(y == 0, probs[:, 0]))
    assert t["nevus"]["real"]["auc"] == pytest.approx(roc_auc_score(y == 1, probs[:, 1]))
    lo, hi = t["melanoma"]["synthetic"]["ci95"]
    assert lo < t["melanoma"]["synthetic"]["auc"] < hi
    assert t["melanoma"]["synthetic"]["recall"] == pytest.approx(float((probs[y == 0].argmax(1) == 0).mean()))
    assert t["melanoma"]["synthetic"]["n_class"] == 30 and 0 < t["nevus"]["real"]["msssim"] < 1
    one = CF.one_vs_rest(probs[:30], y[:30], 0, 50, 0)
    assert one["auc"] is None and "others" in one["reason"]


def test_faithful_generator_scores_like_real_images_and_a_label_blind_one_at_chance(tmp_path):
    real_y = np.tile([0, 1], 100)
    real_x = nchw(coloured_discs(real_y, seed=10))
    test_y = np.tile([0, 1], 40)
    test = TestSet("held-out", "made", nchw(coloured_discs(test_y, seed=20)), test_y)
    kw = dict(n_per_class=60, seeds=1, steps=60, bootstrap=100, cache=tmp_path, progress=False)
    good = CF.class_fidelity(Generator(True), real_x, real_y, test, CLASSES, **kw)
    assert list(tmp_path.glob("real-classifier-s0-*.pt"))  # cached: the second model reuses it
    blind = CF.class_fidelity(Generator(False), real_x, real_y, test, CLASSES, **kw)
    for c in CLASSES:
        real_auc = good["per_class"][c]["real"]["auc"]
        assert real_auc > 0.9
        assert good["per_class"][c]["synthetic"]["auc"] > 0.9
        assert abs(blind["per_class"][c]["synthetic"]["auc"] - 0.5) < 0.15
        assert blind["per_class"][c]["real"]["auc"] == real_auc  # the same cached classifier judged both
    assert "| melanoma |" in CF.markdown(good)
