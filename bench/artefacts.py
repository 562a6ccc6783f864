"""How much checkerboard, and how many ring-shaped lesions, are in a generator's samples?
(``pggan``'s artefacts, before/after: docs/experiments.md.)

    python bench/artefacts.py [checkpoints/pggan checkpoints/dcgan ...] [--n 1000] [--seed 0] [--json]
    python bench/artefacts.py checkpoints/pggan --stages stages.png   # a progressive G at each resolution
    python bench/artefacts.py OLD NEW --compare before-after.png       # the same seeds from each, side by side

For each image (grey = RGB mean, on [0, 1]) the share of its spectral energy, DC removed, that sits at
the highest frequencies of a 2-pixel period: the three Nyquist cells of the 2-D FFT, (N/2, 0), (0, N/2)
and (N/2, N/2), which is where the pattern of a nearest-neighbour or stride-2 upsampling that the next
layers do not smooth out lands. Reported per generator as the median and the 95th percentile over
``--n`` samples, beside the same for the real ISIC 2017 validation images (from the fingerprint's
thumbnails when no data folder is given). Real dermoscopy has almost no energy there, so a ratio of a
few times the real value is visible as a checkerboard on close inspection.

Ring share: the fraction of images whose lesion is an outline, lighter in its middle than at its
rim (:func:`ring_flags`). A pixel's difference from skin is its RGB distance to the skin colour (the
median of the 4-pixel border; an orange outline on grey skin is hardly darker, but it is far in
colour); the lesion is where, inside the border, that exceeds half its 99th percentile (at least
0.05 and 16 pixels, else the image has no lesion and is not counted). Around the lesion's centroid,
with R the 95th-percentile distance of its pixels, the mean difference is taken in the bands 0-0.2,
0.2-0.4, 0.6-0.8 and 0.8-1.0 R; the image is a ring when the larger of the two outer bands exceeds
the larger of the two inner ones by more than 20%. Real lesions with a pale regression area count too, so read
a model's share against the real one's.

Band shares: the median share of each image's non-DC energy in three rings of the spectrum,
max(|f_y|, |f_x|) in [1/8, 1/4), [1/4, 3/8) and [3/8, 1/2] cycles per pixel (:data:`BANDS`), each as a
multiple of the real images' median: the wider net for patterns of a 3-8 pixel period (a crosshatch, a
blocky texture) that the Nyquist cells miss. 1.0 is the real images' texture; above it, more
high-frequency energy than real dermoscopy; below it, smoother.

Line share: the median share of each image's energy in the band 1/8 <= max(|f_y|, |f_x|) < 1/2 cycles per
pixel (periods of just over 2 to 8 pixels; the Nyquist cells are the checkerboard measure's) that lies on the two
frequency axes, f_x = 0 or f_y = 0 (:func:`line_share`): purely vertical or horizontal stripes, the
faint line pattern ``pggan`` drew on plain skin. The image is Hann-windowed first, so the jump between
its opposite borders (which the FFT treats as neighbours) does not land on the axes. Reported as a
multiple of the real images' median. White noise puts 96 / 3,744 = 0.026 of that band on the axes at
64 px (4 of the 8k cells of each ring k = 8..31); real images, whose energy sits at the band's low end
where the axes hold more of each ring, about 0.07.

The real reference: pass the data folder (``--real ../shared/data/isic2017``), as docs/experiments.md's
tables do. The default, a fingerprint's 128 thumbnails, is quick but noisy: these shares vary widely
from image to image, and on ISIC 2017 train the 1/8-1/4 band's median is 0.042 over all 2,000 images,
0.036-0.053 over random sets of 128, and 0.062 over the training fingerprint's own 128.

``--stages FILE`` (progressive models): the same 16 latents rendered through each resolution's own
output layer (G_ema, alpha 1), side by side and upscaled to 128 px, to see at which block an artefact
appears (the older toRGB layers keep the colours of their own phase, so judge shapes, not colours).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from gan.assets import checkpoints_dir


def _power(images: np.ndarray, hann: bool = False) -> np.ndarray:
    """Per image (uint8 NHWC, square): the 2-D power spectrum of its grey version on [0, 1], DC removed
    (``hann``: after a 2-D Hann window)."""
    x = images.astype(np.float64).mean(axis=3) / 255.0
    x = x - x.mean(axis=(1, 2), keepdims=True)
    if hann:
        w = np.hanning(x.shape[1])
        x = x * w[None, :, None] * w[None, None, :]
    return np.abs(np.fft.fft2(x)) ** 2


def nyquist_share(images: np.ndarray, power: np.ndarray | None = None) -> np.ndarray:
    """Per image (uint8 NHWC, square, even side): energy at the three Nyquist cells / all non-DC energy
    (``power``: :func:`_power` of ``images``, when already computed)."""
    power = _power(images) if power is None else power
    h = power.shape[1] // 2
    nyq = power[:, h, 0] + power[:, 0, h] + power[:, h, h]
    return nyq / np.maximum(power.sum(axis=(1, 2)), 1e-12)


BANDS = ((1 / 8, 1 / 4), (1 / 4, 3 / 8), (3 / 8, 1 / 2))  # cycles per pixel, by max(|f_y|, |f_x|)


def band_shares(images: np.ndarray, bands=BANDS, power: np.ndarray | None = None) -> np.ndarray:
    """Per image (uint8 NHWC, square) and band: energy with max(|f_y|, |f_x|) in [lo, hi) (the last band
    closed, so it holds the Nyquist cells) / all non-DC energy. Shape (N, len(bands))."""
    power = _power(images) if power is None else power
    f = np.abs(np.fft.fftfreq(power.shape[1]))
    r = np.maximum(f[:, None], f[None, :])
    total = np.maximum(power.sum(axis=(1, 2)), 1e-12)
    cols = [(power * ((r >= lo) & ((r < hi) if i < len(bands) - 1 else (r <= hi)))).sum(axis=(1, 2)) / total
            for i, (lo, hi) in enumerate(bands)]
    return np.stack(cols, axis=1)


def line_share(images: np.ndarray, lo: float = 1 / 8) -> np.ndarray:
    """Per image (uint8 NHWC, square, even side): of the Hann-windowed grey image's energy with
    lo <= max(|f_y|, |f_x|) < 1/2 cycles per pixel, the share on the axes f_x = 0 or f_y = 0 (0 when
    the band holds no energy)."""
    power = _power(images, hann=True)
    f = np.abs(np.fft.fftfreq(power.shape[1]))
    r = np.maximum(f[:, None], f[None, :])
    band = (r >= lo) & (r < 0.5)
    axes = band & ((f[:, None] == 0) | (f[None, :] == 0))
    total = (power * band).sum(axis=(1, 2))
    return np.where(total > 1e-12, (power * axes).sum(axis=(1, 2)) / np.maximum(total, 1e-12), 0.0)


def ring_flags(images: np.ndarray) -> np.ndarray:
    """Per image (uint8 NHWC): 1.0 when its lesion is a ring (see the module docstring), 0.0 when it is
    not, NaN when no lesion is found."""
    x = images.astype(np.float64) / 255.0
    n, h, w, _ = x.shape
    yy, xx = np.mgrid[0:h, 0:w]
    border = np.ones((h, w), bool)
    border[4:-4, 4:-4] = False
    out = np.full(n, np.nan)
    for i in range(n):
        d = np.linalg.norm(x[i] - np.median(x[i][border], axis=0), axis=-1)
        inner = d[~border]
        mask = (d > max(0.05, 0.5 * np.percentile(inner, 99))) & ~border
        if mask.sum() < 16:
            continue
        dist = np.hypot(yy - yy[mask].mean(), xx - xx[mask].mean())
        r = np.percentile(dist[mask], 95)
        bands = [d[(dist >= a * r) & (dist < b * r)] for a, b in ((0, 0.2), (0.2, 0.4), (0.6, 0.8), (0.8, 1.0))]
        if any(b.size == 0 for b in bands):
            continue
        centre, rim = max(bands[0].mean(), bands[1].mean()), max(bands[2].mean(), bands[3].mean())
        out[i] = float(rim > 1.2 * centre)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", type=Path, default=[checkpoints_dir() / m for m in
                                                            ("dcgan", "pggan", "pggan-seed", "dcgan-cond")])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real", type=Path, default=checkpoints_dir() / "fingerprints/isic2017-validation-64.npz",
                   help="real images: a data folder (as docs/experiments.md's tables), or a fingerprint's 128 "
                        "thumbnails (quick, noisier)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--stages", type=Path, metavar="PNG", help="progressive models: write each resolution's "
                                                              "output for the same latents to this image")
    p.add_argument("--compare", type=Path, metavar="PNG", help="write 16 samples of each model (same seeds), "
                                                               "side by side, to this image")
    a = p.parse_args()
    if a.stages:
        return stages(a.models[0], a.stages, a.seed)
    if a.compare:
        return compare(a.models, a.compare, a.seed)
    from gan import load_generator

    if a.real.suffix == ".npz":
        from eval.fingerprint import load_fingerprint

        real = load_fingerprint(a.real).thumbs
    else:
        from gan.data import load_dataset

        real = load_dataset(str(a.real), size=64).images.permute(0, 2, 3, 1).numpy()
    rows = [{"name": f"real ({a.real.name})", "n": len(real), **_summary(real)}]
    for m in a.models:
        G = load_generator(m)
        name = m.name if m.suffix != ".pt" else f"{m.parent.name}/{m.name}"
        rows.append({"name": name, "n": a.n, **_summary(G.generate(a.n, seed=a.seed))})
    ref, ref_bands = rows[0]["median"], rows[0]["bands"]
    for r in rows:
        r["median_vs_real"] = r["median"] / ref if ref > 0 else None
        r["bands_vs_real"] = [b / rb if rb > 0 else None for b, rb in zip(r["bands"], ref_bands)]
        r["lines_vs_real"] = r["lines"] / rows[0]["lines"] if rows[0]["lines"] > 0 else None
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    heads = [f"{lo * 8:g}/8-{hi * 8:g}/8 / real" for lo, hi in BANDS]
    print("| images | n | Nyquist share, median | 95th percentile | median / real | " + " | ".join(heads)
          + " | lines / real | rings (of lesions found) |")
    print("| --- | --- | --- | --- | --- |" + " --- |" * len(heads) + " --- | --- |")
    for r in rows:
        bands = " | ".join("n/a" if b is None else f"{b:.2f}" for b in r["bands_vs_real"])
        print(f"| {r['name']} | {r['n']} | {r['median']:.2e} | {r['p95']:.2e} | {r['median_vs_real']:.1f} "
              f"| {bands} | {'n/a' if r['lines_vs_real'] is None else format(r['lines_vs_real'], '.2f')} "
              f"| {r['ring_share']:.1%} ({r['lesions']}) |")
    return 0


def _save_panels(batches: list[np.ndarray], out: Path, gap: int, resample: str) -> None:
    """Each uint8 NHWC batch as a grid of 128 px tiles (PIL filter ``resample``), side by side, to ``out``."""
    from PIL import Image

    from gan.imageutil import image_grid

    f = getattr(Image, resample)
    panels = [image_grid(np.stack([np.array(Image.fromarray(i).resize((128, 128), f)) for i in x]))
              for x in batches]
    space = np.full((panels[0].shape[0], gap, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([c for p in panels for c in (p, space)][:-1], axis=1)).save(out)


def stages(model: Path, out: Path, seed: int) -> int:
    import torch

    from gan import load_generator
    from gan.imageutil import to_uint8_hwc

    G = load_generator(model, fuse=False)
    resolutions = sorted(getattr(G.net, "resolutions", [G.resolution]))
    z = G.latents(16, seed)
    batches = []
    with torch.no_grad():
        for r in resolutions:
            x = to_uint8_hwc(G.net(z, resolution=r, alpha=1.0))
            print(f"{r:>4} px: Nyquist share median {np.median(nyquist_share(x)):.2e}, "
                  f"line share median {np.median(line_share(x)):.3f}")
            batches.append(x)
    _save_panels(batches, out, gap=8, resample="NEAREST")
    print(f"wrote {out} ({', '.join(f'{r} px' for r in resolutions)}, left to right)")
    return 0


def compare(models: list[Path], out: Path, seed: int) -> int:
    from gan import load_generator

    _save_panels([load_generator(m).generate(16, seed=seed) for m in models], out, gap=16, resample="LANCZOS")
    print(f"wrote {out} ({', '.join(str(m) for m in models)}, left to right; seed {seed})")
    return 0


def _summary(images: np.ndarray) -> dict:
    power = _power(images)  # one FFT for both measures
    v, rings = nyquist_share(images, power=power), ring_flags(images)
    found = rings[~np.isnan(rings)]
    return {"median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
            "bands": [float(b) for b in np.median(band_shares(images, power=power), axis=0)],
            "lines": float(np.median(line_share(images))),
            "ring_share": float(found.mean()) if found.size else float("nan"), "lesions": int(found.size)}


if __name__ == "__main__":
    sys.exit(main())
