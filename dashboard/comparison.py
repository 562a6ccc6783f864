"""The Overview's comparison table: one row per model with its final losses, the catalogue's metrics,
whether it meets the quality bar, and how much training it got; plus notes on what is missing and why."""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

import pandas as pd

from dashboard.discovery import ModelEntry
from dashboard.formatting import format_count, format_duration
from dashboard.results import Results, metric_note, metric_value, metrics
from dashboard.stats import final_losses, last_value
from eval.registry import meets_quality_bar

QUALITY_BAR_COLUMN = "quality bar"


def generator_facts(G: Any) -> dict[str, Any]:
    """Architecture, resolution, parameters, images seen, training time and hardware of a loaded generator."""
    info = dict(getattr(G, "info", {}) or {})
    hw = info.get("hardware")
    if isinstance(hw, dict):
        hw = ", ".join(str(v) for v in hw.values() if v)
    return {
        "architecture": getattr(G, "model_name", None),
        "resolution": getattr(G, "resolution", None),
        "parameters": getattr(G, "num_params", None),
        "images seen": info.get("nimg"),
        "training time": info.get("time_s"),
        "hardware": hw,
    }


def _bar(results: Results | None, model: str) -> str | None:
    ok = meets_quality_bar(results.train_row(model)) if results is not None else None
    return None if ok is None else ("met" if ok else "not met")


def overview_table(
    entries: Sequence[ModelEntry],
    stats: dict[str, pd.DataFrame],
    facts: dict[str, dict[str, Any]],
    results: Results | None,
    reference: str = "train",
) -> tuple[pd.DataFrame, list[str]]:
    """The report's comparison table, one row per model, plus notes on what is missing and why.

    Args:
        entries: the models found in the folder.
        stats: model name -> stats DataFrame (may be absent for a model).
        facts: model name -> :func:`generator_facts` (absent when the generator did not load).
        results: what ``eval.run`` wrote, or None.
        reference: which real set the metric columns are scored against ("train" as in the report).
            The quality bar column is always judged on the training split.
    Returns:
        (table, notes): the table with display-ready values and a list of one-line notes.
    """
    rows, notes = [], []
    for e in entries:
        df = stats.get(e.name)
        f = facts.get(e.name, {})
        res_row = results.row(e.name, reference) if results is not None else None
        row: dict[str, Any] = {"model": e.name, "architecture": f.get("architecture")}
        fl = final_losses(df) if df is not None else {"loss_D": None, "loss_G": None}
        row["final D loss"] = fl["loss_D"]
        row["final G loss"] = fl["loss_G"]
        for spec in metrics():
            row[spec.label] = metric_value(res_row, spec.key)
            sd = metric_value(res_row, f"{spec.key}_sd")  # eval.run --seeds K: sd over sample seeds
            if sd is not None:
                row[spec.label + SD_SUFFIX] = sd
            if row[spec.label] is None and res_row is not None and not res_row.get("error"):
                notes.append(f"{spec.label} for {e.name}: {metric_note(res_row, spec)}")
        row[QUALITY_BAR_COLUMN] = _bar(results, e.name)
        if results is not None and res_row is None:
            notes.append(f"{e.name}: not in results.json, so no metrics; rerun `python -m eval.run`.")
        elif res_row is not None and res_row.get("error"):
            notes.append(f"{e.name}: eval.run could not score it: {res_row['error']}")
        # The generator file knows best; a run without one yet falls back on its stats.
        nimg = f.get("images seen")
        t = f.get("training time")
        res = f.get("resolution")
        if df is not None:
            nimg = last_value(df, "nimg") if nimg is None else nimg
            t = last_value(df, "time_s") if t is None else t
            res = last_value(df, "resolution") if res is None else res
        row["resolution"] = f"{int(res)}×{int(res)}" if res else None
        row["parameters"] = format_count(f.get("parameters"))
        row["images seen"] = format_count(nimg)
        row["training time"] = format_duration(t)
        row["hardware"] = f.get("hardware")
        rows.append(row)
    if results is None:
        notes.insert(0, "No results.json in this folder yet: run `python -m eval.run` to fill the metric columns.")
    elif results.outdated:
        notes.insert(0, f"results.json is version {results.meta.get('version')}, from an older eval.run that "
                        "does not record why a metric is missing: rerun `python -m eval.run`.")
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.set_index("model")
    return table, _dedupe_notes(notes)


SD_SUFFIX = " sd"  # a metric's spread over sample seeds, shown as "mean ± sd" by display_table


def display_table(table: pd.DataFrame, missing: str = "—") -> pd.DataFrame:
    """The overview table as text: losses to 3 decimals, metrics to 4 significant digits (with "± sd"
    over sample seeds where eval.run scored several), gaps as a dash."""
    sd_cols = [c for c in table.columns if str(c).endswith(SD_SUFFIX)]
    out = table.drop(columns=sd_cols).astype(object)
    formats = {"final D loss": "{:.3f}", "final G loss": "{:.3f}", **{m.label: "{:.4g}" for m in metrics()}}

    def gap(v) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    for col in out.columns:
        fmt = formats.get(col, "{}")
        sds = table[col + SD_SUFFIX] if col + SD_SUFFIX in table.columns else [None] * len(table)
        out[col] = [missing if gap(v) else fmt.format(v) + ("" if gap(sd) else f" ± {sd:.2g}")
                    for v, sd in zip(table[col], sds)]
    return out


def _dedupe_notes(notes: list[str]) -> list[str]:
    """Collapse per-model notes that say the same thing for every model into one line."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str]] = []
    plain: list[str] = []
    for n in notes:
        m = re.match(r"(.+?) for (.+?): (.+)", n)
        if not m:
            plain.append(n)
            continue
        k = (m.group(1), m.group(3))
        if k not in by_reason:
            by_reason[k] = []
            order.append(k)
        by_reason[k].append(m.group(2))
    out = plain[:]
    for label, why in order:
        out.append(f"{label} ({', '.join(by_reason[(label, why)])}): {why}")
    return out
