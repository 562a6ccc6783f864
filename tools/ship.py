"""Release tooling: put a trained run into ``checkpoints/`` and write the model cards.

    python tools/ship.py RUN_DIR [--name dcgan]    # generator (G_ema), config, stats, a few grids, fingerprints
    python -m eval.run                             # scores -> checkpoints/results.json, <model>/results.json
    python tools/ship.py --per-class dcgan-cond --data ../shared/data/isic2017   # conditional models:
                                                   # per-class scores and class consistency -> results.json
    python tools/ship.py --cards                   # MODEL_CARD.md per model, from all of the above

A shipped model folder is a run folder (:mod:`gan.rundir`) with the same file names; every file goes
through :class:`gan.rundir.RunDir`. The fingerprints of the training and validation splits live
once in ``checkpoints/fingerprints/``; each model folder links to them. Needs the package installed
(``pip install -e .``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from eval.fingerprint import load_fingerprint
from eval import KEY_JS_RGB, KEY_WASSERSTEIN_RGB
from eval.registry import QUALITY_BAR, catalogue, describe_quality_bar, get_label, meets_quality_bar
from eval.utility_card import card_lines as utility_privacy_lines
from gan.assets import checkpoints_dir, portable_name
from gan.config import RunConfig, to_dict
from gan.fileio import atomic_write_text, clean_stale_temps
from gan.rundir import RunDir, discover

CKPTS = checkpoints_dir()  # the repository's checkpoints/ (or $LESIONGAN_HOME's: gan.assets)
FINGERPRINTS = {"train": "fingerprints/isic2017-train-64.npz", "validation": "fingerprints/isic2017-validation-64.npz"}
IDS = "fingerprints/isic2017-train-ids.txt"
MAX_MB = 25

CITATIONS = """\
- ISIC 2017: N. C. F. Codella et al., "Skin Lesion Analysis Toward Melanoma Detection: A Challenge at the
  2017 International Symposium on Biomedical Imaging (ISBI)", arXiv:1710.05006. Use follows the ISIC
  archive's terms for each image.
- All images come from the International Skin Imaging Collaboration (ISIC) archive."""

RECIPES = {
    "dcgan": "The report's DCGAN (PyTorch's DCGAN example): nz=100, 64 feature maps, no biases, BatchNorm, "
             "N(0, 0.02) init, BCE, Adam(2e-4, 0.5, 0.999), batch 64.",
    "pggan-seed": "The report's progressive recipe: DCGAN-style blocks grown 16 -> 32 -> 64 px, a toRGB/fromRGB "
                  "pair per phase, earlier phases' layers frozen while a new phase trains, BCE, Adam(2e-4, 0.5, "
                  "0.999), batch 64. At 64 px the networks in use are exactly the report's DCGAN.",
    "pggan": "Karras et al. 2018 (ICLR), scaled down for a CPU: growing from 8 px with smooth fade-in, "
             "equalized learning rate, pixelwise feature normalization, minibatch standard deviation, "
             "WGAN-GP (lambda 10) with drift 0.001, Adam(1e-3, 0, 0.99) reset per phase, per-resolution batch.",
}


def ship(run_dir: Path, name: str | None, n_grids: int, snapshot: str = "best", previous: str = "first") -> None:
    """Copy what sampling, the dashboard and the cards need from a finished run into ``checkpoints/NAME``:
    the run's config, G_ema as ``generator.pt`` (``snapshot``: "best", the run's ``generator-best.pt``
    when it kept one (``--keep-best``), else the final snapshot; or "final"), the stats (one row per
    step), the metrics scored during training, ``n_grids`` grids spread over the run, and links to the
    shared fingerprints. A model shipped before from another run is kept in ``NAME/previous/`` (its
    config, stats, scores, card and grids; not its weights): by default once, the version it replaces
    first; ``previous="replaced"``: the version it replaces now (see :func:`keep_previous`)."""
    from gan import checkpoint as ckpt_io

    # Everything read from the run is read and checked before the shipped folder is touched: a damaged
    # or refused file leaves the model shipped before (and its scores) as they were.
    src = RunDir(run_dir)
    cfg = src.read_config()
    if cfg is None:
        raise SystemExit(f"{run_dir}: no config.json: not a run folder")
    ckpt = src.load_checkpoint()
    best = src.best_generator_path if snapshot == "best" else None
    chosen = ckpt_io.load(best, kinds=(ckpt_io.KIND_GENERATOR,)) if best is not None else ckpt
    size_mb = sum(v.numel() * v.element_size() for v in chosen["G_ema"].values()) / 1e6
    if size_mb > MAX_MB:
        raise ValueError(f"{best or src.file('checkpoint.pt')}: its generator is {size_mb:.1f} MB, over the "
                         f"{MAX_MB} MB limit for shipped weights")
    names = load_fingerprint(CKPTS / FINGERPRINTS["train"]).names
    stats, metrics, grids = src.read_stats(), src.read_metrics(), src.list_grids()
    out = RunDir(CKPTS / (name or cfg.model))
    with out.lock():  # one writer at a time: a second ship into this folder is refused, naming this one
        clean_stale_temps(out.path)
        keep_previous(out, src, previous)
        gen = ckpt_io.export_generator(chosen, out.file("generator.pt")) if best is not None else \
            out.save_generator(ckpt)
        size_mb = gen.stat().st_size / 1e6
        # What the weights were trained with (a resume may have changed kimg); the data by name and content
        # hash only: a shipped config names no folder, not even one near the run.
        config = ckpt["config"]
        out.write_config(config.replace(data=config.data.portable(None)))
        out.write_stats(stats)
        if metrics:
            out.write_metrics(metrics)
        out.update_results("best_snapshot", snapshot_record(chosen, ckpt, metrics, best is not None))
        pick = sorted({grids[round(i * (len(grids) - 1) / max(n_grids - 1, 1))] for i in range(n_grids)}) \
            if grids else []
        out.clear_grids()
        for nimg, path in pick:
            out.copy_grid(path, nimg)
        for split, target in FINGERPRINTS.items():
            out.link_fingerprint(CKPTS / target, split)
    atomic_write_text(CKPTS / IDS, "\n".join(names) + "\n")
    print(f"{out.name}: {gen} ({size_mb:.1f} MB, snapshot at {chosen['info'].get('nimg', ckpt['nimg'])} of "
          f"{ckpt['nimg']} images seen), {len(pick)} grids")


def images_seen_line(kimg: float, planned: float, rec: dict | None) -> str:
    """The card's line on how far the shipped weights were trained: an earlier best snapshot of a
    finished run is not a run stopped early."""
    trained = (rec or {}).get("final_nimg", 0) / 1000
    if rec and rec.get("shipped") == "best" and trained > kimg:
        return (f"- Images seen: **{kimg:,.1f} k** (the best snapshot of a run trained to {trained:,.1f} k of "
                f"the {planned:g} k planned; below).")
    return (f"- Images seen: **{kimg:,.1f} k** of the {planned:g} k planned"
            f"{'' if kimg >= planned else ' (stopped early: shipped before the run reached its planned length, which --resume continues)'}.")


def metric_key(metric: str) -> str:
    """The key a metric's rows carry in ``metrics.jsonl`` (``fd_derm`` for ``fd_derm``; a catalogue name may differ)."""
    return next((m.key for m in catalogue([metric])), metric)


