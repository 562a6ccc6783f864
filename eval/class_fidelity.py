"""Class fidelity of a conditional generator: are its "melanoma" samples melanomas to a classifier that
learned from real images only?

    python -m eval.class_fidelity --checkpoint checkpoints/dcgan-cond --real ../shared/data/isic2017
                                  [--test PATH[@split]] [--n-per-class 500] [--seeds 3] [--steps 2000]
                                  [--out DIR] [--no-save]

The judge is the utility protocol's ``real`` classifier (:data:`eval.utility.RECIPE_V2`: the small CNN
trained on the real training images, ``--seeds`` seeds, probabilities averaged over seeds), not the
dermoscopy encoder, which transfers poorly to ISIC 2017. Per class it reports, with 95% bootstrap
intervals over images:

* **AUC on synthetic images** labelled by the generator (one class against the others, the classifier's
  probability of that class as the score), beside the **AUC on held-out real images** (``--test``;
  default the validation split of an ISIC 2017 ``--real``): a generator whose labels mean what they say
  scores about the real AUC; far below it, its classes blur; far above it, its classes are caricatures
  (easier than real ones, the shortcut the utility protocol's shortcut check warns about);
* **recall**: the share of each class's images the classifier calls that class, synthetic and real;
* **within-class MS-SSIM** (mean over random pairs of the same class; lower = more varied), synthetic and
  real: fidelity bought with lost variety shows up here.

Everything is measured on raw samples (no curation). The report goes into the model's ``results.json``
(section ``class_fidelity``) unless ``--no-save``; the trained classifiers are cached in ``--out`` (keyed
by a hash of their training images, labels, recipe and seed), so a second model is judged by the same
classifiers without training them again.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gan.cli import entry_point, prog

FORMAT, VERSION = "lesiongan-class-fidelity", 1
SYNTHETIC_SEED = 700_000  # the samples judged: seed SYNTHETIC_SEED + class index, one class at a time


def one_vs_rest(probs: np.ndarray, y: np.ndarray, c: int, B: int, seed: int) -> dict:
    """AUC of class ``c`` against the rest (score: the probability of ``c``), 95% bootstrap interval."""
    from eval.utility import bootstrap_weights, weighted_auc

    pos = y == c
    if pos.all() or not pos.any():
        return {"auc": None, "reason": "needs images of this class and of others", "n": int(len(y))}
    scores = probs[:, c].astype(np.float64)
    point = float(weighted_auc(scores, pos, np.ones((1, len(y))))[0])
    boot = weighted_auc(scores, pos, bootstrap_weights(len(y), B, seed))
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])
    return {"auc": point, "ci95": [float(lo), float(hi)], "n_class": int(pos.sum()), "n": int(len(y))}


def recall(probs: np.ndarray, y: np.ndarray, c: int) -> float | None:
    """Share of class ``c``'s images whose most probable class is ``c``."""
    m = y == c
    return float((probs[m].argmax(1) == c).mean()) if m.any() else None


def within_class_msssim(images_nhwc: np.ndarray, y: np.ndarray, c: int, pairs: int = 500, seed: int = 0) -> float | None:
    from eval.metrics.msssim import mean_pairwise_msssim

    m = np.flatnonzero(y == c)
    return mean_pairwise_msssim(images_nhwc[m], pairs=pairs, seed=seed)[0] if len(m) >= 2 else None


def fidelity_table(syn_probs: np.ndarray, syn_y: np.ndarray, syn_images: np.ndarray, real_probs: np.ndarray,
                   real_y: np.ndarray, real_images: np.ndarray, classes: list[str], B: int = 1000,
                   seed: int = 0) -> dict:
    """Per class: AUC [CI], recall and within-class MS-SSIM on synthetic and on real images (pure: from
    the classifier's probabilities and the uint8 NHWC images)."""
    out = {}
    for c, name in enumerate(classes):
        out[name] = {
            "synthetic": {**one_vs_rest(syn_probs, syn_y, c, B, seed + 2 * c), "recall": recall(syn_probs, syn_y, c),
                          "msssim": within_class_msssim(syn_images, syn_y, c, seed=seed)},
            "real": {**one_vs_rest(real_probs, real_y, c, B, seed + 2 * c + 1), "recall": recall(real_probs, real_y, c),
                     "msssim": within_class_msssim(real_images, real_y, c, seed=seed)},
        }
    return out


