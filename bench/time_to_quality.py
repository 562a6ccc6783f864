"""Benchmark (not a test): how long until a DCGAN is good — wall time and images seen until FD derm
first reaches each target, read from the metrics a run writes during training (``metrics.jsonl``).

    python bench/time_to_quality.py RUN [RUN ...] [--targets 3.5,1.5] [--cap 480]
    python bench/time_to_quality.py --commands --data ../shared/data/isic2017 --out RUNS

The targets: 3.5 (what the report's recipe reaches at 150 k images) and 1.5; capped at ``--cap`` k images
("not reached" is a result). ``--commands`` prints the two trainings to compare on one machine, one
after the other in a quiet window (not beside other trainings: the figure is wall time): the project's
recipe (``--recipe checkpoints/dcgan``: flips and 90-degree rotations, channels-last, the precision the
machine runs fastest) and the PyTorch DCGAN example's settings (no augmentation, fp32, the library's
defaults), both scored every 10 k images on 1,000 samples of G_ema against the training split.
Training time is the run's ``time_s`` less the scoring before that snapshot (each metrics row's
``seconds``). The table names where each run trained (its checkpoint's ``hardware``) and whether this
machine's CPU has native bf16: one table per CPU kind.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def first_reach(rows: list[dict], target: float, cap_nimg: int) -> dict | None:
    """The first scored row at or below ``target`` within ``cap_nimg`` images, or None."""
    for r in sorted(rows, key=lambda r: r["nimg"]):
        if r["nimg"] > cap_nimg:
            break
        if r.get("fd_derm") is not None and r["fd_derm"] <= target:
            return r
    return None


def training_seconds(rows: list[dict], hit: dict) -> float:
    """The run's wall time when it reached ``hit``, less the scoring done before it. A metrics row's
    ``time_s`` is the training log's at that snapshot, taken before the snapshot is scored, so it holds
    every earlier snapshot's scoring (each row's ``seconds``) and not its own."""
    return hit["time_s"] - sum(r.get("seconds") or 0.0 for r in rows if r["nimg"] < hit["nimg"])


def trained_on(run) -> str:
    """Where a run trained, from its newest weights' info block (``hardware``: CPU model and threads, or
    the GPU), or "unknown" when the folder holds no weights that say."""
    from gan import checkpoint as ckpt_io

    w = run.weights()
    if w is None:
        return "unknown"
    try:
        return str(ckpt_io.load(w).get("info", {}).get("hardware") or "unknown")
    except ValueError:
        return "unknown"


def table(runs: list[Path], targets: list[float], cap_kimg: float) -> str:
    """One row per run: images seen and training time (scoring excluded) until FD derm first reaches each
    target within ``cap_kimg`` k images, and the best FD derm seen within the cap.

    Raises:
        ValueError: naming a folder that is not a run folder (no ``config.json``).
    """
    from gan.rundir import RunDir

    head = ("| run | trained on | precision | threads | " + " | ".join(f"FD derm <= {t:g}" for t in targets)
            + " | best FD derm (k img) |")
    lines = [head, "|" + " --- |" * (5 + len(targets))]
    cap = int(round(cap_kimg * 1000))
    for p in runs:
        run = RunDir(p)
        cfg = run.read_config()
        if cfg is None:
            raise ValueError(f"{p}: not a run folder (no config.json)")
        rows = [r for r in run.read_metrics() if r.get("fd_derm") is not None and r["nimg"] <= cap]
        where = trained_on(run)
        if not rows:
            lines.append(f"| {p.name} | {where} | {cfg.train.precision} | {cfg.train.threads or 'default'} | "
                         + " | ".join("no FD derm scored during training" for _ in targets) + " | |")
            continue
        cells = []
        for t in targets:
            hit = first_reach(rows, t, cap)
            cells.append("not reached" if hit is None else
                         f"{training_seconds(rows, hit) / 60:.0f} min, {hit['nimg'] / 1000:.0f} k img")
        best = min(rows, key=lambda r: r["fd_derm"])
        lines.append(f"| {p.name} | {where} | {cfg.train.precision} | {cfg.train.threads or 'default'} | "
                     + " | ".join(cells) + f" | {best['fd_derm']:.2f} ({best['nimg'] / 1000:.0f}) |")
    return "\n".join(lines)


def machine_line(cap_kimg: float) -> str:
    """This machine's CPU and whether it has native bf16 (what ``--precision auto`` looks at first)."""
    from gan.nets import cpu_info, native_bf16

    native = native_bf16("cpu")
    return f"machine: {cpu_info()[0]}, native bf16 {native or 'no'}; cap {cap_kimg:g} k images"


def commands(data: str, out: str, cap_kimg: float, threads: int) -> list[str]:
    """The two trainings, both on ``threads`` threads (the recipe's own config was trained on 1)."""
    ref = "checkpoints/fingerprints/isic2017-train-64.npz"
    common = (f"--data {data} --kimg {cap_kimg:g} --metrics fd_derm --metrics-kimg 10 --metrics-ref {ref} "
              f"--threads {threads}")
    return [f"python -m gan.train --recipe checkpoints/dcgan {common} --precision auto --out {out}/project",
            f"python -m gan.train --model dcgan {common} --precision fp32 --out {out}/example"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", nargs="*", help="run folders trained with --metrics fd_derm")
    p.add_argument("--targets", default="3.5,1.5", help="FD derm targets (default 3.5,1.5)")
    p.add_argument("--cap", type=float, default=480.0, help="k images after which a target counts as not reached")
    p.add_argument("--commands", action="store_true", help="print the two trainings to compare, then exit")
    p.add_argument("--data", default="../shared/data/isic2017")
    p.add_argument("--out", default="runs/time-to-quality")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1, help="threads of both trainings (default: every usable CPU)")
    args = p.parse_args()
    if args.commands:
        print("\n".join(commands(args.data, args.out, args.cap, args.threads)))
        return 0
    if not args.runs:
        p.error("give run folders, or --commands")
    try:
        targets = [float(t) for t in args.targets.split(",")]
    except ValueError:
        p.error(f"--targets {args.targets!r}: give numbers separated by commas, e.g. 3.5,1.5")
    try:
        text = table([Path(r) for r in args.runs], targets, args.cap)
    except ValueError as e:
        print(f"time_to_quality: {e}", file=sys.stderr)
        return 2
    print(machine_line(args.cap))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
