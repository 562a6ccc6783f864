"""Benchmark (not a test): progressive-GAN training throughput per phase, against DCGAN at 64 px.

    python bench/bench_pggan.py [--steps 6] [--repeats 3] [--model pggan] [--precision fp32]

For every phase of the model's default schedule (a fade-in into a resolution, or the stable period
at it), the loop's step (``ModelSpec.prepare_phase`` + ``make_loss`` + the optimizers, exactly what
``gan.loop`` runs) is timed at that phase's batch size on in-memory batches. In the same run and in
alternation: the PyTorch DCGAN example's step (the reference of bench_train.py) and LesionGAN's
DCGAN step, both at 64 px. Medians of ``--repeats`` rounds of ``--steps`` steps, in images/s.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from bench_train import OurStep, ReferenceStep  # a sibling: `python bench/bench_pggan.py` puts bench/ on the path
from gan.loop import train_step
from gan.models import get_model
from gan.rng import BatchRNG


class PhaseStep:
    """One training step of ``model`` in the phase that starts at ``nimg`` (mid fade-in for fades)."""

    def __init__(self, model: str, nimg: int, precision: str = "fp32", seed: int = 0):
        self.spec = get_model(model)
        self.cfg = self.spec.Config()
        torch.manual_seed(seed)
        self.G, self.D = self.spec.build(self.cfg)
        self.stage = self.spec.schedule(self.cfg, nimg)
        self.opts = self.spec.prepare_phase(self.G, self.D, self.cfg, self.stage)
        self.loss = self.spec.make_loss(self.G, self.D, self.cfg)
        self.rng = BatchRNG(torch.Generator().manual_seed(seed + 1), 0, 1)
        self.real = torch.rand(self.stage.batch, 3, self.stage.resolution, self.stage.resolution) * 2 - 1
        self.precision = precision

    @property
    def batch(self) -> int:
        return self.stage.batch

    def __call__(self) -> None:
        train_step(self.loss, self.opts, self.real, self.stage, self.rng, self.precision)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="pggan", choices=["pggan", "pggan-seed"])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = p.parse_args()

    spec = get_model(args.model)
    cfg = spec.Config()
    rows = spec.describe_schedule(cfg, 10 ** 9)
    # Time each phase a little after it starts (halfway into a fade-in: alpha strictly between 0 and 1).
    steps: dict[str, object] = {}
    for r in rows:
        start = int(r["start_kimg"] * 1000)
        kind = "fade-in" if r["fade_kimg"] > 0 else "stable"
        nimg = start + int(r["fade_kimg"] * 500) if kind == "fade-in" else start + 1
        steps[f"{args.model} {r['resolution']} px {kind} (batch {r['batch']})"] = PhaseStep(args.model, nimg, args.precision)
    dc_ref = ReferenceStep()
    dc_ours = OurStep(precision=args.precision)
    real64 = torch.rand(64, 3, 64, 64) * 2 - 1
    fns = {"reference DCGAN step, 64 px (batch 64)": (lambda: dc_ref(real64), 64),
           f"LesionGAN DCGAN step, 64 px, {args.precision} (batch 64)": (lambda: dc_ours(real64), 64)}
    fns.update({name: (s, s.batch) for name, s in steps.items()})
    for fn, _ in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(args.repeats):
        for name, (fn, batch) in fns.items():
            t = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name].append(batch * args.steps / (time.perf_counter() - t))
    ref = statistics.median(times["reference DCGAN step, 64 px (batch 64)"])
    print(f"# training step per phase, {args.precision}, {torch.get_num_threads()} threads, "
          f"{args.steps} steps x {args.repeats} rounds (median images/s; ratio to the reference DCGAN step)")
    print("| what | images/s | vs reference DCGAN |")
    print("| --- | --- | --- |")
    for name, v in times.items():
        print(f"| {name} | {statistics.median(v):.1f} | {statistics.median(v) / ref:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