def snapshot_record(chosen: dict, final: dict, metrics: list[dict], is_best: bool) -> dict:
    """results.json's ``best_snapshot`` section: which snapshot was shipped and why."""
    info = chosen.get("info") or {}
    rec = {"shipped": "best" if is_best else "final", "nimg": int(info.get("nimg", final["nimg"])),
           "final_nimg": int(final["nimg"])}
    if is_best:
        metric = info.get("best_metric")
        rec.update({"metric": metric, "value": info.get("best_value"), "selected_on": info.get("selected_on")})
        key = metric_key(metric) if metric else None
        final_rows = [r for r in metrics if r["nimg"] == final["nimg"] and key in r]
        if final_rows:
            rec["final_value"] = final_rows[-1][key]
    return rec


def same_data(a, b) -> bool:
    """Whether two run configs' data (:class:`gan.data.DataConfig`) are the same images: by content hash
    where both have one, else by the data set's name and image count (a shipped config names no folder)."""
    if a.sha256 and b.sha256:
        return a.sha256 == b.sha256

    def name(d) -> str | None:
        return d.name or (Path(d.path).name if d.path else None)

    return (name(a), a.num_images) == (name(b), b.num_images)


def keep_previous(out: RunDir, src: RunDir, previous: str = "first") -> None:
    """Before a model folder takes a new run, keep what the old version was in ``previous/``: config,
    stats, results, card and grids (the dashboard's report-parity table and the cards' old-vs-new
    comparison read them). ``previous="first"`` (the default): done once; re-shipping the same run or a
    newer one keeps the first (the report's recipe, for the parity table). ``"replaced"``: ``previous/``
    becomes the version being replaced, and the one kept there before moves, whole, to
    ``previous/previous/`` (nothing is dropped). The old version's scores then leave the model's own
    results.json (``eval.run`` scores the new weights)."""
    if previous not in ("first", "replaced"):
        raise ValueError(f"--previous {previous}: expected first or replaced")
    prev = RunDir(out.path / "previous")
    old_cfg = out.read_config()
    new_cfg = src.read_config()
    if old_cfg is None or (new_cfg is not None and same_data(new_cfg.data, old_cfg.data)
                           and new_cfg.train == old_cfg.train and new_cfg.model_cfg == old_cfg.model_cfg):
        return  # nothing shipped yet, or the same run shipped again
    older = None
    if prev.is_run():
        if previous == "first":
            out.file("results.json").unlink(missing_ok=True)
            return
        older = out.path / f"previous-moving-{os.getpid()}"  # if cut off between the renames, it waits here whole
        prev.path.rename(older)
    prev.path.mkdir(parents=True, exist_ok=True)
    if older is not None:
        older.rename(prev.path / "previous")
    prev.write_config(old_cfg)
    prev.write_stats(out.read_stats())
    doc = out.read_results()
    if doc is not None:
        atomic_write_text(prev.file("results.json"), json.dumps(doc, indent=1) + "\n")
    if out.read_model_card():
        prev.write_model_card(out.read_model_card())
    for nimg, path in out.list_grids():
        prev.copy_grid(path, nimg)
    out.file("results.json").unlink(missing_ok=True)
    print(f"{out.name}: the version it replaces kept in {prev.path}")


def _fmt(v) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return "n/a"
    return str(v) if isinstance(v, int) else f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"


def _bar_numbers(row: dict) -> str:
    return " and ".join(f"{get_label(k)} {row[k]:.4f}" for k in QUALITY_BAR)


