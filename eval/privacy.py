"""Membership-inference audit: could a generator's samples give away which images it was trained on?

    python -m eval.privacy --checkpoint checkpoints/dcgan/generator.pt --real ../shared/data/isic2017
                           [--heldout PATH[@split]] [--n 10000] [--seed 0] [--discriminator PATH]
                           [--bootstrap 1000] [--pairs 8] [--out DIR] [--json] [--no-save]

Members are the generator's training images (``--real``, the ISIC 2017 training split by default);
non-members are held-out images of the same distribution (``--heldout``; default: the validation split
of the same ISIC 2017 folder). Two attacks, each scored by its ROC AUC (members positive) with a 95%
bootstrap interval (members and non-members resampled separately); 0.5 means the attack cannot tell
members from non-members:

* **black-box distance** (GAN-Leaks' full black-box attack, Chen et al. 2020): for every member and
  non-member, the distance to its nearest of ``--n`` synthetic samples (default 10,000, seed
  ``--seed``; a conditional model draws classes in its training shares); the closer, the likelier a
  member. In two spaces: pixels (RMS difference on [0, 1] at 64 px) and the dermoscopy encoder's
  features (derm1, 128-d, Euclidean).
* **white-box discriminator** (LOGAN, Hayes et al. 2019): D's probability that an image is real, as the
  membership score; D from ``--discriminator``, the run folder's ``discriminator.pt`` or a training
  ``checkpoint.pt`` (a conditional D is given each image's own class; BatchNorm in eval mode). Where no D
  exists the report says so; where a conditional D cannot be given the images' classes (fewer than
  :data:`MIN_IMAGES` members or non-members carry one of the model's classes: an unlabelled folder), the
  black-box attacks run and the D row says why it did not.

Also the closest synthetic/training pairs (pixel and feature space) for a person to look at; their
images go to ``--out`` as ``closest-pairs.png`` and the report names the sample (seed, index, class) so
that any tool can regenerate it. Each attack ends in a verdict line from fixed thresholds
(:data:`VERDICTS`); none is a claim of formal privacy. The report goes into the model's
``results.json`` (section ``privacy``, through ``gan.rundir``) unless ``--no-save``.

Checked before the work: ``--out`` can be written (``gan.fileio.prepare_output``), members and
non-members hold at least :data:`MIN_IMAGES` images each, and the non-members are not the members
themselves; each is refused in one line naming the flag. The files in ``--out`` are written atomically:
a full disk leaves the previous file or none, never half of one.

``save_discriminator(checkpoint, out)`` writes a run's D (state dict and config, no code) as
``discriminator.pt``; ``load_discriminator(path)`` reads one (``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from eval.membership import nearest_distances
from gan.cli import entry_point, prog

FORMAT = "lesiongan-privacy"
VERSION = 1
KIND_DISCRIMINATOR = "lesiongan-discriminator"
DISCRIMINATOR_VERSION = 1
DEFAULT_N = 10_000
MIN_IMAGES = 10  # members and non-members each: with fewer, an AUC's 95% interval spans almost [0, 1]
SAMPLE_BATCH = 256  # generate()'s batch: sample j is remade bit for bit inside its own batch of this size
# The verdict thresholds on the attack AUC and its 95% interval, in the order they are tested.
VERDICTS = (
    ("ci_low > 0.8", "strong membership leak: the attack tells members from non-members most of the time "
                     "(the model reproduces training images)"),
    ("ci_low > 0.6", "measurable membership leak"),
    ("ci_low > 0.5", "weak but measurable membership signal"),
    ("ci_high < 0.5", "no membership leak of this kind: the attack scores members below non-members (for a "
                      "distance attack: members are farther from the samples; for D: D finds them less real)"),
    ("otherwise", "no measurable membership leak at this sample size"),
)
DISCLAIMER = ("An empirical attack at this sample size, not a formal privacy guarantee: the model was not trained "
              "with differential privacy, and a stronger attack or more held-out images could find what this one misses.")


# --- the discriminator file ------------------------------------------------------------------------


def save_discriminator(checkpoint: str | Path | dict, out: str | Path) -> Path:
    """Write D of a training checkpoint (a path or the dict ``gan.checkpoint.load`` returns) as a
    code-free file: ``{"kind": "lesiongan-discriminator", "version", "model", "config" (JSON), "D"
    (state dict), "info" ({"nimg", "source"})}``, atomically (``gan.checkpoint.save``)."""
    from gan import checkpoint as ckpt_io

    ckpt = ckpt_io.load(checkpoint, kinds=(ckpt_io.KIND_TRAIN,)) if not isinstance(checkpoint, dict) else checkpoint
    cfg = ckpt["config"]
    doc = {"kind": KIND_DISCRIMINATOR, "version": DISCRIMINATOR_VERSION, "model": cfg.model,
           # the data by name and content hash only, as a shipped generator's config: no folder of this machine
           "config": cfg.replace(data=cfg.data.portable(None)).to_json(),
           "D": {k: v.detach().cpu().clone() for k, v in ckpt["D"].items()},
           "info": json.dumps({"nimg": int(ckpt.get("nimg", 0)),
                               # the run folder and file, not the absolute path of the machine that wrote it
                               "source": f"{Path(checkpoint).parent.name}/{Path(checkpoint).name}"
                               if not isinstance(checkpoint, dict) else None})}
    out = Path(out)
    ckpt_io.save(doc, out)
    return out


def load_discriminator(path: str | Path) -> tuple[torch.nn.Module, Any, dict]:
    """(D in eval mode, its RunConfig, info) from a ``discriminator.pt`` or a training ``checkpoint.pt``.
    Loaded with ``torch.load(weights_only=True)``: a file holding code is refused, never run."""
    from gan import checkpoint as ckpt_io
    from gan.config import RunConfig

    path = Path(path)
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a discriminator file (missing, or not the zip archive torch.save writes)")
    try:
        doc = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure is a refusal
        raise ValueError(f"{path}: refused to load (holding more than tensors and plain values?): "
                         f"{ckpt_io.torch_load_reason(e)}") from None
    if isinstance(doc, dict) and doc.get("kind") == ckpt_io.KIND_TRAIN:
        doc = ckpt_io.load(path, kinds=(ckpt_io.KIND_TRAIN,))
        cfg, state, info = doc["config"], doc["D"], {"nimg": doc["nimg"], "source": f"{path.parent.name}/{path.name}"}
    elif isinstance(doc, dict) and doc.get("kind") == KIND_DISCRIMINATOR:
        if doc.get("version") != DISCRIMINATOR_VERSION:
            raise ValueError(f"{path}: discriminator format version {doc.get('version')} is not supported")
        cfg, state, info = RunConfig.from_json(doc["config"]), doc["D"], json.loads(doc.get("info") or "{}")
    else:
        raise ValueError(f"{path}: neither a discriminator.pt nor a training checkpoint")
    D = cfg.spec.build(cfg.model_cfg)[1]
    D.load_state_dict(state)
    return D.eval().requires_grad_(False), cfg, info


def find_discriminator(checkpoint: str | Path) -> Path | None:
    """The D beside a generator: the run folder's ``discriminator.pt``, else its ``checkpoint.pt``,
    else the file itself when it is a training checkpoint."""
    from gan.rundir import RunDir

    p = Path(checkpoint)
    folder = p if p.is_dir() else p.parent
    run = RunDir(folder)
    if run.discriminator_path is not None:
        return run.discriminator_path
    if p.is_file() and p.name != "generator.pt" and zipfile.is_zipfile(p):
        try:
            doc = torch.load(p, map_location="cpu", weights_only=True)
            if isinstance(doc, dict) and doc.get("kind") == "lesiongan-training-checkpoint":
                return p
        except Exception:  # noqa: BLE001
            return None
    return run.checkpoint_path


@torch.inference_mode()
def discriminator_scores(D: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor | None = None,
                         batch: int = 256) -> np.ndarray:
    """D's output (probability of real) for uint8 NCHW ``images``, scaled to [-1, 1] as in training."""
    out = []
    for i in range(0, len(images), batch):
        x = images[i:i + batch].float().div(127.5).sub(1.0)
        kw = {} if labels is None else {"labels": labels[i:i + batch]}
        out.append(D(x, **kw).float().view(-1))
    return torch.cat(out).numpy().astype(np.float64)


