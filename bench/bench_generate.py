"""Benchmark (not a test): latency of 64 images at 64x64 on the dashboard's path, model loaded.

    python bench/bench_generate.py [--checkpoint checkpoints/dcgan/generator.pt] [--n 64] [--repeats 30]

Reference: the report's DCGAN generator in eval mode, fp32, ``torch.no_grad()``, NCHW (what the
PyTorch example's G gives). Ours: the dashboard's own call, ``dashboard.sampling.generate_images(G, seeds)``
with ``G = dashboard.sampling.load_generator(path)`` (bf16 where the CPU has it natively), and the same in
fp32 (``load_generator(path)``, what ``gan.sample`` runs): BatchNorm folded, channels-last, the 1x1
and RGB transposed convolutions as GEMMs, uint8 out. All are timed in alternation in one process;
medians and their ratio are printed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from dashboard import sampling
from gan import load_generator


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/dcgan/generator.pt")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args()
    G = load_generator(args.checkpoint)
    plain = G.net  # the network as trained, eval mode
    z = G.latents(args.n, seed=0)

    def reference():
        with torch.no_grad():
            x = plain(z)
        return ((x + 1) * 127.5).clamp(0, 255).to(torch.uint8)

    seeds = list(range(args.n))
    G_dash = sampling.load_generator(args.checkpoint)

    def ours_fp32():
        return sampling.generate_images(G, seeds)

    def ours_dashboard():
        return sampling.generate_images(G_dash, seeds)

    times = {"reference (eval, fp32, no_grad)": [], "ours, fp32 (gan.sample's path)": [],
             f"ours, dashboard ({G_dash.precision})": []}
    fns = list(zip(times, (reference, ours_fp32, ours_dashboard)))
    for _, fn in fns:
        fn()
    for _ in range(args.repeats):
        for name, fn in fns:
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1000)
    ref = statistics.median(times[fns[0][0]])
    print(f"# {args.n} images at {G.resolution} px, {G.model_name}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats}")
    for name, v in times.items():
        print(f"| {name} | {statistics.median(v):.1f} ms | {ref / statistics.median(v):.2f}x faster |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
