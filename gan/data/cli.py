"""``python -m gan.data PATH``: what a reader sees in a data set folder.

Prints the layout, the usable images, the classes (numbered as conditional models number them:
:func:`gan.data.labels.class_order`) and the data set's own codes with their counts, and every
skipped file with its reason. Images are decoded (through the cache) at ``--size``, so files that
cannot be decoded are reported too. ``--json`` prints the same as one JSON document.

    python -m gan.data /data/isic2017 --split validation
    python -m gan.data my_images/ --labels my_labels.csv --json
    python -m gan.data /data/isic2017 --sample 500 --seed 0 --write-list subset-500.txt

``--sample N --write-list FILE`` writes a seeded random N of the images, stratified by class (each
class keeps its share; :func:`gan.data.subset.sample_names`), as an image list that ``gan.train
--subset`` and ``eval.utility --subset`` read: a data-scarcity study on exactly those images.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

from gan.cli import entry_point, prog
from gan.data.dataset import SIZES, DataWarning, ImageSet, load_dataset, show_warnings_plainly
from gan.data.layouts import LAYOUTS, SPLITS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("gan.data", "lesiongan-data"),
                                description="Show what gan.data reads in a data set folder: layout, images, "
                                            "class counts (canonical and the data set's codes), skipped files.")
    p.add_argument("path", help="the data set folder")
    p.add_argument("--layout", default="auto", choices=["auto", *LAYOUTS], help="force a layout (default: detect)")
    p.add_argument("--split", default=None, choices=SPLITS, help="isic2017 split (default: train)")
    p.add_argument("--labels", default=None, metavar="CSV",
                   help="a CSV file with image,label columns whose labels replace the layout's")
    p.add_argument("--size", type=int, default=64, choices=SIZES, help="image size to decode at (default 64)")
    p.add_argument("--cache-dir", default=None, help="cache folder (default: $LESIONGAN_CACHE or ~/.cache/lesiongan)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while decoding")
    p.add_argument("--sample", type=int, default=None, metavar="N",
                   help="with --write-list: a seeded random N of the images, stratified by class")
    p.add_argument("--seed", type=int, default=0, help="--sample's seed (default 0)")
    p.add_argument("--write-list", default=None, metavar="FILE",
                   help="write --sample's image names to FILE (an image list for --subset)")
    return p


def report(ds: ImageSet) -> dict[str, Any]:
    """What :func:`main` prints, as a JSON-ready dict.

    Keys: path, layout, split, size, images, listed (images + skipped), unlabelled, label_field,
    code_field, class_order (the class names; class index = position), classes (images per class,
    in class order), codes (images per code, most first), skipped (``{"name", "reason"}`` each),
    cache (``{"path", "from_cache"}``).
    """
    counts = ds.class_counts()
    order = ds.class_names()
    return {
        "path": ds.source, "layout": ds.layout, "split": ds.split, "size": ds.size,
        "images": len(ds), "listed": len(ds) + len(ds.skipped),
        "unlabelled": sum(label is None for label in ds.labels),
        "label_field": ds.info.get("label_field"), "code_field": ds.info.get("code_field"),
        "class_order": order, "classes": {c: counts[c] for c in order}, "codes": ds.code_counts(),
        "skipped": [{"name": n, "reason": r} for n, r in ds.skipped],
        "cache": {"path": ds.cache_path, "from_cache": bool(ds.info.get("from_cache"))},
    }


def format_report(r: dict[str, Any]) -> str:
    """The text form of :func:`report`."""
    split = f", split {r['split']}" if r["split"] else ""
    lines = [f"data:     {r['path']}", f"layout:   {r['layout']}{split}",
             f"images:   {r['images']} usable at {r['size']} px ({r['listed']} listed, {len(r['skipped'])} skipped)"]
    if r["label_field"] or r["code_field"]:
        lines.append(f"labels:   {r['label_field'] or 'none'}; codes: {r['code_field'] or 'none'}")
    width = max([len(c) for c in [*r["classes"], *r["codes"]]] + [len("unlabelled")])
    if r["classes"]:
        lines.append("classes (index, class, images):")
        lines += [f"  {i:>3}  {c:<{width}}  {n:>7}" for i, (c, n) in enumerate(r["classes"].items())]
    else:
        lines.append("classes:  none (unlabelled)")
    if r["classes"] and r["unlabelled"]:
        lines.append(f"       {'unlabelled':<{width}}  {r['unlabelled']:>7}")
    if r["codes"]:
        lines.append("codes (the data set's own, images):")
        lines += [f"       {c:<{width}}  {n:>7}" for c, n in r["codes"].items()]
    if r["skipped"]:
        lines.append(f"skipped ({len(r['skipped'])}):")
        lines += [f"  {s['name']}: {s['reason']}" for s in r["skipped"]]
    source = "read from" if r["cache"]["from_cache"] else "written to"
    lines.append(f"cache:    {source} {r['cache']['path']}")
    return "\n".join(lines)


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if (args.sample is None) != (args.write_list is None):
        print("error: --sample and --write-list go together", file=sys.stderr)
        return 2
    with warnings.catch_warnings(), show_warnings_plainly():
        # The report lists every skipped file; the warning that summarises them would repeat it.
        warnings.filterwarnings("ignore", message=r".*: skipped \d+ of \d+ images", category=DataWarning)
        try:
            ds = load_dataset(args.path, size=args.size, layout=args.layout, split=args.split,
                              cache_dir=args.cache_dir, labels=args.labels, progress=not args.no_progress)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    r = report(ds)
    if args.write_list is not None:
        from gan.data.subset import sample_names, write_image_list

        try:
            names = sample_names(ds.names, ds.labels, args.sample, args.seed)
            chosen = set(names)
            picked = [label for name, label in zip(ds.names, ds.labels) if name in chosen]
            counts = {c: picked.count(c) for c in dict.fromkeys(ds.labels)}
            shares = ", ".join(f"{c or 'unlabelled'} {k}" for c, k in counts.items())
            split = f" ({r['split']})" if r["split"] else ""
            write_image_list(args.write_list, names, f"{len(names)} of {len(ds)} images of {Path(r['path']).name}{split}, "
                                                     f"seed {args.seed}, stratified by class: {shares}")
        except (ValueError, OSError) as e:
            print(f"error: --write-list {args.write_list}: {e}", file=sys.stderr)
            return 2
        r["sample"] = {"n": len(names), "seed": args.seed, "classes": counts, "list": args.write_list}
    print(json.dumps(r, indent=1) if args.json else format_report(r))
    if args.write_list is not None and not args.json:
        print(f"wrote {args.write_list}: {len(names)} images, seed {args.seed} ({shares})")
    return 0
