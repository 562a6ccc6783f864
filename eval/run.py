"""Score generators.

    python -m eval.run [--checkpoints checkpoints]
        Score every run folder in ``--checkpoints`` (``gan.rundir.discover``: a shipped model folder or a
        training run) from its weights (``RunDir.weights()``: the exported G_ema, else the training
        checkpoint) against its training-split fingerprint; when it also has the validation split's,
        that gives memorization its held-out set and a second row scored against the validation split.
        Writes the collection's ``results.json`` / ``results.csv`` and each model's ``results.json``
        (all through ``gan.rundir``, atomically) and prints a Markdown table. A run folder itself
        may be given: only its own ``results.json`` is written then.

    python -m eval.run --model NAME [--model NAME ...] [--seeds 3]
        Rescore only these models of ``--checkpoints`` (say, one just retrained): their rows in the
        collection's ``results.json`` / ``results.csv`` are replaced and every other model's rows are
        kept as they were, so the sample count and seeds must be those the collection was scored with.
        The collection records which command scored which model (``commands``).

    python -m eval.run --merge --metrics c2st_derm c2st_pixel [--model NAME ...] [--seeds 3]
                       [--heldout DATA/ISIC-2017_Validation_Data]
        Add (or rescore) only these metrics on unchanged weights: their keys and unavailable reasons
        replace the old ones in each model's existing rows and results.json, every other key is kept
        as it was (the settings must be the collection's, as with --model). The files record which
        command scored which metric (``metric_commands``). With checkpoints, ``--heldout PATH`` is
        the train rows' held-out set in place of ``fingerprint-val.npz`` (metrics that need held-out
        images, such as c2st_pixel, read them there).

    python -m eval.run --real PATH_OR_FINGERPRINT --fake PATH_OR_GENERATOR [--heldout PATH]
                       [--n 2000] [--seed 0] [--metrics hist_js wasserstein ...] [--json]
                       [--inception-weights PATH] [--bins 64] [--size S] [--resize lanczos]
        Score one pair; ``--json`` prints the result as JSON on stdout. Progress goes to stderr.
        Without ``--heldout``, the ISIC 2017 training split read from its folder takes that folder's
        validation split as its held-out set (memorization needs one).

    Every form takes ``--threads N`` (torch CPU threads) and ``--offline`` (or ``LESIONGAN_OFFLINE=1``):
    no download. Otherwise FID/KID fetch torch-fidelity's Inception-v3 weights into its cache when they
    are missing, with a timeout; when that fails FID/KID are unavailable and every other metric goes on.
    ``--derm-encoder PATH`` picks the dermoscopy encoder of the ``*_derm`` metrics (default
    ``checkpoints/derm-encoder``).
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from eval import sources
from eval.evaluate import DEFAULT_METRICS, EvalConfig, Result, evaluate
from eval.images import DEFAULT_RESIZE, RESIZE_MODES
from eval.keys import (DEFAULT_BINS, KEY_N_FAKE, KEY_N_REAL, KEY_RESIZE, KEY_RESOLUTION, KEY_SECONDS, KEY_SEED,
                       KEY_UNAVAILABLE)
from eval.registry import catalogue, get_metric, list_metrics
from gan import rundir
from gan.assets import NOT_FOUND, find_checkpoints, portable_command, portable_name
from gan.cli import entry_point, prog

ROW_FIRST = ("model", "reference", KEY_N_FAKE, KEY_N_REAL, KEY_RESOLUTION, KEY_SEED)  # the table's first columns


def _parse_metrics(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    names = [m for v in values for m in v.split(",") if m]
    known = list_metrics()
    for m in names:
        if m not in known:
            raise ValueError(f"--metrics: unknown metric {m!r}; known: {', '.join(known)}")
    return names


def result_row(result: dict, **first: Any) -> dict:
    """One results row, the flat form every table of scores is made from (``checkpoints/results.json``'s
    ``rows``, ``results.csv``, the Markdown table, the dashboard's tables through :func:`stored_row`).

    Args:
        result: what :func:`eval.evaluate` returned (or a ``results.json`` result section).
        first: the row's first columns, in order (``model=``, ``reference=``...).

    Returns:
        ``first``, then every scalar of ``result`` (metric keys, counts, seconds), then its resize modes
        and its unavailable reasons (both ``{name: text}``, as ``evaluate`` gives them). The other nested
        parts (provenance, per-metric config, details) stay in the model's own ``results.json``.
    """
    row = dict(first)
    for k, v in result.items():
        if isinstance(v, (int, float, str)) or v is None:
            row[k] = v
    row[KEY_RESIZE] = dict(result.get(KEY_RESIZE) or {})
    row[KEY_UNAVAILABLE] = dict(result.get(KEY_UNAVAILABLE) or {})
    return row


def stored_row(result: dict, **first: Any) -> dict:
    """The results row of a result as a model's ``results.json`` keeps it: :func:`result_row`, and with
    several sample seeds the mean, ``<key>_sd`` and ``seeds`` of its ``spread`` (what :func:`spread_row`
    gave the collection's row) in place of the first seed's values."""
    row = result_row(result, **first)
    spread = result.get("spread") if isinstance(result.get("spread"), dict) else {}
    for k, v in spread.items():
        if isinstance(v, dict) and "mean" in v:
            row[k], row[f"{k}_sd"] = v["mean"], v.get("sd")
    if isinstance(spread.get("seeds"), list):
        row["seeds"] = spread["seeds"]
    return row


def _fold(v: Any) -> Any:
    # CSV has no nesting: {name: text} becomes "name: text; name: text".
    return "; ".join(f"{k}: {x}" for k, x in v.items()) if isinstance(v, dict) else v


def _fmt(v: Any, sd: Any = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}" + (f" ± {sd:.2g}" if isinstance(sd, float) else "")
    return str(v)


def table_columns(metrics: list[str] | tuple[str, ...] | None = None, bins: int = DEFAULT_BINS) -> list[str]:
    """The Markdown table's columns: the leading ones, each catalogue metric's keys at these settings,
    and the seconds taken."""
    cfg = EvalConfig(bins=bins)
    return [*ROW_FIRST, *(k for spec in catalogue(metrics) for k in spec.result_keys(cfg)), KEY_SECONDS]


def markdown_table(rows: list[dict], metrics: list[str] | tuple[str, ...] | None = None,
                   bins: int = DEFAULT_BINS) -> str:
    """The summary table of ``rows`` in Markdown, one column per key of the ``metrics`` scored (default
    ``DEFAULT_METRICS``)."""
    cols = table_columns(metrics, bins)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c), r.get(f"{c}_sd")) for c in cols) + " |")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    """``rows`` as CSV (every key a column; nested values folded into text)."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else _fold(r.get(k))) for k in cols})
    return buf.getvalue()


SPREAD_SKIP = {KEY_N_REAL, KEY_N_FAKE, KEY_RESOLUTION, KEY_SEED, KEY_SECONDS}


def spread_row(rows: list[dict]) -> dict:
    """One row from the rows of several sample seeds: the first seed's row, each numeric result key
    replaced by its mean over the seeds and joined by ``<key>_sd`` (sample sd, ddof 1), ``seeds`` the
    seeds used. A key some seed lacks keeps the first seed's value and gets no sd."""
    out = dict(rows[0])
    if len(rows) < 2:
        return out
    out["seeds"] = [r.get(KEY_SEED) for r in rows]
    for k, v in rows[0].items():
        if k in SPREAD_SKIP or isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        vals = [r.get(k) for r in rows]
        if any(not isinstance(x, (int, float)) or isinstance(x, bool) or not math.isfinite(x) for x in vals):
            continue
        mean = sum(vals) / len(vals)
        out[k] = mean
        out[f"{k}_sd"] = math.sqrt(sum((x - mean) ** 2 for x in vals) / (len(vals) - 1))
    return out


def score_checkpoints(root: Path, *, n: int, seed: int, metrics: list[str] | None, bins: int,
                      inception_weights: str | None, resize: str, batch_size: int, progress: bool,
                      offline: bool | None = None, derm_encoder: str | None = None, seeds: int = 1,
                      models: list[str] | None = None, heldout: str | None = None
                      ) -> tuple[list[dict], dict[rundir.RunDir, dict[str, Result]]]:
    """Score every run folder in ``root`` that has weights (only those named in ``models`` when given);
    returns (rows, {run: {reference: Result}}).

    With ``seeds`` > 1 each model is scored with the sample seeds ``seed .. seed + seeds - 1`` (new
    latents, MS-SSIM pairs and KID subsets each time) and every row holds the mean and ``<key>_sd``
    over them (:func:`spread_row`); the models' results.json keep the first seed's full result with
    the spread beside it. ``heldout`` (images, a data set or a fingerprint) is the training rows' held-out
    set in place of each model's validation fingerprint."""
    runs = [run for run in rundir.discover(root) if run.weights() is not None]
    if models is not None:
        names = {run.name for run in runs}
        missing = [m for m in models if m not in names]
        if missing:
            raise ValueError(f"--model {missing[0]}: no run folder with weights of that name in {root} "
                             f"(there: {', '.join(sorted(names)) or 'none'})")
        runs = [run for run in runs if run.name in models]
    if not runs:
        raise ValueError(f"no run folders with {' or '.join(rundir.WEIGHT_FILES)} in {root} "
                         f"(pass --checkpoints DIR, or --real/--fake)")
    if seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {seeds}")
    rows: list[dict] = []
    full: dict[rundir.RunDir, dict[str, Result]] = {}
    kw = dict(n=n, bins=bins, inception_weights=inception_weights, resize=resize,
              batch_size=batch_size, progress=progress, offline=offline, derm_encoder=derm_encoder)
    for run in runs:
        name, weights = run.name, run.weights()
        fp, fp_val = run.fingerprint("train"), run.fingerprint("validation")
        full[run] = {}
        if fp is None:
            why = f"no {rundir.FINGERPRINTS['train']} in {portable_name(run.path)}"
            rows.append({"model": name, "reference": "train", "error": why})
            print(f"{name}: skipped: {why}", file=sys.stderr)
            continue
        try:
            from eval.fingerprint import load_fingerprint

            # Taken before sampling: the scores name the file they came from, even if training
            # writes a newer generator.pt meanwhile.
            snapshot = rundir.snapshot_of(weights)
            ref = load_fingerprint(fp)
            # Against the validation split there is no other held-out set: memorization says so.
            held = fp_val if heldout is None else sources.resolve(heldout, "heldout", size=ref.size, resize=resize)
            refs = [("train", ref, held)] + ([("validation", fp_val, None)] if fp_val is not None else [])
            per_ref: dict[str, list[dict]] = {r: [] for r, _, _ in refs}
            for s in range(seed, seed + seeds):
                t0 = time.perf_counter()
                # Draw the samples once per seed: every row scores the same images, and the cache
                # computes their features (histograms, encoder features) once.
                fake = sources.resolve(weights, "fake", size=ref.size, n=n, seed=s, resize=resize,
                                       batch_size=batch_size, progress=progress)
                cache = sources.FeatureCache()
                gen_s = time.perf_counter() - t0
                for ref_name, real, held_set in refs:
                    if progress:
                        print(f"{name}: scoring against {ref_name} (seed {s})", file=sys.stderr)
                    res = evaluate(real, fake, metrics, heldout=held_set, cache=cache, seed=s, **kw)
                    res[KEY_SECONDS] = round(res[KEY_SECONDS] + (gen_s if ref_name == "train" else 0.0), 3)
                    res["snapshot"] = snapshot
                    if s == seed:
                        full[run][ref_name] = res
                    per_ref[ref_name].append(result_row(res, model=name, reference=ref_name,
                                                        generator=portable_name(weights), snapshot=snapshot))
            for ref_name, seed_rows in per_ref.items():
                row = spread_row(seed_rows)
                rows.append(row)
                if seeds > 1:
                    full[run][ref_name]["spread"] = {k[:-3]: {"mean": row[k[:-3]], "sd": row[k]}
                                                     for k in row if k.endswith("_sd")} | {"seeds": row["seeds"]}
        except ValueError as e:
            rows.append({"model": name, "reference": "train", "error": str(e)})
            print(f"{name}: error: {e}", file=sys.stderr)
    return rows, full


# What a partial rescore (--model) must share with the collection it updates.
_COLLECTION_SETTINGS = ("n", "seed", "seeds", "bins")
# What eval.run keeps at the top of a model's results.json beside "results" (its settings, then which
# command scored which metric); the other top-level keys are the sections other tools set.
RUN_SETTINGS = ("created", "command", "n", "seed", "bins", "seeds")
RUN_KEYS = (*RUN_SETTINGS, "metric_commands")


def check_collection_settings(previous: dict | None, settings: dict) -> None:
    """ValueError, naming the flag, when a partial rescore's ``settings`` (n, seed, seeds, bins) differ
    from those ``previous`` (the collection's results.json, or None) was scored with."""
    for k in _COLLECTION_SETTINGS:
        if previous is not None and k in previous and previous[k] != settings[k]:
            raise ValueError(f"--model: the collection was scored with --{k} {previous[k]}, this run with "
                             f"{settings[k]}; pass the same, or rescore every model (no --model)")


def merge_rows(previous: dict | None, rows: list[dict], meta: dict, models: list[str]) -> tuple[list[dict], dict]:
    """The collection after rescoring ``models``: ``previous``'s rows (``read_collection_results``) with
    those of ``models`` replaced by ``rows``, in the previous order (new models last), and its meta
    with ``commands`` saying which command scored which model.

    Raises:
        ValueError: when ``previous`` was scored with other settings (the rows would not compare).
    """
    if previous is None:
        return rows, meta | {"commands": {m: meta["command"] for m in models}}
    check_collection_settings(previous, meta)
    old_models = list(dict.fromkeys(r.get("model") for r in previous["rows"]))
    commands = previous.get("commands") or {m: previous.get("command") for m in old_models}
    merged: list[dict] = []
    for m in old_models + [m for m in models if m not in old_models]:
        merged += [r for r in rows if r.get("model") == m] if m in models else \
                  [r for r in previous["rows"] if r.get("model") == m]
    extra = {m: c for m, c in (previous.get("metric_commands") or {}).items() if m not in models}
    return merged, meta | {"commands": commands | {m: meta["command"] for m in models}} | \
        ({"metric_commands": extra} if extra else {})


# A row's columns that are not a metric's (kept from the old row when metrics are merged in).
_ROW_FACTS = {"model", "reference", "generator", "snapshot", "error", "seeds", KEY_N_FAKE, KEY_N_REAL, KEY_RESOLUTION,
              KEY_SEED, KEY_SECONDS, KEY_RESIZE, KEY_UNAVAILABLE}
_RESULT_PARTS = ("config", "details", "timing", KEY_UNAVAILABLE)  # a result's {metric name: ...} sections


def _metric_owns(metrics: list[str], key: str) -> bool:
    """Whether a result key (or a metric part's name in ``unavailable``) belongs to one of ``metrics``: one
    of their names or registered keys, or such a name or key followed by ``_`` (per-channel, sd, interval,
    floor)."""
    heads = {*metrics, *(k for m in metrics for k in get_metric(m).keys)}
    return any(key == h or key.startswith(h + "_") for h in heads)


def merge_metric_values(old: dict, new: dict, metrics: list[str]) -> dict:
    """``old`` (a results row, or one reference's result in a model's results.json) with the keys of
    ``metrics`` taken from ``new`` (scored on the same weights and settings): their old keys, reasons,
    config, details and timing are replaced, every other key is kept as it was."""
    out = {k: v for k, v in old.items() if not _metric_owns(metrics, k)}
    for k, v in new.items():
        if k in _RESULT_PARTS or k == "spread":
            kept = {n: x for n, x in (old.get(k) or {}).items() if not _metric_owns(metrics, n)}
            out[k] = {**kept, **{n: x for n, x in v.items() if n not in kept}}  # spread: the old seeds stay
        elif k not in _ROW_FACTS and isinstance(v, (int, float, str, type(None))):
            out[k] = v
    return out


def _metric_commands(previous: dict | None, models: list[str], metrics: list[str], command: str) -> dict:
    """``metric_commands`` after ``command`` scored ``metrics`` on ``models``: {model: {metric: command}}."""
    out = dict((previous or {}).get("metric_commands") or {})
    for m in models:
        out[m] = {**out.get(m, {}), **{name: command for name in metrics}}
    return out


def merge_metrics(previous: dict | None, rows: list[dict], meta: dict, metrics: list[str]) -> tuple[list[dict], dict]:
    """The collection after scoring only ``metrics`` (``--merge``): each previous row of a scored model and
    reference gets those metrics' keys from ``rows`` (:func:`merge_metric_values`); rows it did not have
    are added, a model that failed keeps its old rows. ``commands`` is kept and ``metric_commands``
    records this command for these metrics.

    Raises:
        ValueError: when ``previous`` was scored with other settings (the rows would not compare), or a
            row names other weights (snapshot SHA-256) than those just scored.
    """
    scored = list(dict.fromkeys(r.get("model") for r in rows if "error" not in r))
    if previous is None:
        return rows, meta | {"metric_commands": _metric_commands(None, scored, metrics, meta["command"])}
    check_collection_settings(previous, meta)
    new = {(r.get("model"), r.get("reference")): r for r in rows if "error" not in r}
    merged = []
    for r in previous["rows"]:
        now = new.pop((r.get("model"), r.get("reference")), None)
        was_sha, now_sha = (((row or {}).get("snapshot") or {}).get("sha256") for row in (r, now))
        if was_sha and now_sha and was_sha != now_sha:
            raise ValueError(f"--merge: {r.get('model')}'s weights changed since its row was scored (sha256 "
                             f"{was_sha[:12]} -> {now_sha[:12]}); rescore it in full (--model, no --merge)")
        merged.append(r if now is None else now if "error" in r else merge_metric_values(r, now, metrics))
    merged += list(new.values())
    old_models = list(dict.fromkeys(r.get("model") for r in previous["rows"]))
    commands = previous.get("commands") or {m: previous.get("command") for m in old_models}
    return merged, meta | {"commands": commands,
                           "metric_commands": _metric_commands(previous, scored, metrics, meta["command"])}


def _write_results(root: Path, rows: list[dict], full: dict[rundir.RunDir, dict[str, Result]],
                   meta: dict, models: list[str] | None = None, merge: list[str] | None = None) -> list[Path]:
    """Each model's ``results.json`` and, unless ``root`` is itself a run folder, the collection's
    ``results.json`` and ``results.csv`` (with ``models``, merged into the collection there; with
    ``merge``, the metrics named there merged into the existing rows and files, :func:`merge_metrics`);
    returns the collection files written."""
    collection_meta = meta
    if merge:  # checked before any file is written
        rows, collection_meta = merge_metrics(rundir.read_collection_results(root), rows, meta, merge)
    elif models is not None:
        rows, collection_meta = merge_rows(rundir.read_collection_results(root), rows, meta, models)
    for run, per_ref in full.items():
        if per_ref and merge:
            old = run.read_results() or {}
            run_meta = {k: old[k] for k in RUN_SETTINGS if k in old} or meta
            run_meta = run_meta | {"metric_commands": {**(old.get("metric_commands") or {}),
                                                       **{name: meta["command"] for name in merge}}}
            old_res = old.get("results") or {}
            per_ref = {**old_res, **{ref: merge_metric_values(old_res.get(ref) or {}, res, merge)
                                     for ref, res in per_ref.items()}}
            run.write_results(per_ref, run_meta, owns=RUN_KEYS)
        elif per_ref:
            run.write_results(per_ref, meta, owns=RUN_KEYS)
    if full and all(run.path == root for run in full):
        return []  # one run folder: its results.json is the model's own
    return rundir.write_collection_results(root, rows, collection_meta, to_csv(rows))


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("eval.run", "lesiongan-eval"), description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--real", help="reference: folder, data set, gan.data cache (.safetensors) or fingerprint (.npz)")
    p.add_argument("--fake", help="folder of samples, generator file (.pt) or any --real kind")
    p.add_argument("--heldout", help="held-out real images for memorization and the C2STs (same kinds as --real); "
                                     "with checkpoints: the train rows' held-out set in place of fingerprint-val.npz")
    p.add_argument("--checkpoints", help="folder of run folders (or one run folder) scored with no --real/--fake "
                                         "(default: the shipped checkpoints/, found from any folder)")
    p.add_argument("--n", type=int, default=2000, help="samples drawn from a generator (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="latent seed; also MS-SSIM pairs and KID subsets (default 0)")
    p.add_argument("--seeds", type=int, default=1,
                   help="checkpoint scoring: score each model with this many sample seeds (--seed, --seed + 1, "
                        "...) and report each number as mean and sd over them (<key>_sd); default 1")
    p.add_argument("--metrics", nargs="+", help=f"metrics to run (default: {' '.join(DEFAULT_METRICS)}; also hist_js_hsv)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--inception-weights", help="Inception-v3 weights for FID/KID (default: torch-fidelity's cache, "
                                               "downloaded there when missing unless --offline)")
    p.add_argument("--offline", action="store_true", default=None,
                   help="never download (also LESIONGAN_OFFLINE=1): without local Inception weights FID/KID are "
                        "unavailable")
    p.add_argument("--derm-encoder", help="dermoscopy encoder for the *_derm metrics (default: "
                                          "$LESIONGAN_DERM_ENCODER, else checkpoints/derm-encoder)")
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, help="colour-histogram bins over [0, 256) (default 64)")
    p.add_argument("--size", type=int, help="evaluation size in px (default: the real set's; 64 for folders)")
    p.add_argument("--resize", default=DEFAULT_RESIZE, choices=sorted(RESIZE_MODES),
                   help=f"PIL filter for images of another size (default {DEFAULT_RESIZE})")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--class", dest="label", metavar="CLASS",
                   help="score one class: a conditional generator draws only CLASS, and the real (and held-out) "
                        "labelled data sets keep only its images (with --real/--fake)")
    p.add_argument("--model", dest="models", action="append", metavar="NAME",
                   help="checkpoint scoring: rescore only this model folder (repeatable); the collection's other "
                        "rows are kept")
    p.add_argument("--merge", action="store_true",
                   help="checkpoint scoring with --metrics: put only these metrics' keys into the models' existing "
                        "rows and results.json, keeping every other key (a new metric on unchanged weights)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)

    if (a.real is None) != (a.fake is None):
        p.error("--real and --fake go together (or pass neither to score checkpoints/)")
    if a.n < 1:
        p.error(f"--n must be at least 1, got {a.n}")
    if not 1 <= a.bins <= 256:
        p.error(f"--bins must be in 1..256, got {a.bins}")
    if a.batch_size < 1:
        p.error(f"--batch-size must be positive, got {a.batch_size}")
    if a.threads is not None:
        if a.threads < 1:
            p.error(f"--threads must be at least 1, got {a.threads}")
        import torch

        torch.set_num_threads(a.threads)
    if a.merge and (a.real is not None or not a.metrics):
        p.error("--merge goes with checkpoint scoring and --metrics (the metrics to put into the existing rows)")
    progress = not a.quiet
    try:
        metrics = _parse_metrics(a.metrics)
        if a.real is not None:
            res: Result = evaluate(a.real, a.fake, metrics, heldout=a.heldout, n=a.n, seed=a.seed, size=a.size,
                                   resize=a.resize, bins=a.bins, inception_weights=a.inception_weights,
                                   batch_size=a.batch_size, progress=progress, label=a.label, offline=a.offline,
                                   derm_encoder=a.derm_encoder)
            if a.json:
                print(res.to_json(indent=1))
            else:
                reference = Path(a.real).name + (f"/{a.label}" if a.label else "")
                row = result_row(res, model=Path(a.fake).name, reference=reference)
                print(markdown_table([row], metrics, a.bins))
                for m, why in row[KEY_UNAVAILABLE].items():
                    print(f"{m}: unavailable: {why}")
            return 0
        # Default: ./checkpoints where the command runs. It writes results there, so it never falls back
        # to the installed package's folder on its own.
        root = Path(a.checkpoints) if a.checkpoints else Path("checkpoints")
        if not a.checkpoints and not root.is_dir():
            shipped = find_checkpoints()
            p.error(f"no checkpoints folder here to score (no generator.pt found): give --checkpoints DIR "
                    + (f"(the shipped models are in {shipped})" if shipped else f"({NOT_FOUND})"))
        if a.label is not None:
            p.error("--class applies to --real/--fake (per-class scores need the labelled real images)")
        if a.size is not None:
            p.error("--size applies to --real/--fake; checkpoints are scored at their fingerprint's size")
        if a.models and rundir.RunDir(root).is_run():
            p.error(f"--model picks models in a folder of run folders; {root} is itself one")
        if a.models or a.merge:  # settings checked before minutes of scoring
            check_collection_settings(rundir.read_collection_results(root),
                                      {"n": a.n, "seed": a.seed, "seeds": a.seeds, "bins": a.bins})
        rows, full = score_checkpoints(root, n=a.n, seed=a.seed, metrics=metrics, bins=a.bins,
                                       inception_weights=a.inception_weights, resize=a.resize,
                                       batch_size=a.batch_size, progress=progress, offline=a.offline,
                                       derm_encoder=a.derm_encoder, seeds=a.seeds, models=a.models,
                                       heldout=a.heldout)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = {"created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "command": portable_command(["python -m eval.run", *(argv if argv is not None else sys.argv[1:])]),
            "n": a.n, "seed": a.seed, "bins": a.bins, "seeds": a.seeds}
    try:
        written = _write_results(root, rows, full, meta, a.models, metrics if a.merge else None)
    except (OSError, ValueError) as e:  # gan.fileio.WriteError names the file
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.json:
        doc = rundir.read_collection_results(root) if written else next(iter(full)).read_results()
        print(json.dumps(doc, indent=1))
    else:
        print(markdown_table([r for r in rows if "error" not in r], metrics, a.bins))
        for r in rows:
            if "error" in r:
                print(f"{r['model']}: error: {r['error']}")
            for m, why in r.get(KEY_UNAVAILABLE, {}).items():
                print(f"{r['model']} ({r['reference']}): {m} unavailable: {why}")
    files = written or [run.file(rundir.RESULTS) for run, per_ref in full.items() if per_ref]
    print(f"wrote {', '.join(map(str, files))}", file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
