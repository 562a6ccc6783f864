"""Draw images from a trained generator:
``python -m gan.sample --checkpoint FILE --n N --out DIR [--seed S] [--class melanoma] [--grid]``.

Files are named ``seed{S:04d}-{i:05d}.png`` (with ``--class``: ``melanoma-seed...``): image ``i`` of
seed ``S`` is the same whatever ``--n``. A conditional model without ``--class`` draws each image's
class in the training data's shares (from the seed). For labelled data sets, see ``gan.synthesize``.
More than ``LARGE_N`` images need ``--yes`` (the command says how much it would write); more than
``MAX_N`` (or a ``--grid`` of more than ``LARGE_N``) are refused before anything is allocated.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from gan.cli import entry_point, prog
from gan.fileio import atomic_write, prepare_output
from gan.generator import check_device, load_generator
from gan.imageutil import image_grid

LARGE_N = 10_000
MAX_N = 1_000_000  # even with --yes: about 8 GB of PNGs at 64 px, and the latents are drawn at once
PNG_RATIO = 0.65  # bytes of a generated lesion PNG per raw RGB byte, measured at 64 px (about 8 KB each)


def _save_png(img: np.ndarray, path: Path) -> None:
    # All-or-nothing per image; a killed run leaves a PID-named temp file that the next run into
    # this folder removes (no fsync: thousands of small files).
    atomic_write(path, lambda f: Image.fromarray(img).save(f, format="PNG"), durable=False)


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("gan.sample", "lesiongan-sample"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="generator.pt, checkpoint.pt or a run folder")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--seed", type=int, default=0, help="seed of the latents (default 0)")
    p.add_argument("--class", dest="label", metavar="CLASS",
                   help="a conditional model's class (name or index); default: classes drawn in the training "
                        "data's shares")
    p.add_argument("--grid", action="store_true", help="also write grid.png")
    p.add_argument("--batch", type=int, default=256, help="images per forward pass")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"],
                   help="fp32 (default, exact); bf16 (within a few grey levels of fp32; faster only where the "
                        "device runs bf16 natively, slower where it is emulated); auto: whichever of the "
                        "two samples this network faster on this machine, measured once and cached (fp32 "
                        "where bf16 is not native); the choice and its reason are printed")
    p.add_argument("--yes", action="store_true", help=f"write more than {LARGE_N:,} images without asking")
    args = p.parse_args(argv)
    try:
        if args.n < 1:
            raise ValueError(f"--n must be at least 1, got {args.n}")
        if args.n > MAX_N:
            raise ValueError(f"--n {args.n} is over the {MAX_N:,} images this command writes at once; split it "
                             f"over several --seed values")
        if args.grid and args.n > LARGE_N:
            raise ValueError(f"--grid with --n {args.n}: a grid holds at most {LARGE_N:,} images")
        if args.batch < 1:
            raise ValueError(f"--batch must be at least 1, got {args.batch}")
        try:
            check_device(args.device)
        except ValueError as e:
            raise ValueError(f"--device {e}") from None
        out = prepare_output(args.out, "--out")
        G = load_generator(args.checkpoint, device=args.device, precision=args.precision)
        if args.n > LARGE_N and not args.yes:
            mb = args.n * G.resolution ** 2 * 3 * PNG_RATIO / 1e6
            raise ValueError(f"--n {args.n} would write {args.n:,} PNG files of {G.resolution} px, about "
                             f"{mb:,.0f} MB, to {out}; add --yes to go ahead")
        label = int(args.label) if args.label is not None and args.label.isdigit() else args.label
        y = G.labels_for(args.n, label, args.seed)  # None for an unconditional model (which refuses --class)
        prefix = f"{G.class_names[G.class_index(label)]}-" if label is not None else ""
        z = G.latents(args.n, args.seed)
        images = []
        for i in tqdm(range(0, args.n, args.batch), desc="sampling", unit="batch", file=sys.stderr):
            batch = G.synthesize(z[i:i + args.batch], labels=None if y is None else y[i:i + args.batch])
            for j, img in enumerate(batch):
                _save_png(img, out / f"{prefix}seed{args.seed:04d}-{i + j:05d}.png")
            if args.grid:
                images.append(batch)
        if args.grid:
            _save_png(image_grid(np.concatenate(images)), out / "grid.png")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.precision == "auto":
        print(f"--precision auto: {G.precision} ({G.precision_reason})", file=sys.stderr)
    print(f"wrote {args.n} images ({G.resolution} px, {G.model_name}, {G.precision}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