def retrain_command(cfg: RunConfig, kimg: float) -> str:
    """The ``gan.train`` command line that trains ``cfg`` from scratch for ``kimg`` thousand images."""
    defaults = to_dict(cfg.spec.Config())
    # The class names come from the data with --cond, not from --set.
    mset = "".join(f" --set {k}={json.dumps(v, separators=(',', ':'))}" for k, v in to_dict(cfg.model_cfg).items()
                   if k not in ("resolution", "class_names") and json.dumps(v) != json.dumps(defaults.get(k)))
    if getattr(cfg.model_cfg, "class_names", ()):
        mset = " --cond" + mset
    if cfg.train.balance:
        mset += " --balance"
    t = cfg.train
    if t.diffaug:
        mset += f" --diffaug {','.join(t.diffaug)}"
    if t.ada:
        mset += " --ada" + (f" --ada-target {t.ada_target:g}" if t.ada_target != 0.6 else "") \
            + (f" --ada-kimg {t.ada_kimg:g}" if t.ada_kimg != 100 else "") \
            + (f" --ada-ops {t.ada_ops}" if t.ada_ops != "bgc" else "")
    if t.metrics:
        mset += (f" --metrics {','.join(t.metrics)} --metrics-kimg {t.metrics_kimg:g}"
                 + (f" --metrics-n {t.metrics_n}" if t.metrics_n != 1000 else "")
                 + (" --metrics-ref checkpoints/fingerprints/isic2017-train-64.npz" if t.metrics_ref else "")
                 + (f" --keep-best {t.keep_best}" if t.keep_best else ""))
    return (f"python -m gan.train --model {cfg.model} --data ../shared/data/isic2017 --out runs "
            f"--size {cfg.data.size} --kimg {kimg:g} --seed {t.seed}"
            f"{' --augment' if cfg.data.augment else ''}{' --channels-last' if t.channels_last else ''}"
            f"{' --precision ' + t.precision if t.precision != 'fp32' else ''}{mset}")


def augmentation_line(cfg: RunConfig, stats: list[dict]) -> str:
    """The card's line on what D saw: DiffAugment, ADA (with its final p) or plain images."""
    t = cfg.train
    parts = []
    if t.diffaug:
        parts.append(f"DiffAugment ({', '.join(t.diffaug)}; Zhao et al. 2020)")
    if t.ada:
        p_end = next((r["aug_p"] for r in reversed(stats) if r.get("aug_p") is not None), None)
        ops = {"b": "blit", "g": "geometry", "c": "colour"}
        parts.append(f"ADA (Karras et al. 2020; {', '.join(ops[g] for g in t.ada_ops)} ops; "
                     f"target r_t {t.ada_target:g}, p moves 0 -> 1 over {t.ada_kimg:g} kimg"
                     + (f"; p = {p_end:.3f} at the end" if p_end is not None else "") + ")")
    return ("- Discriminator augmentation: " + " and ".join(parts) + ", applied to real and generated images alike."
            if parts else "- Discriminator augmentation: none (D sees the images as they are, after the dataset flips).")


def snapshot_lines(doc: dict, metrics: list[dict]) -> list[str]:
    """Which snapshot the folder holds and why (results.json's best_snapshot), and the metrics scored
    during training."""
    rec = doc.get("best_snapshot")
    lines = []
    if metrics:
        keys = [k for k in ("fd_derm", "precision_derm", "recall_derm") if any(k in r for r in metrics)]
        lines.append(f"- Scored during training ({', '.join(keys)}; `metrics.jsonl`, the dashboard's Training page) "
                     f"at {len(metrics)} snapshots, on {metrics[-1].get('n', '?')} samples of seed "
                     f"{metrics[-1].get('seed', 0)} against the training fingerprint.")
    if rec and rec.get("shipped") == "best":
        same = rec["nimg"] == rec["final_nimg"]
        if same:
            last = " — the last snapshot was the best."
        elif rec.get("final_value") is not None:
            last = f"; the last snapshot, at {rec['final_nimg'] / 1000:,.1f} k, scored {rec['final_value']:.3f}."
        else:  # the run stopped between two scorings: name the last one scored
            key = metric_key(rec["metric"])
            scored = [r for r in metrics if key in r and r["nimg"] <= rec["final_nimg"]]
            last = (f"; the run stopped at {rec['final_nimg'] / 1000:,.1f} k, after its last scored snapshot, at "
                    f"{scored[-1]['nimg'] / 1000:,.1f} k, which scored {scored[-1][key]:.3f}." if scored else
                    f"; the run stopped at {rec['final_nimg'] / 1000:,.1f} k.")
        lines.append(f"- Shipped snapshot: the best by {rec['metric']} during training, at {rec['nimg'] / 1000:,.1f} k "
                     f"images ({rec['metric']} {rec['value']:.3f} on {rec['selected_on']})" + last
                     + " The selection saw that fingerprint and that sample seed, so the results below are "
                       "re-computed with other sample seeds, and against the validation split.")
    elif rec:
        lines.append(f"- Shipped snapshot: the last one, at {rec['nimg'] / 1000:,.1f} k images.")
    return lines


PREVIOUS_KEYS = ("fd_derm", "precision_derm", "recall_derm", "coverage_derm", "js_rgb_hist64", "wasserstein_rgb")


