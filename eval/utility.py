"""Downstream utility: does adding synthetic lesions make a classifier better?

    python -m eval.utility --real ../shared/data/isic2017 --synthetic checkpoints/dcgan-cond/generator.pt
                           [--test PATH[@split] ...] [--no-default-tests] [--seeds 5] [--steps 1000]
                           [--synthetic-ratio R] [--synthetic-seed 0] [--bootstrap 1000] [--quick]
                           [--out DIR] [--json] [--no-save]

One fixed classifier recipe (:mod:`eval.classifier`: a small CNN at 64 px, trained from scratch for a
fixed number of optimizer steps, fixed optimizer and augmentation, class-balanced loss) is trained in
four settings, each with the same ``--seeds`` (seed ``k`` drives the weights, batches and
augmentation in every setting):

1. ``real``: the real training images only;
2. ``real+synthetic``: real plus synthetic; by default each minority class filled up to the majority
   class's count (``--synthetic-ratio R``: R synthetic images per real image of each class instead);
3. ``synthetic``: synthetic only, as many per class as the real set has (the Classification Accuracy
   Score of Ravuri & Vinyals 2019);
4. ``real+augment``: real plus as many extra images per class as ``real+synthetic`` adds, made from
   real images of that class by classical augmentation only (flips, 90-degree and free rotation,
   brightness/contrast/saturation/hue jitter): the cheap alternative synthetic data has to beat.

Synthetic data: a conditional generator file, sampled on the fly (seed ``k``'s synthetic set is
``--synthetic-seed + k``; class ``c``'s images are latents 0.. of seed ``S * 1000 + index(c)``, the
images ``python -m gan.synthesize --seed S`` writes), or a labelled folder written by
``gan.synthesize`` (drawn per class without replacement, seeded). An unconditional generator is
refused: it has no labels to train a classifier on.

Test sets (rows of the report): by default the ISIC 2017 validation split (when ``--real`` is the ISIC
2017 folder) and HAM10000 (``ham10000/`` beside it, when present) as an external test set. A test
set's classes are matched to the training classes; HAM10000's ``bkl`` (benign keratosis, broader than
seborrheic keratosis) is scored as the ``seborrheic_keratosis`` class when the training set has that
class and not ``benign_keratosis``; images of other classes are left out. Both are stated in the report.

Metrics per test set: melanoma ROC AUC (the ISIC 2017 Part 3 measure), seborrheic keratosis AUC,
balanced accuracy, per-class recall (scikit-learn); mean and sd over seeds; for every setting against
``real`` the difference with a 95% interval from a paired bootstrap over test images (the same
resampled images for both settings, the difference averaged over the seed pairs), and the smallest
difference the configuration can detect (80% power, 5% two-sided: 2.8 standard errors of the seed-mean
difference, from the bootstrap's test-image sampling and the seeds' spread together). The bootstrap
interval itself covers test-image sampling only; the seeds' spread is the sd column.

Writes ``utility.json`` and ``utility.md`` into ``--out`` (when given), prints the Markdown table (or the
JSON with ``--json``) on stdout, progress on stderr; when ``--synthetic`` is a generator inside a run
folder, its ``results.json`` gets the ``utility`` section (``gan.rundir``; ``--no-save`` skips it).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from eval.classifier import RecipeConfig, predict_proba, train_classifier
from gan.cli import entry_point, prog

SETTINGS = ("real", "real+synthetic", "synthetic", "real+augment")
MELANOMA, SK = "melanoma", "seborrheic_keratosis"
# Test-set classes scored as a training class when the training set lacks them (name -> training class).
TEST_CLASS_MAP = {"benign_keratosis": SK}
QUICK = {"seeds": 2, "steps": 400, "bootstrap": 200}
MIN_REAL_AUC = 0.6  # a real-only melanoma AUC below this means the recipe is broken, not a finding
FORMAT = "lesiongan-utility"
VERSION = 1


@dataclass
class TestSet:
    """Images of one test row, with labels as training-class indices."""

    name: str
    source: str
    images: torch.Tensor
    y: np.ndarray
    notes: list[str] = field(default_factory=list)


# --- data ------------------------------------------------------------------------------------------


def load_labelled(path: str, split: str | None = None, size: int = 64):
    from gan.data import load_dataset

    ds = load_dataset(path, size=size, split=split, progress=sys.stderr.isatty())
    if not any(label is not None for label in ds.labels):
        raise ValueError(f"{path}: no labels (layout {ds.layout}): eval.utility needs a labelled set "
                         f"(an ISIC 2017, HAM10000, ISIC archive or imagefolder layout, or --labels CSV via gan.data)")
    return ds


def make_test_set(ds, classes: list[str], name: str) -> TestSet:
    """Keep the images whose class is a training class (or maps to one, :data:`TEST_CLASS_MAP`)."""
    notes, keep, y = [], [], []
    mapped: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for i, label in enumerate(ds.labels):
        if label in classes:
            target = label
        elif TEST_CLASS_MAP.get(label) in classes:
            target = TEST_CLASS_MAP[label]
        else:
            target = None
        if target is None:
            dropped[str(label)] = dropped.get(str(label), 0) + 1
            continue
        if target != label:
            mapped[label] = mapped.get(label, 0) + 1
        keep.append(i)
        y.append(classes.index(target))
    for src, n in mapped.items():
        notes.append(f"{n} {src} images scored as {TEST_CLASS_MAP[src]} (the nearest training class; {src} is broader)")
    if dropped:
        notes.append("left out (no training class): " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())))
    if not keep:
        raise ValueError(f"test set {name}: none of its classes ({', '.join(ds.class_counts())}) is a training class "
                         f"({', '.join(classes)})")
    return TestSet(name, ds.source, ds.images[keep], np.asarray(y, np.int64), notes)


def parse_test(spec: str) -> tuple[str, str | None]:
    """``PATH`` or ``PATH@split`` (the ISIC 2017 split to read)."""
    path, _, split = spec.partition("@")
    return path, split or None


def default_tests(real_path: str, real_ds) -> list[tuple[str, str, str | None]]:
    """(name, path, split): the ISIC 2017 validation split of ``--real`` and ``ham10000/`` beside it."""
    out = []
    if real_ds.layout == "isic2017" and real_ds.split in (None, "train"):
        root = Path(real_path)
        root = root.parent if root.name.endswith("_Data") else root
        if any(root.glob("ISIC-2017_Validation_Data")):
            out.append(("isic2017-validation", str(root), "validation"))
    ham = Path(real_ds.source)
    ham = (ham.parent if ham.name.endswith("_Data") else ham).parent / "ham10000"
    if (ham / "HAM10000_metadata.csv").is_file():
        out.append(("ham10000", str(ham), None))
    return out


def fill_counts(real_counts: dict[str, int], classes: list[str], ratio: float | None) -> dict[str, int]:
    """Extra images per class for ``real+synthetic`` and ``real+augment``: up to the majority class's count
    (``ratio`` None), else ``round(ratio * n_c)``."""
    if ratio is None:
        top = max(real_counts[c] for c in classes)
        return {c: top - real_counts[c] for c in classes}
    return {c: int(round(ratio * real_counts[c])) for c in classes}


class SyntheticSource:
    """Labelled synthetic images per class and seed, from a conditional generator or a labelled folder."""

    def __init__(self, path: str, classes: list[str], size: int = 64):
        self.path, self.classes, self.size = path, classes, size
        p = Path(path)
        self.generator = None
        if p.is_file() or (p.is_dir() and any(p.glob("*.pt")) and not any(p.glob("manifest.json"))):
            from gan import load_generator

            G = load_generator(p)
            if not G.conditional:
                raise ValueError(f"{path}: this {G.model_name} is unconditional: eval.utility needs a conditional model "
                                 f"(or a labelled synthetic folder) so that every synthetic image has a class; "
                                 f"train one with lesiongan-train --cond")
            missing = [c for c in classes if c not in G.class_names]
            if missing:
                raise ValueError(f"{path}: the generator has no class {', '.join(missing)} (it knows "
                                 f"{', '.join(G.class_names)}); the real training set has {', '.join(classes)}")
            self.generator = G
            self.kind = "generator"
            self.info = {"kind": "generator", "path": str(path), "model": G.model_name,
                         "classes": G.class_names, "nimg": G.info.get("nimg"), "resolution": G.resolution}
        else:
            ds = load_labelled(path, size=size)
            missing = [c for c in classes if c not in ds.class_counts()]
            if missing:
                raise ValueError(f"{path}: no synthetic images of class {', '.join(missing)}")
            self.ds = ds
            self.kind = "folder"
            self.info = {"kind": "folder", "path": str(path), "layout": ds.layout, "counts": ds.class_counts()}

    def images(self, counts: dict[str, int], seed: int) -> tuple[torch.Tensor, np.ndarray]:
        """``counts[c]`` images of each class for synthetic seed ``seed``: uint8 NCHW and class indices.
        Image ``j`` of class ``c`` does not depend on the other counts."""
        xs, ys = [], []
        for c, n in counts.items():
            if n <= 0:
                continue
            ci = self.classes.index(c)
            if self.generator is not None:
                G = self.generator
                z = G.latents(n, seed * 1000 + G.class_index(c))
                x = torch.from_numpy(G.synthesize(z, labels=c)).permute(0, 3, 1, 2).contiguous()
                if x.shape[-1] != self.size:
                    from eval.images import resize_images

                    x = torch.from_numpy(resize_images(x.permute(0, 2, 3, 1).numpy(), self.size)).permute(0, 3, 1, 2)
            else:
                pool = [i for i, label in enumerate(self.ds.labels) if label == c]
                if n > len(pool):
                    raise ValueError(f"{self.path}: {n} synthetic {c} images needed, the folder has {len(pool)}")
                order = np.random.default_rng(seed * 1000 + ci).permutation(len(pool))[:n]
                x = self.ds.images[[pool[i] for i in order]]
            xs.append(x)
            ys.append(np.full(len(x), ci, np.int64))
        if not xs:
            return torch.empty(0, 3, self.size, self.size, dtype=torch.uint8), np.empty(0, np.int64)
        return torch.cat(xs), np.concatenate(ys)


def classical_augment(images: torch.Tensor, seed: int, jitter: float = 0.2) -> torch.Tensor:
    """One classically augmented copy of each uint8 NCHW image: a random flip/90-degree turn, a free
    rotation (reflect-filled), brightness, contrast and saturation jitter (+-``jitter``) and a hue
    shift of up to +-0.05 turns. Deterministic per ``seed``."""
    import torchvision.transforms.v2.functional as TF

    from gan.data.augmentation import augment

    rng = torch.Generator().manual_seed(seed)
    x = augment(images, rng).float().div_(255)
    out = torch.empty_like(x)
    r = torch.rand(len(x), 5, generator=rng)
    for i in range(len(x)):
        img = x[i]
        angle = float(r[i, 0] * 90 - 45)
        s = img.shape[-1]
        pad = s // 4
        img = torch.nn.functional.pad(img[None], (pad, pad, pad, pad), mode="reflect")[0]
        img = TF.center_crop(TF.rotate(img, angle, interpolation=TF.InterpolationMode.BILINEAR), [s, s])
        img = TF.adjust_brightness(img, 1 + float(r[i, 1] * 2 - 1) * jitter)
        img = TF.adjust_contrast(img, 1 + float(r[i, 2] * 2 - 1) * jitter)
        img = TF.adjust_saturation(img, 1 + float(r[i, 3] * 2 - 1) * jitter)
        out[i] = TF.adjust_hue(img, float(r[i, 4] * 2 - 1) * 0.05)
    return out.mul_(255).round_().clamp_(0, 255).to(torch.uint8)


def augmented_extras(real_images: torch.Tensor, real_y: np.ndarray, counts: dict[str, int], classes: list[str],
                     seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """``counts[c]`` classical augmentations of real images of class ``c`` (drawn with replacement, seeded)."""
    rng = np.random.default_rng(seed + 77_777)
    idx = []
    for c, n in counts.items():
        pool = np.flatnonzero(real_y == classes.index(c))
        if n > 0:
            idx.append(rng.choice(pool, n, replace=True))
    if not idx:
        return real_images[:0], real_y[:0]
    idx = np.concatenate(idx)
    return classical_augment(real_images[idx], seed + 88_888), real_y[idx]


def setting_data(setting: str, real_x, real_y, syn: SyntheticSource | None, classes, real_counts, extra, seed,
                 synthetic_seed):
    """The training images and labels of one setting and seed."""
    if setting == "real":
        return real_x, real_y
    if setting == "real+augment":
        ax, ay = augmented_extras(real_x, real_y, extra, classes, seed)
        return torch.cat([real_x, ax]), np.concatenate([real_y, ay])
    if syn is None:
        raise ValueError(f"setting {setting} needs --synthetic")
    if setting == "real+synthetic":
        sx, sy = syn.images(extra, synthetic_seed + seed)
        return torch.cat([real_x, sx]), np.concatenate([real_y, sy])
    if setting == "synthetic":
        return syn.images(real_counts, synthetic_seed + seed)
    raise ValueError(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")


# --- metrics ---------------------------------------------------------------------------------------


def point_metrics(probs: np.ndarray, y: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Melanoma and seborrheic keratosis AUC (one class against the rest), balanced accuracy and per-class
    recall, by scikit-learn. A class absent from ``y`` (or the only one present) has no AUC or recall."""
    from sklearn.metrics import balanced_accuracy_score, recall_score, roc_auc_score

    out: dict[str, float] = {}
    for key, c in (("melanoma_auc", MELANOMA), ("sk_auc", SK)):
        if c in classes:
            pos = y == classes.index(c)
            if 0 < pos.sum() < len(y):
                out[key] = float(roc_auc_score(pos, probs[:, classes.index(c)]))
    present = sorted(set(y.tolist()))
    pred = probs.argmax(1)
    out["balanced_accuracy"] = float(balanced_accuracy_score(y, pred)) if len(present) > 1 else float("nan")
    rec = recall_score(y, pred, labels=present, average=None, zero_division=0)
    for ci, r in zip(present, rec):
        out[f"recall_{classes[ci]}"] = float(r)
    return out


