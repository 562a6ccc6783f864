"""Benchmark (not a test): DCGAN training throughput, ours against the PyTorch DCGAN example recipe.

    python bench/bench_train.py step  [--steps 30] [--repeats 3]          # batch already in memory
    python bench/bench_train.py models [--steps 33] [--ada-p 0.5]       # stylegan2's step against dcgan's
    python bench/bench_train.py drift [--steps 20]                        # fast path vs plain, step by step
    python bench/bench_train.py curves --data ../shared/data/isic2017 [--kimg 16]   # loss curves, bf16 vs fp32
    python bench/bench_train.py e2e   --data ../shared/data/isic2017 [--images 1280]   # loader included
    python bench/bench_train.py limits [--threads 1 2] [--repeats 5]    # the step against this CPU's limits

The reference is pytorch/examples' dcgan/main.py re-implemented here: a file-list Dataset with
``Resize(64)/CenterCrop(64)/ToTensor/Normalize`` through a ``DataLoader`` (2 workers, shuffle),
the same G and D (``gan.models.dcgan``: the example's architecture layer for layer), BCE, Adam(2e-4,
0.5), batch 64, and the example's step. Ours is LesionGAN's loop step: cached uint8 tensors, the
same maths, with the fast-path switches named in the output. Both run in the same process, in
alternation (ABAB...), and the ratio of medians is reported: these machines are noisy.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from gan.config import RunConfig, TrainConfig
from gan.data import DataConfig
from gan.loop import train_step, training_loop
from gan.models import get_model
from gan.models.dcgan import DCGANConfig
from gan.nets import cpu_info, native_bf16
from gan.rundir import RunDir

IMAGE_EXTS = {".jpg", ".jpeg", ".png"}
GEMM_SIDE = 2048  # the dense-GEMM limit: a 2048 x 2048 product


class ReferenceStep:
    """One training step of pytorch/examples dcgan/main.py, verbatim in its maths."""

    def __init__(self, seed: int = 0, device: torch.device | str = "cpu"):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.G, self.D = (m.to(self.device) for m in get_model("dcgan").build(DCGANConfig()))
        self.crit = nn.BCELoss()
        self.optD = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def __call__(self, real: torch.Tensor) -> tuple[float, float]:
        b = real.size(0)
        self.D.zero_grad()
        out = self.D(real)
        errD_real = self.crit(out, torch.full((b,), 1.0, device=self.device))
        errD_real.backward()
        noise = torch.randn(b, 100, 1, 1, device=self.device)
        fake = self.G(noise)
        out = self.D(fake.detach())
        errD_fake = self.crit(out, torch.full((b,), 0.0, device=self.device))
        errD_fake.backward()
        self.optD.step()
        self.G.zero_grad()
        out = self.D(fake)
        errG = self.crit(out, torch.full((b,), 1.0, device=self.device))
        errG.backward()
        self.optG.step()
        return float((errD_real + errD_fake).detach()), float(errG.detach())


class OurStep:
    """LesionGAN's loop step (``gan.loop.train_step``) on the registry's DCGAN, with optional
    channels_last and bf16 autocast (``precision="bf16"``, as ``--precision bf16`` runs it)."""

    def __init__(self, seed: int = 0, channels_last: bool = True, fused: bool = True, precision: str = "fp32",
                 device: torch.device | str = "cpu"):
        spec = get_model("dcgan")
        self.cfg = DCGANConfig()
        torch.manual_seed(seed)
        G, D = spec.build(self.cfg)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.fmt = fmt
        self.G, self.D = G.to(device=device, memory_format=fmt), D.to(device=device, memory_format=fmt)
        self.opts = spec.prepare_phase(self.G, self.D, self.cfg, spec.schedule(self.cfg, 0))
        if not fused:  # the plain (per-tensor loop) Adam the reference uses
            self.opts = {k: torch.optim.Adam(o.param_groups[0]["params"], lr=2e-4, betas=(0.5, 0.999))
                         for k, o in self.opts.items()}
        self.loss = spec.make_loss(self.G, self.D, self.cfg)
        self.stage = spec.schedule(self.cfg, 0)
        self.rng = torch.Generator(device=device).manual_seed(seed + 1)
        self.precision = precision

    def __call__(self, real: torch.Tensor) -> tuple[float, float]:
        real = real.contiguous(memory_format=self.fmt)
        stats = train_step(self.loss, self.opts, real, self.stage, self.rng, self.precision)
        return float(stats["loss_D"]), float(stats["loss_G"])


class ModelStep:
    """The loop's step (``gan.loop.train_step``) for any registered model at batch 64, its stage
    recomputed from images seen every step as the loop does (so that lazy regularization falls where
    it would), channels-last, fp32; ``ada_p`` > 0 puts ADA (blit and geometry) in front of D."""

    def __init__(self, model: str, cfg=None, seed: int = 0, ada_p: float = 0.0):
        from gan.daug import AdaState, AugmentedD
        from gan.rng import BatchRNG

        self.spec = get_model(model)
        self.cfg = dataclasses.replace(cfg or self.spec.Config(), batch=64)
        torch.manual_seed(seed)
        G, D = (m.to(memory_format=torch.channels_last) for m in self.spec.build(self.cfg))
        self.nimg = 0
        stage = self.spec.schedule(self.cfg, 0)
        self.opts = self.spec.prepare_phase(G, D, self.cfg, stage)
        if ada_p > 0:
            D = AugmentedD(D, BatchRNG(torch.Generator().manual_seed(seed + 2)), (), AdaState(p=ada_p, ops="bg"))
        self.loss = self.spec.make_loss(G, D, self.cfg)
        self.rng = torch.Generator().manual_seed(seed + 1)

    def __call__(self, real: torch.Tensor) -> tuple[float, float]:
        stage = self.spec.schedule(self.cfg, self.nimg)
        stats = train_step(self.loss, self.opts, real.contiguous(memory_format=torch.channels_last), stage, self.rng)
        self.nimg += stage.batch
        return float(stats["loss_D"]), float(stats["loss_G"])


def bench_models(args) -> None:
    """StyleGAN2's training step against DCGAN's, in the same process, alternating step by step
    (A, B, A, B...: on a loaded machine both meet the same load). StyleGAN2 steps 0 and 16 carry the
    R1 step (every 16 D steps); its cost per step is the median ordinary step plus 1/16 of the median
    extra an R1 step costs. ``--ada-p``: StyleGAN2 with ADA (blit, geometry) at that p as well."""
    real = torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    variants = {"dcgan": ModelStep("dcgan"), "stylegan2 (cpu64)": ModelStep("stylegan2")}
    if args.ada_p > 0:
        variants[f"stylegan2 (cpu64), ADA bg at p {args.ada_p:g}"] = ModelStep("stylegan2", ada_p=args.ada_p)
    for step in variants.values():  # warm-up, then from step 0 again
        step(real)
        step.nimg = 0
    times: dict[str, dict[int, float]] = {k: {} for k in variants}
    for i in range(args.steps):
        for name, step in variants.items():
            t = time.perf_counter()
            step(real)
            times[name][i] = time.perf_counter() - t
    interval = get_model("stylegan2").Config().r1_interval
    cost = {}
    for name, by_step in times.items():
        plain = statistics.median(t for i, t in by_step.items() if name == "dcgan" or i % interval)
        reg = [t for i, t in by_step.items() if name != "dcgan" and i % interval == 0]
        cost[name] = plain + (statistics.median(reg) - plain) / interval if reg else plain
    print(f"# training step, batch 64 in memory, 64 px, fp32, channels-last, {torch.get_num_threads()} threads, "
          f"{args.steps} steps each, alternating; {cpu_info()[0]}; load average {os.getloadavg()[0]:.1f}")
    print("| model | s/step (R1 amortized) | img/s | step cost / dcgan's |")
    print("| --- | --- | --- | --- |")
    for name, c in cost.items():
        print(f"| {name} | {c:.3f} | {64 / c:.1f} | {c / cost['dcgan']:.2f}x |")


def bench_step(args) -> None:
    real = torch.rand(64, 3, 64, 64) * 2 - 1
    variants = {"reference": ReferenceStep(),
                "ours (bf16 autocast, fused Adam, channels_last)": OurStep(precision="bf16"),
                "ours (fused Adam, channels_last)": OurStep(channels_last=True),
                "ours (fused Adam, contiguous)": OurStep(channels_last=False),
                "ours (plain Adam, contiguous)": OurStep(channels_last=False, fused=False)}
    for step in variants.values():  # warm-up
        step(real)
    times = {k: [] for k in variants}
    for _ in range(args.repeats):
        for name, step in variants.items():
            t = time.perf_counter()
            for _ in range(args.steps):
                step(real)
            times[name].append(64 * args.steps / (time.perf_counter() - t))
    ref = statistics.median(times["reference"])
    print(f"# training step, batch in memory, 64 px, {torch.get_num_threads()} threads, "
          f"{args.steps} steps x {args.repeats} rounds (median images/s)")
    for name, v in times.items():
        print(f"| {name} | {statistics.median(v):.1f} img/s | {statistics.median(v) / ref:.2f}x |")


def check_drift(args) -> None:
    """The fast path against the plain one from the same seed and batches: loss curves side by side."""
    gen = torch.Generator().manual_seed(0)
    batches = [torch.rand(64, 3, 64, 64, generator=gen) * 2 - 1 for _ in range(args.steps)]
    fast, plain = OurStep(channels_last=True, fused=True), OurStep(channels_last=False, fused=False)
    diffs = []
    for b in batches:
        (d1, g1), (d2, g2) = fast(b), plain(b)
        diffs.append(max(abs(d1 - d2), abs(g1 - g2)))
    print(f"# fast path (fused Adam, channels_last) vs plain (per-tensor Adam, contiguous), seed 0, "
          f"{args.steps} steps: max |loss difference| per step")
    print(" ".join(f"{d:.1e}" for d in diffs))


def step_flops(step, real: torch.Tensor) -> int:
    """Floating-point operations of one training step (matrix products and convolutions, forward and
    backward), counted by ``torch.utils.flop_counter`` on a throw-away copy of ``step``'s kind."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step(real)
    return counter.get_total_flops()