# --- distances and the attack ----------------------------------------------------------------------


def pixel_vectors(images_nhwc: np.ndarray) -> np.ndarray:
    """uint8 NHWC -> float32 (N, H*W*3) on [0, 1] scaled by 1/sqrt(H*W*3), so Euclidean distance is the RMS
    pixel difference."""
    n = len(images_nhwc)
    flat = images_nhwc.reshape(n, -1).astype(np.float32) / 255.0
    return flat / np.sqrt(flat.shape[1])


def stratified_weights(n_pos: int, n_neg: int, B: int, seed: int) -> np.ndarray:
    """(B, n_pos + n_neg) resample counts: members and non-members each resampled with replacement."""
    from eval.utility import bootstrap_weights

    return np.concatenate([bootstrap_weights(n_pos, B, seed), bootstrap_weights(n_neg, B, seed + 1)], axis=1)


def attack_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray, B: int = 1000, seed: int = 0) -> dict:
    """ROC AUC of a membership score (higher = likelier member) with a 95% percentile bootstrap interval."""
    from sklearn.metrics import roc_auc_score

    from eval.utility import weighted_auc

    scores = np.concatenate([member_scores, nonmember_scores])
    pos = np.r_[np.ones(len(member_scores), bool), np.zeros(len(nonmember_scores), bool)]
    auc = float(roc_auc_score(pos, scores))
    boot = weighted_auc(scores, pos, stratified_weights(len(member_scores), len(nonmember_scores), B, seed))
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return {"auc": auc, "ci95": [float(lo), float(hi)], "n_members": int(len(member_scores)),
            "n_nonmembers": int(len(nonmember_scores)), "bootstrap": int(B)}


