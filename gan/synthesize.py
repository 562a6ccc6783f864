"""Write a labelled synthetic data set that drops into a research pipeline:

    python -m gan.synthesize --checkpoint checkpoints/dcgan-cond/generator.pt --out /tmp/syn \\
        --per-class melanoma=1000,seborrheic_keratosis=500 [--seed 0] [--layout isic2017|imagefolder] \\
        [--size 64] [--precision fp32]
    python -m gan.synthesize --checkpoint checkpoints/dcgan/generator.pt --out /tmp/syn --n 500   # unconditional
    python -m gan.synthesize --checkpoint checkpoints/dcgan-cond/generator.pt --out /tmp/curated \\
        --per-class melanoma=1000,nevus=1000 --keep-if-classifier ../shared/data/isic2017 [--keep-threshold 0.5] \\
        [--keep-seeds 1]   # curated: only samples a real-only classifier agrees with

Layouts:

* ``isic2017``: ``OUT/ISIC-2017_Training_Data/SYN_0000001.png ...`` and
  ``OUT/ISIC-2017_Training_Part3_GroundTruth.csv`` (``image_id,melanoma,seborrheic_keratosis``), as the
  challenge lays out its training split: ``gan.data`` and any pipeline written for the challenge read
  it unchanged. Holds melanoma, seborrheic keratosis and nevus only.
* ``imagefolder``: ``OUT/<class>/SYN_0000001.png``, one folder per class, as torchvision's
  ``ImageFolder`` reads it.
* ``folder`` (unconditional models): ``OUT/images/SYN_0000001.png``.

Always ``OUT/manifest.json`` (format id, a random run id, whether the run finished, generator file and
its SHA-256, model and config, class and seed of every file, precision, date, package version) and
``OUT/README.md`` (what the images are). ``--overwrite`` deletes only the files that such a manifest
lists: a folder with another program's ``manifest.json`` (or none) is refused untouched. The manifest
is written first, marked incomplete, and again when the last image is written: an interrupted set is
rerun with ``--overwrite``, and ``gan.data`` warns when it reads one. Deterministic:
image ``j`` of class ``c`` is latent ``j`` of seed ``S * 1000 + index(c)`` (unconditional: of seed
``S``), so the same command writes byte-identical images and CSV; only the manifest's date differs.

Curation (``--keep-if-classifier REAL``, conditional models; off by default): a sample is kept only if a
classifier trained on the real labelled images of REAL alone (``PATH`` or ``PATH@split``) agrees with its
label, p(label | image) >= ``--keep-threshold`` (default 0.5), judged at the generator's resolution. The
classifier is the utility protocol v2 ``real`` one that ``eval.class_fidelity`` uses (``--keep-seeds K``
networks, probabilities averaged), trained once and cached in ``--cache-dir``. Candidates of a class are
latents ``0, 1, 2, ...`` of its seed, drawn in passes of 256 as above; the accepted ones are kept in
latent order until the class has its count, so the same command writes the same bytes, and a threshold
of 0 writes the uncurated set bit for bit. A class that keeps fewer than its count among
``CURATION_CAP`` times as many candidates stops the run with its acceptance rate. The manifest records
the filter (classifier, seeds, REAL's name and content hash, threshold), per class the candidates drawn,
kept and the acceptance rate, and every file's latent index; the README says the set is curated.
The classifier comes from the ``eval`` package, found as the provider ``classifier`` of the entry-point
group ``lesiongan.sample_filters`` (:mod:`gan.hooks`).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from gan.assets import portable_command, portable_name
from gan.cli import entry_point, prog
from gan.data.manifest import MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, read_own_manifest
from gan.fileio import atomic_write, atomic_write_text, clean_stale_temps, sha256_file

LAYOUTS = ("isic2017", "imagefolder", "folder")
MAX_IMAGES = 200_000  # a sane cap: 200k PNGs at 64 px are about 2 GB
CHUNK = 256  # latents per forward pass, whatever --batch says (see synthesize); G.generate's default too
ISIC2017_CLASSES = ("melanoma", "seborrheic_keratosis", "nevus")
ISIC2017_DIR = "ISIC-2017_Training_Data"
ISIC2017_CSV = "ISIC-2017_Training_Part3_GroundTruth.csv"
FILTER_GROUP = "lesiongan.sample_filters"  # where --keep-if-classifier finds its classifier (gan.hooks)
FILTER_PROVIDER = "classifier"
CURATION_CAP = 50  # candidates drawn per image asked for, at most, before a class is given up


@dataclass(frozen=True)
class Item:
    """One image to write: its file name, class (None: unconditional), seed and latent index (a curated
    set's is None until its candidate is accepted)."""

    name: str
    label: str | None
    seed: int
    index: int | None


def parse_per_class(text: str) -> dict[str, int]:
    """``"melanoma=1000,nevus=500"`` -> ``{"melanoma": 1000, "nevus": 500}`` (order kept)."""
    out: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, count = part.partition("=")
        name = name.strip()
        try:
            n = int(count)
        except ValueError:
            n = -1
        if not sep or not name or n < 0:
            raise ValueError(f"--per-class {text!r}: expected CLASS=COUNT pairs, e.g. melanoma=1000,nevus=500")
        if name in out:
            raise ValueError(f"--per-class names {name!r} twice")
        out[name] = n
    if not out:
        raise ValueError("--per-class names no class")
    check_cap(sum(out.values()), "--per-class")
    return out


def check_cap(total: int, flag: str) -> None:
    """Refuse more than ``MAX_IMAGES`` before anything is allocated for them."""
    if total > MAX_IMAGES:
        raise ValueError(f"{flag}: {total:,} images is over the {MAX_IMAGES:,} this command writes at once; "
                         f"split it into several sets with other seeds")


def plan(class_names: list[str], per_class: dict[str, int] | None, n: int | None, seed: int) -> list[Item]:
    """The images to write, in file order. Conditional models take ``per_class``, unconditional ``n``."""
    if class_names:
        if per_class is None:
            raise ValueError(f"this model is conditional: say how many of each class with --per-class "
                             f"(classes: {', '.join(class_names)})")
        check_cap(sum(per_class.values()), "--per-class")
        unknown = [c for c in per_class if c not in class_names]
        if unknown:
            raise ValueError(f"--per-class: unknown class {unknown[0]!r}; this model knows {', '.join(class_names)}")
        items, k = [], 0
        for c, count in per_class.items():
            s = seed * 1000 + class_names.index(c)
            for j in range(count):
                k += 1
                items.append(Item(f"SYN_{k:07d}.png", c, s, j))
    else:
        if per_class is not None:
            raise ValueError("--per-class needs a conditional model; this one is unconditional: use --n N")
        if n is None:
            raise ValueError("--n is required for an unconditional model")
        check_cap(n, "--n")
        items = [Item(f"SYN_{j + 1:07d}.png", None, seed, j) for j in range(n)]
    if not items:
        raise ValueError("nothing to write: every count is 0")
    return items


def relative_path(item: Item, layout: str) -> str:
    if layout == "isic2017":
        return f"{ISIC2017_DIR}/{item.name}"
    if layout == "imagefolder":
        return f"{item.label}/{item.name}"
    return f"images/{item.name}"


def check_layout(layout: str, class_names: list[str], items: list[Item]) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"--layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if layout in ("isic2017", "imagefolder") and not class_names:
        raise ValueError(f"--layout {layout} needs class labels; this model is unconditional: use --layout folder")
    if layout == "isic2017":
        other = sorted({i.label for i in items} - set(ISIC2017_CLASSES))
        if other:
            raise ValueError(f"--layout isic2017 holds {', '.join(ISIC2017_CLASSES)} only, not {', '.join(other)}; "
                             f"use --layout imagefolder")


def inside(out: Path, rel: str) -> Path:
    """``out / rel``, checked to stay inside ``out`` once resolved (no ``..``, no absolute path, no link
    out of it); ValueError naming ``--out`` otherwise."""
    if not isinstance(rel, str) or not rel or "\0" in rel or Path(rel).is_absolute() or ".." in Path(rel).parts:
        raise ValueError(f"--out {out}: refusing the path {rel!r}: it would lie outside the folder")
    path = out / rel
    base = out.resolve()
    if not path.resolve().is_relative_to(base):
        raise ValueError(f"--out {out}: refusing {rel!r}: it resolves to {path.resolve()}, outside the folder")
    return path


def manifest_paths(out: Path, doc: dict) -> list[str]:
    """Every path (relative to ``out``) that the run of manifest ``doc`` wrote, the manifest last."""
    rel = [f.get("file") if isinstance(f, dict) else f for f in doc["files"]] + list(doc.get("support_files", []))
    for r in rel:
        inside(out, r)
    return [*rel, MANIFEST]


def prepare_out(out: Path, overwrite: bool, new_paths: list[str] = ()) -> None:
    """Refuse a non-empty folder unless ``overwrite`` and it holds a set this command wrote (its manifest
    with the format id and a run id); then delete the files that manifest lists, and only those (and
    the folders they leave empty). Files the new set would replace that the manifest does not list
    are refused before anything is deleted."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: is a file, not a folder")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"--out {out}: {parent} is a file, not a folder")
    if out.is_dir():
        clean_stale_temps(out, recursive=False)  # a run killed before its manifest leaves only a temp file
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"--out {out}: folder is not empty (pass --overwrite to replace a set written by "
                             f"gan.synthesize)")
        old = manifest_paths(out, read_own_manifest(out))
        listed = set(old)
        for rel in new_paths:
            path = inside(out, rel)
            if rel not in listed and (path.exists() or path.is_symlink()):
                raise ValueError(f"--out {out}: {rel} is not listed in its {MANIFEST}, and the new set would "
                                 f"replace it; refusing to overwrite")
        clean_stale_temps(out)  # what a killed run of this command left (provably gone writers only)
        folders = set()
        for rel in old:
            path = out / rel
            if path.is_symlink() or path.is_file():
                path.unlink()
            folders.update(p for p in path.parents if p != out and p.is_relative_to(out))
        for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
            if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
                folder.rmdir()
    out.mkdir(parents=True, exist_ok=True)


def png_bytes(image: np.ndarray, size: int) -> bytes:
    img = Image.fromarray(image)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def ground_truth_csv(items: list[Item]) -> str:
    """The challenge's Part 3 CSV: one row per image, 1.0 in the melanoma or seborrheic_keratosis
    column (both 0.0: nevus)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_id", "melanoma", "seborrheic_keratosis"])
    for it in items:
        w.writerow([Path(it.name).stem, "1.0" if it.label == "melanoma" else "0.0",
                    "1.0" if it.label == "seborrheic_keratosis" else "0.0"])
    return buf.getvalue()


def uncurated(G, group: list[Item]) -> Iterator[tuple[Item, np.ndarray]]:
    """Each item of ``group`` (one class and seed) with its image: latent ``item.index`` of the seed.

    Every forward pass draws exactly ``CHUNK`` latents (the last of a class padded with zeros), and
    image ``j`` of a class is always row ``j % CHUNK`` of its pass: the CPU and GPU kernels round
    differently for different batch sizes, so a pass size that followed ``--batch`` or the count
    would change pixels by a grey level."""
    label, seed = group[0].label, group[0].seed
    z = G.latents(max(it.index for it in group) + 1, seed)
    for i in range(0, len(group), CHUNK):
        part = group[i:i + CHUNK]
        chunk = z.new_zeros((CHUNK, z.shape[1]))
        chunk[:len(part)] = z[[it.index for it in part]]
        yield from zip(part, G.synthesize(chunk, batch_size=CHUNK, **({"labels": label} if label is not None else {})))


@dataclass
class Curation:
    """``--keep-if-classifier``: the sample filter (``proba(images, label)`` gives p(label | image), ``summary``
    names it in a phrase, ``info`` describes it for the manifest), the threshold, and per class what it drew
    and kept (filled in as it draws)."""

    filter: Any
    threshold: float
    cap: int = CURATION_CAP
    per_class: dict[str, dict] = field(default_factory=dict)

    def draw(self, G, group: list[Item]) -> Iterator[tuple[Item, np.ndarray]]:
        """The items of ``group`` (one class and seed, in file order), each with the latent index of the
        next accepted candidate and its image. Candidates are latents ``0, 1, ...`` of the seed, ``CHUNK``
        per pass as in :func:`uncurated` (candidate ``j`` is row ``j % CHUNK`` of pass ``j // CHUNK``),
        always drawn in whole passes: candidate ``j`` is row ``j`` of ``G.latents(n, seed)`` for any
        ``n > j``, so a threshold of 0 keeps the uncurated set's images bit for bit.

        Raises:
            ValueError: fewer than ``len(group)`` of the first ``cap * len(group)`` candidates pass; the
                message names the class and its acceptance rate.
        """
        label, seed, quota = group[0].label, group[0].seed, len(group)
        limit = self.cap * quota
        stats = self.per_class.setdefault(label, {"quota": quota, "drawn": 0, "kept": 0, "acceptance": None})
        z = G.latents(CHUNK, seed)
        for start in range(0, limit, CHUNK):
            if start + CHUNK > len(z):  # latent i does not depend on how many are drawn: grow by doubling
                z = G.latents(2 * len(z), seed)
            images = G.synthesize(z[start:start + CHUNK], batch_size=CHUNK, labels=label)
            accept = self.filter.proba(images, label) >= self.threshold
            for j in range(min(CHUNK, limit - start)):
                if accept[j]:
                    yield replace(group[stats["kept"]], index=start + j), images[j]
                    stats["kept"] += 1
                    stats["drawn"] = start + j + 1
                    if stats["kept"] == quota:
                        stats["acceptance"] = quota / stats["drawn"]
                        return
        stats["drawn"] = limit
        stats["acceptance"] = stats["kept"] / limit
        raise ValueError(f"--keep-if-classifier: class {label}: {stats['kept']} of {limit} candidates have "
                         f"p(class) >= {self.threshold:g} (acceptance {stats['acceptance']:.1%}), fewer than the "
                         f"{quota} asked for within {self.cap} candidates per image; lower --keep-threshold or ask "
                         f"for fewer")

    def describe(self) -> dict:
        """The manifest's ``curation`` section."""
        return {"rule": "a candidate is kept when the real-only classifier gives p(its class | image) >= threshold; "
                        "candidates in latent order, until the class has its count",
                "threshold": self.threshold, "max_candidates_per_image": self.cap, "judge": self.filter.summary,
                "filter": self.filter.info,
                "per_class": self.per_class}


def synthesize(G, out: Path, items: list[Item], layout: str, size: int, progress: bool = True,
               curation: Curation | None = None) -> list[Item]:
    """Generate ``items`` with the loaded generator ``G`` and write them (atomically, each PNG) into
    ``out`` in ``layout``: latent ``item.index`` of each (:func:`uncurated`), or with ``curation`` the
    accepted candidates (:meth:`Curation.draw`). Returns the items as written, each with its latent index."""
    groups: dict[tuple[str | None, int], list[Item]] = {}
    for it in items:
        groups.setdefault((it.label, it.seed), []).append(it)
    bar = tqdm(total=len(items), unit="img", desc="curating" if curation else "synthesizing", file=sys.stderr,
               disable=not progress)
    written = []
    for group in groups.values():
        for it, img in (curation.draw(G, group) if curation is not None else uncurated(G, group)):
            data = png_bytes(img, size)
            atomic_write(inside(out, relative_path(it, layout)), lambda f, d=data: f.write(d))
            written.append(it)
            bar.update(1)
    bar.close()
    if layout == "isic2017":
        atomic_write_text(out / ISIC2017_CSV, ground_truth_csv(written))
    return written


def support_files(layout: str) -> list[str]:
    """The files a set holds beside its images and manifest."""
    return ["README.md", *([ISIC2017_CSV] if layout == "isic2017" else [])]


def manifest(G, checkpoint: Path, items: list[Item], layout: str, size: int, seed: int, command: str, run_id: str,
             complete: bool = True, curation: Curation | None = None) -> dict:
    """The set's ``manifest.json``: format id and run id (what ``--overwrite`` trusts), whether the run
    finished, the generator, the class, seed and latent index of every file, and the curation if any."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("lesiongan")
    except PackageNotFoundError:  # run from a source tree that was not installed
        pkg = "unknown"
    counts: dict[str, int] = {}
    for it in items:
        counts[it.label or "unlabelled"] = counts.get(it.label or "unlabelled", 0) + 1
    rule = "image j of class c is latent j of seed S*1000+index(c) (unconditional: seed S)"
    if curation is not None:
        rule = ("curated: image j of class c is the j-th accepted candidate among latents 0, 1, ... of seed "
                "S*1000+index(c), drawn 256 at a time; its latent_index i is row i of latents(n, seed) for "
                "any n that is a multiple of 256")
    doc = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "run_id": run_id, "complete": complete,
        "synthetic": True,
        "generator": {"file": portable_name(checkpoint), "sha256": sha256_file(checkpoint), "model": G.model_name,
                      "resolution": G.resolution, "images_seen": G.info.get("nimg"), "config": G.config.to_dict()},
        "layout": layout, "size": size, "seed": seed, "precision": G.precision, "count": len(items),
        "class_counts": counts, "seed_rule": rule,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "lesiongan": pkg, "command": command,
        "files": [{"file": relative_path(it, layout), "class": it.label, "seed": it.seed, "latent_index": it.index}
                  for it in items],
        "support_files": support_files(layout),
    }
    if curation is not None:
        doc["curation"] = curation.describe()
    return doc


def readme(m: dict) -> str:
    cfg = m["generator"]["config"]
    data = cfg.get("data", {})
    counts = ", ".join(f"{c} {n}" for c, n in m["class_counts"].items())
    return (f"# Synthetic dermoscopic images (LesionGAN)\n\n"
            f"Every image in this folder is **synthetic**: generated by a GAN, not taken from a patient. Do not "
            f"use them for diagnosis, and keep them apart from real images when you report results.\n\n"
            f"- Images: {m['count']} ({counts}), {m['size']} px PNG, layout `{m['layout']}`.\n"
            f"- Generator: `{m['generator']['model']}` from `{m['generator']['file']}` "
            f"(SHA-256 `{m['generator']['sha256'][:16]}…`), {m['generator']['images_seen']} training images seen, "
            f"sampled in {m['precision']} with seed {m['seed']}.\n"
            f"- Training data: `{data.get('path')}` (layout {data.get('layout')}, split "
            f"{data.get('split') or 'train'}). The generator, and so these images, inherit the terms of the "
            f"images it was trained on: for the ISIC archive, each image's own licence (CC0, CC-BY or CC-BY-NC); "
            f"for HAM10000, CC BY-NC 4.0 (non-commercial research only).\n"
            f"{curation_note(m.get('curation'))}"
            f"- `manifest.json` lists the class, seed and latent index of every file; `{m['command']}` writes them "
            f"again, byte for byte.\n")


def curation_note(c: dict | None) -> str:
    """The README's line on a curated set (none for an uncurated one)."""
    if not c:
        return ""
    rates = ", ".join(f"{k} {v['kept']} of {v['drawn']} ({v['acceptance']:.0%})" for k, v in c["per_class"].items())
    return (f"- **Curated**: a sample was kept only when {c['judge']} gave its class a probability >= "
            f"{c['threshold']:g}; candidates kept per class: {rates}. This is a filtered sample, not the "
            f"generator's plain output: scores of the generator do not describe it.\n")


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("gan.synthesize", "lesiongan-synthesize"),
                                description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--checkpoint", required=True, help="generator.pt, checkpoint.pt or a run folder")
    p.add_argument("--out", required=True, help="the folder to write (must be empty, or see --overwrite)")
    p.add_argument("--per-class", help="CLASS=COUNT pairs for a conditional model, e.g. melanoma=1000,nevus=500")
    p.add_argument("--n", type=int, help="number of images for an unconditional model")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--layout", choices=LAYOUTS, help="isic2017 (default for conditional models), imagefolder, or "
                                                     "folder (unconditional models)")
    p.add_argument("--size", type=int, help="image side in px (default: the generator's); LANCZOS resize otherwise")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"], help="sampling arithmetic "
                   "(default fp32, exact); bf16: within a few grey levels, faster only where the device runs it "
                   "natively (CPU: AVX512-BF16/AMX; GPU: Ampere+), slower where emulated; auto: bf16 only there "
                   "and only if a one-off measurement of this model finds it faster (cached), else fp32")
    p.add_argument("--batch", type=int, default=256, help=f"kept for older command lines; changes nothing: images "
                                                          f"are drawn {CHUNK} latents per pass, so every --batch "
                                                          f"writes the same bytes")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace a set gan.synthesize wrote earlier in --out")
    p.add_argument("--keep-if-classifier", metavar="REAL[@split]",
                   help="curate: keep a sample only if a classifier trained on these labelled real images alone "
                        "agrees with its label (off by default; conditional models; see below)")
    p.add_argument("--keep-threshold", type=float, metavar="P",
                   help="with --keep-if-classifier: keep a sample when p(its class | image) >= P (default 0.5)")
    p.add_argument("--keep-seeds", type=int, metavar="K",
                   help="with --keep-if-classifier: classifiers trained (seeds 0..K-1) and averaged (default 1)")
    p.add_argument("--keep-steps", type=int, metavar="N",
                   help="with --keep-if-classifier: training steps of each classifier (default: the utility "
                        "protocol's, 2000)")
    p.add_argument("--cache-dir", help="cache folder for --keep-if-classifier's real images and classifiers "
                                       "(default: $LESIONGAN_CACHE or ~/.cache/lesiongan)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from gan.generator import load_generator

    started = None  # the folder, once its incomplete manifest is written
    try:
        if args.n is not None and args.n < 1:
            raise ValueError(f"--n must be at least 1, got {args.n}")
        if args.n is not None:
            check_cap(args.n, "--n")
        if args.batch < 1:
            raise ValueError(f"--batch must be at least 1, got {args.batch}")
        if args.size is not None and not 8 <= args.size <= 1024:
            raise ValueError(f"--size must be in 8..1024, got {args.size}")
        per_class = parse_per_class(args.per_class) if args.per_class is not None else None
        filters = curation_provider(args)
        G = load_generator(args.checkpoint, device=args.device, precision=args.precision)
        items = plan(list(G.class_names), per_class, args.n, args.seed)
        layout = args.layout or ("isic2017" if G.class_names else "folder")
        check_layout(layout, list(G.class_names), items)
        curation = None
        if filters is not None:
            if not G.class_names:
                raise ValueError("--keep-if-classifier needs a conditional model: an unconditional sample has no "
                                 "label to agree with")
            flt = filters.sample_filter(args.keep_if_classifier, list(G.class_names), G.resolution,
                                        needed=[c for c, n in per_class.items() if n > 0],
                                        seeds=1 if args.keep_seeds is None else args.keep_seeds,
                                        steps=args.keep_steps, cache_dir=args.cache_dir, progress=not args.quiet)
            curation = Curation(flt, 0.5 if args.keep_threshold is None else args.keep_threshold)
            items = [replace(it, index=None) for it in items]  # known once each candidate is accepted
        out = Path(args.out)
        prepare_out(out, args.overwrite, [*(relative_path(it, layout) for it in items), *support_files(layout)])
        size = args.size or G.resolution
        command = portable_command(["python -m gan.synthesize", *(argv if argv is not None else sys.argv[1:])])
        # The manifest first, marked incomplete: an interrupted set is then provably this command's
        # (--overwrite replaces it) and readers can tell it is unfinished; the complete one last.
        run_id = uuid.uuid4().hex
        m = manifest(G, Path(G.path), items, layout, size, args.seed, command, run_id, complete=False,
                     curation=curation)
        atomic_write_text(out / MANIFEST, json.dumps(m, indent=1) + "\n")
        started = out
        items = synthesize(G, out, items, layout, size, progress=not args.quiet, curation=curation)
        m = manifest(G, Path(G.path), items, layout, size, args.seed, command, run_id, curation=curation)
        atomic_write_text(out / "README.md", readme(m))
        atomic_write_text(out / MANIFEST, json.dumps(m, indent=1) + "\n")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: writing {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: {started}/{MANIFEST} marks the set incomplete (the images written so far are whole "
              f"files); rerun the same command with --overwrite to write it again" if started else
              "interrupted (Ctrl-C): nothing was written", file=sys.stderr)
        return 130
    counts = ", ".join(f"{c} {n}" for c, n in m["class_counts"].items())
    kept = "" if curation is None else "; curated: " + ", ".join(
        f"{c} {v['kept']} of {v['drawn']} kept" for c, v in curation.per_class.items())
    print(f"wrote {len(items)} synthetic images ({counts}; {size} px, layout {layout}{kept}) to {out}")
    return 0


def curation_provider(args) -> Any:
    """The sample-filter provider that ``--keep-if-classifier`` needs (None without it), after checking the
    options that go with it."""
    if args.keep_if_classifier is None:
        given = [f for f, v in (("--keep-threshold", args.keep_threshold), ("--keep-seeds", args.keep_seeds),
                                ("--keep-steps", args.keep_steps), ("--cache-dir", args.cache_dir)) if v is not None]
        if given:
            raise ValueError(f"{given[0]} goes with --keep-if-classifier REAL")
        return None
    if args.keep_threshold is not None and not 0 <= args.keep_threshold <= 1:
        raise ValueError(f"--keep-threshold must be in 0..1, got {args.keep_threshold:g}")
    if args.keep_seeds is not None and args.keep_seeds < 1:
        raise ValueError(f"--keep-seeds must be at least 1, got {args.keep_seeds}")
    if args.keep_steps is not None and args.keep_steps < 1:
        raise ValueError(f"--keep-steps must be at least 1, got {args.keep_steps}")
    from gan.hooks import provider

    return provider(FILTER_PROVIDER, "--keep-if-classifier", group=FILTER_GROUP)


if __name__ == "__main__":
    sys.exit(main())
