"""Membership audits on known halves: train a model's recipe on a seeded random half of its training
split (the members) and keep the other half (non-members of the same distribution), so that a
membership attack's score is not confounded by a shift between training and held-out images.

    python -m eval.audit split --data ../shared/data/isic2017 --out AUDIT [--seed 0]
    python -m eval.audit train AUDIT --recipe checkpoints/dcgan --half a [--kimg 480] [--keep-kimg 20]
    python -m eval.audit score AUDIT --kimg 240 [--n 10000] [--ship checkpoints/dcgan]
    python -m eval.audit length AUDIT [--n 5000] [--every 20] [--up-to 240]
    python -m eval.audit ship AUDIT --kimg 240 --to checkpoints/dcgan

``split`` writes ``AUDIT/split.json`` (seed, data set, both halves' names and content hashes) and the
two image lists ``half-a.txt`` / ``half-b.txt`` (:mod:`gan.data.subset`). ``train`` trains the recipe
(:func:`gan.train.read_recipe`: a run folder such as ``checkpoints/dcgan``) on one half into
``AUDIT/half-a/`` with a snapshot (G, D, G_ema) every ``--keep-kimg`` and ``fd_derm`` against the
full training split's fingerprint at each; run again, it resumes. Every image is a member of one half's
model and a non-member of the other's: audited in turn, the two models pool to 2 x N/2 members
against 2 x N/2 non-members. These are models of *the same recipe trained on half the data*, not the
shipped weights.

``score`` audits both halves' models at one snapshot and pools them (each image once a member, once
a non-member). Per attack — pixel and derm1 nearest-sample distance (GAN-Leaks), D's score (LOGAN) and
DOMIAS (k-NN density ratio in derm1 features, cross-fitted over the non-members; van Breugel et al.
2023) — it reports the AUC with a bootstrap interval, the TPR at 1% and 0.1% FPR with Clopper-Pearson
intervals (:mod:`eval.membership`), the ROC curve, a permutation null, and a distribution-shift control:
the same attack between the model's non-member half and the ISIC 2017 validation split, both
non-members, where an AUC away from 0.5 is shift, not membership. Also the share of samples closer to a
training image than that image's nearest other training image (pixels, derm1), beside the same share
for non-member images. ``length`` does the same (without bootstrap) at every kept snapshot, with FD derm
from the run's metrics (run again, it keeps the snapshots already swept with the same samples and
adds the new ones): privacy over training length, which the dashboard draws once ``score --ship``
has put it into the model's results.

This module owns ``split.json``, ``audit-KKKKKK.json`` (and its ``.md``) and ``length.json``; ``split.json``: ``{"format": "lesiongan-audit-split", "version": 1, "seed",
"data": {"name", "path", "split", "num_images"}, "halves": {"a": {"list", "n", "sha256"}, "b": ...}}``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

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
               metrics_ref: str | None, threads: int | None, metrics: bool = True, seed: int | None = None,
               restart: bool = False) -> list[str]:
    """The ``gan.train`` arguments of one half's run: ``--resume`` of the newest run there, or a fresh run
    (also with ``restart``: a new numbered run folder beside a run that failed, e.g. with another ``seed``;
    the newest run is the one audited)."""
    from gan.rundir import RunDir

    folder = Path(folder)
    half_names(folder, half)  # checks the list
    runs = folder / f"half-{half}"
    existing = sorted(p for p in runs.iterdir() if RunDir(p).checkpoint_path is not None) if runs.is_dir() else []
    extra = ["--threads", str(threads)] if threads else []
    if existing and not restart:
        # --data too: a run folder far from its data keeps no path to it (gan.data.DataConfig.portable)
        return ["--resume", str(existing[-1]), "--data", data, "--kimg", f"{kimg:g}", *extra]
    argv = ["--recipe", recipe, "--data", data, "--subset", str(folder / f"half-{half}.txt"), "--out", str(runs),
            "--kimg", f"{kimg:g}", "--keep-kimg", f"{keep_kimg:g}", *extra]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if metrics:
        argv += ["--metrics-kimg", f"{keep_kimg:g}"]
    if metrics_ref:
        argv += ["--metrics-ref", metrics_ref]
    return argv


# --- scoring ---------------------------------------------------------------------------------------

ATTACKS = {
    "distance_pixel": "nearest-sample distance, pixels (RMS on [0, 1], 64 px)",
    "distance_derm": "nearest-sample distance, derm1 features",
    "discriminator": "D(x), the discriminator's probability of real",
    "domias_derm": "DOMIAS: k-NN (k = 5) density ratio, samples over non-member reference, derm1 features",
}
SHORT = {"distance_pixel": "pixel distance", "distance_derm": "derm1 distance", "discriminator": "D score",
         "domias_derm": "DOMIAS"}
AUDIT_FORMAT, AUDIT_VERSION = "lesiongan-audit", 1
CARD_NOTE = "the same recipe trained on half the data, not the shipped weights"


def half_run(folder: str | Path, half: str):
    """The run folder of one half's training (``AUDIT/half-a/NNNNN-...``)."""
    from gan.rundir import RunDir

    runs = Path(folder) / f"half-{half}"
    found = sorted(p for p in runs.iterdir() if RunDir(p).is_run()) if runs.is_dir() else []
    if not found:
        raise ValueError(f"{runs}: no training run (start one with: python -m eval.audit train {folder} --half {half})")
    return RunDir(found[-1])