def previous_lines(run: RunDir, doc: dict) -> list[str]:
    """The new version beside the one it replaced (``previous/``), on the training-split row, and the
    retraining goal judged: better FD derm with precision and recall no worse."""
    prev = run.previous()
    if prev is None:
        return []
    old = ((prev.read_results() or {}).get("results") or {}).get("train") or {}
    new = (doc.get("results") or {}).get("train") or {}
    if not old or not new:
        return []

    def cell(row: dict, k: str) -> tuple[float | None, str]:
        sp = (row.get("spread") or {}).get(k)
        if isinstance(sp, dict):
            return sp["mean"], f"{_fmt(sp['mean'])} ± {_fmt(sp['sd'])}"
        return row.get(k), _fmt(row.get(k))

    pcfg = prev.read_config()
    lines = ["### Against the version it replaced", "",
             f"The previous `{run.name}` ({pcfg.train.kimg:g} k images, seed {pcfg.train.seed}, "
             f"{'DiffAugment/ADA' if (pcfg.train.diffaug or pcfg.train.ada) else 'no D augmentation'}; its config, "
             "stats, scores, card and grids are kept in [`previous/`](previous/)), scored the same way against the "
             "training split:", "",
             "| | " + " | ".join(get_label(k) for k in PREVIOUS_KEYS) + " |",
             "| --- |" + " --- |" * len(PREVIOUS_KEYS),
             "| previous | " + " | ".join(cell(old, k)[1] for k in PREVIOUS_KEYS) + " |",
             "| this version | " + " | ".join(cell(new, k)[1] for k in PREVIOUS_KEYS) + " |", ""]
    fd_old, fd_new = cell(old, "fd_derm")[0], cell(new, "fd_derm")[0]
    if None not in (fd_old, fd_new):
        p_ok = (cell(new, "precision_derm")[0] or 0) >= (cell(old, "precision_derm")[0] or 0) - 0.01
        r_ok = (cell(new, "recall_derm")[0] or 0) >= (cell(old, "recall_derm")[0] or 0) - 0.01
        goal = fd_new < fd_old and p_ok and r_ok
        fell = [f"; {k.split('_')[0]} fell ({cell(old, k)[0]:.3f} -> {cell(new, k)[0]:.3f})"
                for k, ok in (("precision_derm", p_ok), ("recall_derm", r_ok)) if not ok]
        lines += [f"The retraining goal (lower FD derm, precision and recall no worse, within 0.01) is "
                  f"**{'met' if goal else 'not met'}**: FD derm {fd_old:.2f} -> {fd_new:.2f}" + "".join(fell) + "."]
        js_old, js_new = cell(old, KEY_JS_RGB)[0], cell(new, KEY_JS_RGB)[0]
        w_old, w_new = cell(old, KEY_WASSERSTEIN_RGB)[0], cell(new, KEY_WASSERSTEIN_RGB)[0]
        if None not in (js_old, js_new, w_old, w_new):
            bar = [meets_quality_bar({KEY_JS_RGB: js, KEY_WASSERSTEIN_RGB: w})
                   for js, w in ((js_old, w_old), (js_new, w_new))]
            lines += [f"Colour (the project's bar: JSD <= {QUALITY_BAR[KEY_JS_RGB]}, Wasserstein <= "
                      f"{QUALITY_BAR[KEY_WASSERSTEIN_RGB]}): JSD {js_old:.4f} -> {js_new:.4f}, Wasserstein {w_old:.4f} -> "
                      f"{w_new:.4f}; the bar is {'met' if bar[1] else 'missed'} by this version and was "
                      f"{'met' if bar[0] else 'missed'} by the previous one"
                      + (" (its colours are further from the real ones than before)." if js_new > js_old and w_new > w_old
                         else ".")]
        lines += [""]
    if doc.get("ship_note"):
        lines += [f"Why this version ships: {doc['ship_note']}", ""]
    return lines


def results_table(results: dict[str, dict]) -> list[str]:
    """Markdown lines: one row per reference set, one column per catalogue metric; the reasons of
    unavailable metrics below the table, once each."""
    specs = catalogue()
    # a metric with several keys (diversity: fake, real) shows each, named by the key's last word
    heads = [m.label + ("" if len(m.keys) < 2 else " " + " / ".join(k.rsplit("_", 1)[-1] for k in m.keys))
             for m in specs]
    lines = ["| against | " + " | ".join(f"{h} ({m.better} better)" for h, m in zip(heads, specs)) + " |",
             "| --- |" + " --- |" * len(specs)]
    reasons: dict[str, list[str]] = {}
    for ref, r in results.items():
        unavailable = r.get("unavailable") or {}
        cells = []
        for m in specs:
            if m.name in unavailable:
                cells.append("unavailable")
                labels = reasons.setdefault(unavailable[m.name], [])
                if m.label not in labels:
                    labels.append(m.label)
            else:
                spread = r.get("spread") or {}
                cells.append(" / ".join(_fmt(spread[k]["mean"]) + f" ± {_fmt(spread[k]['sd'])}" if k in spread
                                        else _fmt(r.get(k)) for k in m.keys))
        lines.append(f"| {ref} split | " + " | ".join(cells) + " |")
    if not results:
        lines.append("| (not scored yet: run `python -m eval.run`) |" + " |" * len(specs))
    lines += [""] + [f"{', '.join(labels)} unavailable: {reason}." for reason, labels in reasons.items()]
    return lines


def metric_notes(extra: tuple[str, ...] = ()) -> list[str]:
    """What each catalogue metric (and each metric named in ``extra``) is, sees and misses (from
    ``eval.registry``)."""
    return [f"- **{m.label}** (`{' / '.join(m.keys)}`): {m.description} Sees {m.sees}; misses {m.misses}."
            for m in catalogue() + catalogue(extra)]


C2ST_FORMS = {"derm": ("c2st_derm", "an MLP on the dermoscopy encoder's features"),
              "pixel": ("c2st_pixel", "a small CNN on 64 px pixels")}


