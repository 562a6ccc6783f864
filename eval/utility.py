"""Downstream utility: does adding synthetic lesions make a classifier better?

    python -m eval.utility --real ../shared/data/isic2017 --synthetic checkpoints/dcgan-cond/generator.pt
                           [--protocol v2|v1] [--dev] [--subset LIST] [--classifier small|resnet18] [--seeds K]
                           [--steps N] [--synthetic-ratio R[,R...]] [--share uniform|majority]
                           [--exposure matched|fixed] [--settings ...] [--test PATH[@split] ...]
                           [--no-default-tests] [--bootstrap B] [--quick] [--workers 2] [--out DIR]
                           [--json] [--no-save]

A classifier recipe (:mod:`eval.classifier`) is trained from scratch in several settings, each over the
same training seeds (seed ``k`` drives the weights, batches and augmentation in every setting), and
scored on held-out test sets. Protocol v2 (the default; its pre-registration and choices are in
eval/README.md) has four settings:

1. ``real``: the real training images only;
2. ``real-long``: the same images trained for as many steps as the longest other setting, so that
   "more steps" and "more images" are told apart;
3. ``real+synthetic``: real plus ``R`` synthetic images per real image of every class (a uniform share:
   "synthetic" is no class cue);
4. ``real+augment``: real plus as many extra images per class as ``real+synthetic`` adds, each a real
   image of that class under classical augmentation (flips, rotation, colour jitter): the cheap
   alternative synthetic data has to beat.

``synthetic`` (synthetic only, as many per class as the real set: Ravuri & Vinyals' Classification
Accuracy Score) can be added with ``--settings``. Exposure matching (v2): a setting with ``n`` training
images gets ``steps * n / n_real`` optimizer steps, so every real image is seen as often as in ``real``.
Protocol v1 (``--protocol v1``) is the earlier one: the same steps for every setting, fill every
minority class up to the majority's count, no ``real-long``, a weaker recipe.

Synthetic data: a conditional generator file, sampled on the fly (seed ``k``'s synthetic set is
``--synthetic-seed + k``; class ``c``'s images are latents 0.. of seed ``S * 1000 + index(c)``, the
images ``python -m gan.synthesize --seed S`` writes), or a labelled folder written by
``gan.synthesize`` (drawn per class without replacement, seeded). An unconditional generator is
refused: it has no labels to train a classifier on.

Test sets: by default the ISIC 2017 validation split (when ``--real`` is the ISIC 2017 folder) and
HAM10000 (``ham10000/`` beside it, when present) as the external test set. HAM10000's ``bkl`` (benign
keratosis, broader than seborrheic keratosis) is scored as ``seborrheic_keratosis``; its other classes
are left out. ``--dev`` is the development fold on which every protocol choice is made: a seeded,
class-stratified 20% of ``--real`` held out (plus the ISIC 2017 validation split) as the test set, the
other 80% as ``real``; HAM10000 is never read.

Metrics per test set: melanoma ROC AUC (the ISIC 2017 Part 3 measure), seborrheic keratosis AUC,
balanced accuracy, per-class recall; mean and sd over seeds; every interval from a bootstrap that
resamples the training seeds and the test images together (paired: the same resampled seeds and images
for both settings of a difference); the smallest difference the run can detect (80% power, 5%
two-sided: 2.8 standard errors of the primary difference). With a generator, the shortcut check: on
fresh synthetic images (seed ``SHORTCUT_SEED + k``, never trained on) and the test set's real images of
the same classes, (a) the AUC of the classifier's class probability at telling synthetic from real
images of one class, (b) how often synthetic and real images of a class are called that class, and
(c) a linear probe's AUC at telling them apart from the classifier's features.

Writes ``utility.json`` and ``utility.md`` into ``--out`` (when given; finished trainings are kept in
``--out``/trainings/ and a rerun with the same ``--out`` resumes from them), prints the Markdown table
(or the JSON with ``--json``) on stdout, progress on stderr; when ``--synthetic`` is a generator inside a
run folder, its ``results.json`` gets the ``utility`` section (``--no-save`` skips it).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from eval.classifier import ARCHS, RecipeConfig, embed, predict_proba, train_classifier
from gan.assets import portable_command, portable_name
from gan.cli import entry_point, prog

SETTINGS = ("real", "real-long", "real+synthetic", "synthetic", "real+augment")
SETTINGS_V1 = ("real", "real+synthetic", "synthetic", "real+augment")
SETTINGS_V2 = ("real", "real-long", "real+synthetic", "real+augment")
MELANOMA, SK = "melanoma", "seborrheic_keratosis"
# Test-set classes scored as a training class when the training set lacks them (name -> training class).
TEST_CLASS_MAP = {"benign_keratosis": SK}
MIN_REAL_AUC = 0.6  # a real-only melanoma AUC below this means the recipe is broken, not a finding
FORMAT = "lesiongan-utility"
VERSION = 2
DEV_SEED, DEV_FRACTION = 2017, 0.2  # the development fold: a seeded, class-stratified 20% of --real
SHORTCUT_SEED = 500_000  # fresh synthetic images for the shortcut check: seed SHORTCUT_SEED + k
SHORTCUT_PER_CLASS = 500  # at most this many synthetic and real images per class in the shortcut check
PRIMARY = ("real+synthetic", "real")  # the pre-registered comparison (v2), on melanoma AUC
PRIMARY_TEST = "ham10000"
NONINFERIORITY = -0.01  # the pre-registered non-inferiority margin on melanoma AUC
PREREG_MARKER = "### Utility protocol v2: pre-registration"  # the heading in eval/README.md


@dataclass(frozen=True)
class Protocol:
    """One utility protocol: which settings, how long each trains, how synthetic images are shared out,
    the classifier recipe (``recipe.steps`` is the step count of ``real``) and the seed count."""

    version: int
    settings: tuple[str, ...]
    exposure: str  # "matched": steps in proportion to the setting's size; "fixed": the same for all
    share: str  # "uniform": ratio synthetic images per real image of every class; "majority": fill up
    ratio: float | None
    seeds: int
    recipe: RecipeConfig
    bootstrap: int = 1000
    shortcut: bool = True

    def __post_init__(self):
        if self.exposure not in ("matched", "fixed"):
            raise ValueError(f"exposure must be 'matched' or 'fixed', got {self.exposure!r}")
        if self.share not in ("uniform", "majority"):
            raise ValueError(f"share must be 'uniform' or 'majority', got {self.share!r}")
        if self.share == "uniform" and (self.ratio is None or self.ratio < 0):
            raise ValueError("a uniform share needs a synthetic ratio >= 0")
        unknown = [s for s in self.settings if s not in SETTINGS]
        if unknown:
            raise ValueError(f"unknown setting {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
        if self.seeds < 1 or self.bootstrap < 10:
            raise ValueError("seeds must be >= 1 and bootstrap >= 10")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["settings"] = list(self.settings)
        return d


PROTOCOL_V1 = Protocol(1, SETTINGS_V1, "fixed", "majority", None, 5, RecipeConfig(steps=1000), shortcut=False)
# Every v2 choice below was made on the development fold (eval/README.md, "Utility protocol v2").
RECIPE_V2 = RecipeConfig(steps=2000)
PROTOCOL_V2 = Protocol(2, SETTINGS_V2, "matched", "uniform", 1.0, 5, RECIPE_V2)
PROTOCOLS = {"v1": PROTOCOL_V1, "v2": PROTOCOL_V2}
QUICK = {"seeds": 2, "steps": 400, "bootstrap": 200}


@dataclass
class TestSet:
    """Images of one test row, with labels as training-class indices."""

    __test__ = False  # a data class, not a pytest test class

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
    (``ratio`` None: the ``majority`` share), else ``round(ratio * n_c)`` (the ``uniform`` share)."""
    if ratio is None:
        top = max(real_counts[c] for c in classes)
        return {c: top - real_counts[c] for c in classes}
    return {c: int(round(ratio * real_counts[c])) for c in classes}