def classifier_for(real_x: torch.Tensor, real_y: np.ndarray, classes: list[str], seed: int, steps: int,
                   cache: Path | None, progress: bool):
    """The ``real`` classifier of one seed: from ``cache`` when trained before, else trained (and cached)."""
    import hashlib

    from eval.classifier import make_network, train_classifier
    from eval.utility import RECIPE_V2

    recipe = replace(RECIPE_V2, steps=steps)
    h = hashlib.sha256(json.dumps([classes, repr(recipe), seed]).encode())
    for a in (real_x.contiguous().numpy(), np.ascontiguousarray(real_y, np.int64)):
        h.update(str((a.dtype, a.shape)).encode() + a.tobytes())
    key = h.hexdigest()[:16]
    path = cache / f"real-classifier-s{seed}-{key}.pt" if cache is not None else None
    if path is not None and path.is_file():
        net = make_network(recipe, len(classes))
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return net.eval()
    from tqdm import tqdm

    with tqdm(total=steps, desc=f"real classifier, seed {seed}", file=sys.stderr, disable=not progress) as bar:
        net = train_classifier(real_x, real_y, len(classes), seed, recipe, progress=bar.update)
    if path is not None:
        from gan.fileio import atomic_write

        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        atomic_write(path, lambda f: torch.save(state, f))
    return net.eval()


def class_fidelity(G, real_x: torch.Tensor, real_y: np.ndarray, test, classes: list[str], *, n_per_class: int = 500,
                   seeds: int = 3, steps: int = 2000, bootstrap: int = 1000, cache: Path | None = None,
                   progress: bool = True) -> dict:
    """The report (see the module's docstring). ``G`` a loaded conditional generator whose classes are
    ``classes``; ``test`` an :class:`eval.utility.TestSet` of held-out real images."""
    from eval.classifier import predict_proba

    missing = [c for c in classes if c not in G.class_names]
    if missing:
        raise ValueError(f"the generator has no class {', '.join(missing)} (its classes: {', '.join(G.class_names)})")
    t0 = time.time()
    syn = [G.generate(n_per_class, seed=SYNTHETIC_SEED + i, labels=c) for i, c in enumerate(classes)]
    syn_images = np.concatenate(syn)
    syn_y = np.repeat(np.arange(len(classes)), n_per_class)
    syn_t = torch.from_numpy(syn_images).permute(0, 3, 1, 2).contiguous()
    syn_probs, real_probs = [], []
    for k in range(seeds):
        net = classifier_for(real_x, real_y, classes, k, steps, cache, progress)
        syn_probs.append(predict_proba(net, syn_t))
        real_probs.append(predict_proba(net, test.images))
    real_nhwc = test.images.permute(0, 2, 3, 1).numpy()
    table = fidelity_table(np.mean(syn_probs, 0), syn_y, syn_images, np.mean(real_probs, 0), test.y, real_nhwc,
                           classes, B=bootstrap)
    return {"format": FORMAT, "version": VERSION, "classes": classes, "n_per_class": int(n_per_class),
            "synthetic_seed": SYNTHETIC_SEED, "classifier": {"recipe": "utility protocol v2 'real' (small CNN)",
                                                              "steps": int(steps), "seeds": int(seeds),
                                                              "trained_on": int(len(real_y))},
            "test": {"name": test.name, "n": int(len(test.y)), "notes": test.notes}, "per_class": table,
            "seconds": round(time.time() - t0, 1)}


HEAD = ("class", "AUC, synthetic [95% CI]", "AUC, real [95% CI]", "recall syn. / real", "MS-SSIM syn. / real")


def _auc_cell(v: dict) -> str:
    return "n/a" if v.get("auc") is None else f"{v['auc']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"


def _num(v, fmt: str = "{:.3f}") -> str:
    return "n/a" if v is None else fmt.format(v)


def table_rows(doc: dict) -> list[tuple[str, ...]]:
    """The report's table, one row of cells (:data:`HEAD`'s columns) per class: the markdown, the model card
    and the dashboard show these."""
    rows = []
    for c, row in doc["per_class"].items():
        s, r = row["synthetic"], row["real"]
        rows.append((c.replace("_", " "), _auc_cell(s), _auc_cell(r),
                     f"{_num(s['recall'], '{:.0%}')} / {_num(r['recall'], '{:.0%}')}",
                     f"{_num(s['msssim'])} / {_num(r['msssim'])}"))
    return rows


