"""Draw images from a trained generator:
``python -m gan.sample --checkpoint FILE --n N --out DIR [--seed S] [--grid]``.

Files are named ``seed{S:04d}-{i:05d}.png``: image ``i`` of seed ``S`` is the same whatever ``--n``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from gan.cli import prog
from gan.generator import load_generator
from gan.imageutil import image_grid


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("gan.sample", "lesiongan-sample"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="generator.pt, checkpoint.pt or a run folder")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--grid", action="store_true", help="also write grid.png")
    p.add_argument("--batch", type=int, default=256, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                   help="fp32 (default, exact), bf16 (about 2x faster where native, within a few grey "
                        "levels) or auto (bf16 where native)")
    args = p.parse_args(argv)
    if args.n < 1:
        print(f"error: --n must be at least 1, got {args.n}", file=sys.stderr)
        return 2
    try:
        G = load_generator(args.checkpoint, device=args.device, precision=args.precision)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    z = G.latents(args.n, args.seed)
    images = []
    for i in tqdm(range(0, args.n, args.batch), desc="sampling", unit="batch", file=sys.stderr):
        batch = G.synthesize(z[i:i + args.batch])
        for j, img in enumerate(batch):
            Image.fromarray(img).save(out / f"seed{args.seed:04d}-{i + j:05d}.png")
        images.append(batch)
    if args.grid:
        Image.fromarray(image_grid(np.concatenate(images))).save(out / "grid.png")
    print(f"wrote {args.n} images ({G.resolution} px, {G.model_name}, {G.precision}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
