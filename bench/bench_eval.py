"""Benchmark (not a test): colour-histogram JSD + pixel Wasserstein over 10,000 images of 64x64.

    python bench/bench_eval.py [--n 10000] [--size 64] [--repeats 3]

Times the whole path a shipped checkpoint's evaluation takes for these two metrics: the fake set's
256-value histograms (the real side comes from its fingerprint, as with ``eval.run``), then the JSD
at 64 bins and the Wasserstein distance. Also times both sets from images, and the full
``evaluate()`` call. Images are random uint8 made in memory (their content does not change the cost).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from eval import evaluate, make_fingerprint
from eval.metrics.histogram import channel_histograms, histogram_jsd
from eval.metrics.wasserstein import pixel_wasserstein


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (a.n, a.size, a.size, 3), dtype=np.uint8)
    fake = rng.integers(0, 256, (a.n, a.size, a.size, 3), dtype=np.uint8)
    fp = make_fingerprint(real[:100], size=a.size, bank_size=None, n_thumbs=0)
    fp.hist_rgb256 = channel_histograms(real)  # a fingerprint of all 10,000 without its bank

    def fake_vs_fingerprint():
        h = channel_histograms(fake)
        histogram_jsd(fp.hist_rgb256, h, 64)
        pixel_wasserstein(fp.hist_rgb256, h)

    def both_from_images():
        hr, hf = channel_histograms(real), channel_histograms(fake)
        histogram_jsd(hr, hf, 64)
        pixel_wasserstein(hr, hf)

    t1 = best_of(fake_vs_fingerprint, a.repeats)
    t2 = best_of(both_from_images, a.repeats)
    t3 = best_of(lambda: evaluate(real, fake, ["hist_js", "wasserstein"]), a.repeats)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"{a.n} fake images {a.size}x{a.size} vs fingerprint, JSD(64 bins) + Wasserstein: {t1:.3f} s (best of {a.repeats})")
    print(f"{a.n} real + {a.n} fake images from pixels:                     {t2:.3f} s")
    print(f"evaluate(real, fake, ['hist_js', 'wasserstein']) on both sets:     {t3:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
