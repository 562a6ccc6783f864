"""Training the dermoscopy encoder (:mod:`eval.encoder`): the lesion_id split, its own small
supervised loop (not :mod:`gan.loop`: one network, one loss), the held-out scores, the command line
and the model card.

    python -m eval.encoder_train train --data ../shared/data/ham10000 --out runs/derm-encoder \
        --precision bf16
    python -m eval.encoder_train train --resume RUN            # continue after the last finished epoch
    python -m eval.encoder_train bench --data ../shared/data/ham10000 --arch resnet18 resnet18-w32
    python -m eval.encoder_train ship RUN --to checkpoints/derm-encoder --isic2017 ../shared/data/isic2017

Every epoch draws its order, augmentation and dropout from generators seeded by ``(seed, epoch)``
and the learning rate is a function of the step, so a resumed run repeats the uninterrupted one.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from tqdm import tqdm

from eval import encoder as enc
from eval.encoder import (CHECKPOINT, CONFIG, ENCODER, KIND_TRAINING, MODEL_CARD, SPLIT, STATS, EncoderConfig,
                          EncoderNet, to_input)
from gan.assets import portable_command, portable_name
from gan.cli import entry_point, prog
from gan.fileio import atomic_write_text
from gan.rundir import RunDir

HAM_METADATA = "HAM10000_metadata.csv"
DEFAULT_ARCH = "resnet18-w32-s2"  # chosen by `bench` (see the model card)


@dataclass(frozen=True)
class EncoderTrainConfig:
    """How the encoder is trained; saved in the run folder's config and in each checkpoint.

    Args:
        data: the HAM10000 folder (``HAM10000_metadata.csv`` with ``lesion_id``, and the images).
        epochs: passes over the training lesions' images.
        batch_size: images per step (the last incomplete batch of an epoch is dropped).
        lr: AdamW's peak learning rate (linear warm-up over ``warmup_epochs``, then cosine to 0).
        weight_decay: AdamW's decoupled weight decay.
        warmup_epochs: length of the warm-up.
        holdout: share of each class's lesions held out (never trained on).
        seed: drives the split, the initial weights, the order, augmentation and dropout.
        precision: "bf16" (autocast; weights and optimizer in float32) or "fp32".
        threads: torch intra-op threads (0: torch's default). 1 by default: on a CPU shared with
            other jobs, two oneDNN threads measured 10-40x slower than one (they wait for each other).
        channels_last: run the network in channels-last memory format (faster oneDNN convolutions).
        balance: "loss": cross-entropy weighted by inverse class frequency of the training images.
    """

    data: str | None = None
    epochs: int = 50
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    holdout: float = 0.15
    seed: int = 0
    precision: str = "bf16"
    threads: int = 1
    channels_last: bool = True
    balance: str = "loss"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"--batch-size must be >= 2, got {self.batch_size}")
        if not 0 < self.holdout < 1:
            raise ValueError(f"--holdout must be between 0 and 1, got {self.holdout}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        if self.balance != "loss":
            raise ValueError(f"balance must be 'loss', got {self.balance!r}")

    @classmethod
    def from_dict(cls, d: dict) -> EncoderTrainConfig:
        from gan.configdict import config_from_dict

        return config_from_dict(cls, d, "encoder training config")


# -- the split ----------------------------------------------------------------------------------


def split_by_lesion(lesion_ids: list[str], labels: list[str], holdout: float = 0.15, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Split images by lesion: every image of a lesion goes to the same side.

    Stratified by class: of each class's lesions (a lesion's class is its images' most common
    label), ``round(holdout * count)`` are held out, at least one when the class has two or more.

    Args:
        lesion_ids: one per image.
        labels: one per image.
        holdout: share of lesions held out.
        seed: the split is a function of the seed and the (lesion, label) pairs, not of their order.

    Returns:
        ``(train indices, held-out indices)`` into the images, each sorted.
    """
    if len(lesion_ids) != len(labels):
        raise ValueError(f"{len(lesion_ids)} lesion ids for {len(labels)} labels")
    by_lesion: dict[str, Counter] = {}
    for lesion, label in zip(lesion_ids, labels):
        by_lesion.setdefault(lesion, Counter())[label] += 1
    by_class: dict[str, list[str]] = {}
    for lesion, counts in by_lesion.items():
        label = min(counts, key=lambda c: (-counts[c], c))
        by_class.setdefault(label, []).append(lesion)
    rng = np.random.default_rng(seed)
    held: set[str] = set()
    for label in sorted(by_class):
        lesions = sorted(by_class[label])
        n = len(lesions)
        k = min(n - 1, max(1, round(holdout * n))) if n >= 2 else 0
        held.update(lesions[i] for i in rng.permutation(n)[:k])
    is_held = np.array([lesion in held for lesion in lesion_ids], bool)
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def read_ham_lesions(folder: str | os.PathLike) -> dict[str, str]:
    """``{image_id: lesion_id}`` from a HAM10000 folder's metadata file."""
    p = Path(folder) / HAM_METADATA
    if not p.is_file():
        raise ValueError(f"--data {folder}: no {HAM_METADATA} (the encoder is trained on HAM10000, split by lesion_id)")
    with open(p, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"image_id", "lesion_id"} <= set(rows[0]):
        raise ValueError(f"{p}: expected image_id and lesion_id columns")
    return {r["image_id"]: r["lesion_id"] for r in rows}


# -- scores ---------------------------------------------------------------------------------------


def per_class_recall(y: np.ndarray, pred: np.ndarray, k: int) -> list[float | None]:
    """Recall of each class 0..k-1 (None for a class absent from ``y``)."""
    return [float(np.mean(pred[y == c] == c)) if np.any(y == c) else None for c in range(k)]


def balanced_accuracy(y: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Mean recall over the classes present in ``y``."""
    return float(np.mean([r for r in per_class_recall(y, pred, k) if r is not None]))


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative
    (ties count one half), by the Mann-Whitney rank sum. NaN without both positives and negatives."""
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(logits: np.ndarray, y: np.ndarray, class_names: list[str]) -> dict:
    """Balanced accuracy, per-class recall and melanoma-vs-rest AUC (on the melanoma probability)."""
    k = len(class_names)
    pred = logits.argmax(1)
    out = {"n": int(len(y)), "balanced_accuracy": balanced_accuracy(y, pred, k),
           "accuracy": float(np.mean(pred == y)),
           "recall": dict(zip(class_names, per_class_recall(y, pred, k)))}
    if "melanoma" in class_names:
        m = class_names.index("melanoma")
        out["melanoma_auc"] = roc_auc(y == m, enc.softmax(logits)[:, m])
    return out


def score_isic2017_3class(logits: np.ndarray, labels: list[str], class_names: list[str]) -> dict:
    """ISIC 2017's three classes from the 7-way logits: melanoma -> melanoma, nevus -> nevus,
    seborrheic keratosis -> benign_keratosis (HAM's ``bkl``, a broader class); the decision is the
    argmax over those three logits, the melanoma score their softmax's melanoma share."""
    mapping = {"melanoma": "melanoma", "nevus": "nevus", "seborrheic_keratosis": "benign_keratosis"}
    cols = [class_names.index(mapping[c]) for c in mapping]
    y = np.array([list(mapping).index(label) for label in labels])
    sub = logits[:, cols]
    out = score(sub, y, list(mapping))
    out["ci95"] = bootstrap_ci(sub, y, list(mapping))
    return out


def bootstrap_ci(logits: np.ndarray, y: np.ndarray, class_names: list[str], reps: int = 1000, seed: int = 0) -> dict:
    """95% percentile bootstrap intervals (images resampled with replacement, ``reps`` times, seeded)
    of the balanced accuracy and the melanoma AUC."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {"balanced_accuracy": [], "melanoma_auc": []}
    for _ in range(reps):
        i = rng.integers(0, len(y), len(y))
        r = score(logits[i], y[i], class_names)
        draws["balanced_accuracy"].append(r["balanced_accuracy"])
        draws["melanoma_auc"].append(r.get("melanoma_auc", float("nan")))
    return {k: [float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))] for k, v in draws.items()}


def isic2017_overlap(ham_folder: str | os.PathLike, isic_folder: str | os.PathLike) -> int:
    """How many HAM10000 image ids also appear in the ISIC 2017 ground-truth files of ``isic_folder``."""
    ham = set(read_ham_lesions(ham_folder))
    isic = set()
    for p in sorted(Path(isic_folder).glob("ISIC-2017_*_Part3_GroundTruth.csv")):
        with open(p, newline="", encoding="utf-8") as f:
            isic |= {r["image_id"] for r in csv.DictReader(f)}
    return len(ham & isic)


# -- the loop -------------------------------------------------------------------------------------


def lr_at(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine to 0 at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))


def class_weights(y: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse class frequency, scaled so that a balanced set weighs 1 per image (n / (k * n_c))."""
    counts = torch.bincount(y, minlength=k).float()
    return torch.where(counts > 0, len(y) / (k * counts.clamp(min=1)), torch.zeros_like(counts))


@torch.no_grad()
def predict_logits(net: EncoderNet, images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Logits of uint8 NCHW images at the network's size, in eval mode, float32."""
    net.eval()
    out = [net(to_input(images[i:i + batch_size]))[1].float() for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, net.head.out_features), np.float32)


def _epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def train(run: Path, images: torch.Tensor, y: torch.Tensor, train_idx: np.ndarray, held_idx: np.ndarray,
          mcfg: EncoderConfig, tcfg: EncoderTrainConfig, resume: dict | None = None, progress: bool = True,
          info: dict | None = None, stop_after: int | None = None) -> EncoderNet:
    """Train the encoder, writing a checkpoint and a stats line per epoch and ``encoder.pt`` at the end.

    Args:
        run: the run folder (its config and split already written).
        images: uint8 (N, 3, size, size), all images; ``y`` their class indices (int64).
        train_idx, held_idx: the split (:func:`split_by_lesion`).
        mcfg, tcfg: the network's and the training's configs.
        resume: a training checkpoint (:func:`load_checkpoint`) to continue from.
        progress: a tqdm bar on stderr.
        info: provenance stored in ``encoder.pt`` (command, data, split counts).
        stop_after: stop after this epoch, as an interrupted run would (its checkpoint written,
            no ``encoder.pt``); None: train all ``tcfg.epochs``.

    Returns:
        The trained network (eval mode).
    """
    from gan.data.augmentation import augment

    if tcfg.threads:
        torch.set_num_threads(tcfg.threads)
    k = len(mcfg.class_names)
    torch.manual_seed(tcfg.seed)
    net = EncoderNet(mcfg)
    fmt = torch.channels_last if tcfg.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.AdamW(net.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    start_epoch, elapsed = 0, 0.0
    if resume is not None:
        net.load_state_dict(resume["net"])
        opt.load_state_dict(resume["opt"])
        start_epoch, elapsed = int(resume["epoch"]), float(resume["time_s"])
    tr = torch.as_tensor(train_idx, dtype=torch.long)
    y_tr = y[tr]
    weights = class_weights(y_tr, k)
    steps_per_epoch = len(tr) // tcfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(tr)} training images are fewer than one batch (--batch-size {tcfg.batch_size})")
    total, warmup = steps_per_epoch * tcfg.epochs, max(1, round(tcfg.warmup_epochs * steps_per_epoch))
    held_images, y_held = images[torch.as_tensor(held_idx, dtype=torch.long)], y[torch.as_tensor(held_idx)].numpy()
    bar = tqdm(total=total, initial=start_epoch * steps_per_epoch, unit="step", dynamic_ncols=True,
               disable=not progress, desc="derm encoder")
    for epoch in range(start_epoch, min(tcfg.epochs, stop_after or tcfg.epochs)):
        t0 = time.perf_counter()
        g = _epoch_generator(tcfg.seed, epoch)
        torch.manual_seed(tcfg.seed * 1_000_003 + epoch)  # dropout
        order = tr[torch.randperm(len(tr), generator=g)]
        net.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for s in range(steps_per_epoch):
            idx = order[s * tcfg.batch_size:(s + 1) * tcfg.batch_size]
            x = to_input(augment(images[idx], g)).contiguous(memory_format=fmt)
            target = y[idx]
            for group in opt.param_groups:
                group["lr"] = lr_at(epoch * steps_per_epoch + s, total, warmup, tcfg.lr)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=tcfg.precision == "bf16"):
                _, logits = net(x)
            loss = F.cross_entropy(logits.float(), target, weight=weights)
            if not torch.isfinite(loss):
                raise ValueError(f"the encoder's loss became {loss.item()} at epoch {epoch + 1}, step {s}; "
                                 f"the last checkpoint in {run} is intact (try a lower --lr)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == target).sum())
            seen += len(idx)
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_sum / seen:.3f}")
        train_s = time.perf_counter() - t0
        held = score(predict_logits(net, held_images), y_held, list(mcfg.class_names))
        elapsed += time.perf_counter() - t0
        row = {"epoch": epoch + 1, "loss": loss_sum / seen, "train_accuracy": correct / seen,
               "heldout_balanced_accuracy": held["balanced_accuracy"], "heldout_melanoma_auc": held.get("melanoma_auc"),
               "heldout_accuracy": held["accuracy"], "heldout_recall": held["recall"], "heldout_n": held["n"],
               "lr": opt.param_groups[0]["lr"], "images_per_s": seen / train_s, "epoch_s": time.perf_counter() - t0,
               "time_s": elapsed}
        save_checkpoint(run / CHECKPOINT, net, opt, epoch + 1, elapsed, mcfg, tcfg)
        RunDir(run).append_log(STATS, row)
        tqdm.write(f"epoch {epoch + 1}/{tcfg.epochs}: loss {row['loss']:.3f}, held-out balanced accuracy "
                   f"{row['heldout_balanced_accuracy']:.3f}, melanoma AUC {_fmt(row['heldout_melanoma_auc'])} "
                   f"({row['epoch_s']:.0f} s, {row['images_per_s']:.0f} img/s)", file=sys.stderr)
    bar.close()
    net.eval()
    if stop_after is not None and stop_after < tcfg.epochs:
        return net
    done = dict(info or {}, epochs=tcfg.epochs, train_time_s=round(elapsed, 1), seed=tcfg.seed,
                saved=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    enc.save_encoder(net, mcfg, run / ENCODER, done)
    return net


def save_checkpoint(path: Path, net: EncoderNet, opt: torch.optim.Optimizer, epoch: int, time_s: float,
                    mcfg: EncoderConfig, tcfg: EncoderTrainConfig) -> None:
    from gan.checkpoint import save

    save({"kind": KIND_TRAINING, "version": enc.FORMAT_VERSION, "config": json.dumps(mcfg.to_dict()),
          "train": json.dumps(asdict(tcfg)), "net": net.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
          "time_s": time_s, "info": "{}"}, path)


def load_checkpoint(path: Path) -> dict:
    """A training checkpoint, its configs parsed (ValueError naming the file when unusable)."""
    d = enc.load_file(path, (KIND_TRAINING,))
    try:
        d["train"] = EncoderTrainConfig.from_dict(json.loads(d["train"]))
        if not isinstance(d["net"], dict) or not isinstance(d["opt"], dict) or not isinstance(d["epoch"], int):
            raise TypeError("missing net, opt or epoch")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: incomplete encoder training checkpoint ({e})") from None
    return d


def read_stats(run: str | os.PathLike) -> list[dict]:
    """The stats lines, the last one written for each epoch (a resumed run repeats none, but a killed one
    may): :meth:`gan.rundir.RunDir.read_log` keyed by epoch."""
    return RunDir(run).read_log(STATS, key="epoch")


# -- loading HAM10000 -----------------------------------------------------------------------------


def load_ham(folder: str, size: int, progress: bool = True):
    """HAM10000 at ``size`` px through :func:`gan.data.load_dataset`, with lesion ids.

    Returns:
        ``(ImageSet, lesion_ids, class indices (int64 tensor))``.
    """
    from gan.data import load_dataset

    ds = load_dataset(folder, size=size, layout="ham10000", progress=progress)
    lesions = read_ham_lesions(folder)
    missing = [n for n in ds.names if n not in lesions]
    if missing:
        raise ValueError(f"--data {folder}: {len(missing)} images have no lesion_id in {HAM_METADATA} "
                         f"(e.g. {missing[0]})")
    unknown = sorted({lab for lab in ds.labels if lab not in enc.HAM_CLASSES})
    if unknown:
        raise ValueError(f"--data {folder}: classes {unknown} are not HAM10000's seven")
    y = torch.tensor([enc.HAM_CLASSES.index(lab) for lab in ds.labels], dtype=torch.long)
    return ds, [lesions[n] for n in ds.names], y


# -- the commands ---------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        given = [f"--{k.replace('_', '-')}" for k in ("data", "out", "arch", "seed", "precision", "batch_size", "lr")
                 if getattr(args, k) is not None]
        if given:
            raise ValueError(f"--resume continues with the run's own config; drop {', '.join(given)}")
        run = Path(args.resume)
        ckpt = load_checkpoint(run / CHECKPOINT)  # before the lock: a folder that is no run is refused as such
        mcfg, tcfg = ckpt["config"], ckpt["train"]
        if args.epochs is not None and args.epochs != tcfg.epochs:
            raise ValueError(f"--epochs {args.epochs}: the run trains {tcfg.epochs} epochs (its learning-rate "
                             f"schedule depends on it); start a new run instead")
        if ckpt["epoch"] >= tcfg.epochs:
            print(f"{run}: already trained {tcfg.epochs} epochs", file=sys.stderr)
            return 0
        # One writer (gan.rundir's lock, as a GAN run's); stats lines of epochs after the checkpoint (a run
        # killed while writing them) are dropped.
        RunDir(run).open_for_writing().truncate_log(STATS, ckpt["epoch"], key="epoch")
        split = json.loads((run / SPLIT).read_text(encoding="utf-8"))
    else:
        if args.data is None or args.out is None:
            raise ValueError("train needs --data (the HAM10000 folder) and --out (a folder for run folders), "
                             "or --resume RUN")
        mcfg = EncoderConfig.for_arch(args.arch or DEFAULT_ARCH)
        tcfg = EncoderTrainConfig(data=os.path.abspath(args.data), epochs=args.epochs or 50, seed=args.seed or 0,
                                  precision=args.precision or "bf16", batch_size=args.batch_size or 64,
                                  lr=args.lr or 2e-3, threads=args.threads)
        ckpt = None
    check_precision(tcfg.precision)
    ds, lesion_ids, y = load_ham(tcfg.data, mcfg.size, progress=not args.no_progress)
    if ckpt is None:
        train_idx, held_idx = split_by_lesion(lesion_ids, ds.labels, tcfg.holdout, tcfg.seed)
        run = RunDir.create(args.out, "derm-encoder", "ham10000", mcfg.size).open_for_writing().path
        atomic_write_text(run / CONFIG, json.dumps({"format": enc.FORMAT_VERSION, "model": mcfg.to_dict(),
                                                     "train": asdict(tcfg)}, indent=2) + "\n")
        split = split_record(ds.names, lesion_ids, ds.labels, train_idx, held_idx, tcfg)
        atomic_write_text(run / SPLIT, json.dumps(split, indent=1) + "\n")
    else:
        index = {n: i for i, n in enumerate(ds.names)}
        held_idx = np.array(sorted(index[n] for n in split["heldout_images"]))
        train_idx = np.setdiff1d(np.arange(len(ds)), held_idx)
    print(f"run folder {run}: {len(train_idx)} training images, {len(held_idx)} held out "
          f"({split['counts']['heldout_lesions']} lesions)", file=sys.stderr)
    info = {"command": portable_command(["python -m eval.encoder_train", *sys.argv[1:]]) if args.command_line is None
            else args.command_line, "data": "HAM10000", "data_images": len(ds), "split": split["counts"],
            "resize": ds.info.get("resize")}
    train(run, ds.images, y, train_idx, held_idx, mcfg, tcfg, ckpt, progress=not args.no_progress, info=info)
    print(str(run / ENCODER))
    return 0


def check_precision(precision: str) -> None:
    """Refuse bf16 where this CPU would emulate it (:func:`gan.nets.check_bf16`, the one bf16 check)."""
    from gan.nets import check_bf16

    if precision == "bf16":
        check_bf16("cpu", instead="fp32")


def split_record(names, lesion_ids, labels, train_idx, held_idx, tcfg: EncoderTrainConfig) -> dict:
    """What ``encoder-split.json`` holds: the held-out lesion and image ids and the counts per class."""
    held_lesions = sorted({lesion_ids[i] for i in held_idx})
    return {
        "by": "lesion_id", "holdout": tcfg.holdout, "seed": tcfg.seed, "stratified_by": "class",
        "counts": {"train_images": len(train_idx), "heldout_images": len(held_idx),
                   "train_lesions": len({lesion_ids[i] for i in train_idx}), "heldout_lesions": len(held_lesions),
                   "train_per_class": dict(Counter(labels[i] for i in train_idx).most_common()),
                   "heldout_per_class": dict(Counter(labels[i] for i in held_idx).most_common())},
        "heldout_lesions": held_lesions,
        "heldout_images": sorted(names[i] for i in held_idx),
    }


def cmd_bench(args: argparse.Namespace) -> int:
    """Training throughput of each architecture on the real images (a fixed number of steps)."""
    from gan.data.augmentation import augment

    check_precision(args.precision)
    torch.set_num_threads(args.threads)
    ds, _, y = load_ham(args.data, enc.INPUT_SIZE, progress=False)
    results = {}
    for arch in args.arch:
        mcfg = EncoderConfig.for_arch(arch)
        torch.manual_seed(0)
        net = EncoderNet(mcfg).train().to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
        g = torch.Generator().manual_seed(0)
        params = sum(p.numel() for p in net.parameters())
        times = []
        for s in range(args.steps + 2):
            idx = torch.randint(0, len(ds), (args.batch_size,), generator=g)
            x = to_input(augment(ds.images[idx], g)).contiguous(memory_format=torch.channels_last)
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                _, logits = net(x)
            loss = F.cross_entropy(logits.float(), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if s >= 2:  # the first steps warm up oneDNN
                times.append(time.perf_counter() - t0)
        ips = args.batch_size * len(times) / sum(times)
        results[arch] = {"params": params, "images_per_s": round(ips, 1),
                         "epoch_s_8500": round(8500 / ips, 1)}
        print(f"{arch}: {params / 1e6:.2f} M parameters, {ips:.0f} img/s ({args.precision}, batch "
              f"{args.batch_size}), ~{8500 / ips:.0f} s per epoch of 8,500 images", file=sys.stderr)
    print(json.dumps(results))
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    """Copy a finished run's encoder, config, stats and split into the shipped folder and write its card."""
    run, dest = Path(args.run), Path(args.to)
    encoder = enc.load_encoder(run / ENCODER)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (ENCODER, STATS, SPLIT):
        shutil.copyfile(run / name, dest / name)
    sha = enc.sha256_file(dest / ENCODER)
    cfg = json.loads((run / CONFIG).read_text(encoding="utf-8"))
    data = cfg["train"].get("data")
    cfg.update({"metric_version": encoder.metric_version, "sha256": sha,
                "encoder_bytes": (dest / ENCODER).stat().st_size})
    # The shipped config names the data set, not the folder it was read from on this machine.
    cfg["train"]["data"] = portable_name(data) if data else data
    atomic_write_text(dest / CONFIG, json.dumps(cfg, indent=2) + "\n")
    isic = evaluate_isic2017(encoder, args.isic2017) if args.isic2017 else None
    if isic is not None and data and Path(data).is_dir():
        isic["overlap_with_training_ids"] = isic2017_overlap(data, args.isic2017)
    bench = json.loads(Path(args.bench).read_text(encoding="utf-8")) if args.bench else None
    text = model_card(enc.load_encoder(dest / ENCODER), read_stats(run), json.loads((run / SPLIT).read_text()), isic,
                      bench)
    atomic_write_text(dest / MODEL_CARD, text)
    print(json.dumps({"sha256": sha, "isic2017_validation": isic}, indent=1))
    return 0


def evaluate_isic2017(encoder: enc.DermEncoder, folder: str) -> dict:
    """The 3-class scores on the ISIC 2017 validation split (150 images)."""
    from gan.data import load_dataset

    ds = load_dataset(folder, size=encoder.config.size, layout="isic2017", split="validation", progress=False)
    return score_isic2017_3class(encoder.logits(ds.images), ds.labels, encoder.class_names)


def model_card(encoder: enc.DermEncoder, stats: list[dict], split: dict, isic: dict | None,
               bench: dict | None = None) -> str:
    """The model card's Markdown, from the encoder file, its stats and split, the ISIC 2017 scores
    and the architecture measurement (``bench``'s JSON)."""
    cfg, info, last = encoder.config, enc.load_file(encoder.path, (enc.KIND_ENCODER,))["info"], stats[-1]
    c = split["counts"]
    per_class = "\n".join(f"| {name} | {c['train_per_class'].get(name, 0)} | {c['heldout_per_class'].get(name, 0)} "
                          f"| {_fmt(last['heldout_recall'].get(name))} |" for name in cfg.class_names)
    if isic is None:
        isic_text = "Not computed (ship without --isic2017)."
    else:
        isic_text = (
            f"ISIC 2017 validation split, {isic['n']} images (melanoma 30, nevus 78, seborrheic keratosis 42), "
            f"mapped to three classes: mel → melanoma, nv → nevus, seborrheic keratosis → HAM's `bkl` "
            f"(benign keratosis). HAM's `bkl` is broader than seborrheic keratosis (it also holds solar "
            f"lentigines and lichen-planus-like keratoses), so this mapping is approximate. The 3-class decision "
            f"is the argmax over those three logits; the melanoma score is their softmax's melanoma share.\n\n"
            f"| metric | value | 95% bootstrap interval |\n| --- | --- | --- |\n"
            f"| balanced accuracy (3 classes) | {isic['balanced_accuracy']:.3f} | "
            f"{_interval(isic['ci95']['balanced_accuracy'])} |\n"
            f"| melanoma-vs-rest AUC | {isic['melanoma_auc']:.3f} | {_interval(isic['ci95']['melanoma_auc'])} |\n"
            f"| accuracy | {isic['accuracy']:.3f} | |\n"
            + "".join(f"| recall {k} | {_fmt(v)} | |\n" for k, v in isic["recall"].items())
            + (f"\nHAM10000 and ISIC 2017 (training and validation ground truth) share "
               f"{isic['overlap_with_training_ids']} image ids.\n" if "overlap_with_training_ids" in isic else "")
            + "\nThese figures are far below the held-out HAM10000 ones (and rest on 150 images, 30 of them "
              "melanomas): ISIC 2017 comes from other sources than HAM10000; the gap is a domain shift that the `*_derm` "
              "metrics inherit (read them as distances in a HAM10000-trained space). For `derm1` the image "
              "geometry was checked and is not the cause: HAM10000's held-out images squashed to a square, as "
              "ISIC 2017's are, score as their centre crops do (balanced accuracy 0.649 vs 0.647).\n")
    minutes = info.get("train_time_s", last["time_s"]) / 60
    if bench:
        rows = "".join(f"| `{a}` | {r['params'] / 1e6:.2f} M | {r['images_per_s']:.0f} | {r['epoch_s_8500']:.0f} |\n"
                       for a, r in bench.items())
        arch_text = (f"\n## Choice of architecture\nTraining throughput on the HAM10000 images (`python -m eval.encoder_train "
                     f"bench`: bf16 autocast, channels-last, batch 64, one torch thread, on the shared 2-core CPU "
                     f"while other jobs ran, so the figures are relative):\n\n| architecture | parameters | "
                     f"images/s | s per epoch |\n| --- | --- | --- | --- |\n{rows}\n`{cfg.arch}` is the fastest by "
                     f"a wide margin (a stride-2 stem halves every feature map); at its speed {info.get('epochs')} "
                     f"epochs fit the time budget. Two torch threads measured 10-40x slower than one while other "
                     f"jobs shared the two cores, so training uses one.\n")
    else:
        arch_text = ""
    return f"""# Dermoscopy encoder `{cfg.metric_version}`

The feature space of LesionGAN's `*_derm` metrics (Fréchet distance, KID, precision/recall,
density/coverage, feature-space copy rate) and a 7-class lesion-type classifier. Load it with
`eval.encoder.load_encoder("checkpoints/derm-encoder")` (code-free: `torch.load(weights_only=True)`).

| | |
| --- | --- |
| metric version | `{cfg.metric_version}` (a retrained encoder is `derm2`, never a silent replacement) |
| file | `encoder.pt`, {encoder.path.stat().st_size / 1e6:.1f} MB |
| SHA-256 | `{encoder.sha256}` |
| architecture | `{cfg.arch}`: ResNet, 3x3 stem (stride {cfg.stem_stride}), stages of widths {list(cfg.widths)} with {list(cfg.blocks)} basic blocks, global average pool, linear + BatchNorm embedding of {cfg.embed_dim} dimensions (the feature vector), dropout {cfg.dropout}, linear 7-way head |
| input | 64x64 RGB uint8, scaled to [-1, 1]; no colour normalisation and no colour augmentation |
| resize | images not at 64 px: centre square crop, then `eval.images.resize_images(x, 64)` with its default mode `lanczos` (PIL LANCZOS), the filter `gan.data` uses for real images and every other metric by default. The HAM10000 training images (200x150) were read by `gan.data` (`{info.get('resize')}`) |
| classes | {", ".join(cfg.class_names)} |

## Data
HAM10000 (Tschandl, Rosendahl, Kittler, Sci. Data 5, 180161 (2018)), all {info.get('data_images', '?')} images, the
seven `dx` classes. It never saw an ISIC 2017 image: ISIC 2017 is LesionGAN's evaluation data.

**Split by `lesion_id`** (HAM10000 has several images of one lesion; no lesion is on both sides), stratified
by class, seed {split['seed']}, {split['holdout']:.0%} of each class's lesions held out:
{c['train_lesions']} lesions / {c['train_images']} images for training, {c['heldout_lesions']} lesions /
{c['heldout_images']} images held out. The held-out lesion and image ids are in `encoder-split.json`.

## Training
`{info.get('command', '?')}`

From scratch, {info.get('epochs')} epochs, one seed ({info.get('seed')}); AdamW, cosine learning rate
after a one-epoch warm-up; cross-entropy weighted by inverse class frequency; random flips and 90°
rotations only; bfloat16 autocast on a 2-core CPU: {minutes:.0f} minutes. Per-epoch loss and held-out
scores: `encoder-stats.jsonl`. The last epoch is shipped (no epoch was chosen on the held-out scores).
{arch_text}
## Held-out HAM10000 ({c['heldout_images']} images of {c['heldout_lesions']} lesions)

| metric | value |
| --- | --- |
| balanced accuracy (7 classes) | {last['heldout_balanced_accuracy']:.3f} |
| melanoma-vs-rest AUC | {_fmt(last['heldout_melanoma_auc'])} |
| accuracy | {last['heldout_accuracy']:.3f} |

| class | training images | held-out images | held-out recall |
| --- | --- | --- | --- |
{per_class}

Quality floor set for this encoder: balanced accuracy ≥ 0.55 and melanoma AUC ≥ 0.80 on these lesions
({'met' if last['heldout_balanced_accuracy'] >= 0.55 and (last['heldout_melanoma_auc'] or 0) >= 0.80 else 'NOT met'}).

## ISIC 2017 validation (evaluation only)
{isic_text}
## Licence and use
HAM10000 is licensed CC BY-NC 4.0, so these weights are for **non-commercial research only**. This is
a measuring instrument for generated images, not a diagnostic device: do not use it on patients.
Cite HAM10000 (above) and, for ISIC 2017, Codella et al., arXiv:1710.05006.
"""


def _interval(ci: list[float]) -> str:
    return f"[{ci[0]:.3f}, {ci[1]:.3f}]"


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("eval.encoder_train", "lesiongan-encoder"),
                                description="Train, measure and ship the dermoscopy encoder (derm metrics).")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train on HAM10000 (split by lesion_id) into a numbered run folder")
    t.add_argument("--data", help="the HAM10000 folder")
    t.add_argument("--out", help="folder for run folders (a new numbered one is made)")
    t.add_argument("--resume", metavar="RUN", help="a run folder to continue after its last finished epoch")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--precision", choices=("fp32", "bf16"))
    t.add_argument("--arch", choices=tuple(enc.ARCHS))
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--threads", type=int, default=1, help="torch threads (default 1; 0: torch's default)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(command_line=None)
    b = sub.add_parser("bench", help="training throughput per architecture on the real images")
    b.add_argument("--data", required=True)
    b.add_argument("--arch", nargs="+", default=list(enc.ARCHS), choices=tuple(enc.ARCHS))
    b.add_argument("--steps", type=int, default=20)
    b.add_argument("--batch-size", type=int, default=64)
    b.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    b.add_argument("--threads", type=int, default=1)
    s = sub.add_parser("ship", help="copy a finished run into the shipped folder and write its model card")
    s.add_argument("run")
    s.add_argument("--to", required=True)
    s.add_argument("--isic2017", help="the ISIC 2017 folder: score its validation split for the card")
    s.add_argument("--bench", help="the JSON that `bench` printed, for the card's choice of architecture")
    args = p.parse_args(argv)
    try:
        return {"train": cmd_train, "bench": cmd_bench, "ship": cmd_ship}[args.cmd](args)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
