"""Score generators.

    python -m eval.run
        Score every ``checkpoints/<model>/generator.pt`` against the fingerprint shipped beside it
        (``fingerprint.npz``; ``fingerprint-val.npz`` when present gives the held-out set for
        memorization and a second row scored against the validation split). Writes
        ``checkpoints/results.json``, ``checkpoints/results.csv`` and ``checkpoints/<model>/results.json``
        (atomically) and prints a Markdown table.

    python -m eval.run --real PATH_OR_FINGERPRINT --fake PATH_OR_GENERATOR [--heldout PATH]
                       [--n 2000] [--seed 0] [--metrics hist_js wasserstein ...] [--json]
                       [--inception-weights PATH] [--bins 64] [--size S] [--resize lanczos]
        Score one pair; ``--json`` prints the result as JSON on stdout. Progress goes to stderr.
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
from gan.fileio import atomic_write_text
from eval.evaluate import DEFAULT_METRICS, Result, evaluate
from eval.images import DEFAULT_RESIZE, RESIZE_MODES
from eval.keys import (DEFAULT_BINS, KEY_COPY_RATE, KEY_FID, KEY_KID, KEY_MSSSIM_FAKE, KEY_MSSSIM_REAL,
                       KEY_WASSERSTEIN_RGB, key_js)
from eval.registry import list_metrics

RESULTS_FORMAT = "lesiongan-results"


def _parse_metrics(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    names = [m for v in values for m in v.split(",") if m]
    known = list_metrics()
    for m in names:
        if m not in known:
            raise ValueError(f"--metrics: unknown metric {m!r}; known: {', '.join(known)}")
    return names


def flat_row(result: dict, **first: Any) -> dict:
    """One CSV/table row: ``first`` columns, then every scalar of ``result`` (nested dicts dropped,
    the resize modes and unavailable reasons folded into strings)."""
    row = dict(first)
    for k, v in result.items():
        if isinstance(v, (int, float, str)) or v is None:
            row[k] = v
    rz = result.get("resize") or {}
    row["resize"] = "; ".join(f"{k}: {v}" for k, v in rz.items())
    row["unavailable"] = "; ".join(f"{k}: {v}" for k, v in (result.get("unavailable") or {}).items())
    return row


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def markdown_table(rows: list[dict], bins: int = DEFAULT_BINS) -> str:
    """The summary table of ``rows`` in Markdown."""
    cols = ["model", "reference", "n_fake", "n_real", "resolution", "seed", key_js("rgb", bins), KEY_WASSERSTEIN_RGB,
            KEY_FID, KEY_KID, KEY_MSSSIM_FAKE, KEY_MSSSIM_REAL, KEY_COPY_RATE, "seconds"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    return buf.getvalue()


def score_checkpoints(root: Path, *, n: int, seed: int, metrics: list[str] | None, bins: int,
                      inception_weights: str | None, resize: str, batch_size: int, progress: bool) -> tuple[list[dict], dict]:
    """Score every ``root/<model>/generator.pt``; returns (rows, {model: {reference: Result}})."""
    models = sorted(p.parent for p in root.glob("*/generator.pt"))
    if not models:
        raise ValueError(f"no {root}/<model>/generator.pt found (pass --checkpoints DIR, or --real/--fake)")
    rows, full = [], {}
    kw = dict(n=n, seed=seed, bins=bins, inception_weights=inception_weights, resize=resize,
              batch_size=batch_size, progress=progress)
    for mdir in models:
        name = mdir.name
        fp, fp_val = mdir / "fingerprint.npz", mdir / "fingerprint-val.npz"
        full[name] = {}
        if not fp.is_file():
            rows.append({"model": name, "reference": "train", "error": f"no {fp}"})
            print(f"{name}: skipped: no {fp}", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        try:
            from eval.fingerprint import load_fingerprint

            ref = load_fingerprint(fp)
            # Draw the samples once: both rows score the same images (and share their features).
            fake = sources.resolve(mdir / "generator.pt", "fake", size=ref.size, n=n, seed=seed, resize=resize,
                                   batch_size=batch_size, progress=progress)
            gen_s = time.perf_counter() - t0
            refs = [("train", ref, fp_val if fp_val.is_file() else None)]
            if fp_val.is_file():
                refs.append(("validation", fp_val, None))
            for ref_name, real, heldout in refs:
                mets = metrics
                if heldout is None and ref_name == "validation":
                    mets = [m for m in (metrics or DEFAULT_METRICS) if m != "memorization"]
                if progress:
                    print(f"{name}: scoring against {ref_name}", file=sys.stderr)
                res = evaluate(real, fake, mets, heldout=heldout, **kw)
                res["seconds"] = round(res["seconds"] + (gen_s if ref_name == "train" else 0.0), 3)
                full[name][ref_name] = res
                rows.append(flat_row(res, model=name, reference=ref_name, generator=str(mdir / "generator.pt")))
        except ValueError as e:
            rows.append({"model": name, "reference": "train", "error": str(e)})
            print(f"{name}: error: {e}", file=sys.stderr)
    return rows, full


def _write_results(root: Path, rows: list[dict], full: dict, meta: dict) -> None:
    doc = {"format": RESULTS_FORMAT, "version": 1, **meta, "rows": rows}
    atomic_write_text(root / "results.json", json.dumps(doc, indent=1) + "\n")
    atomic_write_text(root / "results.csv", to_csv(rows))
    for name, per_ref in full.items():
        if per_ref:
            atomic_write_text(root / name / "results.json",
                              json.dumps({"format": RESULTS_FORMAT, "version": 1, **meta, "model": name,
                                          "results": per_ref}, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--real", help="reference: folder, data set, gan.data cache (.safetensors) or fingerprint (.npz)")
    p.add_argument("--fake", help="folder of samples, generator file (.pt) or any --real kind")
    p.add_argument("--heldout", help="held-out real images for memorization (same kinds as --real)")
    p.add_argument("--checkpoints", default="checkpoints", help="root scored with no --real/--fake (default checkpoints)")
    p.add_argument("--n", type=int, default=2000, help="samples drawn from a generator (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="latent seed; also MS-SSIM pairs and KID subsets (default 0)")
    p.add_argument("--metrics", nargs="+", help=f"metrics to run (default: {' '.join(DEFAULT_METRICS)}; also hist_js_hsv)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.add_argument("--inception-weights", help="Inception-v3 weights for FID/KID (default: torch-fidelity's cache)")
    p.add_argument("--bins", type=int, default=DEFAULT_BINS, help="colour-histogram bins over [0, 256) (default 64)")
    p.add_argument("--size", type=int, help="evaluation size in px (default: the real set's; 64 for folders)")
    p.add_argument("--resize", default=DEFAULT_RESIZE, choices=sorted(RESIZE_MODES),
                   help=f"PIL filter for images of another size (default {DEFAULT_RESIZE})")
    p.add_argument("--batch-size", type=int, default=64)
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
    progress = not a.quiet
    try:
        metrics = _parse_metrics(a.metrics)
        if a.real is not None:
            res: Result = evaluate(a.real, a.fake, metrics, heldout=a.heldout, n=a.n, seed=a.seed, size=a.size,
                                   resize=a.resize, bins=a.bins, inception_weights=a.inception_weights,
                                   batch_size=a.batch_size, progress=progress)
            if a.json:
                print(res.to_json(indent=1))
            else:
                print(markdown_table([flat_row(res, model=Path(a.fake).name, reference=Path(a.real).name)], a.bins))
                for m, why in res["unavailable"].items():
                    print(f"{m}: unavailable: {why}")
            return 0
        root = Path(a.checkpoints)
        if a.size is not None:
            p.error("--size applies to --real/--fake; checkpoints are scored at their fingerprint's size")
        rows, full = score_checkpoints(root, n=a.n, seed=a.seed, metrics=metrics, bins=a.bins,
                                       inception_weights=a.inception_weights, resize=a.resize,
                                       batch_size=a.batch_size, progress=progress)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    meta = {"created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
            "command": "python -m eval.run " + " ".join(argv if argv is not None else sys.argv[1:]),
            "n": a.n, "seed": a.seed, "bins": a.bins}
    _write_results(root, rows, full, meta)
    if a.json:
        print(json.dumps({"format": RESULTS_FORMAT, "version": 1, **meta, "rows": rows}, indent=1))
    else:
        print(markdown_table([r for r in rows if "error" not in r], a.bins))
        for r in rows:
            if "error" in r:
                print(f"{r['model']}: error: {r['error']}")
            elif r.get("unavailable"):
                print(f"{r['model']} ({r['reference']}): unavailable: {r['unavailable']}")
    print(f"wrote {root / 'results.json'}, {root / 'results.csv'}", file=sys.stderr)
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