def dev_split(y: np.ndarray, seed: int = DEV_SEED, fraction: float = DEV_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) indices: a seeded ``fraction`` of every class held out (rounded, at least one image
    of a class with two or more), the rest for training; both sorted."""
    rng = np.random.default_rng(seed)
    held = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = int(round(fraction * len(idx)))
        k = min(max(k, 1 if len(idx) > 1 else 0), len(idx) - 1) if len(idx) > 1 else 0
        held.append(rng.permutation(idx)[:k])
    held = np.sort(np.concatenate(held)) if held else np.empty(0, np.int64)
    train = np.setdiff1d(np.arange(len(y)), held)
    return train, held


class SyntheticSource:
    """Labelled synthetic images per class and seed, from a conditional generator or a labelled folder."""

    def __init__(self, path: str, classes: list[str], size: int = 64):
        self.path, self.classes, self.size = path, classes, size
        self._load()

    def __getstate__(self):  # a worker process reloads the generator or folder from the path
        return {"path": self.path, "classes": self.classes, "size": self.size}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._load()

    def _load(self):
        path, classes, size = self.path, self.classes, self.size
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
            self.info = {"kind": "generator", "path": portable_name(path), "model": G.model_name,
                         "classes": G.class_names, "nimg": G.info.get("nimg"), "resolution": G.resolution}
        else:
            ds = load_labelled(path, size=size)
            missing = [c for c in classes if c not in ds.class_counts()]
            if missing:
                raise ValueError(f"{path}: no synthetic images of class {', '.join(missing)}")
            self.ds = ds
            self.kind = "folder"
            self.info = {"kind": "folder", "path": portable_name(path), "layout": ds.layout,
                         "counts": ds.class_counts()}

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
    """The training images and labels of one setting and seed (the real images first, in their order)."""
    if setting in ("real", "real-long"):
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


def training_sizes(settings, n_real: int, real_counts: dict[str, int], extra: dict[str, int]) -> dict[str, int]:
    """How many training images each setting has."""
    n_extra = sum(max(0, v) for v in extra.values())
    size = {"real": n_real, "real-long": n_real, "real+synthetic": n_real + n_extra,
            "real+augment": n_real + n_extra, "synthetic": sum(real_counts.values())}
    return {s: size[s] for s in settings}


def setting_steps(protocol: Protocol, sizes: dict[str, int], n_real: int) -> dict[str, int]:
    """Optimizer steps per setting. ``fixed``: ``recipe.steps`` for all. ``matched``: ``recipe.steps * n /
    n_real`` (rounded), so every real image is seen as often as in ``real``. ``real-long`` gets the longest
    other setting's steps either way."""
    base = protocol.recipe.steps
    steps = {s: base if protocol.exposure == "fixed" else max(1, int(round(base * n / n_real)))
             for s, n in sizes.items() if s != "real-long"}
    if "real-long" in sizes:
        steps["real-long"] = max([base, *steps.values()])
    return steps


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


# --- the shortcut check ----------------------------------------------------------------------------


