"""The parts of ``bench/gpu.sh`` (run that, not this): one GPU, synthetic data, no network.

    python bench/bench_gpu.py env
    python bench/bench_gpu.py train  [--smoke]     # DCGAN step: ours against the PyTorch DCGAN example
    python bench/bench_gpu.py loop   [--smoke]     # the real training loop on synthetic images
    python bench/bench_gpu.py sample [--smoke]     # sampling throughput (the fused fast path)
    python -m torch.distributed.run --standalone --nproc_per_node=2 bench/bench_gpu.py ddp [--smoke]

``--smoke`` runs everything on the CPU, shrunk to seconds (what tests/test_gpu_script.py runs).
Each part prints a ``== part`` header, a Markdown table or lines, and ``ok: part`` at the end; an
exception leaves ``ok`` out and exits non-zero. FLOPs are counted with ``torch.utils.flop_counter``
(matrix products and convolutions, forward and backward); a rate is shown as a fraction of the
dense GEMM rate measured on the same device in the same precision and, for the cards listed in
:data:`DATASHEET_TFLOPS`, of the vendor's dense peak.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, not an installed copy
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

# Dense (no sparsity) peak TFLOP/s from the vendors' data sheets: plain fp32 (CUDA cores) and bf16
# (tensor cores), by a substring of torch.cuda.get_device_name().
DATASHEET_TFLOPS = {
    "H200": {"fp32": 67.0, "bf16": 989.0},
    "H100 PCIe": {"fp32": 51.0, "bf16": 756.0},
    "H100 NVL": {"fp32": 60.0, "bf16": 835.0},
    "H100": {"fp32": 67.0, "bf16": 989.0},  # SXM5 ("H100 80GB HBM3")
    "A100": {"fp32": 19.5, "bf16": 312.0},
}


def device_for(smoke: bool) -> torch.device:
    if smoke:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run `bash bench/gpu.sh --cpu-smoke` on a machine without a GPU")
    torch.backends.cudnn.benchmark = True  # as the PyTorch DCGAN example sets it
    return torch.device("cuda", 0)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds(fn, device: torch.device, repeats: int, inner: int) -> float:
    """Median over ``repeats`` of the time of ``inner`` calls of ``fn``, after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - t) / inner)
    return statistics.median(times)


def count_flops(fn) -> int | None:
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:  # torch before 2.1
        return None
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def precisions(device: torch.device) -> list[str]:
    from gan.nets import bf16_supported

    return ["fp32", "bf16"] if bf16_supported(device) else ["fp32"]


def gemm_tflops(device: torch.device, precision: str, side: int) -> float:
    """Dense GEMM rate on ``device``: ``side`` x ``side`` matrices in bf16, fp32 (TF32 off) or tf32."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = (torch.randn(side, side, device=device, dtype=dtype) for _ in range(2))
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        s = seconds(lambda: torch.mm(a, b), device, repeats=5, inner=1 if device.type == "cpu" else 10)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    return 2 * side ** 3 / s / 1e12


def peaks(device: torch.device, smoke: bool) -> dict[str, tuple[float, float | None]]:
    """Per precision: (measured GEMM TFLOP/s, data-sheet TFLOP/s or None)."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else ""
    sheet = next((v for k, v in DATASHEET_TFLOPS.items() if k in name), None)
    side = 1024 if smoke else 8192
    return {p: (gemm_tflops(device, p, side), sheet[p] if sheet else None) for p in precisions(device)}


def fraction(rate: float, peak: tuple[float, float | None]) -> str:
    measured, sheet = peak
    return f"{rate / measured:.0%} | " + (f"{rate / sheet:.1%}" if sheet else "n/a")


