"""Memorization: nearest training image, copy rate against held-out images, closest pairs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval import KEY_COPY_RATE, KEY_NN_THRESHOLD, evaluate
from eval.metrics.memorization import copy_rate, nearest_neighbours
from eval.testing import lesion_images


@pytest.fixture(scope="module")
def sets():
    return {"train": lesion_images(60, 16, 0), "heldout": lesion_images(100, 16, 1)}


def test_nearest_neighbours_brute_force_and_batch_independent():
    q, bank = lesion_images(9, 8, 2), lesion_images(20, 8, 3)
    d, i = nearest_neighbours(q, bank, batch=4)
    full = np.sqrt((((q[:, None].astype(float) - bank[None].astype(float)) / 255) ** 2).mean((2, 3, 4)))
    np.testing.assert_array_equal(i, full.argmin(1))
    np.testing.assert_allclose(d, full.min(1), rtol=1e-12)
    d2, i2 = nearest_neighbours(q, bank, batch=1000)
    np.testing.assert_array_equal(i, i2)
    np.testing.assert_array_equal(d, d2)


def test_copy_rate_threshold():
    rate, thr, flags = copy_rate(np.array([0.0, 0.5, 2.0]), np.linspace(1, 2, 101))
    assert thr == pytest.approx(1.01) and rate == pytest.approx(2 / 3) and flags.tolist() == [True, True, False]


def test_exact_copies_give_copy_rate_one(sets):
    fake = sets["train"][[3, 7, 11, 20]].copy()
    r = evaluate(sets["train"], fake, ["memorization"], heldout=sets["heldout"])
    assert r[KEY_COPY_RATE] == 1.0
    closest = r["details"]["memorization"]["closest"]
    assert sorted(c["train_index"] for c in closest) == [3, 7, 11, 20]
    assert all(c["distance"] == 0.0 for c in closest)
    ex = r.extras["memorization"]
    np.testing.assert_array_equal(ex["closest_fake"], ex["closest_train"])
    assert ex["closest_fake"].shape == (4, 16, 16, 3) and ex["copy_flags"].all()
    json.dumps(r)  # arrays stay out of the JSON-ready dict
    assert "closest_fake" not in json.dumps(r)


def test_mixed_set_flags_only_the_copies(sets):
    fresh = lesion_images(16, 16, 99)
    fake = np.concatenate([sets["train"][:4], fresh])
    r = evaluate(sets["train"], fake, ["memorization"], heldout=sets["heldout"])
    flags = r.extras["memorization"]["copy_flags"]
    assert flags[:4].all() and flags[4:].mean() <= 0.1
    assert r[KEY_COPY_RATE] == pytest.approx(flags.mean())


def test_random_noise_gives_copy_rate_zero(sets):
    noise = np.random.default_rng(4).integers(0, 256, (30, 16, 16, 3), dtype=np.uint8)
    r = evaluate(sets["train"], noise, ["memorization"], heldout=sets["heldout"])
    assert r[KEY_COPY_RATE] == 0.0
    assert r["memorization_nn_fake_median"] > r["memorization_nn_heldout_median"] > r[KEY_NN_THRESHOLD] > 0
    assert r["config"]["memorization"]["space"] == "pixel_16"


def test_needs_a_large_enough_heldout_set(sets):
    r = evaluate(sets["train"], sets["train"][:3], ["memorization"])
    assert "held-out" in r["unavailable"]["memorization"] and KEY_COPY_RATE not in r
    r = evaluate(sets["train"], sets["train"][:3], ["memorization"], heldout=sets["heldout"][:50])
    assert "50 images" in r["unavailable"]["memorization"] and "at least 100" in r["unavailable"]["memorization"]