def markdown(doc: dict) -> str:
    lines = [f"Class fidelity: {doc['n_per_class']} raw samples per class, judged by the real-only classifier "
             f"({doc['classifier']['seeds']} seeds, {doc['classifier']['steps']} steps); real: {doc['test']['name']} "
             f"({doc['test']['n']} images).", "",
             "| " + " | ".join(HEAD) + " |", "| --- | --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_rows(doc)]
    return "\n".join(lines) + "\n"


def _names(classes: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return classes[0] if len(classes) == 1 else ", ".join(classes[:-1]) + " and " + classes[-1]


def where(syn: dict, real: dict) -> str | None:
    """Where the synthetic AUC falls against the real images' 95% interval: ``"above"``, ``"within"``,
    ``"below"``; None when either AUC is undefined."""
    if syn.get("auc") is None or real.get("auc") is None:
        return None
    lo, hi = real["ci95"]
    return "above" if syn["auc"] > hi else "below" if syn["auc"] < lo else "within"


def reading(doc: dict) -> list[str]:
    """The report in plain words, one sentence (or two) per item, all computed from its numbers: whether
    the classes are faithful (the synthetic AUC against the real images' interval), which classes are
    easier than real ones, the variety within each class, and what the AUC sees and misses."""
    per = {c.replace("_", " "): row for c, row in doc["per_class"].items()}
    pos = {c: where(r["synthetic"], r["real"]) for c, r in per.items()}
    by = {k: [c for c, p in pos.items() if p == k] for k in ("above", "within", "below")}
    out = []
    placed = "; ".join(f"{k} for {_names(by[k])}" for k in ("above", "within", "below") if by[k])
    if by["below"]:
        out.append(f"Not class-faithful for {_names(by['below'])}: the real-only classifier recognises the "
                   "generator's samples of that class less well than held-out real images of it, so the class blurs "
                   f"into the others (synthetic AUC against the real images' 95% interval: {placed}).")
    elif by["above"] or by["within"]:
        out.append("Class-faithful: the real-only classifier recognises the generator's labelled samples at least as "
                   "well as held-out real images of each class (synthetic AUC against the real images' 95% interval: "
                   f"{placed}).")
    for c in by["above"]:
        s, r = per[c]["synthetic"], per[c]["real"]
        easier = s.get("recall") is not None and r.get("recall") is not None and s["recall"] > r["recall"]
        out.append(f"Synthetic {c} samples are more \"textbook\" than real ones: AUC {s['auc']:.3f} against "
                   f"{r['auc']:.3f}" + (f", called {c} {s['recall']:.0%} of the time against {r['recall']:.0%}"
                                        if easier else "")
                   + ": easier for the classifier than the real class.")
    ratios = {c: r["synthetic"]["msssim"] / r["real"]["msssim"] for c, r in per.items()
              if r["synthetic"].get("msssim") is not None and r["real"].get("msssim")}
    less = {c: x for c, x in ratios.items() if x > 1}
    if less:
        lo, hi = min(less.values()), max(less.values())
        span = f"{lo:.1f}" if round(lo, 1) == round(hi, 1) else f"{lo:.1f} to {hi:.1f}"
        who = "each class's samples are" if len(less) == len(per) else f"the {_names(list(less))} samples are"
        out.append(f"Less variety: {who} less varied than the real images of the class, their within-class MS-SSIM "
                   f"{span} times the real images' ("
                   + ", ".join(f"{c} {per[c]['synthetic']['msssim']:.3f} against {per[c]['real']['msssim']:.3f}"
                               for c in less) + "; higher = more alike, less variety).")
    if len(less) < len(ratios):
        out.append(f"As varied as real images or more: {_names([c for c in ratios if c not in less])} (within-class "
                   "MS-SSIM at or below the real images').")
    clf, test = doc["classifier"], doc["test"]
    counts = ", ".join(f"{r['real']['n_class']} {c}" for c, r in per.items() if "n_class" in r["real"])
    out.append(f"What the AUC sees: how well a small CNN trained on {clf['trained_on']:,} real images ({clf['seeds']} "
               f"seeds) separates each class from the others, on samples and on real images alike. It misses whether the "
               f"samples look real (the C2STs under Evaluation measure that), what a stronger classifier would "
               f"tell apart, and variety (the MS-SSIM column). The real column rests on {test['n']} held-out images "
               f"({counts}), so its intervals are wide.")
    return out


def card_lines(doc: dict) -> list[str]:
    """A model card's "Class fidelity" section (a level-2 heading, as :func:`eval.utility_card.card_lines`
    writes "Utility and privacy", which puts this one before it; ending with a blank line) from a model's
    ``class_fidelity`` section: how it was measured, the table and :func:`reading`."""
    from gan.assets import reproducing

    clf = doc["classifier"]
    return ["## Class fidelity", "",
            f"Whether the generator's labelled samples are their class "
            f"(`{reproducing(doc.get('command', 'python -m eval.class_fidelity'))}`): "
            f"{doc['n_per_class']:,} raw samples per class, judged by a classifier trained on real images only (the "
            f"utility protocol's `real` small CNN, {clf['trained_on']:,} images, {clf['steps']:,} steps, probabilities "
            f"averaged over {clf['seeds']} seeds), beside the {doc['test']['n']} held-out real images of "
            f"{doc['test']['name']}. AUC: one class against the others, with 95% bootstrap intervals over images; "
            "recall: the share called that class; MS-SSIM: the mean similarity of two images of the same class.", "",
            "| " + " | ".join(HEAD) + " |", "| --- | --- | --- | --- | --- |",
            *("| " + " | ".join(cells) + " |" for cells in table_rows(doc)), "",
            *(f"- {x}" for x in reading(doc)), ""]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog("eval.class_fidelity", "lesiongan-class-fidelity"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a conditional generator (run folder or .pt)")
    p.add_argument("--real", required=True, help="the labelled real images the classifier learns from")
    p.add_argument("--split", help="--real's ISIC 2017 split (default train)")
    p.add_argument("--test", metavar="PATH[@split]", help="held-out real images (default: the validation split of "
                                                          "an ISIC 2017 --real)")
    p.add_argument("--n-per-class", type=int, default=500, help="synthetic samples per class (default 500)")
    p.add_argument("--seeds", type=int, default=3, help="classifier seeds (default 3)")
    p.add_argument("--steps", type=int, default=2000, help="classifier training steps (default 2000, the protocol's)")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--out", help="folder for the report and the cached classifiers (default: no report files, "
                                 "no cache)")
    p.add_argument("--no-save", action="store_true", help="do not write results.json's class_fidelity section")
    p.add_argument("--threads", type=int, default=2)
    return p


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.n_per_class < 10 or args.seeds < 1 or args.steps < 1 or args.bootstrap < 10:
        print("error: --n-per-class must be >= 10, --seeds and --steps >= 1, --bootstrap >= 10", file=sys.stderr)
        return 2
    torch.set_num_threads(max(1, args.threads))
    from eval.utility import load_labelled, make_test_set, parse_test
    from gan import load_generator
    from gan.fileio import atomic_write_text, prepare_output
    from gan.rundir import RunDir

    try:
        out = prepare_output(args.out, "--out") if args.out else None
        G = load_generator(args.checkpoint)
        if not G.class_names:
            raise ValueError(f"--checkpoint {args.checkpoint}: an unconditional model has no classes to be faithful to")
        real = load_labelled(args.real, args.split, size=G.resolution)
        classes = list(G.class_names)
        train = make_test_set(real, classes, "real")
        if args.test:
            tp, ts = parse_test(args.test)
        elif real.layout == "isic2017" and real.split in (None, "train"):
            tp, ts = args.real, "validation"
        else:
            raise ValueError("--test is required unless --real is an ISIC 2017 folder (its validation split is the default)")
        held = load_labelled(tp, ts, size=G.resolution)
        test = make_test_set(held, classes, f"{Path(held.source).name}{'/' + held.split if held.split else ''}")
        doc = class_fidelity(G, train.images, train.y, test, classes, n_per_class=args.n_per_class, seeds=args.seeds,
                             steps=args.steps, bootstrap=args.bootstrap, cache=out, progress=True)
        from gan.assets import portable_command

        doc["command"] = portable_command(["python -m eval.class_fidelity", *(argv if argv is not None else sys.argv[1:])])
        doc["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        doc["generator"] = {"model": G.model_name, "nimg": G.info.get("nimg")}
        text = markdown(doc)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "class_fidelity.json", json.dumps(doc, indent=1) + "\n")
            atomic_write_text(out / "class_fidelity.md", text)
        if not args.no_save:
            cp = Path(args.checkpoint)
            run = RunDir(cp if cp.is_dir() else cp.parent)
            if run.is_run():
                print(f"wrote {run.update_results('class_fidelity', doc)}", file=sys.stderr)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