def snapshot_file(run, kimg: int) -> Path:
    """The snapshot kept at ``kimg`` thousand images; ValueError listing the ones there are."""
    kept = dict(run.list_snapshots())
    if kimg * 1000 not in kept:
        have = ", ".join(f"{n // 1000}" for n in sorted(kept)) or "none yet"
        raise ValueError(f"{run.path}: no snapshot at {kimg} kimg (kept: {have})")
    return kept[kimg * 1000]


def load_sets(folder: str | Path, size: int = 64) -> tuple[dict, Any]:
    """({half: members ImageSet}, the held-out split as an ImageSet or None) of an audit folder, at
    ``size`` px (the audited models' resolution)."""
    from gan.data import DataConfig, load_dataset
    from gan.data.subset import select

    doc = read_split(folder)
    data = doc["data"]
    full = load_dataset(DataConfig(data["path"], size=size, split=data["split"]), progress=False)
    halves = {}
    for h in HALVES:
        half_names(folder, h)  # checked against split.json
        halves[h] = select(full, Path(folder) / doc["halves"][h]["list"])
    heldout = None
    if data["layout"] == "isic2017" and data["split"] in (None, "train"):
        heldout = load_dataset(DataConfig(data["path"], size=size, split="validation"), progress=False)
    return halves, heldout


def half_scores(G, D, members, nonmembers, heldout, encoder, n: int, seed: int, cache: dict | None = None) -> dict:
    """Every attack's per-image scores (higher = likelier a member) for one model: ``member``,
    ``nonmember`` and ``heldout`` (the shift control's second set; None for DOMIAS), and the copy shares.
    ``cache``: the real sets' encoder features by set, kept between calls (they do not change between
    snapshots)."""
    from eval.membership import copy_share, domias_scores, nearest_distances
    from eval.privacy import SAMPLE_BATCH, discriminator_scores, labelled_subset, pixel_vectors

    samples = G.generate(n, seed=seed, batch_size=SAMPLE_BATCH)
    sets = {"member": members, "nonmember": nonmembers, **({"heldout": heldout} if heldout is not None else {})}
    nhwc = {k: v.images.permute(0, 2, 3, 1).numpy() for k, v in sets.items()}
    out: dict[str, Any] = {"scores": {}, "copies": {}}
    bank = pixel_vectors(samples)
    pix = {k: pixel_vectors(v) for k, v in nhwc.items()}
    out["scores"]["distance_pixel"] = {k: -nearest_distances(v, bank)[0] for k, v in pix.items()}
    out["copies"]["pixels"] = copy_share(bank, pix["member"], pix["nonmember"])
    if encoder is not None:
        fs = encoder.features(samples)
        cache = {} if cache is None else cache
        for k, v in nhwc.items():
            if id(sets[k]) not in cache:
                cache[id(sets[k])] = encoder.features(v)
        feats = {k: cache[id(sets[k])] for k in nhwc}
        out["scores"]["distance_derm"] = {k: -nearest_distances(v, fs)[0] for k, v in feats.items()}
        m, nm = domias_scores(feats["member"], feats["nonmember"], fs, k=5, seed=seed)
        out["scores"]["domias_derm"] = {"member": m, "nonmember": nm}
        out["copies"]["derm1"] = copy_share(fs, feats["member"], feats["nonmember"])
    if D is not None:
        class_names = list(getattr(G, "class_names", []) or [])
        scored = {}
        for k, v in sets.items():
            labels, keep = labelled_subset(v, class_names)
            if len(keep) != len(v.images):
                scored = None
                break
            scored[k] = discriminator_scores(D, v.images, labels)
        if scored is not None:
            out["scores"]["discriminator"] = scored
    return out