def part_env(args) -> None:
    print("== environment")
    print(f"python {platform.python_version()} ({sys.executable}), torch {torch.__version__}, "
          f"CUDA {torch.version.cuda or 'none'}, cuDNN {torch.backends.cudnn.version() or 'none'}")
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            print(f"GPU {i}: {p.name}, compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, "
                  f"{p.multi_processor_count} SMs")
    else:
        print("GPU: none visible to torch")
    print(f"CPU: {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}")
    missing = []
    for module in ("numpy", "PIL", "tqdm", "gan.loop", "gan.generator"):
        try:
            __import__(module)
        except Exception as e:  # noqa: BLE001  (report every reason a module does not import)
            missing.append(f"{module} ({type(e).__name__}: {e})")
    print("project imports: " + ("all ok" if not missing else "MISSING " + "; ".join(missing)))
    from gan.nets import native_bf16

    device = device_for(args.smoke)
    print(f"device for the benchmarks: {device}; native bf16: {native_bf16(device) or 'no'}")
    if missing:
        raise SystemExit(1)


def part_train(args) -> None:
    """Our DCGAN step (gan.loop.train_step) against the PyTorch DCGAN example's, batch 64 at 64 px."""
    from bench_train import OurStep, ReferenceStep

    device = device_for(args.smoke)
    batch = 8 if args.smoke else 64
    steps, repeats = (1, 1) if args.smoke else (20, 3)
    real = torch.rand(batch, 3, 64, 64, device=device) * 2 - 1
    variants = {"PyTorch DCGAN example (fp32)": ReferenceStep(device=device)}
    for p in precisions(device):
        variants[f"ours ({p}{' autocast' if p == 'bf16' else ''}, fused Adam, channels-last)"] = (
            OurStep(precision=p, device=device))
    flops = count_flops(lambda: OurStep(device=device)(real))
    peak = peaks(device, args.smoke)
    print(f"== training step (synthetic data in device memory, batch {batch}, 64 px, {device})")
    print("| variant | img/s | vs example | TFLOP/s | of measured GEMM | of data-sheet peak |")
    print("| --- | --- | --- | --- | --- | --- |")
    ref = None
    for name, step in variants.items():
        s = seconds(lambda: step(real), device, repeats, steps)
        ips = batch / s
        ref = ref or ips
        p = "bf16" if "bf16" in name else "fp32"
        rate = flops / s / 1e12 if flops else None
        cells = f"{rate:.2f} | {fraction(rate, peak[p])}" if rate else "n/a | n/a | n/a"
        print(f"| {name} | {ips:.0f} | {ips / ref:.2f}x | {cells} |")
    for p, (measured, sheet) in peak.items():
        print(f"GEMM {p}: {measured:.3g} TFLOP/s measured" + (f", {sheet:g} data sheet" if sheet else ""))
    if device.type == "cuda":
        print(f"GEMM tf32: {gemm_tflops(device, 'tf32', 8192):.3g} TFLOP/s measured (cuDNN convolutions in fp32 "
              f"use TF32 by default: an fp32 step can pass the plain fp32 GEMM rate)")
    print("TFLOP/s: our step's FLOPs (counted once) over each variant's time; the example's step also computes "
          "D's weight gradients in its G phase, which ours skips")
    print("ok: train")


def part_loop(args) -> None:
    """The real training loop (EMA, stats, grids, checkpoint) on synthetic uint8 images."""
    from gan.config import RunConfig, TrainConfig
    from gan.data import DataConfig
    from gan.loop import training_loop
    from gan.models.dcgan import DCGANConfig
    from gan.rundir import RunDir

    device = device_for(args.smoke)
    size, kimg, n = (32, 0.032, 64) if args.smoke else (64, 12.8, 2048)
    mcfg = DCGANConfig(resolution=size, batch=16 if args.smoke else 64, ngf=8 if args.smoke else 64,
                       ndf=8 if args.smoke else 64)
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    print(f"== training loop (gan.loop on {n} synthetic images, {kimg:g} kimg, {device})")
    for p in precisions(device):
        train = TrainConfig(kimg=kimg, log_kimg=kimg / 4, snapshot_kimg=1000, grid_kimg=1000, grid_size=16,
                            device=str(device), channels_last=True, precision=p)
        cfg = RunConfig(model="dcgan", model_cfg=mcfg, train=train, data=DataConfig(size=size))
        with tempfile.TemporaryDirectory() as tmp:
            run = RunDir(tmp).open_for_writing()
            run.write_config(cfg)
            res = training_loop(run, cfg, images, progress=False)
            rows = run.read_stats()
        ips = (rows[-1]["nimg"] - rows[0]["nimg"]) / max(rows[-1]["time_s"] - rows[0]["time_s"], 1e-9)
        print(f"{p}: {res.status}, {res.nimg} images, {ips:.0f} img/s over the logged steps")
    print("ok: loop")