def shortcut_check(net, syn: SyntheticSource, classes: list[str], test: TestSet, seed: int,
                   per_class: int = SHORTCUT_PER_CLASS) -> dict:
    """Does the classifier treat synthetic images of a class like real ones of it? On fresh synthetic images
    (seed ``SHORTCUT_SEED + seed``) and as many of the test set's real images per class (at most
    ``per_class``, seeded): per class the AUC of the class probability at telling synthetic from real
    (0.5: alike), how often each is called that class, and a linear probe's 5-fold AUC at telling
    synthetic from real from the classifier's features (logistic regression, standardized)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(SHORTCUT_SEED + seed)
    counts, real_idx = {}, []
    for ci, c in enumerate(classes):
        pool = np.flatnonzero(test.y == ci)
        n = min(len(pool), per_class)
        if n >= 2:
            counts[c] = n
            real_idx.append(np.sort(rng.permutation(pool)[:n]))
    if not counts:
        return {}
    sx, sy = syn.images(counts, SHORTCUT_SEED + seed)
    ridx = np.concatenate(real_idx)
    rx, ry = test.images[ridx], test.y[ridx]
    ps, pr = predict_proba(net, sx), predict_proba(net, rx)
    per: dict[str, dict] = {}
    for c in counts:
        ci = classes.index(c)
        s_c, r_c = ps[sy == ci], pr[ry == ci]
        scores = np.concatenate([s_c[:, ci], r_c[:, ci]])
        is_syn = np.r_[np.ones(len(s_c)), np.zeros(len(r_c))]
        per[c] = {"n": int(counts[c]), "auc_synthetic_vs_real": float(roc_auc_score(is_syn, scores)),
                  "recall_synthetic": float((s_c.argmax(1) == ci).mean()),
                  "recall_real": float((r_c.argmax(1) == ci).mean())}
    feats = np.concatenate([embed(net, sx), embed(net, rx)]).astype(np.float64)
    is_syn = np.r_[np.ones(len(sx)), np.zeros(len(rx))]
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    p = cross_val_predict(probe, feats, is_syn, cv=folds, method="predict_proba")[:, 1]
    return {"per_class": per, "probe_auc": float(roc_auc_score(is_syn, p)), "n": int(len(is_syn))}


def summarize_shortcut(runs: dict[str, list[dict]]) -> dict:
    """Mean and sd over seeds of each shortcut number, per setting."""
    def ms(vals):
        vals = np.asarray(vals, float)
        return {"mean": float(vals.mean()), "sd": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0}

    out = {}
    for s, rs in runs.items():
        rs = [r for r in rs if r]
        if not rs:
            continue
        per = {}
        for c in rs[0]["per_class"]:
            per[c] = {"n": rs[0]["per_class"][c]["n"],
                      **{k: ms([r["per_class"][c][k] for r in rs])
                         for k in ("auc_synthetic_vs_real", "recall_synthetic", "recall_real")}}
        out[s] = {"per_class": per, "probe_auc": ms([r["probe_auc"] for r in rs])}
    return out


# --- intervals over seeds x images -----------------------------------------------------------------

# Differences reported besides "every setting against real" (first minus second).
PAIRS = (("real+synthetic", "real+augment"), ("real+synthetic", "real-long"))


def seed_resamples(K: int, B: int, seed: int) -> np.ndarray:
    """(B, K) training-seed indices: each row one resample of the K seeds with replacement."""
    return np.random.default_rng(seed).integers(0, K, size=(B, K))


def summarize(test: TestSet, probs: dict[str, list[np.ndarray]], classes: list[str], B: int, seed: int) -> dict:
    """The report of one test set. Per setting: mean, sd and per-seed values over seeds, and a 95% interval
    of the seed mean from a bootstrap that resamples the seeds and the test images together. Per
    setting against ``real`` (``deltas``) and for :data:`PAIRS` (``pairs``): the difference of seed means
    with the same bootstrap, paired (the same resampled images and seeds for both settings; seed k
    against seed k). ``detectable``: 2.8 bootstrap standard errors of the primary difference."""
    W = bootstrap_weights(len(test.y), B, seed)
    K = len(next(iter(probs.values())))
    S = seed_resamples(K, B, seed + 1)
    cols = np.arange(B)[:, None]
    point = {s: [point_metrics(p, test.y, classes) for p in ps] for s, ps in probs.items()}
    boot = {s: [bootstrap_metrics(p, test.y, classes, W) for p in ps] for s, ps in probs.items()}

    def resampled(arr: np.ndarray) -> np.ndarray:  # (K, B) -> (B,) seed means over resampled seeds
        with warnings.catch_warnings():  # a metric undefined in every seed (a class absent) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(arr[S, cols], axis=1)

    results: dict[str, dict] = {}
    for s in probs:
        results[s] = {}
        for key in point[s][0]:
            vals = np.array([m[key] for m in point[s]])
            r = resampled(np.stack([b[key] for b in boot[s]]))
            results[s][key] = {"mean": float(np.nanmean(vals)),
                               "sd": float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else 0.0,
                               "per_seed": [float(v) for v in vals],
                               "ci95": [float(np.nanpercentile(r, 2.5)), float(np.nanpercentile(r, 97.5))]}

    def diff(a: str, b: str) -> dict:
        out = {}
        for key in results[a]:
            if key not in results[b]:
                continue
            d = resampled(np.stack([x[key] - y[key] for x, y in zip(boot[a], boot[b])]))
            per_seed = [pa[key] - pb[key] for pa, pb in zip(point[a], point[b])]
            out[key] = {"mean": float(np.nanmean(per_seed)),
                        "ci95": [float(np.nanpercentile(d, 2.5)), float(np.nanpercentile(d, 97.5))],
                        "se": float(np.nanstd(d, ddof=1)),
                        "sd_seeds": float(np.nanstd(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0}
        return out

    deltas = {s: diff(s, "real") for s in probs if s != "real" and "real" in probs}
    pairs = {f"{a} vs {b}": diff(a, b) for a, b in PAIRS if a in probs and b in probs}
    ref = deltas.get(PRIMARY[0]) or (next(iter(deltas.values())) if deltas else {})
    mde = {key: float(2.8 * ref[key]["se"]) for key in ("melanoma_auc", "sk_auc", "balanced_accuracy") if key in ref}
    counts = {classes[c]: int((test.y == c).sum()) for c in range(len(classes)) if (test.y == c).any()}
    return {"name": test.name, "source": portable_name(test.source), "n": int(len(test.y)), "counts": counts,
            "notes": test.notes,
            "results": results, "deltas": deltas, "pairs": pairs, "detectable": mde,
            "detectable_of": f"{PRIMARY[0]} vs real" if PRIMARY[0] in deltas else "the first setting vs real"}


def primary_outcome(d: dict, vs_augment: dict | None = None, margin: float = NONINFERIORITY) -> dict:
    """The pre-registered reading of a melanoma-AUC difference ``d`` (``real+synthetic`` minus ``real``):
    ``superior`` (95% lower bound > 0), ``non-inferior`` (lower bound > ``margin``), ``inferior`` (upper
    bound < 0), else ``inconclusive``; ``success`` = non-inferior (or superior) and a mean above
    ``real+augment``'s (``vs_augment``: ``real+synthetic`` minus ``real+augment``); ``stretch`` = a
    mean of at least +0.02 with the lower bound above 0."""
    lo, hi = d["ci95"]
    outcome = ("superior" if lo > 0 else "non-inferior" if lo > margin else "inferior" if hi < 0
               else "inconclusive")
    above_aug = None if vs_augment is None else bool(vs_augment["mean"] > 0)
    return {"outcome": outcome, "mean": d["mean"], "ci95": [lo, hi], "margin": margin,
            "above_real_augment": above_aug,
            "success": bool(outcome in ("superior", "non-inferior") and above_aug is True),
            "stretch": bool(d["mean"] >= 0.02 and lo > 0)}


# --- the trainings ---------------------------------------------------------------------------------


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, torch.Tensor):
            p = p.contiguous().numpy()
        if isinstance(p, np.ndarray):
            h.update(str((p.dtype, p.shape)).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()


def one_training(task: dict, state: dict, progress=None) -> dict:
    """Train one (setting, seed), score it on every test set, run the shortcut check where asked."""
    s, k, steps = task["setting"], task["seed"], task["steps"]
    proto: Protocol = state["protocol"]
    classes = state["classes"]
    x, y = setting_data(s, state["real_x"], state["real_y"], state["syn"], classes, state["real_counts"],
                        state["extra"], k, state["synthetic_seed"])
    t0 = time.time()
    net = train_classifier(x, y, len(classes), k, replace(proto.recipe, steps=steps), progress=progress)
    out = {"setting": s, "seed": k, "steps": steps, "n_train": int(len(y)),
           "counts": {c: int((y == i).sum()) for i, c in enumerate(classes)},
           "probs": {t.name: predict_proba(net, t.images) for t in state["tests"]}, "shortcut": {}}
    if task["shortcut"]:
        out["shortcut"] = {t.name: shortcut_check(net, state["syn"], classes, t, k) for t in state["tests"]}
    out["seconds"] = time.time() - t0
    return out


_WORKER: dict = {}


def _worker_init(state: dict) -> None:
    torch.set_num_threads(1)
    _WORKER.update(state)


def _worker_run(task: dict) -> dict:
    return one_training(task, _WORKER)


def _cache_path(folder: Path, task: dict) -> Path:
    """``ARCH-SETTING[-rRATIO]-sSEED-KEY.npz``: the ratio only for settings that depend on it. A training is
    found again by its key (a hash of everything that changes it), whatever run named the file."""
    r = task["ratio"]
    ratio = f"-r{'fill' if r is None else f'{r:g}'}" if task["setting"] in ("real+synthetic", "real+augment") else ""
    name = f"{task['arch']}-{task['setting']}{ratio}-s{task['seed']}-{task['key'][:12]}.npz"
    found = sorted(folder.glob(f"*-s{task['seed']}-{task['key'][:12]}.npz")) if folder.is_dir() else []
    return found[0] if found else folder / name


def _save_training(path: Path, res: dict) -> None:
    from gan.fileio import atomic_write

    meta = {k: v for k, v in res.items() if k != "probs"}
    arrays = {f"probs/{name}": p for name, p in res["probs"].items()}
    atomic_write(path, lambda f: np.savez(f, meta=np.array(json.dumps(meta)), **arrays))


def _load_training(path: Path) -> dict | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            res = json.loads(str(z["meta"]))
            res["probs"] = {k[len("probs/"):]: z[k] for k in z.files if k.startswith("probs/")}
        return res
    except (OSError, ValueError, KeyError):
        return None  # unreadable: train again


def run_utility(real_x: torch.Tensor, real_y: np.ndarray, classes: list[str], tests: list[TestSet],
                syn: SyntheticSource | None, *, protocol: Protocol = PROTOCOL_V2, settings=None, seeds=None,
                recipe: RecipeConfig | None = None, synthetic_ratio: float | None | str = "protocol",
                synthetic_seed: int = 0, bootstrap: int | None = None, workers: int = 1,
                cache: str | os.PathLike | None = None, progress: bool = True) -> dict:
    """Train the recipe in every setting and seed of ``protocol``, score it on every test set, summarize.

    ``settings``, ``seeds`` (a tuple of seeds), ``recipe``, ``synthetic_ratio`` and ``bootstrap`` override
    the protocol's. ``workers`` > 1 trains in that many processes of one thread each (the results are
    the same as one worker with one thread). ``cache``: a folder where each finished training is kept;
    a training already there (same data, recipe, setting, seed, steps) is read, not run again.
    Returns the report dict (see the module docstring).
    """
    from tqdm import tqdm

    if synthetic_ratio != "protocol":
        protocol = replace(protocol, ratio=synthetic_ratio, share="majority" if synthetic_ratio is None else "uniform")
    if recipe is not None:
        protocol = replace(protocol, recipe=recipe)
    if bootstrap is not None:
        protocol = replace(protocol, bootstrap=bootstrap)
    seeds = tuple(range(protocol.seeds)) if seeds is None else tuple(seeds)
    protocol = replace(protocol, seeds=len(seeds), settings=tuple(settings or protocol.settings))
    settings = protocol.settings
    real_counts = {c: int((real_y == i).sum()) for i, c in enumerate(classes)}
    extra = fill_counts(real_counts, classes, protocol.ratio if protocol.share == "uniform" else None)
    sizes = training_sizes(settings, len(real_y), real_counts, extra)
    steps = setting_steps(protocol, sizes, len(real_y))
    shortcut = protocol.shortcut and syn is not None
    base_id = _digest(real_x, real_y, [(t.name, t.y) for t in tests], *[t.images for t in tests])
    syn_id = _digest(getattr(syn, "info", None), getattr(syn, "kind", None), synthetic_seed)
    tasks = []
    for s in settings:
        for k in seeds:
            uses_syn = s in ("real+synthetic", "synthetic") or (shortcut and s in ("real", "real+synthetic"))
            key = _digest(base_id, protocol.recipe.to_dict(), s, k, steps[s],
                          extra if s in ("real+synthetic", "real+augment") else None, syn_id if uses_syn else None,
                          shortcut and s in ("real", "real+synthetic"))
            tasks.append({"setting": s, "seed": k, "steps": steps[s], "arch": protocol.recipe.arch,
                          "ratio": protocol.ratio, "key": key, "shortcut": shortcut and s in ("real", "real+synthetic")})
    cache = Path(cache) if cache is not None else None
    done: dict[tuple[str, int], dict] = {}
    if cache is not None:
        for t in tasks:
            p = _cache_path(cache, t)
            res = _load_training(p) if p.is_file() else None
            if res is not None:
                done[(t["setting"], t["seed"])] = res
    todo = sorted([t for t in tasks if (t["setting"], t["seed"]) not in done], key=lambda t: -t["steps"])
    bar = tqdm(total=sum(t["steps"] for t in todo), unit="step", desc="utility", file=sys.stderr,
               disable=not progress, smoothing=0.05)
    if done and progress:
        bar.write(f"{len(done)} of {len(tasks)} trainings read from {cache}", file=sys.stderr)
    state = {"protocol": protocol, "classes": classes, "real_x": real_x, "real_y": real_y, "syn": syn,
             "real_counts": real_counts, "extra": extra, "synthetic_seed": synthetic_seed, "tests": tests}

    def finished(t: dict, res: dict) -> None:
        done[(t["setting"], t["seed"])] = res
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            _save_training(_cache_path(cache, t), res)
        if progress:
            line = ", ".join(f"{name} melanoma AUC {_fmt(point_metrics(p, tt.y, classes).get('melanoma_auc'))}"
                             for (name, p), tt in zip(res["probs"].items(), tests))
            bar.write(f"{t['setting']} seed {t['seed']} ({res['n_train']} images, {t['steps']} steps): {line}",
                      file=sys.stderr)

    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init, initargs=(state,)) as pool:
            futures = {pool.submit(_worker_run, t): t for t in todo}
            for f in as_completed(futures):
                t = futures[f]
                finished(t, f.result())
                bar.update(t["steps"])
    else:
        for t in todo:
            bar.set_postfix_str(f"{t['setting']} seed {t['seed']}")
            finished(t, one_training(t, state, progress=bar.update))
    bar.close()
    probs = {t.name: {s: [done[(s, k)]["probs"][t.name] for k in seeds] for s in settings} for t in tests}
    reports = [summarize(t, probs[t.name], classes, protocol.bootstrap, seed=12345) for t in tests]
    for r in reports:
        if shortcut:
            r["shortcut"] = summarize_shortcut({s: [done[(s, k)]["shortcut"].get(r["name"], {}) for k in seeds]
                                                for s in ("real", "real+synthetic") if s in settings})
    warnings = []
    for r in reports:
        auc = r["results"].get("real", {}).get("melanoma_auc", {}).get("mean")
        if auc is not None and auc < MIN_REAL_AUC:
            warnings.append(f"{r['name']}: the real-only classifier's melanoma AUC is {auc:.3f} (< {MIN_REAL_AUC}): the "
                            f"recipe is not a working classifier here; do not read the other settings")
    seconds = {s: float(sum(done[(s, k)]["seconds"] for k in seeds)) for s in settings}
    return {"protocol": protocol.to_dict(), "classes": classes, "settings": list(settings), "seeds": list(seeds),
            "recipe": protocol.recipe.to_dict(), "steps": steps, "real_counts": real_counts, "extra_per_class": extra,
            "train_counts": {s: done[(s, seeds[0])]["counts"] for s in settings},
            "synthetic_ratio": protocol.ratio, "share": protocol.share, "exposure": protocol.exposure,
            "synthetic_seed": synthetic_seed, "bootstrap": protocol.bootstrap, "interval": "seeds x images",
            "tests": reports, "seconds_per_setting": seconds, "warnings": warnings}


# --- output ----------------------------------------------------------------------------------------

COLUMNS = (("melanoma_auc", "melanoma AUC"), ("sk_auc", "SK AUC"), ("balanced_accuracy", "balanced acc."))


def _fmt(v: float | None, d: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"


def _ci(c) -> str:
    return f"[{c[0]:+.3f}, {c[1]:+.3f}]"


def markdown(doc: dict) -> str:
    """One table per test set: each setting's steps, mean ± sd over seeds with its 95% interval and its
    difference from ``real``; the other differences, the detectable difference, the shortcut check."""
    lines = []
    steps = doc.get("steps", {})
    for t in doc["tests"]:
        counts = ", ".join(f"{c} {n:,}" for c, n in t["counts"].items())
        lines += [f"### {t['name']} ({t['n']:,} images: {counts})", ""]
        recalls = [k for k in t["results"].get("real", next(iter(t["results"].values()))) if k.startswith("recall_")]
        head = ["setting", "steps"] + [f"{label} [95% CI] (Δ vs real [95% CI])" for k, label in COLUMNS] + \
               [f"recall {k[7:].replace('_', ' ')}" for k in recalls]
        lines += ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
        for s, res in t["results"].items():
            cells = [f"`{s}`", f"{steps[s]:,}" if s in steps else "n/a"]
            for key, _ in COLUMNS:
                if key not in res:
                    cells.append("n/a")
                    continue
                c = f"{_fmt(res[key]['mean'])} ± {_fmt(res[key]['sd'])} [{_fmt(res[key]['ci95'][0])}, {_fmt(res[key]['ci95'][1])}]"
                d = t["deltas"].get(s, {}).get(key)
                if d:
                    c += f" ({d['mean']:+.3f} {_ci(d['ci95'])})"
                cells.append(c)
            cells += [f"{_fmt(res[k]['mean'])} ± {_fmt(res[k]['sd'])}" if k in res else "n/a" for k in recalls]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        for name, d in t.get("pairs", {}).items():
            if "melanoma_auc" in d:
                m = d["melanoma_auc"]
                lines.append(f"- `{name.replace(' vs ', '` minus `')}`: melanoma AUC {m['mean']:+.3f} {_ci(m['ci95'])}")
        det = t.get("detectable", {})
        if det:
            lines += ["", f"Smallest detectable difference ({t.get('detectable_of', '')}; 80% power, 5% two-sided, "
                      f"2.8 bootstrap standard errors over seeds and test images): "
                      + ", ".join(f"{label} {det[k]:.3f}" for k, label in COLUMNS if k in det) + "."]
        sc = t.get("shortcut")
        if sc:
            lines += ["", "Shortcut check (fresh synthetic images against this test set's real images of the same class):",
                      "", "| classifier | class | n | AUC synthetic vs real (0.5: alike) | called that class: synthetic | "
                      "called that class: real | linear probe AUC |", "| --- | --- | --- | --- | --- | --- | --- |"]
            for s, r in sc.items():
                first = True
                for c, v in r["per_class"].items():
                    probe = f"{r['probe_auc']['mean']:.3f} ± {r['probe_auc']['sd']:.3f}" if first else ""
                    lines.append(f"| `{s}` | {c.replace('_', ' ')} | {v['n']} | {v['auc_synthetic_vs_real']['mean']:.3f} ± "
                                 f"{v['auc_synthetic_vs_real']['sd']:.3f} | {v['recall_synthetic']['mean']:.3f} | "
                                 f"{v['recall_real']['mean']:.3f} | {probe} |")
                    first = False
        for n in t["notes"]:
            lines.append(f"Note: {n}.")
        lines.append("")
    for w in doc.get("warnings", []):
        lines.append(f"**Warning**: {w}")
    return "\n".join(lines).rstrip() + "\n"


def verdicts(doc: dict) -> list[str]:
    """Plain sentences: does each synthetic setting beat ``real`` and ``real+augment`` on melanoma AUC; the
    pre-registered primary reading where the run is the pre-registered one."""
    out = []
    for t in doc["tests"]:
        res, deltas = t["results"], t["deltas"]
        if "melanoma_auc" not in res.get("real", {}):
            continue
        for s in ("real+synthetic", "synthetic", "real-long"):
            d = deltas.get(s, {}).get("melanoma_auc")
            if not d:
                continue
            lo, hi = d["ci95"]
            word = "raises" if lo > 0 else "lowers" if hi < 0 else "does not measurably change"
            line = (f"{t['name']}: `{s}` {word} melanoma AUC against `real` "
                    f"({d['mean']:+.3f}, 95% CI {_ci(d['ci95'])})")
            a = res.get("real+augment", {}).get("melanoma_auc")
            if a is not None and s != "real-long":
                m, ma = round(res[s]["melanoma_auc"]["mean"], 3), round(a["mean"], 3)
                word = "above" if m > ma else "level with" if m == ma else "below"
                line += f"; its mean {m:.3f} is {word} `real+augment`'s {ma:.3f}"
            out.append(line + ".")
    p = doc.get("primary")
    if p:
        out.append(f"Primary comparison ({p['test']}, `real+synthetic` minus `real`, melanoma AUC): {p['mean']:+.3f}, "
                   f"95% CI {_ci(p['ci95'])}: {p['outcome']} (margin {p['margin']:+.2f}); "
                   f"{'above' if p['above_real_augment'] else 'not above'} `real+augment`; pre-registered success "
                   f"{'met' if p['success'] else 'not met'}{' (stretch met)' if p['stretch'] else ''}.")
    return out


def attach_primary(doc: dict) -> None:
    """``doc["primary"]``: the pre-registered reading (:func:`primary_outcome`) on the primary test set, for a
    run of the default v2 protocol with a generator; nothing otherwise (other runs are exploratory)."""
    t = next((t for t in doc["tests"] if t["name"] == PRIMARY_TEST), None)
    d = (t or {}).get("deltas", {}).get(PRIMARY[0], {}).get("melanoma_auc")
    if not doc.get("preregistered") or d is None:
        return
    aug = t.get("pairs", {}).get("real+synthetic vs real+augment", {}).get("melanoma_auc")
    doc["primary"] = {"test": PRIMARY_TEST, "comparison": f"{PRIMARY[0]} vs {PRIMARY[1]}", "metric": "melanoma_auc",
                      **primary_outcome(d, aug)}


def git_provenance() -> dict:
    """The code's commit (and whether the work tree differs from it) and the commit that first added the
    v2 pre-registration to eval/README.md; ``git merge-base --is-ancestor PREREG CODE`` checks their order.
    Nulls with a reason outside a git checkout."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()

    try:
        head = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "eval", "gan"))
        prereg = git("log", "--reverse", "--format=%H", "-S", PREREG_MARKER, "--", "eval/README.md").splitlines()
        return {"code_commit": head, "code_modified": dirty, "preregistration_commit": prereg[0] if prereg else None}
    except (OSError, subprocess.SubprocessError) as e:
        return {"code_commit": None, "preregistration_commit": None,
                "reason": f"not a git checkout of the project ({type(e).__name__})"}