def summarize(member, nonmember, bootstrap: int, seed: int) -> dict:
    """AUC [95% bootstrap CI] (``bootstrap`` 0: none), TPR at 1% and 0.1% FPR, ROC points, permutation null."""
    from eval.membership import FPRS, auc, permutation_null, roc_points, tpr_at_fpr
    from eval.privacy import attack_auc

    res = attack_auc(member, nonmember, bootstrap, seed) if bootstrap else \
        {"auc": auc(member, nonmember), "n_members": len(member), "n_nonmembers": len(nonmember)}
    res["tpr_at_fpr"] = {f"{f:g}": tpr_at_fpr(member, nonmember, f) for f in FPRS}
    res["roc"] = roc_points(member, nonmember)
    if bootstrap:
        res["null"] = permutation_null(member, nonmember, B=200, seed=seed)
    return res


def score_snapshot(folder: str | Path, kimg: int, *, n: int = 10_000, seed: int = 0, encoder=None,
                   bootstrap: int = 1000, sets=None, progress: bool = True, cache: dict | None = None) -> dict:
    """Audit both halves' models at ``kimg`` and pool them (see the module's docstring)."""
    from tqdm import tqdm

    from eval.privacy import attack_auc, load_discriminator
    from gan import load_generator

    t0 = time.time()
    halves, heldout = sets or load_sets(folder, half_run(folder, HALVES[0]).read_config().data.size)
    per_half, snaps = {}, {}
    for h in tqdm(HALVES, desc=f"audit {kimg} kimg", disable=not progress, file=sys.stderr):
        other = HALVES[1 - HALVES.index(h)]
        run = half_run(folder, h)
        path = snapshot_file(run, kimg)
        G = load_generator(path)
        D, _, info = load_discriminator(path)
        snaps[h] = {"file": f"{path.parent.parent.name}/snapshots/{path.name}", "nimg": int(info["nimg"]),
                    "training_seed": int(run.read_config().train.seed)}
        per_half[h] = half_scores(G, D, halves[h], halves[other], heldout, encoder, n, seed, cache)
    attacks: dict[str, Any] = {}
    for i, name in enumerate(ATTACKS):
        if not all(name in per_half[h]["scores"] for h in HALVES):
            attacks[name] = {"unavailable": "no dermoscopy encoder" if "derm" in name else "no discriminator"}
            continue
        s = {h: per_half[h]["scores"][name] for h in HALVES}
        pooled_m = np.concatenate([s[h]["member"] for h in HALVES])
        pooled_n = np.concatenate([s[h]["nonmember"] for h in HALVES])
        res = {"what": ATTACKS[name], **summarize(pooled_m, pooled_n, bootstrap, seed=100 * (i + 1))}
        res["halves"] = {h: {"auc": summarize(s[h]["member"], s[h]["nonmember"], 0, 0)["auc"]} for h in HALVES}
        if all("heldout" in s[h] for h in HALVES):
            shift_a = np.concatenate([s[h]["nonmember"] for h in HALVES])
            shift_b = np.concatenate([s[h]["heldout"] for h in HALVES])
            ctrl = attack_auc(shift_a, shift_b, max(bootstrap, 10), seed=100 * (i + 1) + 7)
            res["shift_control"] = {"auc": ctrl["auc"], "ci95": ctrl["ci95"], "n_half": len(shift_a),
                                    "n_heldout": len(shift_b),
                                    "what": "non-member half (positive) against the validation split, both non-members"}
        else:
            res["shift_control"] = {"unavailable": "needs the ISIC 2017 validation split beside the training split"
                                    if heldout is None else "not defined for this attack (its reference set is "
                                    "the non-member half)"}
        attacks[name] = res
    copies = {space: {h: per_half[h]["copies"][space] for h in HALVES}
              for space in per_half[HALVES[0]]["copies"]}
    return {"format": AUDIT_FORMAT, "version": AUDIT_VERSION, "protocol": "split", "kimg": int(kimg),
            "n_samples": int(n), "seed": int(seed), "bootstrap": int(bootstrap), "note": CARD_NOTE,
            "split": {k: v for k, v in read_split(folder).items() if k in ("seed", "halves")},
            "snapshots": snaps, "attacks": attacks, "copies": copies,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.time() - t0, 1)}