def weighted_auc(scores: np.ndarray, pos: np.ndarray, W: np.ndarray) -> np.ndarray:
    """ROC AUC of ``scores`` for labels ``pos`` under each row of image weights ``W`` (B, n) at once: the
    weighted Mann-Whitney statistic, ties counted one half (equals ``roc_auc_score(..., sample_weight=w)``)."""
    order = np.argsort(scores, kind="stable")
    s, p, Wo = scores[order], pos[order], W[:, order].astype(np.float64)
    # Start and end (exclusive) of each run of tied scores, per position.
    new = np.r_[True, s[1:] != s[:-1]]
    start = np.flatnonzero(new)
    group = np.cumsum(new) - 1
    end = np.r_[start[1:], len(s)]
    neg = Wo * (~p)
    cum = np.concatenate([np.zeros((len(W), 1)), np.cumsum(neg, axis=1)], axis=1)  # cum[:, i] = sum before i
    below = cum[:, start[group]]
    tied = cum[:, end[group]] - below
    wp = (Wo * p)
    num = (wp * (below + 0.5 * tied)).sum(1)
    den = wp.sum(1) * neg.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def weighted_recalls(pred: np.ndarray, y: np.ndarray, W: np.ndarray, n_classes: int) -> np.ndarray:
    """(B, C) recall of each class under each row of weights (NaN where a class has no weight)."""
    onehot = np.eye(n_classes)[y]
    tot = W @ onehot
    hit = W @ (onehot * (pred == y)[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, hit / tot, np.nan)


def bootstrap_metrics(probs: np.ndarray, y: np.ndarray, classes: list[str], W: np.ndarray) -> dict[str, np.ndarray]:
    """Every metric of :func:`point_metrics` under each bootstrap weight row: {key: (B,)}."""
    out = {}
    for key, c in (("melanoma_auc", MELANOMA), ("sk_auc", SK)):
        if c in classes and 0 < (y == classes.index(c)).sum() < len(y):
            out[key] = weighted_auc(probs[:, classes.index(c)], y == classes.index(c), W)
    rec = weighted_recalls(probs.argmax(1), y, W, len(classes))
    present = sorted(set(y.tolist()))
    out["balanced_accuracy"] = np.nanmean(rec[:, present], axis=1)
    for ci in present:
        out[f"recall_{classes[ci]}"] = rec[:, ci]
    return out


def bootstrap_weights(n: int, B: int, seed: int) -> np.ndarray:
    """(B, n) counts: each row one resample of ``n`` test images with replacement."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(B, n))
    W = np.zeros((B, n), np.float32)
    np.add.at(W, (np.repeat(np.arange(B), n), draws.ravel()), 1)
    return W


def detectable(deltas: dict[str, dict], n_seeds: int) -> dict[str, float]:
    """The smallest difference from ``real`` a run like this one detects with 80% power at 5% (two-sided):
    2.8 standard errors of the seed-mean difference, combining the test images' sampling (the paired
    bootstrap's standard error) and the training seeds' spread (sd of the per-seed differences / sqrt K),
    each averaged over the settings compared with ``real``."""
    out = {}
    for key in ("melanoma_auc", "sk_auc", "balanced_accuracy"):
        ds = [d[key] for d in deltas.values() if key in d]
        if ds:
            se_test = float(np.mean([d["se_bootstrap"] for d in ds]))
            se_seed = float(np.mean([d["sd_seeds"] for d in ds])) / math.sqrt(max(1, n_seeds))
            out[key] = float(2.8 * math.sqrt(se_test ** 2 + se_seed ** 2))
    return out


def summarize(test: TestSet, probs: dict[str, list[np.ndarray]], classes: list[str], B: int, seed: int) -> dict:
    """The report of one test set: per setting mean, sd, per-seed values and a bootstrap interval of the
    seed mean; per setting against ``real`` the paired bootstrap difference; the detectable effect."""
    W = bootstrap_weights(len(test.y), B, seed)
    point = {s: [point_metrics(p, test.y, classes) for p in ps] for s, ps in probs.items()}
    boot = {s: [bootstrap_metrics(p, test.y, classes, W) for p in ps] for s, ps in probs.items()}
    results: dict[str, dict] = {}
    for s in probs:
        results[s] = {}
        for key in point[s][0]:
            vals = np.array([m[key] for m in point[s]])
            bmean = np.nanmean(np.stack([b[key] for b in boot[s]]), axis=0)
            results[s][key] = {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                               "per_seed": [float(v) for v in vals],
                               "ci95": [float(np.nanpercentile(bmean, 2.5)), float(np.nanpercentile(bmean, 97.5))]}
    deltas: dict[str, dict] = {}
    if "real" in probs:
        for s in probs:
            if s == "real":
                continue
            deltas[s] = {}
            for key in results[s]:
                if key not in results["real"]:
                    continue
                # Paired: the same resampled images for both settings, seed k against seed k, averaged.
                d = np.mean([b[key] - r[key] for b, r in zip(boot[s], boot["real"])], axis=0)
                per_seed = [ps[key] - pr[key] for ps, pr in zip(point[s], point["real"])]
                deltas[s][key] = {"mean": float(np.mean(per_seed)),
                                  "ci95": [float(np.nanpercentile(d, 2.5)), float(np.nanpercentile(d, 97.5))],
                                  "se_bootstrap": float(np.nanstd(d, ddof=1)),
                                  "sd_seeds": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0}
    n_seeds = len(next(iter(probs.values())))
    mde = detectable(deltas, n_seeds)
    counts = {classes[c]: int((test.y == c).sum()) for c in range(len(classes)) if (test.y == c).any()}
    return {"name": test.name, "source": test.source, "n": int(len(test.y)), "counts": counts, "notes": test.notes,
            "results": results, "deltas": deltas, "detectable": mde}


# --- the run ---------------------------------------------------------------------------------------


def run_utility(real_x: torch.Tensor, real_y: np.ndarray, classes: list[str], tests: list[TestSet],
                syn: SyntheticSource | None, *, settings=SETTINGS, seeds=(0, 1, 2, 3, 4),
                recipe: RecipeConfig = RecipeConfig(), synthetic_ratio: float | None = None, synthetic_seed: int = 0,
                bootstrap: int = 1000, progress: bool = True) -> dict:
    """Train the recipe in every setting and seed, score it on every test set, summarize.

    Returns the report dict (see the module docstring); ``seconds_per_setting`` holds each setting's time.
    """
    from tqdm import tqdm

    real_counts = {c: int((real_y == i).sum()) for i, c in enumerate(classes)}
    extra = fill_counts(real_counts, classes, synthetic_ratio)
    probs: dict[str, dict[str, list[np.ndarray]]] = {t.name: {} for t in tests}
    seconds: dict[str, float] = {}
    sizes: dict[str, dict[str, int]] = {}
    bar = tqdm(total=len(settings) * len(seeds) * recipe.steps, unit="step", desc="utility", file=sys.stderr,
               disable=not progress, smoothing=0.05)
    for s in settings:
        t0 = time.time()
        for k in seeds:
            bar.set_postfix_str(f"{s} seed {k}")
            x, y = setting_data(s, real_x, real_y, syn, classes, real_counts, extra, k, synthetic_seed)
            sizes[s] = {c: int((y == i).sum()) for i, c in enumerate(classes)}
            net = train_classifier(x, y, len(classes), k, recipe, progress=bar.update)
            line = []
            for t in tests:
                pr = predict_proba(net, t.images)
                probs[t.name].setdefault(s, []).append(pr)
                auc = point_metrics(pr, t.y, classes).get("melanoma_auc")
                line.append(f"{t.name} melanoma AUC {_fmt(auc)}")
            if progress:
                bar.write(f"{s} seed {k} ({len(y)} training images): " + ", ".join(line), file=sys.stderr)
        seconds[s] = time.time() - t0
    bar.close()
    reports = [summarize(t, probs[t.name], classes, bootstrap, seed=12345) for t in tests]
    warnings = []
    for r in reports:
        auc = r["results"].get("real", {}).get("melanoma_auc", {}).get("mean")
        if auc is not None and auc < MIN_REAL_AUC:
            warnings.append(f"{r['name']}: the real-only classifier's melanoma AUC is {auc:.3f} (< {MIN_REAL_AUC}): the "
                            f"recipe is not a working classifier here; do not read the other settings")
    return {"classes": classes, "settings": list(settings), "seeds": list(seeds), "recipe": recipe.to_dict(),
            "real_counts": real_counts, "extra_per_class": extra, "train_counts": sizes,
            "synthetic_ratio": synthetic_ratio, "synthetic_seed": synthetic_seed, "bootstrap": bootstrap,
            "tests": reports, "seconds_per_setting": seconds, "warnings": warnings}


# --- output ----------------------------------------------------------------------------------------

COLUMNS = (("melanoma_auc", "melanoma AUC"), ("sk_auc", "SK AUC"), ("balanced_accuracy", "balanced acc."))


def _fmt(v: float | None, d: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"


def markdown(doc: dict) -> str:
    """One table per test set: each setting's mean ± sd over seeds and its difference from ``real``
    with the paired bootstrap's 95% interval; then the detectable effect and the notes."""
    lines = []
    for t in doc["tests"]:
        counts = ", ".join(f"{c} {n}" for c, n in t["counts"].items())
        lines += [f"### {t['name']} ({t['n']:,} images: {counts})", ""]
        recalls = [k for k in t["results"].get("real", next(iter(t["results"].values()))) if k.startswith("recall_")]
        head = ["setting"] + [f"{label} (Δ vs real [95% CI])" for k, label in COLUMNS] + \
               [f"recall {k[7:].replace('_', ' ')}" for k in recalls]
        lines += ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
        for s, res in t["results"].items():
            cells = [f"`{s}`"]
            for key, _ in COLUMNS:
                if key not in res:
                    cells.append("n/a")
                    continue
                c = f"{_fmt(res[key]['mean'])} ± {_fmt(res[key]['sd'])}"
                d = t["deltas"].get(s, {}).get(key)
                if d:
                    c += f" ({d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}])"
                cells.append(c)
            cells += [f"{_fmt(res[k]['mean'])} ± {_fmt(res[k]['sd'])}" if k in res else "n/a" for k in recalls]
            lines.append("| " + " | ".join(cells) + " |")
        det = t.get("detectable", {})
        if det:
            lines += ["", "Smallest detectable difference from `real` (80% power, 5% two-sided: 2.8 standard errors "
                      "of the seed-mean difference, test-image sampling and training seeds together): " + ", ".join(f"{label} {det[k]:.3f}" for k, label in COLUMNS if k in det) + "."]
        for n in t["notes"]:
            lines.append(f"Note: {n}.")
        lines.append("")
    for w in doc.get("warnings", []):
        lines.append(f"**Warning**: {w}")
    return "\n".join(lines).rstrip() + "\n"


def verdicts(doc: dict) -> list[str]:
    """Plain sentences: does each synthetic setting beat ``real`` and ``real+augment`` on melanoma AUC?"""
    out = []
    for t in doc["tests"]:
        res, deltas = t["results"], t["deltas"]
        if "melanoma_auc" not in res.get("real", {}):
            continue
        for s in ("real+synthetic", "synthetic"):
            d = deltas.get(s, {}).get("melanoma_auc")
            if not d:
                continue
            lo, hi = d["ci95"]
            word = "raises" if lo > 0 else "lowers" if hi < 0 else "does not measurably change"
            line = (f"{t['name']}: `{s}` {word} melanoma AUC against `real` "
                    f"({d['mean']:+.3f}, 95% CI [{lo:+.3f}, {hi:+.3f}])")
            a = res.get("real+augment", {}).get("melanoma_auc")
            if a is not None:
                m, ma = round(res[s]["melanoma_auc"]["mean"], 3), round(a["mean"], 3)
                word = "above" if m > ma else "level with" if m == ma else "below"
                line += f"; its mean {m:.3f} is {word} `real+augment`'s {ma:.3f}"
            out.append(line + ".")
    return out


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("eval.utility", "lesiongan-utility"), description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--real", required=True, help="labelled real training set (any gan.data layout with labels)")
    p.add_argument("--split", default=None, help="ISIC 2017 split of --real (default: train)")
    p.add_argument("--synthetic", help="conditional generator file, or a labelled folder written by gan.synthesize")
    p.add_argument("--test", action="append", default=[], metavar="PATH[@split]",
                   help="an extra labelled test set (repeatable); @split picks an ISIC 2017 split")
    p.add_argument("--no-default-tests", action="store_true",
                   help="leave out the default test sets (ISIC 2017 validation, HAM10000 beside --real)")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    p.add_argument("--seeds", type=int, default=None, help="training seeds 0..K-1, the same in every setting (default 5)")
    p.add_argument("--steps", type=int, default=None, help=f"optimizer steps per training (default {RecipeConfig.steps})")
    p.add_argument("--synthetic-ratio", type=float, default=None,
                   help="synthetic (and augmented) images per real image of each class; default: fill every "
                        "minority class up to the majority class's count")
    p.add_argument("--synthetic-seed", type=int, default=0, help="seed k's synthetic set is this + k (default 0)")
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples of the test images (default 1000)")
    p.add_argument("--quick", action="store_true",
                   help=f"a first look: {QUICK['seeds']} seeds, {QUICK['steps']} steps, {QUICK['bootstrap']} resamples")
    p.add_argument("--out", help="folder for utility.json and utility.md")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--no-save", action="store_true", help="do not write the generator's run folder results.json")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = p.parse_args(argv)
    seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if args.quick else 5)
    steps = args.steps if args.steps is not None else (QUICK["steps"] if args.quick else RecipeConfig.steps)
    B = args.bootstrap if args.bootstrap is not None else (QUICK["bootstrap"] if args.quick else 1000)
    if seeds < 1 or steps < 1 or B < 10:
        p.error("--seeds and --steps must be >= 1, --bootstrap >= 10")
    if args.synthetic is None and any(s in ("real+synthetic", "synthetic") for s in args.settings):
        p.error("--synthetic is required for the settings real+synthetic and synthetic (or pick --settings)")
    if args.synthetic_ratio is not None and args.synthetic_ratio < 0:
        p.error("--synthetic-ratio must be >= 0")
    torch.set_num_threads(max(1, args.threads))
    t_start = time.time()
    try:
        real = load_labelled(args.real, split=args.split)
        labelled = [i for i, label in enumerate(real.labels) if label is not None]
        classes = real.class_names()
        real_x = real.images[labelled]
        real_y = np.array([classes.index(real.labels[i]) for i in labelled], np.int64)
        syn = SyntheticSource(args.synthetic, classes) if args.synthetic else None
        specs = [] if args.no_default_tests else default_tests(args.real, real)
        for spec in args.test:
            path, split = parse_test(spec)
            specs.append((Path(path).name + (f"-{split}" if split else ""), path, split))
        if not specs:
            p.error("no test set: give --test PATH (the defaults were not found or were turned off)")
        tests = [make_test_set(load_labelled(path, split=split), classes, name) for name, path, split in specs]
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    recipe = RecipeConfig(steps=steps)
    print(f"real: {len(real_y)} images ({', '.join(f'{c} {int((real_y == i).sum())}' for i, c in enumerate(classes))}); "
          f"tests: {', '.join(f'{t.name} {len(t.y)}' for t in tests)}; {len(args.settings)} settings x {seeds} seeds x "
          f"{steps} steps", file=sys.stderr)
    doc = run_utility(real_x, real_y, classes, tests, syn, settings=tuple(args.settings), seeds=tuple(range(seeds)),
                      recipe=recipe, synthetic_ratio=args.synthetic_ratio, synthetic_seed=args.synthetic_seed,
                      bootstrap=B, progress=True)
    doc = {"format": FORMAT, "version": VERSION,
           "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "command": " ".join(["python -m eval.utility", *(argv if argv is not None else sys.argv[1:])]),
           "quick": bool(args.quick), "real": {"source": real.source, "layout": real.layout, "split": real.split},
           "synthetic": syn.info if syn else None, **doc, "seconds": time.time() - t_start,
           "threads": torch.get_num_threads()}
    doc["verdicts"] = verdicts(doc)
    text = markdown(doc) + "\n" + "\n".join(doc["verdicts"]) + "\n"
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "utility.json").write_text(json.dumps(doc, indent=1) + "\n")
        (out / "utility.md").write_text(text)
    if syn is not None and syn.kind == "generator" and not args.no_save:
        from gan.rundir import RunDir

        run = RunDir(Path(args.synthetic).parent if Path(args.synthetic).is_file() else args.synthetic)
        if run.is_run():
            print(f"wrote {run.update_results('utility', doc)}", file=sys.stderr)
    print(json.dumps(doc, indent=1) if args.json else text)
    print(f"done in {doc['seconds'] / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