def part_sample(args) -> None:
    """Sampling through the fused fast path (what gan.sample and the dashboard run), fp32 and bf16."""
    from gan.models import get_model
    from gan.models.dcgan import DCGANConfig
    from gan.nets import fuse_for_inference

    device = device_for(args.smoke)
    batch = 16 if args.smoke else 1024
    G = get_model("dcgan").build_generator(DCGANConfig()).to(device).eval()
    peak = peaks(device, args.smoke)
    print(f"== sampling (DCGAN G, 64 px, batch {batch}, fused fast path, {device})")
    print("| precision | img/s | TFLOP/s | of measured GEMM | of data-sheet peak |")
    print("| --- | --- | --- | --- | --- |")
    for p in precisions(device):
        dtype = torch.bfloat16 if p == "bf16" else torch.float32
        fast = fuse_for_inference(G, dtype)
        z = torch.randn(batch, 100, device=device, dtype=dtype)
        with torch.inference_mode():
            flops = count_flops(lambda: fast(z))
            s = seconds(lambda: fast(z), device, 3 if not args.smoke else 1, 10 if not args.smoke else 1)
        rate = flops / s / 1e12 if flops else None
        cells = f"{rate:.2f} | {fraction(rate, peak[p])}" if rate else "n/a | n/a | n/a"
        print(f"| {p} | {batch / s:.0f} | {cells} |")
    print("ok: sample")


def part_ddp(args) -> None:
    """Two processes on the one device (gloo), DCGAN through gan.dist's DDP wrappers for a few steps:
    the replicas must hold the same weights afterwards."""
    import torch.distributed as tdist

    from gan import dist
    from gan.loop import train_step
    from gan.models import get_model
    from gan.rng import BatchRNG
    from gan.models.dcgan import DCGANConfig

    device = device_for(args.smoke)
    tdist.init_process_group(backend="gloo")
    try:
        spec = get_model("dcgan")
        cfg = DCGANConfig(resolution=32, batch=16, ngf=8, ndf=8) if args.smoke else DCGANConfig()
        torch.manual_seed(0)
        G, D = (m.to(device) for m in spec.build(cfg))
        stage = spec.schedule(cfg, 0)
        opts = spec.prepare_phase(G, D, cfg, stage)
        loss = spec.make_loss(*(dist.wrap(net, [p for g in opts[k].param_groups for p in g["params"]])
                                for k, net in (("G", G), ("D", D))), cfg)
        data_rng = torch.Generator().manual_seed(1)
        noise = BatchRNG(torch.Generator(device=device).manual_seed(2), dist.rank(), dist.world_size())
        steps = 3
        for _ in range(steps):
            real = dist.shard(torch.rand(stage.batch, 3, stage.resolution, stage.resolution, generator=data_rng)
                              * 2 - 1).to(device)
            train_step(loss, opts, real, stage, noise)
        flat = torch.cat([p.detach().flatten().float().cpu() for p in [*G.parameters(), *D.parameters()]])
        gathered = [torch.empty_like(flat) for _ in range(dist.world_size())]
        tdist.all_gather(gathered, flat)
        same = all(torch.equal(gathered[0], g) for g in gathered[1:])
        if dist.is_main():
            print(f"== DDP smoke test: {dist.world_size()} processes (gloo) on {device}, {steps} steps of DCGAN "
                  f"(global batch {stage.batch}), replicas equal: {'yes' if same else 'NO'}")
        if not same:
            raise SystemExit(1)
        if dist.is_main():
            print("ok: ddp")
    finally:
        tdist.destroy_process_group()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("part", choices=["env", "train", "loop", "sample", "ddp"])
    p.add_argument("--smoke", action="store_true", help="on the CPU, shrunk to seconds")
    args = p.parse_args()
    if args.smoke:
        torch.set_num_threads(1)
    {"env": part_env, "train": part_train, "loop": part_loop, "sample": part_sample, "ddp": part_ddp}[args.part](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
