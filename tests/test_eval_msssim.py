"""MS-SSIM diversity: identities, an independent scipy reference, the small-image adaptation."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import convolve2d

from eval import KEY_MSSSIM_FAKE, KEY_MSSSIM_GAP, KEY_MSSSIM_REAL, evaluate
from eval.metrics.msssim import WEIGHTS, mean_pairwise_msssim, ms_ssim, msssim_config, random_pairs
from eval.testing import lesion_images


def _ref_msssim(a: np.ndarray, b: np.ndarray, scales: int) -> float:
    """Straight from the paper with scipy: 11-px Gaussian (sigma 1.5) 'valid' filtering, 2x2 mean
    downsampling, cs at every scale, luminance at the last, clamped, weights renormalised."""
    ax = np.arange(11) - 5
    g = np.exp(-ax ** 2 / (2 * 1.5 ** 2))
    win = np.outer(g, g) / np.outer(g, g).sum()
    w = np.array(WEIGHTS[:scales]) / sum(WEIGHTS[:scales])
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    per_channel = []
    for c in range(3):
        x, y = a[..., c].astype(np.float64), b[..., c].astype(np.float64)
        val = 1.0
        for j in range(scales):
            f = lambda z: convolve2d(z, win, mode="valid")  # noqa: E731
            mx, my = f(x), f(y)
            sxx, syy, sxy = f(x * x) - mx ** 2, f(y * y) - my ** 2, f(x * y) - mx * my
            cs = (2 * sxy + c2) / (sxx + syy + c2)
            if j == scales - 1:
                cs = cs * (2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1)
            val *= max(cs.mean(), 0) ** w[j]
            h, wd = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
            x = x[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean((1, 3))
            y = y[:h, :wd].reshape(h // 2, 2, wd // 2, 2).mean((1, 3))
        per_channel.append(val)
    return float(np.mean(per_channel))


def test_scale_adaptation():
    assert msssim_config(256)["scales"] == 5 and msssim_config(176)["scales"] == 5
    c64 = msssim_config(64)
    assert (c64["scales"], c64["window"], c64["sigma"]) == (3, 11, 1.5)
    assert c64["weights"] == pytest.approx(np.array(WEIGHTS[:3]) / sum(WEIGHTS[:3]))
    assert msssim_config(32)["scales"] == 2 and msssim_config(16)["scales"] == 1
    c8 = msssim_config(8)
    assert (c8["scales"], c8["window"]) == (1, 7) and c8["sigma"] == pytest.approx(1.5 * 7 / 11)


@pytest.mark.parametrize("size", [16, 64])
def test_matches_independent_reference(size):
    x = lesion_images(3, size, 0)
    y = np.clip(x + np.random.default_rng(1).normal(0, 25, x.shape), 0, 255).astype(np.uint8)
    y[2] = lesion_images(1, size, 9)[0]  # an unrelated image
    got = ms_ssim(x, y)
    ref = [_ref_msssim(x[i], y[i], msssim_config(size)["scales"]) for i in range(3)]
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_identical_is_one_and_noise_lowers_it():
    x = lesion_images(4, 64, 2)
    np.testing.assert_allclose(ms_ssim(x, x.copy()), 1.0, atol=1e-5)
    rng = np.random.default_rng(3)
    vals = []
    for sigma in (2, 10, 40):
        y = np.clip(x + rng.normal(0, sigma, x.shape), 0, 255).astype(np.uint8)
        vals.append(ms_ssim(x, y).mean())
    assert 1.0 > vals[0] > vals[1] > vals[2]


def test_pairwise_mean_equals_per_pair_and_is_seeded():
    x = lesion_images(12, 32, 4)
    m, p = mean_pairwise_msssim(x, pairs=20, seed=5)
    idx = random_pairs(12, 20, 5)
    assert p == 20 and m == pytest.approx(ms_ssim(x[idx[:, 0]], x[idx[:, 1]]).mean(), rel=1e-5)
    assert (idx[:, 0] != idx[:, 1]).all()
    assert mean_pairwise_msssim(x, 20, 5) == (m, p)
    assert mean_pairwise_msssim(x, 20, 6)[0] != m
    # Few images: every pair once.
    assert len(random_pairs(5, 1000, 0)) == 10


def test_collapsed_generator_scores_higher_than_real():
    real = lesion_images(16, 32, 5)
    collapsed = np.repeat(lesion_images(2, 32, 6), 8, axis=0)  # only two distinct samples
    r = evaluate(real, collapsed, ["diversity"], msssim_pairs=100, seed=0)
    assert r[KEY_MSSSIM_FAKE] > r[KEY_MSSSIM_REAL] and r[KEY_MSSSIM_GAP] > 0.2
    cfg = r["config"]["diversity"]
    assert (cfg["scales"], cfg["window"], cfg["pairs_fake"]) == (2, 11, 100)
    r2 = evaluate(real, real.copy(), ["diversity"], msssim_pairs=100, seed=0)
    assert r2[KEY_MSSSIM_GAP] == pytest.approx(0.0, abs=1e-9)


def test_too_few_images_says_so():
    r = evaluate(lesion_images(5, 16), lesion_images(1, 16), ["diversity"])
    assert KEY_MSSSIM_FAKE not in r
    assert "at least 2" in r["unavailable"]["diversity"]