def limit_runs(dtype: torch.dtype) -> dict[str, tuple[callable, int]]:
    """The machine's limits in ``dtype``: a dense GEMM and the convolution DCGAN spends most on (G's
    middle transposed convolution, 256 -> 128 maps at 8 -> 16 px, batch 64, channels-last, forward),
    each as (run once, FLOPs)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(GEMM_SIDE, GEMM_SIDE, generator=g).to(dtype) for _ in range(2))
    conv = nn.ConvTranspose2d(256, 128, 4, 2, 1, bias=False).to(dtype=dtype, memory_format=torch.channels_last)
    conv.requires_grad_(False)
    x = torch.randn(64, 256, 8, 8, generator=g).to(dtype).contiguous(memory_format=torch.channels_last)
    conv_flops = 2 * 64 * 256 * 8 * 8 * 128 * 4 * 4  # every input pixel meets every 4x4 kernel tap once
    return {"gemm": (lambda: torch.mm(a, b), 2 * GEMM_SIDE ** 3), "conv": (lambda: conv(x), conv_flops)}


def bench_limits(args) -> None:
    """The DCGAN training step (LesionGAN's, fp32 and bf16 autocast, batch 64 at 64 px) timed in the
    same rounds as this machine's fp32 and bf16 limits (dense GEMM and a convolution of the model's
    size), each round running every variant once in turn; medians over ``--repeats`` rounds, load
    average read before and after, for each thread count. The step's FLOP rate is then a fraction of
    the limit in its own precision."""

    real = torch.rand(64, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    flops = step_flops(OurStep(precision="fp32"), real)
    threads_before = torch.get_num_threads()
    print(f"# {cpu_info()[0]}, native bf16: {native_bf16('cpu') or 'no'}; torch {torch.__version__}; DCGAN step (batch 64, "
          f"64 px, channels-last, fused Adam) = {flops / 1e9:.1f} GFLOP ({flops / 64 / 1e9:.2f} per image); "
          f"GEMM {GEMM_SIDE}^2; conv = G's ConvTranspose2d(256, 128, 4, 2, 1) on 64 x 256 x 8 x 8; "
          f"median of {args.repeats} interleaved rounds")
    print("| threads | precision | step img/s | step GFLOP/s | GEMM GFLOP/s | conv GFLOP/s | step / GEMM | "
          "step / conv | load average (before -> after) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    try:
        for threads in args.threads:
            torch.set_num_threads(threads)
            runs: dict[tuple[str, str], tuple[callable, int]] = {}
            for precision, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
                step = OurStep(precision=precision)
                runs[precision, "step"] = (lambda step=step: step(real), flops)
                for name, run in limit_runs(dtype).items():
                    runs[precision, name] = run
            load_before = os.getloadavg()[0]
            times = {k: [] for k in runs}
            for r in range(args.repeats + 1):  # round 0 warms up, untimed
                for k, (run, _) in runs.items():
                    t = time.perf_counter()
                    run()
                    if r:
                        times[k].append(time.perf_counter() - t)
            load_after = os.getloadavg()[0]
            rate = {k: runs[k][1] / statistics.median(v) / 1e9 for k, v in times.items()}
            for precision in ("fp32", "bf16"):
                step_rate = rate[precision, "step"]
                print(f"| {threads} | {precision} | {64 / statistics.median(times[precision, 'step']):.1f} | "
                      f"{step_rate:.0f} | {rate[precision, 'gemm']:.0f} | {rate[precision, 'conv']:.0f} | "
                      f"{step_rate / rate[precision, 'gemm']:.0%} | {step_rate / rate[precision, 'conv']:.0%} | "
                      f"{load_before:.2f} -> {load_after:.2f} |", flush=True)
    finally:
        torch.set_num_threads(threads_before)


def dcgan_run_config(kimg: float, seed: int, precision: str, log_kimg: float, augment: bool = False) -> RunConfig:
    """The shipped DCGAN recipe for a benchmark run: channels-last, no grids or snapshots on the way."""
    train = TrainConfig(kimg=kimg, seed=seed, log_kimg=log_kimg, grid_kimg=1000, snapshot_kimg=1000,
                        channels_last=True, precision=precision)
    return RunConfig(model="dcgan", model_cfg=DCGANConfig(), train=train, data=DataConfig(size=64, augment=augment))


def train_run(run: RunDir, cfg: RunConfig, images: torch.Tensor, progress: bool) -> None:
    """A whole training run through the real loop (``gan.loop.training_loop``) into ``run``."""
    run.open_for_writing().write_config(cfg)
    training_loop(run, cfg, images, progress=progress)


def bench_e2e(args) -> None:
    from PIL import Image
    from torchvision import transforms

    from gan.data import load_dataset

    files = sorted(p for p in Path(args.data).rglob("*") if p.suffix.lower() in IMAGE_EXTS
                   and "superpixels" not in p.name)
    if args.split_dir:
        files = [f for f in files if args.split_dir in str(f)]
    tf = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64), transforms.ToTensor(),
                             transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

    class Files(torch.utils.data.Dataset):
        def __len__(self):
            return len(files)

        def __getitem__(self, i):
            return tf(Image.open(files[i]).convert("RGB"))

    n_steps = args.images // 64
    # Reference: decode every image, every epoch, in 2 DataLoader workers (the example's default).
    ref = ReferenceStep()
    loader = torch.utils.data.DataLoader(Files(), batch_size=64, shuffle=True, num_workers=2, drop_last=True)
    t = time.perf_counter()
    done = 0
    while done < n_steps:
        for real in loader:
            ref(real)
            done += 1
            if done == n_steps:
                break
    ref_ips = 64 * n_steps / (time.perf_counter() - t)

    # Ours: the real training loop (gan.loop: EMA, stats, the BN re-estimation of G_ema for its
    # grids included) on gan.data's decoded cache. The cache is built once per data set (first call,
    # untimed, reported); its load (every later run) and the loop's start-up (the first fixed-noise
    # grid) are reported apart, as a real run pays them once. The rate is over the logged steps.
    kw = {"split": args.split} if args.split else {}
    t = time.perf_counter()
    load_dataset(args.data, size=64, cache_dir=args.cache_dir, progress=False, **kw)
    first_s = time.perf_counter() - t
    print(f"# end to end, loader included: {args.data} ({len(files)} files), {n_steps} steps of 64, "
          f"{torch.get_num_threads()} threads (cache: first call {first_s:.1f} s)")
    print(f"| reference (DataLoader, 2 workers, decode each epoch) | {ref_ips:.1f} img/s | 1.00x |")
    for precision in ("fp32", "bf16"):
        t = time.perf_counter()
        ds = load_dataset(args.data, size=64, cache_dir=args.cache_dir, progress=False, **kw)
        cache_s = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            run = RunDir(tmp)
            train_run(run, dcgan_run_config(n_steps * 64 / 1000, 0, precision, log_kimg=0.064), ds.images, False)
            rows = run.read_stats()
        ours_ips = (rows[-1]["nimg"] - rows[0]["nimg"]) / (rows[-1]["time_s"] - rows[0]["time_s"])
        start_s = rows[0]["time_s"] - rows[0]["nimg"] / ours_ips
        print(f"| ours, gan.loop, {precision} (once per run: cache load {cache_s:.2f} s, start-up {start_s:.1f} s) | "
              f"{ours_ips:.1f} img/s | {ours_ips / ref_ips:.2f}x |")


def check_curves(args) -> None:
    """bf16 against fp32 where it matters: whole training runs through the real loop. Three DCGAN
    runs on the data (fp32 seed 0, fp32 seed 1, bf16 seed 0); the loss curves are compared window by
    window, and the distance between two fp32 seeds is the noise that bf16 must stay within. Each
    run's G_ema is then scored (colour JSD and Wasserstein against the training images)."""
    from eval import evaluate
    from gan.data import load_dataset

    ds = load_dataset(args.data, size=64, cache_dir=args.cache_dir, progress=False,
                      **({"split": args.split} if args.split else {}))
    runs = {"fp32 seed 0": ("fp32", 0), "fp32 seed 1": ("fp32", 1), "bf16 seed 0": ("bf16", 0)}
    stats, scores = {}, {}
    keys = ("loss_D", "loss_G", "D_real", "D_fake")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (precision, seed) in runs.items():
            run = RunDir(Path(tmp) / name.replace(" ", "-"))
            cfg = dcgan_run_config(args.kimg, seed, precision, log_kimg=args.window, augment=args.augment)
            t = time.perf_counter()
            train_run(run, cfg, ds.images, True)
            secs = time.perf_counter() - t
            stats[name] = run.read_stats()
            r = evaluate(ds.images, run.generator_path, ["hist_js", "wasserstein"], n=2000)
            scores[name] = {k: v for k, v in r.items() if isinstance(v, float) and ("js" in k or "wasser" in k)}
            scores[name]["seconds"] = secs
    print(f"# DCGAN, {len(ds)} images of {args.data}, {args.kimg:g} kimg per run, windows of {args.window:g} kimg"
          f"{', augmented' if args.augment else ''}")
    print("| kimg | " + " | ".join(f"{k} fp32 s0 / fp32 s1 / bf16 s0" for k in keys) + " |")
    print("| --- |" + " --- |" * len(keys))
    seed_gap, bf16_gap = {k: [] for k in keys}, {k: [] for k in keys}
    for a, b, c in zip(*(stats[n] for n in runs)):
        cells = []
        for k in keys:
            cells.append(f"{a[k]:.3f} / {b[k]:.3f} / {c[k]:.3f}")
            seed_gap[k].append(abs(a[k] - b[k]))
            bf16_gap[k].append(abs(a[k] - c[k]))
        print(f"| {a['kimg']:g} | " + " | ".join(cells) + " |")
    print("\n| statistic | mean gap fp32 s0 vs fp32 s1 (noise) | mean gap fp32 s0 vs bf16 s0 |")
    print("| --- | --- | --- |")
    for k in keys:
        print(f"| {k} | {statistics.mean(seed_gap[k]):.3f} | {statistics.mean(bf16_gap[k]):.3f} |")
    print("\n| run | " + " | ".join(next(iter(scores.values()))) + " |")
    print("| --- |" + " --- |" * len(next(iter(scores.values()))))
    for name, sc in scores.items():
        print(f"| {name} | " + " | ".join(f"{v:.4f}" if k != "seconds" else f"{v:.0f}" for k, v in sc.items()) + " |")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("step")
    s.add_argument("--steps", type=int, default=20)
    s.add_argument("--repeats", type=int, default=3)
    n = sub.add_parser("drift")
    n.add_argument("--steps", type=int, default=20)
    c = sub.add_parser("curves")
    c.add_argument("--data", required=True)
    c.add_argument("--split", default=None, help="isic2017 split (train)")
    c.add_argument("--kimg", type=float, default=16.0)
    c.add_argument("--window", type=float, default=1.0, help="kimg per compared window")
    c.add_argument("--augment", action="store_true", help="flips and 90-degree rotations (the shipped recipe)")
    c.add_argument("--cache-dir", default=None)
    m = sub.add_parser("models")
    m.add_argument("--steps", type=int, default=33, help="steps of each model (StyleGAN2's R1 at 0, 16, 32)")
    m.add_argument("--ada-p", type=float, default=0.0, help="also time stylegan2 with ADA (bg) at this p")
    lim = sub.add_parser("limits")
    lim.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    lim.add_argument("--repeats", type=int, default=5)
    e = sub.add_parser("e2e")
    e.add_argument("--data", required=True)
    e.add_argument("--images", type=int, default=1280)
    e.add_argument("--split", default=None, help="isic2017 split for ours (train)")
    e.add_argument("--split-dir", default=None, help="substring that selects the reference's files")
    e.add_argument("--cache-dir", default=None)
    args = p.parse_args()
    {"step": bench_step, "models": bench_models, "e2e": bench_e2e, "drift": check_drift, "curves": check_curves,
     "limits": bench_limits}[args.what](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
