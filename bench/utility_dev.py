"""The utility protocol's development fold: every v2 choice is made here, never on HAM10000.

    python bench/utility_dev.py recipe --real ../shared/data/isic2017 --out RUNS/utility-dev
    python bench/utility_dev.py ratio  --real ../shared/data/isic2017 --synthetic checkpoints/dcgan-cond/generator.pt \
                                       --out RUNS/utility-dev [--recipe NAME] [--ratios 0.25,0.5,1]
    python bench/utility_dev.py fold   --real ../shared/data/isic2017 --out RUNS/dev-train

``recipe``: the small CNN's candidate recipes trained on the real images of the development fold only
(``eval.utility --dev``: 80% of the ISIC 2017 training split; tested on the held-out 20% and the
validation split), each over the same seeds; prints each recipe's melanoma AUC (mean ± sd over seeds)
and its cost. ``ratio``: with the chosen recipe, ``real`` and ``real+synthetic`` at each synthetic ratio
(exposure-matched, uniform share), for the ratio and the seed count (from the seeds' spread of the
paired difference). Finished trainings are kept under ``--out`` and reused by a rerun (``real`` is
shared with the recipe step). ``fold``: writes the development fold's training images (the 80% that
``eval.utility --dev`` trains ``real`` on) as an ISIC 2017 folder of links to the original files and their
ground-truth rows, for a tool that must see only that fold, e.g. the curation judge of a configuration
scored on the development fold (``gan.synthesize --keep-if-classifier RUNS/dev-train``): a judge trained on
all of ``--real`` would have seen the fold's held-out images.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from eval import utility as U
from eval.classifier import RecipeConfig

# Candidate recipes (name -> fields changed from the v1 recipe). "v1" is the recipe of protocol v1.
RECIPES = {
    "v1": {},
    "steps500": {"steps": 500},
    "steps2000": {"steps": 2000},
    "wide24": {"width": 24},
    "lr1e-3-steps2000": {"lr": 1e-3, "steps": 2000},
    "jitter0.2-steps2000": {"jitter": 0.2, "steps": 2000},
}


def dev_data(real: str):
    """(real_x, real_y, classes, [development test set]) exactly as ``eval.utility --dev`` builds them."""
    ds = U.load_labelled(real)
    labelled = [i for i, label in enumerate(ds.labels) if label is not None]
    classes = ds.class_names()
    x = ds.images[labelled]
    y = np.array([classes.index(ds.labels[i]) for i in labelled], np.int64)
    train, held = U.dev_split(y)
    xs, ys = [x[held]], [y[held]]
    for name, path, split in U.default_tests(real, ds):
        if name == "isic2017-validation":
            v = U.make_test_set(U.load_labelled(path, split=split), classes, name)
            xs.append(v.images)
            ys.append(v.y)
    test = U.TestSet("development", ds.source, torch.cat(xs), np.concatenate(ys))
    return x[train], y[train], classes, [test]


def write_fold(real: str, out: Path) -> dict[str, int]:
    """Write the development training fold of the ISIC 2017 training split ``real`` into ``out`` (which must
    not exist) as links to the original images plus the rows of their ground-truth CSV; the class counts."""
    ds = U.load_labelled(real)
    if ds.layout != "isic2017" or ds.split not in (None, "train"):
        raise ValueError(f"{real}: fold needs the ISIC 2017 training split (layout {ds.layout}, split {ds.split})")
    if out.exists():
        raise ValueError(f"{out}: already exists; fold writes a new folder")
    root = Path(ds.source)
    root = root.parent if root.name.endswith("_Data") else root
    csv = root / "ISIC-2017_Training_Part3_GroundTruth.csv"
    lines = csv.read_text().splitlines()
    rows = {line.split(",", 1)[0]: line for line in lines[1:] if line.strip()}
    labelled = [i for i, label in enumerate(ds.labels) if label is not None]
    classes = ds.class_names()
    y = np.array([classes.index(ds.labels[i]) for i in labelled], np.int64)
    train, _ = U.dev_split(y)
    names = [ds.names[labelled[i]] for i in train]
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    data = tmp / "ISIC-2017_Training_Data"
    data.mkdir(parents=True)
    for name in names:
        src = next(iter(sorted((root / "ISIC-2017_Training_Data").glob(f"{name}.*"))))
        (data / src.name).symlink_to(src.resolve())
    (tmp / csv.name).write_text("\n".join([lines[0]] + [rows[n] for n in names]) + "\n")
    tmp.rename(out)
    counts = {c: int((y[train] == k).sum()) for k, c in enumerate(classes)}
    return counts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=("recipe", "ratio", "fold"))
    p.add_argument("--real", required=True)
    p.add_argument("--synthetic")
    p.add_argument("--out", required=True)
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--recipe", default="v1", help="the recipe for the ratio sweep")
    p.add_argument("--ratios", default="0.25,0.5,1")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.what == "fold":
        try:
            counts = write_fold(args.real, out)
        except (ValueError, OSError) as e:
            print(f"utility_dev fold: {e}", file=sys.stderr)
            return 2
        print(f"{out}: the development training fold, {sum(counts.values())} images "
              f"({', '.join(f'{c} {n}' for c, n in counts.items())})")
        return 0
    x, y, classes, tests = dev_data(args.real)
    rows = []
    if args.what == "recipe":
        for name in args.recipes.split(","):
            recipe = replace(RecipeConfig(), **RECIPES[name])
            t0 = time.time()
            doc = U.run_utility(x, y, classes, tests, None, protocol=replace(U.PROTOCOL_V2, shortcut=False),
                                settings=("real",), seeds=range(args.seeds), recipe=recipe, bootstrap=200,
                                workers=args.workers, cache=out / "trainings")
            r = doc["tests"][0]["results"]["real"]
            rows.append({"recipe": name, **RECIPES[name], "melanoma_auc": r["melanoma_auc"], "sk_auc": r["sk_auc"],
                         "balanced_accuracy": r["balanced_accuracy"]["mean"],
                         "seconds_per_training": doc["seconds_per_setting"]["real"] / args.seeds,
                         "wall": time.time() - t0})
            m = r["melanoma_auc"]
            print(f"{name}: melanoma AUC {m['mean']:.3f} ± {m['sd']:.3f} {m['per_seed']}, SK AUC "
                  f"{r['sk_auc']['mean']:.3f}, {rows[-1]['seconds_per_training']:.0f} s per training", flush=True)
    else:
        if not args.synthetic:
            p.error("ratio needs --synthetic")
        syn = U.SyntheticSource(args.synthetic, classes)
        recipe = replace(RecipeConfig(), **RECIPES[args.recipe])
        for ratio in [float(r) for r in args.ratios.split(",")]:
            doc = U.run_utility(x, y, classes, tests, syn, protocol=replace(U.PROTOCOL_V2, shortcut=False),
                                settings=("real", "real+synthetic"), seeds=range(args.seeds),
                                recipe=recipe, synthetic_ratio=ratio, bootstrap=1000, workers=args.workers,
                                cache=out / "trainings")
            t = doc["tests"][0]
            rows.append({"ratio": ratio, "recipe": args.recipe, "results": {s: t["results"][s]["melanoma_auc"]
                                                                          for s in t["results"]},
                         "deltas": {s: t["deltas"][s]["melanoma_auc"] for s in t["deltas"]},
                         "steps": doc["steps"],
                         "seconds_per_setting": doc["seconds_per_setting"]})
            print(f"ratio {ratio:g}: " + ", ".join(f"{s} {v['mean']:.3f} ± {v['sd']:.3f}" for s, v in rows[-1]["results"].items()),
                  flush=True)
            d = rows[-1]["deltas"]["real+synthetic"]
            print(f"  real+synthetic - real {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] "
                  f"sd over seeds {d['sd_seeds']:.3f}, se {d['se']:.3f}", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.what}.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
