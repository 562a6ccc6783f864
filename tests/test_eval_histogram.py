"""Colour-histogram JSD and pixel Wasserstein against scipy on hand-built inputs."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from eval import KEY_JS_RGB, KEY_WASSERSTEIN_RGB, evaluate, key_js
from eval.images import rgb_to_hsv
from eval.metrics.histogram import channel_histograms, histogram_jsd, js_divergence, rebin
from eval.metrics.wasserstein import pixel_wasserstein, wasserstein_from_counts
from eval.testing import lesion_images


def test_js_divergence_matches_scipy_on_hand_built_counts():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.integers(0, 50, 64).astype(float)
        q = rng.integers(0, 50, 64).astype(float)
        p[rng.integers(0, 64, 10)] = 0  # zeros in one but not the other
        assert js_divergence(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)


def _js_by_hand(p, q):
    # The formula eval.metrics.histogram used before it called scipy: KL of each to the mixture, base 2.
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a):
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return max(0.0, 0.5 * kl(p) + 0.5 * kl(q))


def _w1_by_hand(cu, cv):
    # The formula eval.metrics.wasserstein used before it called scipy: the L1 distance of the CDFs.
    return float(np.sum(np.abs(np.cumsum(cu)[:-1] / cu.sum() - np.cumsum(cv)[:-1] / cv.sum())) / 255.0)


def test_scipy_forms_equal_the_hand_written_formulas():
    rng = np.random.default_rng(7)
    for _ in range(50):
        p, q = rng.integers(0, 10 ** 6, (2, 64)).astype(float)
        p[rng.integers(0, 64, 10)] = 0
        assert js_divergence(p, q) == pytest.approx(_js_by_hand(p, q), rel=1e-12, abs=1e-15)
        near = p + (rng.random(64) < 0.05)  # nearly identical: the divergence is ~1e-13
        assert js_divergence(p, near) == pytest.approx(_js_by_hand(p, near), rel=1e-6, abs=1e-15)
        cu, cv = rng.integers(0, 10 ** 6, (2, 256)).astype(float)
        cv[rng.integers(0, 256, 40)] = 0
        assert wasserstein_from_counts(cu, cv) == pytest.approx(_w1_by_hand(cu, cv), rel=1e-12, abs=1e-15)
    h = channel_histograms(lesion_images(4, 16, 8))
    assert js_divergence(h[0], h[0]) == 0.0 and wasserstein_from_counts(h[1], 3 * h[1]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        js_divergence(np.zeros(4), np.ones(4))
    with pytest.raises(ValueError, match="empty"):
        wasserstein_from_counts(np.ones(256), np.zeros(256))


def test_js_divergence_identical_is_0_and_disjoint_is_1():
    p = np.array([3.0, 1.0, 0.0, 0.0])
    assert js_divergence(p, 2 * p) == pytest.approx(0.0, abs=1e-15)  # normalised: scale does not matter
    assert js_divergence(p, np.array([0.0, 0.0, 5.0, 1.0])) == pytest.approx(1.0, abs=1e-15)


def test_image_level_jsd_disjoint_identical_and_bins():
    dark = np.zeros((4, 8, 8, 3), np.uint8)
    bright = np.full((4, 8, 8, 3), 255, np.uint8)
    r = evaluate(dark, bright, ["hist_js"])
    assert r[KEY_JS_RGB] == pytest.approx(1.0) and r[KEY_JS_RGB + "_g"] == pytest.approx(1.0)
    r = evaluate(dark, dark.copy(), ["hist_js"])
    assert r[KEY_JS_RGB] == 0.0
    # Values 0 and 3 share a bin at 64 bins (width 4) but not at 256 bins.
    a, b = np.zeros((1, 4, 4, 3), np.uint8), np.full((1, 4, 4, 3), 3, np.uint8)
    assert evaluate(a, b, ["hist_js"], bins=64)[key_js("rgb", 64)] == 0.0
    assert evaluate(a, b, ["hist_js"], bins=256)[key_js("rgb", 256)] == pytest.approx(1.0)


def test_jsd_of_images_matches_scipy_on_numpy_histograms():
    x, y = lesion_images(6, 16, 0), lesion_images(5, 16, 1)
    r = evaluate(x, y, ["hist_js"], bins=32)
    for c, ch in enumerate("rgb"):
        p = np.histogram(x[..., c], bins=32, range=(0, 256))[0]
        q = np.histogram(y[..., c], bins=32, range=(0, 256))[0]
        assert r[f"js_rgb_hist32_{ch}"] == pytest.approx(jensenshannon(p, q, base=2) ** 2, abs=1e-12)
    assert r["js_rgb_hist32"] == pytest.approx(np.mean([r[f"js_rgb_hist32_{c}"] for c in "rgb"]))


def test_rebin_is_exact_for_any_bin_count():
    x = np.random.default_rng(1).integers(0, 256, (3, 10, 10, 3), dtype=np.uint8)
    h = channel_histograms(x)
    for bins in (1, 7, 64, 100, 256):
        ref = np.stack([np.bincount((x[..., c].ravel().astype(int) * bins) // 256, minlength=bins) for c in range(3)])
        np.testing.assert_array_equal(rebin(h, bins), ref)
    with pytest.raises(ValueError, match="--bins"):
        rebin(h, 0)


def test_wasserstein_matches_scipy_on_pixels():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    y = np.clip(rng.normal(90, 30, (5, 8, 8, 3)), 0, 255).astype(np.uint8)
    r = evaluate(x, y, ["wasserstein"])
    for c, ch in enumerate("rgb"):
        ref = wasserstein_distance(x[..., c].ravel() / 255.0, y[..., c].ravel() / 255.0)
        assert r[f"{KEY_WASSERSTEIN_RGB}_{ch}"] == pytest.approx(ref, abs=1e-12)
    assert r[KEY_WASSERSTEIN_RGB] == pytest.approx(np.mean([r[f"wasserstein_rgb_{c}"] for c in "rgb"]))


def test_wasserstein_hand_built():
    # All mass at 0 against all mass at 255: distance 1. Point masses at 0 and 51/255=0.2: 0.2.
    assert wasserstein_from_counts(np.eye(256)[0], np.eye(256)[255]) == pytest.approx(1.0)
    assert wasserstein_from_counts(np.eye(256)[0], np.eye(256)[51]) == pytest.approx(0.2)
    h = channel_histograms(lesion_images(3, 8))
    assert pixel_wasserstein(h, h)[KEY_WASSERSTEIN_RGB] == 0.0


def test_histograms_do_not_depend_on_batch_size():
    x = lesion_images(37, 16, 3)
    ref = channel_histograms(x, batch_size=37)
    for bs in (1, 5, 16, 1000):
        np.testing.assert_array_equal(channel_histograms(x, batch_size=bs), ref)
    np.testing.assert_array_equal(ref, np.stack([np.bincount(x[..., c].ravel(), minlength=256) for c in range(3)]))
    assert ref.sum() == 37 * 16 * 16 * 3


def test_hsv_histograms_use_pils_hsv():
    x = lesion_images(3, 8, 4)
    ref = np.stack([np.asarray(Image.fromarray(im).convert("HSV")) for im in x])
    np.testing.assert_array_equal(rgb_to_hsv(x), ref)
    r = evaluate(x, lesion_images(3, 8, 5), ["hist_js_hsv"])
    h1, h2 = channel_histograms(ref), channel_histograms(rgb_to_hsv(lesion_images(3, 8, 5)))
    assert r["js_hsv_hist64"] == pytest.approx(histogram_jsd(h1, h2, 64, "hsv")["js_hsv_hist64"])
    assert set(k for k in r if k.startswith("js_hsv_hist64_")) == {"js_hsv_hist64_h", "js_hsv_hist64_s", "js_hsv_hist64_v"}


def test_distance_grows_with_a_colour_shift():
    x = lesion_images(8, 16, 6)
    js, ws = [], []
    for shift in (0, 10, 40):
        y = np.clip(x.astype(int) + shift, 0, 255).astype(np.uint8)
        r = evaluate(x, y, ["hist_js", "wasserstein"])
        js.append(r[KEY_JS_RGB])
        ws.append(r[KEY_WASSERSTEIN_RGB])
    assert js[0] == 0 and ws[0] == 0 and js[0] < js[1] < js[2] and ws[0] < ws[1] < ws[2]
