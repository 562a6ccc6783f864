"""Benchmark (not a test): FID through LesionGAN's evaluate() against calling torch-fidelity directly.

    python bench/bench_fid.py [--n 128] [--repeats 2] [--weights PATH]

Both compute the Inception-v3 pool features of two sets of N 64x64 uint8 images (resized to 299 px
inside torch-fidelity's network) and the FID between them:

* ours: ``eval.evaluate(real, fake, ["fid"], inception_weights=PATH)``;
* direct: ``torch_fidelity.calculate_metrics(input1=..., input2=..., fid=True,
  feature_extractor_weights_path=PATH, cache=False)`` on torch Datasets of the same uint8 tensors.

Without ``--weights`` the network gets stand-in random weights (``eval.testing``; real ones cannot be
downloaded here): the cost of a forward pass does not depend on the weights' values, so the timing
holds, and the two FIDs must still agree with each other. Alternated, medians reported. Ours keeps
the network built between calls (``eval.metrics.inception.extractor`` is cached); torch-fidelity
builds its own per call, as a direct caller would.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from eval import evaluate
from eval.testing import make_standin_inception_weights


class _Images(torch.utils.data.Dataset):
    """uint8 NHWC numpy -> uint8 CHW tensors, what torch-fidelity reads from a Dataset."""

    def __init__(self, images: np.ndarray):
        self.x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--weights", default=None, help="Inception weights (default: stand-in random weights)")
    args = p.parse_args()
    import torch_fidelity

    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (args.n, 64, 64, 3), dtype=np.uint8)
    fake = np.clip(real.astype(int) + rng.integers(-40, 40, real.shape), 0, 255).astype(np.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or str(make_standin_inception_weights(Path(tmp) / "standin.pth"))

        def ours():
            return float(evaluate(real, fake, ["fid"], inception_weights=weights, batch_size=64)["fid_inception_299"])

        def direct():
            m = torch_fidelity.calculate_metrics(input1=_Images(fake), input2=_Images(real), fid=True, cuda=False,
                                                 feature_extractor_weights_path=weights, cache=False, verbose=False,
                                                 batch_size=64)
            return float(m["frechet_inception_distance"])

        fns = {"ours: eval.evaluate(..., ['fid'])": ours, "direct: torch_fidelity.calculate_metrics(fid=True)": direct}
        values = {k: f() for k, f in fns.items()}  # warm-up (network built once in each) and the values
        times = {k: [] for k in fns}
        for _ in range(args.repeats):
            for k, f in fns.items():
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    ref = statistics.median(times["direct: torch_fidelity.calculate_metrics(fid=True)"])
    print(f"# FID of {args.n} vs {args.n} images of 64 px, {'given' if args.weights else 'stand-in'} weights, "
          f"{torch.get_num_threads()} threads, median of {args.repeats}")
    print("| path | seconds | time vs direct | FID |")
    print("| --- | --- | --- | --- |")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v):.1f} | {statistics.median(v) / ref:.2f}x | {values[k]:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