def c2st_lines(doc: dict) -> list[str]:
    """The classifier two-sample tests of a model's results.json (the rows ``eval.run --metrics c2st_derm,c2st_pixel``
    scored), each beside its real-vs-real floor; [] when none was run."""
    from eval.keys import key_c2st
    from gan.assets import reproducing

    rows = []
    for r in doc.get("results", {}).values():
        spread = r.get("spread") or {}

        def mean(key: str) -> float:  # the mean over sample seeds where there are several
            return (spread.get(key) or {}).get("mean", r.get(key))

        def cell(form: str, floor: bool) -> str:
            k = key_c2st(form, floor=floor)
            if not isinstance(r.get(k), (int, float)):
                return "unavailable"
            sd = f" ± {spread[k]['sd']:.3f}" if k in spread else ""
            lo, hi = mean(key_c2st(form, "lo95", floor)), mean(key_c2st(form, "hi95", floor))
            return f"{mean(k):.3f}{sd} [{lo:.3f}, {hi:.3f}]"

        for form, (name, what) in C2ST_FORMS.items():
            if isinstance(r.get(name), (int, float)):
                auc = mean(key_c2st(form, "auc"))
                rows.append(f"| {get_label(name)} ({what}) | {cell(form, False)} | "
                            f"{'n/a' if auc is None else f'{auc:.3f}'} | {cell(form, True)} |")
    if not rows:
        return []
    commands = sorted({reproducing(c) for n, _ in C2ST_FORMS.values()
                       if (c := (doc.get("metric_commands") or {}).get(n))})
    seeds = doc.get("seeds", 1)
    return [f"Classifier two-sample tests (C2ST; Lopez-Paz & Oquab, ICLR 2017"
            + "".join(f"; `{c}`" for c in commands) + "): a classifier learns to tell the model's samples from the "
            "held-out validation images (5-fold, 150 a side) and is scored on the images it did not train on. "
            f"Accuracy{f', mean ± sd over {seeds} sample seeds,' if seeds > 1 else ''} with its 95% bootstrap interval, "
            "and the AUC of the same predictions; the floor is the same test with real training images in place of "
            "the samples:", "",
            "| test | samples vs held-out real: accuracy [95% CI] | AUC | floor, real vs real: accuracy [95% CI] |",
            "| --- | --- | --- | --- |", *rows, "",
            "0.5 means the classifier cannot tell the samples from real images; the floor, real training images "
            "against the same held-out images, is what \"cannot tell\" reads at this size with this classifier, so "
            "read each accuracy against its floor rather than against 0.5.", ""]


PER_CLASS_METRICS = ("hist_js", "wasserstein", "diversity")
SPLIT_DIRS = {"train": "ISIC-2017_Training_Data", "validation": "ISIC-2017_Validation_Data"}


def set_note(name: str, text: str) -> None:
    """Keep the release decision in the model's results.json (``ship_note``): why it replaced the previous
    version when the retraining goal alone does not say so."""
    run = RunDir(CKPTS / name)
    if run.generator_path is None:
        raise SystemExit(f"error: --note {name}: no shipped model in {run.path}")
    if run.previous() is None:
        raise SystemExit(f"error: --note {name}: it replaced no previous version (no {run.path / 'previous'})")
    run.update_results("ship_note", " ".join(text.split()) or None)
    print(f"{name}: note {'set' if text.strip() else 'removed'}")


def per_class(name: str, data: Path, n: int, seed: int, encoder: Path) -> None:
    """Score a conditional model class by class against the same class's real images of the ISIC 2017
    training and validation splits, and its class consistency under the dermoscopy encoder (when
    ``encoder`` exists); both go into the model's results.json."""
    from eval import FeatureCache, evaluate
    from eval.consistency import class_consistency
    from gan import load_generator
    from gan.data import load_dataset

    run = RunDir(CKPTS / name)
    G = load_generator(run.weights())
    if not G.class_names:
        raise SystemExit(f"{name}: unconditional; --per-class needs a conditional model")
    rows = {}
    for split, sub in SPLIT_DIRS.items():
        real = load_dataset(data / sub, size=G.resolution, progress=False)
        for c in G.class_names:
            res = evaluate(real, G, list(PER_CLASS_METRICS), n=n, seed=seed, label=c, cache=FeatureCache())
            rows[f"{split}/{c}"] = {k: v for k, v in res.items() if not isinstance(v, dict) or k == "unavailable"}
            print(f"{name} {split}/{c}: JSD {res.get('js_rgb_hist64', float('nan')):.4f}, "
                  f"n_real {res['n_real']}", file=sys.stderr)
    # Does each class's colour distribution sit nearest its own real class? JSD of every class's
    # samples against every class's real training images (rows: asked for; columns: real class).
    real = load_dataset(data / SPLIT_DIRS["train"], size=G.resolution, progress=False)
    cross = [[_cross_jsd(real, G, c_fake, c_real, n, seed) for c_real in G.class_names] for c_fake in G.class_names]
    run.update_results("per_class", {"n": n, "seed": seed, "data": portable_name(data),
                                     "metrics": list(PER_CLASS_METRICS), "rows": rows, "classes": list(G.class_names),
                                     "cross_jsd_train": cross})
    if (encoder / "encoder.pt").is_file():
        from eval.encoder import load_encoder

        enc = load_encoder(encoder)
        val = load_dataset(data / SPLIT_DIRS["validation"], size=enc.config.size, progress=False)
        run.update_results("class_consistency", {**class_consistency(enc, G, n, seed, real=val),
                                                 "command": f"python -m eval.consistency --checkpoint "
                                                            f"checkpoints/{name}/generator.pt --real "
                                                            f"{portable_name(data / SPLIT_DIRS['validation'])} "
                                                            f"--n {n} --seed {seed}"})
    else:
        print(f"{encoder}: no encoder.pt, so no class consistency yet", file=sys.stderr)


def _cross_jsd(real, G, c_fake: str, c_real: str, n: int, seed: int) -> float:
    """Colour JSD of ``n`` samples asked for as ``c_fake`` against the real images of ``c_real``."""
    from eval import evaluate

    images = real.images[[i for i, c in enumerate(real.labels) if c == c_real]].permute(0, 2, 3, 1).numpy()
    return float(evaluate(images, G.generate(n, seed=seed, labels=c_fake), ["hist_js"])["js_rgb_hist64"])