def verdict(res: dict) -> str:
    """The verdict line of one attack (thresholds: :data:`VERDICTS`)."""
    lo, hi = res["ci95"]
    checks = {"ci_low > 0.8": lo > 0.8, "ci_low > 0.6": lo > 0.6, "ci_low > 0.5": lo > 0.5, "ci_high < 0.5": hi < 0.5,
              "otherwise": True}
    for rule, text in VERDICTS:
        if checks[rule]:
            return f"{text} (AUC {res['auc']:.3f}, 95% CI [{lo:.3f}, {hi:.3f}]; rule: {rule})"
    raise AssertionError


def closest_pairs(d: np.ndarray, nn: np.ndarray, names: list[str], k: int, space: str,
                  sample_labels: list[str | None], heldout_median: float) -> list[dict]:
    """The ``k`` members nearest to a synthetic sample: member index and name, sample index and class, distance
    and its ratio to the non-members' median nearest distance."""
    order = np.argsort(d, kind="stable")[:k]
    return [{"space": space, "member": int(i), "name": names[i], "sample": int(nn[i]), "sample_class": sample_labels[nn[i]],
             "distance": float(d[i]), "ratio_to_heldout_median": float(d[i] / heldout_median) if heldout_median else None}
            for i in order]


def set_record(ds) -> dict:
    """How a report names a set of images: the data set by its name (:func:`gan.data.dataset.dataset_name`)
    and content hash (:func:`gan.data.dataset.content_sha256`, as run configs name what they trained on),
    the folder as files meant to travel name it (:func:`gan.assets.portable_name`), split and count."""
    from gan.assets import portable_name
    from gan.data.dataset import content_sha256, dataset_name

    return {"source": portable_name(ds.source), "name": dataset_name(ds), "sha256": content_sha256(ds),
            "split": ds.split, "count": len(ds)}


def check_sets(members, nonmembers, what: tuple[str, str] = ("members", "non-members")) -> None:
    """Refuse sets a membership attack cannot score: fewer than :data:`MIN_IMAGES` members or non-members.

    Args:
        members, nonmembers: the two sets (``images`` uint8 NCHW).
        what: how messages name them (the command line: ``--real PATH``, ``--heldout PATH``).

    Raises:
        ValueError: naming the set that is too small.
    """
    for name, ds in zip(what, (members, nonmembers)):
        n = len(ds.images)
        if n < MIN_IMAGES:
            raise ValueError(f"{name}: {n} image{'' if n == 1 else 's'}; a membership attack needs at least "
                             f"{MIN_IMAGES} members and {MIN_IMAGES} non-members")


def labelled_subset(ds, class_names: list[str]) -> tuple[torch.Tensor | None, np.ndarray]:
    """(class indices, positions) of the images of ``ds`` whose label is one of ``class_names``: what a
    conditional D can be given; (None, all positions) for an unconditional model."""
    if not class_names:
        return None, np.arange(len(ds.images))
    keep = np.array([i for i, c in enumerate(ds.labels) if c in class_names], np.int64)
    return torch.tensor([class_names.index(ds.labels[i]) for i in keep], dtype=torch.long), keep