def fmt_ci(v: dict) -> str:
    return f"{v['auc']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" if "ci95" in v else f"{v['auc']:.3f}"


def fmt_tpr(t: dict) -> str:
    if not t.get("estimable"):
        return t.get("reason", "not estimable")
    return f"{t['tpr']:.3f} [{t['ci95'][0]:.3f}, {t['ci95'][1]:.3f}]"


def markdown(doc: dict) -> str:
    """The audit as a Markdown table: one row per attack."""
    lines = [f"Membership audit on known halves at {doc['kimg']} k images ({doc['note']}); "
             f"{doc['n_samples']} samples per model, seed {doc['seed']}.", "", *table_lines(doc)]
    return "\n".join(lines) + "\n"


def table_lines(doc: dict) -> list[str]:
    """The attack table and the copy-share table of one audit (Markdown lines)."""
    lines = ["| attack | AUC [95% CI] | TPR at 1% FPR [exact 95% CI] | TPR at 0.1% FPR | permutation null AUC "
             "(95% range) | shift control AUC [95% CI] |", "| --- | --- | --- | --- | --- | --- |"]
    for name, a in doc["attacks"].items():
        if "unavailable" in a:
            lines.append(f"| {ATTACKS[name]} | {a['unavailable']} | | | | |")
            continue
        null = a.get("null", {})
        null_s = f"{null['auc_mean']:.3f} ({null['auc_range95'][0]:.3f}-{null['auc_range95'][1]:.3f})" if null else ""
        sc = a["shift_control"]
        sc_s = fmt_ci(sc) if "auc" in sc else sc["unavailable"]
        lines.append(f"| {a['what']} | {fmt_ci(a)} | {fmt_tpr(a['tpr_at_fpr']['0.01'])} | "
                     f"{fmt_tpr(a['tpr_at_fpr']['0.001'])} | {null_s} | {sc_s} |")
    lines += ["", "| space | samples closer to a training image than its nearest other training image | "
              "non-member images, the same (base rate) |", "| --- | --- | --- |"]
    for space, halves in doc["copies"].items():
        syn = sum(h["synthetic_count"] for h in halves.values()) / sum(h["n_synthetic"] for h in halves.values())
        base = sum(h["nonmember_count"] for h in halves.values()) / sum(h["n_nonmembers"] for h in halves.values())
        lines.append(f"| {space} | {syn:.2%} | {base:.2%} |")
    return lines