def per_class_lines(doc: dict) -> list[str]:
    """The card's per-class section: colour statistics per class and split, and class consistency."""
    pc, cc = doc.get("per_class"), doc.get("class_consistency")
    if not pc and not cc:
        return []
    lines = ["### Per class", ""]
    if pc:
        lines += [f"Each class's samples ({pc['n']} per class, seed {pc['seed']}) against the same class's real "
                  f"images of each split (`eval.run --class`):", "",
                  "| split / class | real images | JSD colour | Wasserstein | MS-SSIM fake / real |",
                  "| --- | --- | --- | --- | --- |"]
        for key, r in pc["rows"].items():
            lines.append(f"| {key} | {r.get('n_real')} | {_fmt(r.get('js_rgb_hist64'))} | {_fmt(r.get('wasserstein_rgb'))} "
                         f"| {_fmt(r.get('diversity_msssim_fake'))} / {_fmt(r.get('diversity_msssim_real'))} |")
        lines.append("")
        if pc.get("cross_jsd_train"):
            classes = pc["classes"]
            lines += ["Colour JSD of each class's samples (rows: asked for) against each class's real training "
                      "images (columns); a model that follows its labels is lowest on the diagonal:", "",
                      "| asked for \\ real | " + " | ".join(classes) + " |", "| --- |" + " --- |" * len(classes)]
            for c, row in zip(classes, pc["cross_jsd_train"]):
                best = min(row)
                lines.append(f"| {c} | " + " | ".join(f"**{v:.4f}**" if v == best else f"{v:.4f}" for v in row) + " |")
            lines.append("")
    if cc:
        from eval.consistency import markdown

        classes = cc["classes"]
        conf = cc["fake_confusion"]
        mel = classes.index("melanoma") if "melanoma" in classes else None
        lines += [f"Class consistency under the dermoscopy encoder ({cc['encoder'].get('metric_version')}, "
                  f"SHA-256 `{(cc['encoder'].get('sha256') or '')[:16]}`): the share of samples asked for as a class "
                  f"that the encoder puts in that class (argmax over the logits of "
                  f"{', '.join(cc['encoder']['columns'])}), beside its share on the real validation images. "
                  f"Command: `{cc.get('command', 'python -m eval.consistency')}`.", "", markdown(cc), ""]
        if mel is not None and "nevus" in classes:
            from scipy.stats import norm

            nev, n = classes.index("nevus"), cc["n_per_class"]
            a, b = round(conf[mel][mel] * n), round(conf[nev][mel] * n)
            pooled = (a + b) / (2 * n)
            z = (a - b) / n / max((pooled * (1 - pooled) * 2 / n) ** 0.5, 1e-12)
            line = (f"Samples asked for as melanoma are classified melanoma {conf[mel][mel]:.1%} of the time ({a} of "
                    f"{n}); samples asked for as nevus, {conf[nev][mel]:.1%} ({b} of {n}): "
                    f"{conf[mel][mel] / max(conf[nev][mel], 1e-12):.1f} times as often (two-proportion z = {z:.1f}, "
                    f"one-sided p = {norm.sf(z):.1g}).")
            if cc.get("real_confusion"):
                rc = cc["real_confusion"]
                line += (f" On the real validation images the encoder calls {rc[mel][mel]:.1%} of the melanomas and "
                         f"{rc[nev][mel]:.1%} of the nevi melanoma: it finds ISIC 2017's melanomas hard itself (see "
                         f"its model card), so the absolute shares above understate how often samples show their "
                         f"class; the comparison between classes is the measure.")
            lines += [line, ""]
    return lines


METHODS = {
    "dcgan": "DCGAN (Radford et al., ICLR 2016)",
    "pggan-seed": "DCGAN blocks (Radford et al., ICLR 2016) grown phase by phase, as the report describes",
    "pggan": "progressive growing of GANs (Karras et al., ICLR 2018)",
}

SKIN_TONE = (
    "- **Skin tone.** ISIC 2017's images come mostly from fair-skinned patients (clinics in Europe, the United "
    "States and Australia), and the data set records no skin type. This model learned that distribution: expect "
    "lesions on light skin, and darker skin to be rare or missing in its samples. For users this means: its "
    "samples cannot fill in missing skin types; a classifier trained or augmented with them inherits the skew "
    "and must be tested on images of the patients it is meant for; and none of the scores on this card say "
    "anything about darker skin, because the test images (ISIC 2017, HAM10000) and the dermoscopy encoder's "
    "training data (HAM10000) share the same skew.")


def _section_level(lines: list[str], level: int) -> list[str]:
    """Markdown lines with their top heading level moved to ``level`` (a section written on its own
    becomes a subsection of the card's Evaluation)."""
    top = min((len(x) - len(x.lstrip("#")) for x in lines if x.startswith("#")), default=level)
    return ["#" * (len(x) - len(x.lstrip("#")) - top + level) + x.lstrip("#") if x.startswith("#") else x
            for x in lines]