def audit(G, members, nonmembers, *, n: int = DEFAULT_N, seed: int = 0, encoder=None, D=None, d_info=None,
          bootstrap: int = 1000, pairs: int = 8, progress: bool = True) -> tuple[dict, dict]:
    """Run both attacks. ``members`` / ``nonmembers`` are ``gan.data.ImageSet``s (or objects with
    ``images`` uint8 NCHW, ``names`` and ``labels``); ``G`` a loaded generator (``generate``, ``resolution``,
    optional ``class_names``/``labels_for``); ``encoder`` a DermEncoder (None: the feature-space attack is
    skipped); ``D`` a discriminator (None: the white-box row says why).

    Returns (report, extras): the JSON-ready report and {"samples": uint8 NHWC, "member_images": ...} for
    pictures of the pairs.

    Raises:
        ValueError: fewer than :data:`MIN_IMAGES` members or non-members (:func:`check_sets`).
    """
    from tqdm import tqdm

    check_sets(members, nonmembers)
    t0 = time.time()
    bar = tqdm(total=4, desc="privacy", file=sys.stderr, disable=not progress)
    bar.set_postfix_str(f"sampling {n}")
    samples = G.generate(n, seed=seed, batch_size=SAMPLE_BATCH)
    class_names = list(getattr(G, "class_names", []) or [])
    if class_names:
        sample_labels = [class_names[i] for i in G.labels_for(n, None, seed).tolist()]
    else:
        sample_labels = [None] * n
    bar.update(1)
    mem = members.images.permute(0, 2, 3, 1).numpy()
    non = nonmembers.images.permute(0, 2, 3, 1).numpy()
    if samples.shape[1:] != mem.shape[1:]:
        from eval.images import resize_images

        samples = resize_images(samples, mem.shape[1])
    report: dict[str, Any] = {"n_samples": int(n), "seed": int(seed), "sample_batch": SAMPLE_BATCH, "resolution": int(mem.shape[1]),
                              "n_members": len(mem), "n_nonmembers": len(non), "attacks": {}, "closest_pairs": []}
    bar.set_postfix_str("pixel distances")
    bank = pixel_vectors(samples)
    dm, nm = nearest_distances(pixel_vectors(mem), bank)
    dn, _ = nearest_distances(pixel_vectors(non), bank)
    res = attack_auc(-dm, -dn, bootstrap, seed=101)
    res.update({"space": f"pixel_{mem.shape[1]}", "distance": "RMS pixel difference on [0, 1]",
                "median_member": float(np.median(dm)), "median_nonmember": float(np.median(dn))})
    res["verdict"] = verdict(res)
    report["attacks"]["distance_pixel"] = res
    report["closest_pairs"] += closest_pairs(dm, nm, list(members.names), pairs, res["space"], sample_labels,
                                             float(np.median(dn)))
    bar.update(1)
    if encoder is not None:
        bar.set_postfix_str("encoder features")
        fs = encoder.features(samples)
        fm, fn = encoder.features(mem), encoder.features(non)
        dm2, nm2 = nearest_distances(fm, fs)
        dn2, _ = nearest_distances(fn, fs)
        res = attack_auc(-dm2, -dn2, bootstrap, seed=202)
        res.update({"space": "derm1 features", "distance": "Euclidean, 128-d",
                    "encoder_sha256": getattr(encoder, "sha256", None),
                    "median_member": float(np.median(dm2)), "median_nonmember": float(np.median(dn2))})
        res["verdict"] = verdict(res)
        report["attacks"]["distance_derm"] = res
        report["closest_pairs"] += closest_pairs(dm2, nm2, list(members.names), pairs, "derm1 features",
                                                 sample_labels, float(np.median(dn2)))
    else:
        report["attacks"]["distance_derm"] = {"unavailable": "no dermoscopy encoder"}
    bar.update(1)
    bar.set_postfix_str("discriminator")
    lm, km = labelled_subset(members, class_names)
    ln, kn = labelled_subset(nonmembers, class_names)
    if D is not None and min(len(km), len(kn)) < MIN_IMAGES:  # a conditional D and (mostly) unlabelled images
        D, d_info = None, (f"skipped: the conditional discriminator is given each image's class, and {len(km)} of "
                           f"{len(members.images)} members and {len(kn)} of {len(nonmembers.images)} non-members carry "
                           f"one of the model's classes ({', '.join(class_names)}); it needs at least {MIN_IMAGES} of "
                           f"each (a labelled layout: isic2017, ham10000, isic-archive, imagefolder)")
    if D is None:
        report["attacks"]["discriminator"] = {"unavailable": d_info or "no discriminator"}
    else:
        sm = discriminator_scores(D, members.images[km], lm)
        sn = discriminator_scores(D, nonmembers.images[kn], ln)
        res = attack_auc(sm, sn, bootstrap, seed=303)
        res.update({"score": "D(x), the probability of real" + (" given the image's class" if class_names else ""),
                    "median_member": float(np.median(sm)), "median_nonmember": float(np.median(sn)),
                    **(d_info if isinstance(d_info, dict) else {})})
        res["verdict"] = verdict(res)
        report["attacks"]["discriminator"] = res
    bar.update(1)
    bar.close()
    report["disclaimer"] = DISCLAIMER
    report["seconds"] = time.time() - t0
    idx_m = [p["member"] for p in report["closest_pairs"]]
    idx_s = [p["sample"] for p in report["closest_pairs"]]
    return report, {"samples": samples[idx_s], "members": mem[idx_m]}


