"""bench/artefacts.py's two artefact measures on made images: the Nyquist share finds a 2-pixel
checkerboard, and the ring test tells an outlined lesion from a filled one."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("artefacts", ROOT / "bench" / "artefacts.py")
art = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(art)


def _lesions(kind: str, n: int = 6, size: int = 64) -> np.ndarray:
    """Skin-coloured images with a brown lesion at a few centres and radii: filled disks, thin rings
    (an outline 2 px wide on a barely different inside), or none."""
    yy, xx = np.mgrid[0:size, 0:size]
    skin, brown = np.array([190, 160, 150]), np.array([120, 80, 50])
    out = np.empty((n, size, size, 3), np.uint8)
    rng = np.random.default_rng(0)
    for i in range(n):
        cy, cx, r = 32 + rng.integers(-6, 7), 32 + rng.integers(-6, 7), rng.integers(10, 18)
        dist = np.hypot(yy - cy, xx - cx)
        im = np.broadcast_to(skin, (size, size, 3)).astype(float).copy()
        if kind == "filled":
            im[dist <= r] = brown
        elif kind == "ring":
            im[dist <= r] = skin * 0.97
            im[(dist <= r) & (dist > r - 2)] = brown
        out[i] = np.clip(im + rng.normal(0, 2, im.shape), 0, 255)
    return out


def test_ring_flags_tell_outlines_from_filled_lesions_and_skip_plain_skin():
    assert art.ring_flags(_lesions("filled")).tolist() == [0.0] * 6
    assert art.ring_flags(_lesions("ring")).tolist() == [1.0] * 6
    assert np.isnan(art.ring_flags(_lesions("none"))).all()


def test_nyquist_share_finds_a_checkerboard():
    smooth = _lesions("filled")
    checker = smooth.astype(int).copy()
    checker[:, ::2, ::2] += 12
    checker = np.clip(checker, 0, 255).astype(np.uint8)
    a, b = art.nyquist_share(smooth), art.nyquist_share(checker)
    assert (b > 10 * a).all() and (a < 1e-3).all()


def test_band_shares_place_a_pattern_in_the_band_of_its_period():
    """A 4-pixel crosshatch (1/4 cycle per pixel) lands in the middle band, a 2-pixel checkerboard in the
    last (it holds the Nyquist cells), and the shares of one image never exceed its non-DC energy."""
    smooth = _lesions("filled").astype(int)
    yy, xx = np.mgrid[0:64, 0:64]
    hatch = np.clip(smooth + (8 * np.cos(np.pi / 2 * yy) + 8 * np.cos(np.pi / 2 * xx))[None, :, :, None], 0, 255)
    checker = smooth.copy()
    checker[:, ::2, ::2] += 24
    base, h, c = (art.band_shares(np.clip(x, 0, 255).astype(np.uint8)) for x in (smooth, hatch, checker))
    assert base.shape == (6, 3) and (base.sum(axis=1) <= 1 + 1e-9).all()
    # the pattern's energy goes to its band alone: the others' shares can only shrink (same total, more of it elsewhere)
    assert (h[:, 1] > 4 * base[:, 1]).all() and (h[:, [0, 2]] <= base[:, [0, 2]] + 1e-9).all()
    assert (c[:, 2] > 4 * base[:, 2]).all() and (c[:, [0, 1]] <= base[:, [0, 1]] + 1e-9).all()
    # a uniform image has no non-DC energy: shares 0, not NaN
    assert art.band_shares(np.full((1, 64, 64, 3), 128, np.uint8)).tolist() == [[0.0, 0.0, 0.0]]


def test_line_share_finds_vertical_and_horizontal_stripes_only():
    """Stripes of a 3- and an 8-pixel period along x or y raise the axis share (a pure stripe puts 2/3 of
    its energy there: the Hann window spreads the rest to the neighbouring rows); the same stripes on the
    diagonal do not; white noise gives the hand count, 4 axis cells of the 8k in each ring k = 8..31."""
    smooth = _lesions("filled").astype(float)
    yy, xx = np.mgrid[0:64, 0:64]

    def add(pattern):
        return np.clip(smooth + 12 * pattern[None, :, :, None], 0, 255).astype(np.uint8)

    base = art.line_share(smooth.astype(np.uint8))
    assert (base < 0.08).all()
    for stripes in (np.cos(2 * np.pi * xx / 3), np.cos(2 * np.pi * yy / 8)):
        assert (art.line_share(add(stripes)) > 2.5 * base).all()
    pure = np.clip(128 + 12 * np.cos(2 * np.pi * yy / 8), 0, 255).astype(np.uint8)
    assert abs(art.line_share(np.repeat(pure[None, :, :, None], 3, axis=3))[0] - 2 / 3) < 0.02
    diagonal = art.line_share(add(np.cos(2 * np.pi * (xx + yy) / 4)))
    assert (diagonal < base + 0.01).all()
    noise = np.random.default_rng(0).integers(0, 256, (200, 64, 64, 3), dtype=np.uint8)
    assert abs(np.median(art.line_share(noise)) - 96 / 3744) < 0.005
    assert art.line_share(np.full((1, 64, 64, 3), 128, np.uint8)).tolist() == [0.0]
