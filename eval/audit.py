"""Membership audits on known halves: train a model's recipe on a seeded random half of its training
split (the members) and keep the other half (non-members of the same distribution), so that a
membership attack's score is not confounded by a shift between training and held-out images.

    python -m eval.audit split --data ../shared/data/isic2017 --out AUDIT [--seed 0]
    python -m eval.audit train AUDIT --recipe checkpoints/dcgan --half a [--kimg 480] [--keep-kimg 20]

``split`` writes ``AUDIT/split.json`` (seed, data set, both halves' names and content hashes) and the
two image lists ``half-a.txt`` / ``half-b.txt`` (:mod:`gan.data.subset`). ``train`` trains the recipe
(:func:`gan.train.read_recipe`: a run folder such as ``checkpoints/dcgan``) on one half into
``AUDIT/half-a/`` with a snapshot (G, D, G_ema) every ``--keep-kimg`` and ``fd_derm`` against the
full training split's fingerprint at each; run again, it resumes. Every image is a member of one half's
model and a non-member of the other's: audited in turn, the two models pool to 2 x N/2 members
against 2 x N/2 non-members. These are models of *the same recipe trained on half the data*, not the
shipped weights.

This module owns ``split.json``: ``{"format": "lesiongan-audit-split", "version": 1, "seed",
"data": {"name", "path", "split", "num_images"}, "halves": {"a": {"list", "n", "sha256"}, "b": ...}}``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gan.cli import entry_point, prog

FORMAT, VERSION = "lesiongan-audit-split", 1
HALVES = ("a", "b")
SPLIT_FILE = "split.json"


def make_split(data: str, out: str | Path, seed: int = 0, split: str | None = None) -> dict:
    """Split the data set's images into two seeded halves; write ``split.json`` and the two lists.
    Refuses to overwrite a different split already in ``out``."""
    from gan.data import DataConfig, load_dataset
    from gan.data.subset import list_sha256, split_names, write_image_list
    from gan.fileio import atomic_write_text

    out = Path(out)
    ds = load_dataset(DataConfig(data, split=split), progress=True)
    a, b = split_names(list(ds.names), seed)
    doc = {"format": FORMAT, "version": VERSION, "seed": int(seed),
           "data": {"name": Path(ds.source).name, "path": ds.source, "split": ds.split, "layout": ds.layout,
                    "num_images": len(ds)},
           "halves": {h: {"list": f"half-{h}.txt", "n": len(names), "sha256": list_sha256(names)}
                      for h, names in zip(HALVES, (a, b))}}
    old = read_split(out) if (out / SPLIT_FILE).exists() else None
    if old is not None:
        if old["halves"] != doc["halves"]:
            raise ValueError(f"{out / SPLIT_FILE}: holds another split (seed {old['seed']}); use another --out")
        return old
    out.mkdir(parents=True, exist_ok=True)
    for h, names in zip(HALVES, (a, b)):
        write_image_list(out / f"half-{h}.txt", names,
                         comment=f"membership audit, seed {seed}: half {h} of {len(ds)} images of {doc['data']['name']}")
    atomic_write_text(out / SPLIT_FILE, json.dumps(doc, indent=2) + "\n")
    return doc


def read_split(folder: str | Path) -> dict:
    """``split.json`` of an audit folder, checked; ValueError naming the file otherwise."""
    p = Path(folder) / SPLIT_FILE
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{p}: no split here (make one with: python -m eval.audit split)") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: unreadable ({e.__class__.__name__})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise ValueError(f"{p}: not a {FORMAT} version {VERSION} file")
    return doc


def half_names(folder: str | Path, half: str) -> list[str]:
    """The member names of one half, checked against ``split.json``'s hash."""
    from gan.data.subset import list_sha256, read_image_list

    doc = read_split(folder)
    if half not in doc["halves"]:
        raise ValueError(f"--half {half}: one of {', '.join(doc['halves'])}")
    entry = doc["halves"][half]
    names = read_image_list(Path(folder) / entry["list"])
    if list_sha256(names) != entry["sha256"]:
        raise ValueError(f"{Path(folder) / entry['list']}: changed since {SPLIT_FILE} was written")
    return names


def train_argv(folder: str | Path, half: str, recipe: str, data: str, kimg: float, keep_kimg: float,
               metrics_ref: str | None, threads: int | None) -> list[str]:
    """The ``gan.train`` arguments of one half's run: a fresh run, or ``--resume`` of the one there."""
    from gan.rundir import RunDir

    folder = Path(folder)
    half_names(folder, half)  # checks the list
    runs = folder / f"half-{half}"
    existing = sorted(p for p in runs.iterdir() if RunDir(p).checkpoint_path is not None) if runs.is_dir() else []
    extra = ["--threads", str(threads)] if threads else []
    if existing:
        return ["--resume", str(existing[-1]), "--kimg", f"{kimg:g}", *extra]
    argv = ["--recipe", recipe, "--data", data, "--subset", str(folder / f"half-{half}.txt"), "--out", str(runs),
            "--kimg", f"{kimg:g}", "--keep-kimg", f"{keep_kimg:g}", "--metrics-kimg", f"{keep_kimg:g}", *extra]
    if metrics_ref:
        argv += ["--metrics-ref", metrics_ref]
    return argv


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("eval.audit", "lesiongan-audit"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("split", help="split the training images into two seeded halves")
    s.add_argument("--data", required=True, help="the data set the recipe was trained on (e.g. ISIC 2017)")
    s.add_argument("--split", help="its split (ISIC 2017: train, the default)")
    s.add_argument("--out", required=True, help="the audit folder")
    s.add_argument("--seed", type=int, default=0, help="the split's seed (default 0)")
    t = sub.add_parser("train", help="train the recipe on one half (resumes a run already there)")
    t.add_argument("folder", help="the audit folder (from split)")
    t.add_argument("--half", required=True, choices=HALVES)
    t.add_argument("--recipe", default=None, help="the model whose recipe is audited: a run folder or "
                                                  "config.json (default: the shipped dcgan)")
    t.add_argument("--kimg", type=float, default=480.0, help="train for this many thousand images (default 480)")
    t.add_argument("--keep-kimg", type=float, default=20.0, help="snapshot interval in kimg (default 20)")
    t.add_argument("--metrics-ref", help="fingerprint FD derm is scored against (default: the shipped training-"
                                         "split fingerprint when the data is ISIC 2017 train, else the half's own)")
    t.add_argument("--threads", type=int, help="torch threads (default: the recipe's)")
    t.add_argument("--no-progress", action="store_true")
    return p


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "split":
            doc = make_split(args.data, args.out, args.seed, args.split)
            print(f"{Path(args.out) / SPLIT_FILE}: seed {doc['seed']}, halves of "
                  f"{doc['halves']['a']['n']} and {doc['halves']['b']['n']} images")
            return 0
        from gan import train
        from gan.assets import checkpoints_dir

        doc = read_split(args.folder)
        recipe = args.recipe or str(checkpoints_dir() / "dcgan")
        ref = args.metrics_ref
        shipped_ref = checkpoints_dir() / "fingerprints" / "isic2017-train-64.npz"
        if ref is None and doc["data"]["layout"] == "isic2017" and doc["data"]["split"] == "train" \
                and shipped_ref.is_file():
            ref = str(shipped_ref)
        targv = train_argv(args.folder, args.half, recipe, doc["data"]["path"], args.kimg, args.keep_kimg, ref,
                           args.threads)
        print("python -m gan.train " + " ".join(targv), file=sys.stderr)
        return train.main(targv + (["--no-progress"] if args.no_progress else []))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
