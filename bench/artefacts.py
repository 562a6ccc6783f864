"""How much checkerboard is in a generator's samples? (issue 16: ``pggan``'s artefacts, before/after.)

    python bench/artefacts.py [checkpoints/pggan checkpoints/dcgan ...] [--n 1000] [--seed 0] [--json]
    python bench/artefacts.py checkpoints/pggan --stages stages.png   # a progressive G at each resolution

For each image (grey = RGB mean, on [0, 1]) the share of its spectral energy, DC removed, that sits at
the highest frequencies of a 2-pixel period: the three Nyquist cells of the 2-D FFT, (N/2, 0), (0, N/2)
and (N/2, N/2), which is where the pattern of a nearest-neighbour or stride-2 upsampling that the next
layers do not smooth out lands. Reported per generator as the median and the 95th percentile over
``--n`` samples, beside the same for the real ISIC 2017 validation images (from the fingerprint's
thumbnails when no data folder is given). Real dermoscopy has almost no energy there, so a ratio of a
few times the real value is visible as a checkerboard on close inspection.

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

REPO = Path(__file__).resolve().parents[1]


def nyquist_share(images: np.ndarray) -> np.ndarray:
    """Per image (uint8 NHWC, square, even side): energy at the three Nyquist cells / all non-DC energy."""
    x = images.astype(np.float64).mean(axis=3) / 255.0
    x = x - x.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(x)) ** 2
    h = x.shape[1] // 2
    nyq = power[:, h, 0] + power[:, 0, h] + power[:, h, h]
    return nyq / np.maximum(power.sum(axis=(1, 2)), 1e-12)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="*", type=Path, default=[REPO / "checkpoints" / m for m in
                                                            ("dcgan", "pggan", "pggan-seed", "dcgan-cond")])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--real", type=Path, default=REPO / "checkpoints/fingerprints/isic2017-validation-64.npz",
                   help="real images: a fingerprint (its thumbnails) or a data folder")
    p.add_argument("--json", action="store_true")
    p.add_argument("--stages", type=Path, metavar="PNG", help="progressive models: write each resolution's "
                                                              "output for the same latents to this image")
    a = p.parse_args()
    if a.stages:
        return stages(a.models[0], a.stages, a.seed)
    from gan import load_generator

    if a.real.suffix == ".npz":
        from eval.fingerprint import load_fingerprint

        real = load_fingerprint(a.real).thumbs
    else:
        from gan.data import load_dataset

        real = load_dataset(str(a.real), size=64).images.permute(0, 2, 3, 1).numpy()
    rows = [{"name": f"real ({a.real.name})", "n": len(real), **_summary(nyquist_share(real))}]
    for m in a.models:
        G = load_generator(m)
        rows.append({"name": m.name, "n": a.n, **_summary(nyquist_share(G.generate(a.n, seed=a.seed)))})
    ref = rows[0]["median"]
    for r in rows:
        r["median_vs_real"] = r["median"] / ref if ref > 0 else None
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| images | n | Nyquist share, median | 95th percentile | median / real |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['name']} | {r['n']} | {r['median']:.2e} | {r['p95']:.2e} | {r['median_vs_real']:.1f} |")
    return 0


def stages(model: Path, out: Path, seed: int) -> int:
    import torch
    from PIL import Image

    from gan import load_generator
    from gan.imageutil import image_grid, to_uint8_hwc

    G = load_generator(model, fuse=False)
    resolutions = sorted(getattr(G.net, "resolutions", [G.resolution]))
    z = G.latents(16, seed)
    panels = []
    with torch.no_grad():
        for r in resolutions:
            x = to_uint8_hwc(G.net(z, resolution=r, alpha=1.0))
            print(f"{r:>4} px: Nyquist share median {np.median(nyquist_share(x)):.2e}")
            up = np.stack([np.array(Image.fromarray(i).resize((128, 128), Image.NEAREST)) for i in x])
            panels.append(image_grid(up))
    gap = np.full((panels[0].shape[0], 8, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([c for p in panels for c in (p, gap)][:-1], axis=1)).save(out)
    print(f"wrote {out} ({', '.join(f'{r} px' for r in resolutions)}, left to right)")
    return 0


def _summary(v: np.ndarray) -> dict:
    return {"median": float(np.median(v)), "p95": float(np.percentile(v, 95))}


if __name__ == "__main__":
    sys.exit(main())