def card_lines(section: dict) -> list[str]:
    """A model card's account of a shipped ``privacy_split`` section (:func:`ship`): what was trained, the
    tables, and privacy over training length when it was swept."""
    halves = section["split"]["halves"]
    n_half = {h: v["n"] for h, v in halves.items()}
    seeds = ", ".join(f"half {h.upper()} seed {v.get('training_seed', '?')}" for h, v in section["snapshots"].items())
    lines = [f"Membership audit on known halves ({section['note']}): the recipe trained twice, on a seeded random half "
             f"of the training split each ({' and '.join(f'{n:,}' for n in n_half.values())} images; split seed "
             f"{section['split']['seed']}; training {seeds}), to {section['kimg']} k images. Every training image is a "
             "member of one model and a non-member of the other, so the pooled attack compares "
             f"{sum(n_half.values()):,} members with {sum(n_half.values()):,} non-members of the same distribution "
             f"({section['n_samples']:,} samples per model; `{section.get('command', 'python -m eval.audit score')}`). "
             "AUC 0.5 and a TPR equal to the FPR mean the attack cannot tell members from non-members; the shift "
             "control compares two sets of non-members (the non-member halves and the validation split), so a value "
             "away from 0.5 there measures a difference between the splits, not membership.", "",
             *table_lines(section), ""]
    rows = section.get("length", {}).get("rows", [])
    if rows:
        def at(row, name):
            a = row.get(name) or {}
            return f"{a['auc']:.3f}" if "auc" in a else "n/a"
        fd = [r for r in rows if r.get("fd_derm") is not None]
        lines += [f"Privacy over training length ({section['length']['n_samples']:,} samples per model, no bootstrap; "
                  "the dashboard plots every attack with FD derm):", "",
                  "| images seen | " + " | ".join(f"{SHORT[n]} AUC" for n in ATTACKS) + " | FD derm |",
                  "| --- | " + " | ".join("---" for _ in ATTACKS) + " | --- |"]
        for r in rows:
            fd_s = f"{r['fd_derm']:.2f}" if r.get("fd_derm") is not None else "n/a"
            lines.append(f"| {r['kimg']} k | " + " | ".join(at(r, n) for n in ATTACKS) + f" | {fd_s} |")
        lines.append("")
        if not fd:
            lines += ["FD derm was not scored during these trainings.", ""]
    return lines