def card(mdir: Path) -> str:
    """The model card of a shipped model folder, in the Hugging Face model-card sections: model details,
    intended and out-of-scope use, training data, evaluation, limitations and biases, how to load it.
    Written from the folder's files only (config, weights' info, stats, results.json), so it can be
    re-rendered at any time without training."""
    from gan import load_generator

    run = RunDir(mdir)
    cfg = run.read_config()
    if cfg is None:
        raise SystemExit(f"{mdir}: no config.json")
    G = load_generator(run.weights())
    stats = run.read_stats()
    last = stats[-1] if stats else {}
    doc = run.read_results() or {}
    results = doc.get("results", {})
    t = cfg.train
    kimg = G.info.get("nimg", 0) / 1000
    hours = G.info.get("time_s", last.get("time_s", 0)) / 3600
    planned = G.config.train.kimg  # the weights' config: a resume may have extended the run
    cond = bool(G.class_names)
    methods = [METHODS.get(cfg.model, cfg.model)]
    if t.ada:
        methods.append("ADA (Karras et al., NeurIPS 2020)")
    if t.diffaug:
        methods.append("DiffAugment (Zhao et al., NeurIPS 2020)")
    if cond:
        methods.append("a projection discriminator (Miyato & Koyama, ICLR 2018)")
    lines = [f"# Model card: `{run.name}`", "",
             f"{'A class-conditional' if cond else 'An unconditional'} GAN generator of {G.resolution} px dermoscopic "
             f"skin-lesion images, trained on the ISIC 2017 challenge's training split with LesionGAN"
             + (f" (classes: {', '.join(G.class_names)})." if cond else "."), "",
             "## Model details", "",
             f"- Architecture: {RECIPES.get(cfg.model, cfg.model)}",
             f"- Methods: {'; '.join(methods)}.",
             f"- Generator parameters: {G.num_params:,}; output {G.resolution} px RGB, uint8; sampled from G_ema "
             f"(half-life {t.ema_kimg} kimg, BatchNorm statistics re-estimated for the EMA weights).",
             images_seen_line(kimg, planned, doc.get("best_snapshot")),
             f"- Wall time: {hours:.2f} h on {G.info.get('hardware', 'unknown hardware')} (at the last resume); the machine was shared "
             "with the other models' runs, so the time is not a speed figure (see bench/ for those).",
             f"- Final logged losses (mean of the last {t.log_kimg} kimg): D {last.get('loss_D', float('nan')):.3f}, "
             f"G {last.get('loss_G', float('nan')):.3f}; D(x) {last.get('D_real', float('nan')):.3f}, "
             f"D(G(z)) {last.get('D_fake', float('nan')):.3f}.",
             augmentation_line(cfg, stats),
             *snapshot_lines(doc, run.read_metrics()),
             f"- Model config: `{json.dumps(to_dict(cfg.model_cfg))}`",
             f"- Retrain from scratch: `{retrain_command(cfg, planned)}`",
             "- Every training run behind the shipped models, shipped or not, with its command and scores: "
             "[docs/experiments.md](../../docs/experiments.md).",
             "- Licence: the weights derive from the ISIC 2017 images and follow their terms (Training data, "
             "below); the code that made them is Apache-2.0.", "",
             "## Intended use", "",
             "- Research on synthetic data for dermoscopy: data augmentation and class balancing experiments, "
             "GAN training and evaluation methods, membership-inference audits, teaching.",
             ("- Labelled synthetic sets for classifier experiments (`python -m gan.synthesize`), measured with "
              "`python -m eval.utility` before they are relied on." if cond else
              "- Samples for looking at, for comparing generators and metrics, and as a baseline against the "
              "report's recipes."),
             "- Users: researchers who can judge generated medical images and check a downstream model on real "
             "data.", "",
             "## Out-of-scope use", "",
             "- Diagnosis, screening, triage or any clinical decision, and anything shown to patients as their "
             "own or as real images.",
             "- Training or validating a clinical model on its samples without testing that model on real, "
             "representative patient images.",
             "- Passing generated images off as real, or as the images of a person.",
             "- Any claim of privacy: the model was not trained with differential privacy; the audit below is "
             "an empirical attack, not a guarantee.",
             "- Uses the ISIC archive's image terms do not allow (Training data, below).", "",
             "## Training data", "",
             f"- ISIC 2017 challenge, Part 3, **training split**: {cfg.data.num_images or 2000} "
             "dermoscopic images (1,372 nevus, 374 melanoma, 254 seborrheic keratosis), "
             + (f"**class-conditional** on {', '.join(G.class_names)} (a class embedding joined to z in G, a "
                f"projection discriminator; {'class-balanced sampling' if t.balance else 'images drawn in shuffled epochs, so the classes in their data shares'})."
                if cond else "unconditional (labels not used)."),
             f"- Image ids: [`{IDS}`](../{IDS}). The 150 validation images were held out: they are the "
             "held-out set of the memorization check and the second row of the results.",
             "- Preprocessing: the challenge's 256x256 images, centre square crop, PIL LANCZOS resize to "
             f"{cfg.data.size} px, uint8; random flips and 90-degree rotations during training"
             f"{'' if cfg.data.augment else ' (off for this run)'}.",
             "- Licence and citation:", *("  " + x for x in CITATIONS.split("\n")), "",
             "## Evaluation", "",
             f"Scored by `python -m eval.run --seeds {doc.get('seeds', 1)}` ({doc.get('n', 2000):,} samples per seed, "
             f"{'mean ± sd over sample seeds ' + ', '.join(str(doc.get('seed', 0) + i) for i in range(doc.get('seeds', 1))) if doc.get('seeds', 1) > 1 else 'seed ' + str(doc.get('seed', 0))}, 64 px, "
             "no resizing; histograms 64 bins over [0, 256), base-2 JSD, RGB mean; Wasserstein of pixel intensities "
             "on [0, 1], RGB mean; MS-SSIM 3 scales at 64 px over 1,000 random pairs; memorization at 32 px against "
             "the training split's image bank; the derm metrics in the derm1 encoder's 128-d features against the "
             "fingerprint's 2,000 training (or 150 validation) feature vectors). One pair alone: `python -m eval.run --real "
             f"checkpoints/{run.name}/fingerprint.npz --fake checkpoints/{run.name}/generator.pt "
             f"--heldout checkpoints/{run.name}/fingerprint-val.npz --n 2000 --seed 0 --json`.", "",
             *results_table(results), ""]
    # The bar is judged on the numbers the table shows: the means over sample seeds where there are several.
    results = {ref: {**r, **{k: v["mean"] for k, v in (r.get("spread") or {}).items() if isinstance(v, dict)}}
               for ref, r in results.items()}
    met = meets_quality_bar(results.get("train"))
    val = results.get("validation") or {}
    val_met = meets_quality_bar(val)
    verdict = ("has no training-split score yet" if met is None else f"**{'meets' if met else 'does not meet'}** that bar")
    if val_met is not None:
        verdict += (f"; against the held-out validation images it scores {_bar_numbers(val)}, "
                    f"{'also within' if val_met else 'outside'} the bar's numbers")
    lines += ["The validation split has 150 images, so its row carries more sampling noise than the training "
              "row. For scale: two disjoint halves of the training split score JSD 0.0010 and Wasserstein 0.0048; "
              f"the project's quality bar is {describe_quality_bar()} against the training split. "
              f"This model {verdict}.", "",
              *c2st_lines(doc),
              *previous_lines(run, doc),
              *per_class_lines(doc),
              *_section_level(utility_privacy_lines(doc, run.name, cond), 3),
              "### What each number sees and misses", "",
              *metric_notes(tuple(n for n, _ in C2ST_FORMS.values() if any(n in r for r in results.values()))), "",
              "## Limitations and biases", "",
              "- 64 px only: far below diagnostic resolution. Synthetic images are for data augmentation research, "
              "never for diagnosis.",
              SKIN_TONE,
              ("- Conditional: `G.generate(n, labels=\"melanoma\")` asks for a class; whether the samples look like "
               "it is what the class consistency above measures, through an encoder trained on other images. The "
               "classes are ISIC 2017's three only; other diagnoses (basal cell carcinoma and the rest) are never "
               "drawn." if cond else
               "- Unconditional: the class mix follows the training split (about 69% nevus); no control over the "
               "diagnosis."),
              "- Trained on a 2-core CPU for a short time: expect blur and repeated textures; compare the grids "
              "under `grids/` with the real thumbnails in the dashboard's Gallery. The colour range, lesion "
              "sizes and dark-corner vignetting of the data come through; fine structures (hairs, ruler "
              "marks, pigment networks) rarely do at 64 px.",
              "- 2,000 training images from one challenge: the model knows only the cameras, clinics and framing "
              "of ISIC 2017's sources, and its samples carry them.",
              "- FID/KID need Inception weights that the scoring machine could not download. The colour and pixel "
              "measures do not see shape or texture; the derm metrics do, through an encoder trained on "
              "HAM10000 that is weaker on ISIC 2017 (3-class balanced accuracy 0.48: "
              "[its card](../derm-encoder/MODEL_CARD.md)).", "",
              "## How to load it", "",
              "Install LesionGAN (see the repository's README), then, from the repository root:", "",
              "```python",
              "from gan import load_generator",
              f'G = load_generator("checkpoints/{run.name}/generator.pt")  # no flags: the file carries its config',
              (f'images = G.generate(16, seed=0, labels="{G.class_names[0]}")  # uint8 numpy (16, {G.resolution}, '
               f'{G.resolution}, 3); labels: a class name or index, one or per image' if cond else
               f"images = G.generate(16, seed=0)  # uint8 numpy (16, {G.resolution}, {G.resolution}, 3); the same seed, "
               "the same images"),
              "```", "",
              "```sh",
              f"python -m gan.sample --checkpoint checkpoints/{run.name}/generator.pt --n 64 --out samples --seed 0 --grid"
              + (f" --class {G.class_names[0]}" if cond else ""),
              *([f"python -m gan.synthesize --checkpoint checkpoints/{run.name}/generator.pt --out synthetic "
                 f"--per-class {','.join(c + '=200' for c in G.class_names)}"] if cond else []),
              "```", "",
              "The file holds weights and config only and loads with `torch.load(weights_only=True)`: nothing in "
              "it can run code.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", nargs="?", type=Path)
    p.add_argument("--name", help="model folder name under checkpoints/ (default: the run's model name)")
    p.add_argument("--grids", type=int, default=5)
    p.add_argument("--snapshot", choices=("best", "final"), default="best",
                   help="ship the run's best snapshot (generator-best.pt, from --keep-best; default) or its last")
    p.add_argument("--previous", choices=("first", "replaced"), default="first",
                   help="what previous/ keeps when a new run replaces a shipped model: the first version it "
                        "ever replaced (default) or the version replaced now (the older one moves to "
                        "previous/previous/)")
    p.add_argument("--cards", action="store_true", help="write MODEL_CARD.md for every shipped model")
    p.add_argument("--per-class", metavar="NAME", help="a shipped conditional model to score per class")
    p.add_argument("--data", type=Path, default=Path("../shared/data/isic2017"), help="ISIC 2017 root (--per-class)")
    p.add_argument("--n", type=int, default=500, help="samples per class (--per-class; default 500)")
    p.add_argument("--encoder", type=Path, default=CKPTS / "derm-encoder", help="the dermoscopy encoder folder")
    p.add_argument("--note", nargs=2, metavar=("NAME", "TEXT"),
                   help="why the shipped model NAME replaced its previous version (its card prints it beside the "
                        "old-vs-new table; an empty TEXT removes it)")
    args = p.parse_args(argv)
    try:
        if args.run_dir:
            ship(args.run_dir, args.name, args.grids, args.snapshot, args.previous)
    except (ValueError, OSError) as e:  # a checkpoint refused or unreadable, a full disk: it names its file
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.per_class:
        per_class(args.per_class, args.data, args.n, 0, args.encoder)
    if args.note:
        set_note(*args.note)
    if args.cards:
        for run in discover(CKPTS):
            if run.generator_path is not None:
                path = run.write_model_card(card(run.path))
                print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
