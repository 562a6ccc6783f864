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
Training time (``time_s``) excludes the time spent scoring.
"""
from __future__ import annotations

import argparse
import json
import platform
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


def table(runs: list[Path], targets: list[float], cap_kimg: float) -> str:
    from gan.rundir import RunDir

    head = "| run | precision | threads | " + " | ".join(f"FD derm <= {t:g}" for t in targets) + " | best FD (k img) |"
    lines = [head, "|" + " --- |" * (4 + len(targets))]
    for p in runs:
        run = RunDir(p)
        cfg = run.read_config()
        rows = [r for r in run.read_metrics() if "fd_derm" in r]
        if cfg is None or not rows:
            lines.append(f"| {p.name} | no config or no fd_derm during training |" + " |" * (2 + len(targets)))
            continue
        cells = []
        for t in targets:
            hit = first_reach(rows, t, int(cap_kimg * 1000))
            cells.append("not reached" if hit is None else
                         f"{hit['time_s'] / 60:.0f} min, {hit['nimg'] / 1000:.0f} k img")
        best = min(rows, key=lambda r: r["fd_derm"])
        lines.append(f"| {p.name} | {cfg.train.precision} | {cfg.train.threads or 'default'} | " + " | ".join(cells)
                     + f" | {best['fd_derm']:.2f} ({best['nimg'] / 1000:.0f}) |")
    return "\n".join(lines)


def commands(data: str, out: str, cap_kimg: float) -> list[str]:
    ref = "checkpoints/fingerprints/isic2017-train-64.npz"
    common = f"--data {data} --kimg {cap_kimg:g} --metrics fd_derm --metrics-kimg 10 --metrics-ref {ref}"
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
    args = p.parse_args()
    if args.commands:
        print("\n".join(commands(args.data, args.out, args.cap)))
        return 0
    if not args.runs:
        p.error("give run folders, or --commands")
    targets = [float(t) for t in args.targets.split(",")]
    print(f"CPU: {platform.processor() or platform.machine()}; cap {args.cap:g} k images")
    print(table([Path(r) for r in args.runs], targets, args.cap))
    return 0


if __name__ == "__main__":
    sys.exit(main())