def length_sweep(folder: str | Path, *, n: int = 5000, seed: int = 0, encoder=None, every: int = 20,
                 up_to: int | None = None, progress: bool = True, save=None) -> dict:
    """Pooled AUC and TPR at 1% FPR of every attack at each snapshot both halves kept, with FD derm from
    the runs' metrics (the mean of the two halves at the nearest scored step). ``save``: called with the
    sweep so far after each new snapshot (a long sweep stopped early keeps what it did)."""
    runs = {h: half_run(folder, h) for h in HALVES}
    sets = load_sets(folder, runs[HALVES[0]].read_config().data.size)
    kept = set.intersection(*({n_ // 1000 for n_, _ in r.list_snapshots()} for r in runs.values()))
    # Rows of an earlier sweep with the same samples and runs are kept (those of other snapshot spacings
    # too): run again, it adds the new snapshots.
    done = {}
    old_file = Path(folder) / "length.json"
    if old_file.is_file():
        old = json.loads(old_file.read_text(encoding="utf-8"))
        if (old.get("n_samples"), old.get("seed"), old.get("snapshots")) == (n, seed, _run_names(runs)):
            done = {r["kimg"]: r for r in old.get("rows", []) if set(r) - {"kimg", "fd_derm"} >= _attack_names(encoder)}
    new = sorted(k for k in kept if k % every == 0 and (up_to is None or k <= up_to) and k not in done)
    rows, cache = dict(done), {}  # cache: the real images' features, computed once for every snapshot
    for k in new:
        doc = score_snapshot(folder, k, n=n, seed=seed, encoder=encoder, bootstrap=0, sets=sets, progress=progress,
                             cache=cache)
        row: dict[str, Any] = {"kimg": k}
        for name, a in doc["attacks"].items():
            if "auc" in a:
                t = a["tpr_at_fpr"]["0.01"]
                row[name] = {"auc": a["auc"], "tpr_at_1pct": t.get("tpr"), "tpr_ci95": t.get("ci95")}
        fds, after = [], False
        for r in runs.values():
            m = [x for x in r.read_metrics() if "fd_derm" in x and abs(x["nimg"] - k * 1000) < 1000]
            if m:
                fds.append(m[0]["fd_derm"])
            elif encoder is not None and (fd := _fd_derm_of_snapshot(r, k)) is not None:
                fds.append(fd)  # not scored during training (e.g. the encoder file changed under the run)
                after = True
        row["fd_derm"] = float(np.mean(fds)) if len(fds) == len(runs) else None
        if after and row["fd_derm"] is not None:
            row["fd_derm_scored"] = "after training, from the snapshot, with the training's sample count"
        rows[k] = row
        if save is not None:
            save(_length_doc(n, seed, runs, rows))
    return _length_doc(n, seed, runs, rows)


def _length_doc(n: int, seed: int, runs: dict, rows: dict) -> dict:
    return {"format": AUDIT_FORMAT, "version": AUDIT_VERSION, "protocol": "split-length", "n_samples": n,
            "seed": seed, "note": CARD_NOTE, "snapshots": _run_names(runs), "rows": [rows[k] for k in sorted(rows)]}


def _fd_derm_of_snapshot(run, kimg: int) -> float | None:
    """FD derm of the snapshot at ``kimg`` against the run's training-time reference (a shipped fingerprint,
    found by name), with the run's ``metrics_n`` samples of seed 0; None where that reference is not here."""
    from eval import evaluate
    from gan import load_generator
    from gan.assets import checkpoints_dir

    cfg = run.read_config()
    ref = checkpoints_dir() / "fingerprints" / Path(cfg.train.metrics_ref or "").name
    if not cfg.train.metrics_ref or not ref.is_file():
        return None
    res = evaluate(str(ref), load_generator(snapshot_file(run, kimg)), ["fd_derm"], n=cfg.train.metrics_n, seed=0)
    return float(res["fd_derm"]) if "fd_derm" in res else None


def _run_names(runs: dict) -> dict:
    """Which training run of each half a sweep read (a restarted half is a different model)."""
    return {h: r.path.name for h, r in runs.items()}


def _attack_names(encoder) -> set:
    return {"distance_pixel", "discriminator"} | ({"distance_derm", "domias_derm"} if encoder is not None else set())


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
    t.add_argument("--seed", type=int, help="the training seed of a fresh run (default: the recipe's)")
    t.add_argument("--restart", action="store_true", help="start a fresh run beside the one there (which stays, "
                                                           "no longer audited) instead of resuming it")
    t.add_argument("--no-progress", action="store_true")
    sh = sub.add_parser("ship", help="put a finished audit into a model's results (section privacy_split)")
    sh.add_argument("folder", help="the audit folder")
    sh.add_argument("--kimg", type=int, required=True, help="the audited snapshot (audit-KKKKKK.json)")
    sh.add_argument("--to", required=True, metavar="RUN", help="the model's run folder, e.g. checkpoints/dcgan")
    for name, text in (("score", "audit both halves' models at one snapshot, pooled"),
                       ("length", "audit every kept snapshot (privacy over training length)")):
        c = sub.add_parser(name, help=text)
        c.add_argument("folder", help="the audit folder")
        if name == "score":
            c.add_argument("--kimg", type=int, required=True, help="the snapshot, in thousand images (e.g. 240)")
            c.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of the AUC (default 1000)")
            c.add_argument("--ship", metavar="RUN", help="also write the result into this run folder's results.json "
                                                         "(section privacy_split), e.g. checkpoints/dcgan")
        if name == "length":
            c.add_argument("--every", type=int, default=20, help="audit the snapshots at multiples of this many "
                                                                 "kimg (default 20: every kept one)")
            c.add_argument("--up-to", type=int, help="the last snapshot to audit, in kimg (default: all)")
        c.add_argument("--n", type=int, default=10_000 if name == "score" else 5000,
                       help="synthetic samples per model (default 10000 for score, 5000 for length)")
        c.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
        c.add_argument("--derm-encoder", help="the dermoscopy encoder (default: the shipped one), or 'none'")
        c.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    return p


def _encoder(flag: str | None):
    if (flag or "").lower() == "none":
        return None
    from eval.encoder import load_encoder
    from eval.metrics.derm import encoder_for_flag

    return load_encoder(encoder_for_flag(flag, "--derm-encoder", "; give --derm-encoder PATH, or 'none'"))


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "split":
            doc = make_split(args.data, args.out, args.seed, args.split)
            print(f"{Path(args.out) / SPLIT_FILE}: seed {doc['seed']}, halves of "
                  f"{doc['halves']['a']['n']} and {doc['halves']['b']['n']} images")
            return 0
        if args.command == "ship":
            print(f"wrote {ship(args.folder, args.kimg, args.to)}")
            return 0
        if args.command in ("score", "length"):
            return _score_command(args, argv)
        from gan import train
        from gan.assets import checkpoints_dir

        doc = read_split(args.folder)
        recipe = args.recipe or str(checkpoints_dir() / "dcgan")
        ref = args.metrics_ref
        shipped_ref = checkpoints_dir() / "fingerprints" / "isic2017-train-64.npz"
        from gan.train import read_recipe

        if not read_recipe(recipe).train.metrics:
            ref = None  # a recipe without metrics during training scores nothing
        elif ref is None and doc["data"]["layout"] == "isic2017" and doc["data"]["split"] == "train" \
                and shipped_ref.is_file():
            ref = str(shipped_ref)
        targv = train_argv(args.folder, args.half, recipe, doc["data"]["path"], args.kimg, args.keep_kimg, ref,
                           args.threads, metrics=bool(read_recipe(recipe).train.metrics), seed=args.seed,
                           restart=args.restart)
        print("python -m gan.train " + " ".join(targv), file=sys.stderr)
        return train.main(targv + (["--no-progress"] if args.no_progress else []))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def ship(folder: str | Path, kimg: int, run_folder: str | Path) -> Path:
    """Put the audit at ``kimg`` (``audit-KKKKKK.json``) and, when swept, privacy over training length
    (``length.json``) into a model's results (section ``privacy_split``), the audit folder's path
    replaced by ``AUDIT`` in the commands."""
    from gan.rundir import RunDir

    folder = Path(folder)
    run = RunDir(run_folder)
    if not run.is_run():
        raise ValueError(f"{run_folder}: not a run folder")
    src = folder / f"audit-{kimg:06d}.json"
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{src}: no audit at {kimg} kimg (run: python -m eval.audit score {folder} --kimg {kimg})") from None
    local = str(folder.resolve())
    shipped = {**doc, "command": doc.get("command", "").replace(local, "AUDIT").replace(str(folder), "AUDIT")}
    if (folder / "length.json").is_file():  # privacy over training length, when swept
        length = json.loads((folder / "length.json").read_text(encoding="utf-8"))
        shipped["length"] = {"rows": length["rows"], "n_samples": length["n_samples"],
                             "command": length.get("command", "").replace(local, "AUDIT").replace(str(folder), "AUDIT")}
    return run.update_results("privacy_split", shipped)


def _score_command(args: argparse.Namespace, argv: list[str] | None) -> int:
    import torch

    from gan.fileio import atomic_write_text

    torch.set_num_threads(max(1, args.threads))
    folder = Path(args.folder)
    read_split(folder)
    encoder = _encoder(args.derm_encoder)
    command = " ".join(["python -m eval.audit", *(argv if argv is not None else sys.argv[1:])])
    if args.command == "length":
        def save(doc: dict) -> None:
            atomic_write_text(folder / "length.json", json.dumps({**doc, "command": command}, indent=1) + "\n")

        save(length_sweep(folder, n=args.n, seed=args.seed, encoder=encoder, every=args.every, up_to=args.up_to,
                          save=save))
        print(f"wrote {folder / 'length.json'} (the dashboard's Utility and privacy page draws it once shipped "
              f"with score --ship)")
        return 0
    doc = score_snapshot(folder, args.kimg, n=args.n, seed=args.seed, encoder=encoder, bootstrap=args.bootstrap)
    doc["command"] = command
    out = folder / f"audit-{args.kimg:06d}.json"
    atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
    text = markdown(doc)
    atomic_write_text(out.with_suffix(".md"), text)
    if args.ship:
        print(f"wrote {ship(folder, args.kimg, args.ship)}", file=sys.stderr)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