def pairs_figure(extras: dict, report: dict, path: Path) -> Path:
    """A PNG: each closest pair side by side (training image left, synthetic right), one row per pair;
    written atomically (``gan.fileio.atomic_write``)."""
    from PIL import Image

    from gan.fileio import atomic_write

    mem, syn = extras["members"], extras["samples"]
    if not len(mem):
        return path
    s = mem.shape[1]
    canvas = np.full((len(mem) * (s + 4), 2 * s + 12, 3), 255, np.uint8)
    for i, (a, b) in enumerate(zip(mem, syn)):
        y = i * (s + 4)
        canvas[y:y + s, :s] = a
        canvas[y:y + s, s + 12:] = b
    atomic_write(path, lambda f: Image.fromarray(canvas).save(f, format="PNG"))
    return path


def markdown(doc: dict) -> str:
    lines = ["| attack | space / score | AUC | 95% CI | members | non-members | verdict |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in doc["attacks"].items():
        if "auc" in r:
            lines.append(f"| {name} | {r.get('space', r.get('score', ''))} | {r['auc']:.3f} | [{r['ci95'][0]:.3f}, "
                         f"{r['ci95'][1]:.3f}] | {r['n_members']} | {r['n_nonmembers']} | {r['verdict'].split(' (')[0]} |")
        else:
            lines.append(f"| {name} | | n/a | | | | {r['unavailable']} |")
    lines += ["", "Closest training/synthetic pairs:", "", "| space | training image | sample (seed, index, class) | distance | / held-out median |",
              "| --- | --- | --- | --- | --- |"]
    for p in doc["closest_pairs"]:
        lines.append(f"| {p['space']} | {p['name']} | {doc['seed']}, {p['sample']}, {p['sample_class'] or '-'} | "
                     f"{p['distance']:.4f} | {p['ratio_to_heldout_median']:.2f} |")
    lines += ["", doc["disclaimer"]]
    return "\n".join(lines) + "\n"


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("eval.privacy", "lesiongan-privacy"), description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--checkpoint", required=True, help="generator.pt, a training checkpoint.pt or a run folder")
    p.add_argument("--real", required=True, help="the generator's training set (the members)")
    p.add_argument("--split", default=None, help="ISIC 2017 split of --real (default: train)")
    p.add_argument("--heldout", default=None, metavar="PATH[@split]",
                   help="non-members of the same distribution (default: the validation split of an ISIC 2017 --real)")
    p.add_argument("--n", type=int, default=DEFAULT_N, help=f"synthetic samples (default {DEFAULT_N:,})")
    p.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    p.add_argument("--discriminator", default=None, help="D for the white-box attack (default: found beside the checkpoint)")
    p.add_argument("--no-white-box", action="store_true", help="skip the discriminator attack")
    p.add_argument("--derm-encoder", help="the dermoscopy encoder (default: $LESIONGAN_DERM_ENCODER, else the shipped "
                                          "checkpoints/derm-encoder, found from any folder), or 'none'")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--pairs", type=int, default=8, help="closest pairs to keep per space (default 8)")
    p.add_argument("--out", help="folder for privacy.json, privacy.md and closest-pairs.png")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--no-save", action="store_true", help="do not write the model folder's results.json")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = p.parse_args(argv)
    if args.n < 1 or args.bootstrap < 10 or args.pairs < 0:
        p.error("--n must be >= 1, --bootstrap >= 10, --pairs >= 0")
    torch.set_num_threads(max(1, args.threads))
    from gan import load_generator
    from gan.assets import portable_command, portable_name
    from gan.data import SIZES, load_dataset
    from gan.fileio import prepare_output

    tty = sys.stderr.isatty()
    try:
        out = prepare_output(args.out, "--out") if args.out else None  # before any work
        encoder_path = None
        if (args.derm_encoder or "").lower() != "none":
            from eval.metrics.derm import encoder_for_flag

            encoder_path = encoder_for_flag(args.derm_encoder, "--derm-encoder",
                                            "; give --derm-encoder PATH, or 'none' to skip the feature-space attack")
        G = load_generator(args.checkpoint)
        members = load_dataset(args.real, size=G.resolution if G.resolution in SIZES else 64,
                               split=args.split, progress=tty)
        if args.heldout:
            hp, _, hs = args.heldout.partition("@")
            nonmembers = load_dataset(hp, size=members.size, split=hs or None, progress=tty)
        elif members.layout == "isic2017" and members.split in (None, "train"):
            nonmembers = load_dataset(args.real, size=members.size, split="validation", progress=tty)
        else:
            p.error("--heldout is required unless --real is an ISIC 2017 folder (whose validation split is the default)")
        held_flag = f"--heldout {nonmembers.source}" if args.heldout else f"the default --heldout {nonmembers.source}"
        check_sets(members, nonmembers, (f"--real {members.source}", held_flag))
        if (nonmembers.source, nonmembers.split) == (members.source, members.split):
            raise ValueError(f"{held_flag}: these are the members themselves (--real); non-members must be images "
                             f"the generator was not trained on")
        encoder = None
        if encoder_path is not None:
            from eval.encoder import load_encoder

            encoder = load_encoder(encoder_path)
        D, d_info = None, None
        if args.no_white_box:
            d_info = "skipped (--no-white-box)"
        else:
            dpath = Path(args.discriminator) if args.discriminator else find_discriminator(args.checkpoint)
            if dpath is None:
                d_info = ("no discriminator: the folder keeps only the exported generator (G_ema) and no "
                          "discriminator.pt or training checkpoint, so the white-box attack cannot run")
            else:
                D, dcfg, info = load_discriminator(dpath)
                d_info = {"discriminator": portable_name(dpath), "d_nimg": info.get("nimg"),
                          "generator_nimg": G.info.get("nimg")}
                if dcfg.model != G.model_name:
                    raise ValueError(f"{dpath}: a {dcfg.model} discriminator for a {G.model_name} generator")
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t0 = time.time()
    report, extras = audit(G, members, nonmembers, n=args.n, seed=args.seed, encoder=encoder, D=D, d_info=d_info,
                           bootstrap=args.bootstrap, pairs=args.pairs, progress=True)
    doc = {"format": FORMAT, "version": VERSION,
           "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "command": portable_command(["python -m eval.privacy", *(argv if argv is not None else sys.argv[1:])]),
           "generator": {"path": portable_name(args.checkpoint), "model": G.model_name, "nimg": G.info.get("nimg"),
                         "classes": list(G.class_names)},
           "members": set_record(members), "nonmembers": set_record(nonmembers),
           "thresholds": [{"rule": r, "verdict": v} for r, v in VERDICTS], **report,
           "wall_seconds": time.time() - t0}
    text = markdown(doc)
    try:  # each file whole or not at all: gan.fileio.WriteError names the file that a full disk refused
        if out is not None:
            from gan.fileio import atomic_write_text

            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "privacy.json", json.dumps(doc, indent=1) + "\n")
            atomic_write_text(out / "privacy.md", text)
            pairs_figure(extras, doc, out / "closest-pairs.png")
        if not args.no_save:
            from gan.rundir import RunDir

            cp = Path(args.checkpoint)
            run = RunDir(cp if cp.is_dir() else cp.parent)
            if run.is_run():
                print(f"wrote {run.update_results('privacy', doc)}", file=sys.stderr)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(doc, indent=1) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
