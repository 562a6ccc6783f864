"""The augmentation ablation: baseline / + DiffAugment / + ADA, DCGAN on ISIC 2017, at a fixed
number of images, two training seeds per arm, re-scored with a fresh sample seed.

    # the runs (about 30 min each on this 2-core CPU at 1 thread, two at a time):
    python -m gan.train --model dcgan --data ../shared/data/isic2017 --out ABL/ARM-sSEED --kimg 50 --augment \\
        --seed SEED --precision bf16 --channels-last --threads 1 \\
        [--diffaug color,translation,cutout | --diffaug translation,cutout | --ada] \\
        --metrics fd_derm,precision_derm,recall_derm --metrics-kimg 10 --keep-best fd_derm \\
        --metrics-ref checkpoints/fingerprints/isic2017-train-64.npz
    # the table:
    python bench/ablation.py ABL [--n 2000] [--seed 1] [--json]

ARM is the folder name before ``-s<seed>`` (``baseline``, ``diffaug``, ``diffaug-tc`` for DiffAugment
without its ``color`` op, ``ada``). Each run's final
snapshot and its best snapshot by ``fd_derm`` (``generator-best.pt``, chosen during training on 1,000
samples of seed 0) are scored with ``eval.evaluate`` on ``--n`` samples of ``--seed`` (a seed the
selection never saw) against the training split's fingerprint (derm metrics, colour JSD, pixel
Wasserstein) and the validation split's (FD derm). Rows per run, then per arm the mean over seeds and
the spread between the two seeds, the yardstick an arm's difference has to beat.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gan.assets import checkpoints_dir

TRAIN_FP = checkpoints_dir() / "fingerprints/isic2017-train-64.npz"
VAL_FP = checkpoints_dir() / "fingerprints/isic2017-validation-64.npz"
TRAIN_METRICS = ["fd_derm", "precision_derm", "recall_derm", "hist_js", "wasserstein"]
COLUMNS = [("fd_derm", "FD derm ↓"), ("precision_derm", "precision ↑"), ("recall_derm", "recall ↑"),
           ("js_rgb_hist64", "JSD ↓"), ("wasserstein_rgb", "W ↓"), ("fd_derm_val", "FD derm val ↓")]
ARM_ORDER = {"baseline": 0, "diffaug": 1, "diffaug-tc": 2, "ada": 3}


def find_runs(root: Path) -> list[tuple[str, int, Path]]:
    """(arm, seed, run folder) for every ``ARM-sSEED/<run>`` under ``root`` with a finished run."""
    from gan.rundir import discover

    out = []
    for d in sorted(root.iterdir()):
        m = re.fullmatch(r"(.+)-s(\d+)", d.name)
        if not (d.is_dir() and m):
            continue
        for run in discover(d):
            if run.generator_path is not None:
                out.append((m.group(1), int(m.group(2)), run.path))
    return sorted(out, key=lambda r: (ARM_ORDER.get(r[0], 9), r[0], r[1]))


def score(weights: Path, n: int, seed: int) -> dict:
    from eval import evaluate

    r = evaluate(str(TRAIN_FP), str(weights), TRAIN_METRICS, n=n, seed=seed)
    v = evaluate(str(VAL_FP), str(weights), ["fd_derm"], n=n, seed=seed)
    row = {k: float(r[k]) for k, _ in COLUMNS if k in r}
    row["fd_derm_val"] = float(v["fd_derm"])
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="the folder holding ARM-sSEED run folders")
    p.add_argument("--n", type=int, default=2000, help="samples per score (default 2000)")
    p.add_argument("--seed", type=int, default=1, help="sample seed (default 1; the selection used 0)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    from gan import checkpoint as ckpt_io
    from gan.rundir import RunDir

    runs = find_runs(a.root)
    if not runs:
        print(f"error: no finished ARM-sSEED runs under {a.root}", file=sys.stderr)
        return 2
    rows = []
    for arm, seed, path in tqdm(runs, desc="runs", file=sys.stderr):
        run = RunDir(path)
        cfg = run.read_config()
        nimg = ckpt_io.load(run.generator_path, kinds=(ckpt_io.KIND_GENERATOR,))["info"].get("nimg")
        final = {"arm": arm, "seed": seed, "snapshot": "final", "kimg": nimg / 1000, **score(run.generator_path, a.n, a.seed)}
        stats = run.read_stats()
        final["aug_p_end"] = stats[-1].get("aug_p") if cfg.train.ada else None
        rows.append(final)
        if run.best_generator_path is not None:
            info = ckpt_io.load(run.best_generator_path, kinds=(ckpt_io.KIND_GENERATOR,))["info"]
            rows.append({"arm": arm, "seed": seed, "snapshot": "best", "kimg": info["nimg"] / 1000,
                         **score(run.best_generator_path, a.n, a.seed)})
    if a.json:
        print(json.dumps({"n": a.n, "seed": a.seed, "rows": rows}, indent=1))
        return 0
    print(f"Scored on {a.n} samples of seed {a.seed}; FD, precision, recall, JSD, W against the training split, "
          f"FD val against the 150 validation images.\n")
    print("| arm | seed | snapshot | kimg | " + " | ".join(h for _, h in COLUMNS) + " |")
    print("|" + " --- |" * (4 + len(COLUMNS)))
    for r in rows:
        print(f"| {r['arm']} | {r['seed']} | {r['snapshot']} | {r['kimg']:g} | "
              + " | ".join(_f(r.get(k)) for k, _ in COLUMNS) + " |")
    print("\nPer arm, final snapshots: mean over seeds (half the difference between the two seeds):\n")
    print("| arm | " + " | ".join(h for _, h in COLUMNS) + " |")
    print("|" + " --- |" * (1 + len(COLUMNS)))
    for arm in sorted({r["arm"] for r in rows}, key=lambda x: ARM_ORDER.get(x, 9)):
        fin = [r for r in rows if r["arm"] == arm and r["snapshot"] == "final"]
        cells = []
        for k, _ in COLUMNS:
            v = np.array([r[k] for r in fin if r.get(k) is not None])
            cells.append(f"{_f(v.mean())} ({_f((v.max() - v.min()) / 2)})" if len(v) else "n/a")
        print(f"| {arm} | " + " | ".join(cells) + " |")
    return 0


def _f(v) -> str:
    if v is None:
        return "n/a"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3f}" if abs(v) >= 0.01 else f"{v:.4f}"


if __name__ == "__main__":
    sys.exit(main())
