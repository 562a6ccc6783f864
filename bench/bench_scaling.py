"""Benchmark (not a test): training-epoch and evaluation time against data-set size and resolution.

    python bench/bench_scaling.py --data ../shared/data/ham10000 [--sizes 64 128] [--counts 1000 2000 4000 10000]
                                  [--max-images 2048] [--precision bf16] [--cache-dir DIR]

For each resolution, the data set is decoded once into gan.data's cache (the build or the load is
timed), then for each count N (the first N images):

* epoch: one pass over N images in batches of 64 through LesionGAN's DCGAN step (the loop's
  step: fused Adam, channels-last, ``--precision``). Passes longer than ``--max-images`` are timed
  over their first ``--max-images`` images and scaled to N (marked ``*``): the step's cost does not
  depend on N, which the measured rows show.
* fingerprint: ``eval.make_fingerprint`` of the N images (colour histograms, 32-px bank, thumbnails).
* JSD + W: colour JSD and Wasserstein of N generated-size images against that fingerprint.

The source JPEGs never enter an epoch: once cached, an epoch reads uint8 tensors, so its cost is
set by N and the resolution, not by the JPEGs' pixel count (HAM10000 is 600x450; ISIC archive
images are about 1,000x750).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch

from eval import evaluate
from eval.fingerprint import make_fingerprint
from gan.data import load_dataset
from gan.loop import train_step
from gan.models import get_model
from gan.models.dcgan import DCGANConfig


def epoch_seconds(images: torch.Tensor, size: int, precision: str, max_images: int) -> tuple[float, bool]:
    """Seconds for one pass over ``images`` (N, 3, S, S) uint8, and whether it was extrapolated."""
    spec, cfg = get_model("dcgan"), DCGANConfig(resolution=size)
    torch.manual_seed(0)
    G, D = (m.to(memory_format=torch.channels_last) for m in spec.build(cfg))
    stage = spec.schedule(cfg, 0)
    opts, loss = spec.prepare_phase(G, D, cfg, stage), spec.make_loss(G, D, cfg)
    rng = torch.Generator().manual_seed(1)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    n_batches = len(images) // 64
    timed = min(n_batches, max(1, max_images // 64))

    def step(idx):
        real = images[idx].float().div_(127.5).sub_(1.0).contiguous(memory_format=torch.channels_last)
        train_step(loss, opts, real, stage, rng, precision)

    step(order[:64])  # warm-up (first-call allocations), not timed
    t = time.perf_counter()
    for b in range(timed):
        step(order[b * 64:(b + 1) * 64])
    secs = time.perf_counter() - t
    return secs * n_batches / timed, timed < n_batches


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    p.add_argument("--counts", type=int, nargs="+", default=[1000, 2000, 4000, 10000])
    p.add_argument("--max-images", type=int, default=2048)
    p.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    p.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    print(f"# {args.data}, DCGAN step ({args.precision}), {torch.get_num_threads()} threads; "
          f"* = timed over the first {args.max_images} images of the pass and scaled to N")
    print("| px | N | epoch s | ms / image | fingerprint s | JSD + W s (N fake vs fingerprint) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        t = time.perf_counter()
        ds = load_dataset(args.data, size=size, cache_dir=args.cache_dir, progress=False)
        print(f"| {size} | all {len(ds)} | cache build or load: {time.perf_counter() - t:.1f} s | | | |")
        for n in args.counts:
            if n > len(ds):
                print(f"| {size} | {n} | (the set has {len(ds)}) | | | |")
                continue
            images = ds.images[:n]
            secs, scaled = epoch_seconds(images, size, args.precision, args.max_images)
            t = time.perf_counter()
            fp = make_fingerprint(images, size=size)
            fp_s = time.perf_counter() - t
            fake = images.flip(0).permute(0, 2, 3, 1).contiguous().numpy()  # stand-in "generated" set of N
            t = time.perf_counter()
            evaluate(fp, fake, ["hist_js", "wasserstein"])
            ev_s = time.perf_counter() - t
            print(f"| {size} | {n} | {secs:.1f}{'*' if scaled else ''} | {1000 * secs / n:.2f} | {fp_s:.2f} | "
                  f"{ev_s:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