def _ratios(text: str | None) -> list[float | None] | None:
    if text is None:
        return None
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--synthetic-ratio: {text!r} is not a number or a comma-separated list")
    if not vals or any(v < 0 or not math.isfinite(v) for v in vals):
        raise argparse.ArgumentTypeError("--synthetic-ratio: ratios must be finite and >= 0")
    return vals


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("eval.utility", "lesiongan-utility"), description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--real", required=True, help="labelled real training set (any gan.data layout with labels)")
    p.add_argument("--split", default=None, help="ISIC 2017 split of --real (default: train)")
    p.add_argument("--subset", metavar="LIST",
                   help="train every setting on only the --real images named in this image list (gan.data.subset's "
                        "format: one name per line, as gan.train --subset reads it); with --dev, the development "
                        "fold is drawn within the subset. Recorded in utility.json (list name, hash, count); "
                        "a subset run never writes the generator's results.json")
    p.add_argument("--synthetic", help="conditional generator file, or a labelled folder written by gan.synthesize")
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="v2",
                   help="v2 (default, pre-registered: exposure-matched steps, uniform synthetic share, real-long "
                        "control) or v1 (the earlier protocol)")
    p.add_argument("--dev", action="store_true",
                   help=f"the development fold: train on {100 - int(DEV_FRACTION * 100)}%% of --real, test on the other "
                        f"{int(DEV_FRACTION * 100)}%% (seed {DEV_SEED}) and the ISIC 2017 validation split; never HAM10000")
    p.add_argument("--classifier", choices=ARCHS, default=None,
                   help="small (default: the protocol's small CNN) or resnet18 (exploratory, about 10x the cost)")
    p.add_argument("--test", action="append", default=[], metavar="PATH[@split]",
                   help="an extra labelled test set (repeatable); @split picks an ISIC 2017 split")
    p.add_argument("--no-default-tests", action="store_true",
                   help="leave out the default test sets (ISIC 2017 validation, HAM10000 beside --real)")
    p.add_argument("--settings", nargs="+", default=None, choices=SETTINGS)
    p.add_argument("--seeds", type=int, default=None, help="training seeds 0..K-1, the same in every setting "
                                                            "(default: the protocol's)")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps of the real setting (default: the protocol's)")
    p.add_argument("--synthetic-ratio", type=_ratios, default=None, metavar="R[,R...]",
                   help="synthetic (and augmented) images per real image of every class (v2 default 1); a "
                        "comma-separated list runs an exploratory sweep")
    p.add_argument("--share", choices=("uniform", "majority"), default=None,
                   help="uniform: --synthetic-ratio per real image of every class (v2); majority: fill every "
                        "minority class up to the majority's count (v1)")
    p.add_argument("--exposure", choices=("matched", "fixed"), default=None,
                   help="matched: steps in proportion to the setting's size (v2); fixed: the same steps (v1)")
    p.add_argument("--synthetic-seed", type=int, default=0, help="seed k's synthetic set is this + k (default 0)")
    p.add_argument("--bootstrap", type=int, default=None, help="bootstrap resamples of seeds and test images (default 1000)")
    p.add_argument("--quick", action="store_true",
                   help=f"a first look: {QUICK['seeds']} seeds, {QUICK['steps']} steps, {QUICK['bootstrap']} resamples")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="trainings run at once, one thread each (default: 2 on a machine with 2 or more cores)")
    p.add_argument("--out", help="folder for utility.json, utility.md and the finished trainings (a rerun resumes)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--no-save", action="store_true", help="do not write the generator's run folder results.json")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads with --workers 1 (default 2)")
    args = p.parse_args(argv)

    base = PROTOCOLS[args.protocol]
    overrides = {}
    if args.seeds is not None or args.quick:
        overrides["seeds"] = args.seeds if args.seeds is not None else QUICK["seeds"]
    if args.bootstrap is not None or args.quick:
        overrides["bootstrap"] = args.bootstrap if args.bootstrap is not None else QUICK["bootstrap"]
    recipe = base.recipe
    if args.steps is not None or args.quick:
        recipe = replace(recipe, steps=args.steps if args.steps is not None else QUICK["steps"])
    if args.classifier is not None:
        recipe = replace(recipe, arch=args.classifier)
    if args.share is not None:
        overrides["share"] = args.share
    if args.exposure is not None:
        overrides["exposure"] = args.exposure
    ratios = args.synthetic_ratio or [base.ratio]
    if (args.share or base.share) == "majority":
        if args.synthetic_ratio:
            p.error("--synthetic-ratio goes with --share uniform (majority fills each class up to the largest)")
        ratios = [None]
    if args.settings:
        overrides["settings"] = tuple(args.settings)
    try:
        protocol = replace(base, recipe=recipe, ratio=ratios[0], **overrides)
    except ValueError as e:
        p.error(str(e))
    if args.workers < 1 or args.threads < 1:
        p.error("--workers and --threads must be >= 1")
    if args.synthetic is None and any(s in ("real+synthetic", "synthetic") for s in protocol.settings):
        p.error("--synthetic is required for the settings real+synthetic and synthetic (or pick --settings)")
    if args.dev and (args.test or args.no_default_tests):
        p.error("--dev picks its own test set (the held-out fold and the validation split): drop --test/--no-default-tests")
    out = None
    if args.out:
        from gan.fileio import prepare_output

        try:
            out = prepare_output(args.out, "--out")
        except (ValueError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    torch.set_num_threads(max(1, args.threads))
    t_start = time.time()
    try:
        real = load_labelled(args.real, split=args.split)
        if args.subset:
            from gan.data.subset import select

            real = select(real, args.subset)  # ValueError naming LIST: empty, or names an image --real lacks
        labelled = [i for i, label in enumerate(real.labels) if label is not None]
        classes = real.class_names()
        real_x = real.images[labelled]
        real_y = np.array([classes.index(real.labels[i]) for i in labelled], np.int64)
        tests: list[TestSet] = []
        if args.dev:
            train_idx, held = dev_split(real_y)
            held_x, held_y = real_x[held], real_y[held]
            real_x, real_y = real_x[train_idx], real_y[train_idx]
            note = (f"{len(held)} images of --real held out (seed {DEV_SEED}, {int(DEV_FRACTION * 100)}% of every class); "
                    f"the generator may have been trained on them")
            xs, ys, notes = [held_x], [held_y], [note]
            for name, path, split in default_tests(args.real, real):
                if name == "isic2017-validation":
                    v = make_test_set(load_labelled(path, split=split), classes, name)
                    xs.append(v.images)
                    ys.append(v.y)
                    notes.append(f"{len(v.y)} ISIC 2017 validation images")
            tests = [TestSet("development", real.source, torch.cat(xs), np.concatenate(ys), notes)]
        else:
            specs = [] if args.no_default_tests else default_tests(args.real, real)
            for spec in args.test:
                path, split = parse_test(spec)
                specs.append((Path(path).name + (f"-{split}" if split else ""), path, split))
            if not specs:
                p.error("no test set: give --test PATH (the defaults were not found or were turned off)")
            tests = [make_test_set(load_labelled(path, split=split), classes, name) for name, path, split in specs]
        present = sorted(set(real_y.tolist()))
        if len(present) < 2:
            raise ValueError(f"{args.real}: the training set has one class only ({classes[present[0]] if present else 'none'}): "
                             f"a classifier needs two or more")
        for t in tests:
            if len(set(t.y.tolist())) < 2:
                raise ValueError(f"test set {t.name}: one class only: AUC and balanced accuracy need two or more")
        syn = SyntheticSource(args.synthetic, classes) if args.synthetic else None
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"real: {len(real_y)} images ({', '.join(f'{c} {int((real_y == i).sum())}' for i, c in enumerate(classes))}); "
          f"tests: {', '.join(f'{t.name} {len(t.y)}' for t in tests)}; protocol {args.protocol}, "
          f"{len(protocol.settings)} settings x {protocol.seeds} seeds, {recipe.arch} classifier, "
          f"{args.workers} worker(s)", file=sys.stderr)
    default_run = (args.protocol == "v2" and not args.dev and not args.subset and protocol == PROTOCOL_V2
                   and syn is not None and syn.kind == "generator" and len(ratios) == 1 and args.synthetic_seed == 0)
    docs = []
    for r in ratios:
        cache = out / "trainings" if out is not None else None
        doc = run_utility(real_x, real_y, classes, tests, syn, protocol=replace(protocol, ratio=r),
                          synthetic_seed=args.synthetic_seed, workers=args.workers, cache=cache, progress=True)
        doc = {"format": FORMAT, "version": VERSION, "protocol_name": args.protocol,
               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
               "command": portable_command(["python -m eval.utility", *(argv if argv is not None else sys.argv[1:])]),
               "quick": bool(args.quick), "dev": bool(args.dev), "preregistered": default_run,
               "real": {"source": portable_name(real.source), "layout": real.layout, "split": real.split,
                        "n": int(len(real_y)),
                        **({"subset": {"list": real.info["subset"], "sha256": real.info["subset_sha256"],
                                       "n": len(real.names)}} if args.subset else {})},
               "synthetic": syn.info if syn else None, **doc, "provenance": git_provenance(),
               "seconds": time.time() - t_start, "workers": args.workers}
        attach_primary(doc)
        doc["verdicts"] = verdicts(doc)
        docs.append(doc)
    text = "\n".join((f"## ratio {d['synthetic_ratio']:g}\n\n" if len(docs) > 1 else "") + markdown(d) + "\n"
                     + "\n".join(d["verdicts"]) + "\n" for d in docs)
    doc = docs[0] if len(docs) == 1 else {"format": FORMAT, "version": VERSION, "sweep": docs}
    if out is not None:
        from gan.fileio import atomic_write_text

        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "utility.json", json.dumps(doc, indent=1) + "\n")
        atomic_write_text(out / "utility.md", text)
    if (syn is not None and syn.kind == "generator" and not args.no_save and len(docs) == 1 and not args.dev
            and not args.subset):
        from gan.rundir import RunDir

        run = RunDir(Path(args.synthetic).parent if Path(args.synthetic).is_file() else args.synthetic)
        if run.is_run():
            old = (run.read_results() or {}).get("utility")
            if old and old.get("version", 1) == 1 and doc.get("protocol_name") == "v2":
                doc["v1"] = old  # keep the earlier protocol's report beside the new one
            elif old and old.get("v1"):
                doc["v1"] = old["v1"]
            print(f"wrote {run.update_results('utility', doc)}", file=sys.stderr)
    print(json.dumps(doc, indent=1) if args.json else text)
    print(f"done in {(time.time() - t_start) / 60:.1f} min", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
