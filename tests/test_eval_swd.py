"""PGGAN's sliced Wasserstein distance: pyramid, descriptors and projections against direct formulas."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from eval import KEY_SWD_AVG, evaluate, key_swd, make_fingerprint
from eval.metrics import swd as S
from eval.testing import lesion_images


def test_pyramid_matches_the_reference_2d_filter_and_reconstructs():
    x = lesion_images(3, 32, 0).transpose(0, 3, 1, 2).astype(np.float32)
    ref = scipy.ndimage.convolve(x, S.GAUSSIAN[None, None], mode="mirror")[:, :, ::2, ::2]
    np.testing.assert_allclose(S.pyr_down(x), ref, atol=1e-3)
    pyr = S.laplacian_pyramid(x, 2)
    assert [p.shape[-1] for p in pyr] == [32, 16]
    np.testing.assert_allclose(pyr[0] + S.pyr_up(pyr[1]), x, atol=1e-3)  # band-pass + upsampled residue


def test_descriptors_are_image_patches():
    level = np.random.default_rng(0).normal(size=(2, 3, 16, 16)).astype(np.float32)
    d = S.descriptors(level, np.random.RandomState(0), nhood_size=7, nhoods_per_image=5)
    assert d.shape == (10, 3, 7, 7)
    # The reference code's patches come out transposed (same for both sets; the distance is unchanged).
    for k in range(10):
        img = k // 5
        hits = [(y, x) for y in range(3, 13) for x in range(3, 13)
                if np.array_equal(level[img, :, y - 3:y + 4, x - 3:x + 4].swapaxes(1, 2), d[k])]
        assert hits, f"descriptor {k} is not a 7x7 patch of image {img}"


def test_sliced_wasserstein_formulas():
    a = np.random.default_rng(1).normal(size=(200, 6)).astype(np.float32)
    assert S.sliced_wasserstein(a, a.copy(), np.random.RandomState(0)) == 0.0
    v = np.float32([1, -2, 0, 0.5, 0, 3])
    got = S.sliced_wasserstein(a, a + v, np.random.RandomState(0), dir_repeats=2, dirs_per_repeat=8)
    rng, want = np.random.RandomState(0), []
    for _ in range(2):
        dirs = rng.randn(6, 8)
        dirs /= np.sqrt((dirs ** 2).sum(0, keepdims=True))
        want.append(np.abs(v @ dirs.astype(np.float32)).mean())  # a shift moves every projection by dir . v
    assert got == pytest.approx(np.mean(want), rel=1e-4)


def test_swd_levels_and_sensitivity():
    x = lesion_images(16, 32, 1)
    noisy = np.clip(x + np.random.default_rng(2).normal(0, 25, x.shape), 0, 255).astype(np.uint8)
    near = evaluate(x, lesion_images(16, 32, 3), ["swd"], seed=0)
    far = evaluate(x, noisy, ["swd"], seed=0)
    assert set(k for k in far if k.startswith("swd_")) == {key_swd(32), key_swd(16), KEY_SWD_AVG}
    assert far[key_swd(32)] > 3 * near[key_swd(32)]  # noise lives in the finest band
    assert evaluate(x, noisy, ["swd"], seed=0)[KEY_SWD_AVG] == far[KEY_SWD_AVG]  # seeded
    assert far["config"]["swd"]["images_per_set"] == 16 and far["config"]["swd"]["levels"] == [32, 16]


def test_swd_says_when_it_cannot_run():
    x = lesion_images(6, 32, 4)
    r = evaluate(x, x[:3].copy(), ["swd"])
    assert r["config"]["swd"]["images_per_set"] == 3
    assert "at least 16 px" in evaluate(lesion_images(4, 8), lesion_images(4, 8), ["swd"])["unavailable"]["swd"]
    fp = make_fingerprint(x, size=32)
    assert "fingerprint" in evaluate(fp, x, ["swd"])["unavailable"]["swd"]
