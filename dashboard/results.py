"""What ``python -m eval.run`` scored: a folder's ``results.json`` (read by :mod:`gan.rundir`), the metric
catalogue the pages label it with (:func:`eval.registry.catalogue`), and why a number is missing."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from dashboard.formatting import plain_message
from eval import keys as K
from eval.registry import MetricSpec, catalogue
from gan.rundir import RESULTS, RESULTS_VERSION, read_collection_results


@lru_cache(maxsize=1)
def metrics() -> tuple[MetricSpec, ...]:
    """The catalogue entries (label, better, description, sees, misses, key) of the metrics ``eval.run``
    computes by default, in its order."""
    return tuple(catalogue())


def arrow(spec: MetricSpec) -> str:
    """The direction mark of a metric: ↓ when lower is better, else ↑."""
    return "↓" if spec.better == "lower" else "↑"


@dataclass(frozen=True)
class Results:
    """What ``python -m eval.run`` wrote to a folder's ``results.json``: run settings and one row per model
    and reference.

    Attributes:
        rows: flat dicts; each has ``model`` and ``reference`` ("train", or "validation" when a
            validation fingerprint was scored too), metric keys from ``eval.keys``, ``unavailable``
            ({metric: reason}) and, for a model that could not be scored, ``error``.
        meta: the file's other top-level fields (version, n, seed, bins, created, command).
        path: the file read.
    """

    rows: list[dict]
    meta: dict[str, Any]
    path: Path

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(str(r.get("model")) for r in self.rows))

    @property
    def outdated(self) -> bool:
        """Written by an older eval.run, whose rows do not say why a metric is missing."""
        return int(self.meta.get("version") or 0) < RESULTS_VERSION

    def references(self, model: str) -> list[str]:
        mine = (r for r in self.rows if str(r.get("model")) == model)
        return list(dict.fromkeys(str(r.get("reference") or "train") for r in mine))

    def row(self, model: str, reference: str = "train") -> dict | None:
        """The row for ``model`` scored against ``reference``; the model's first row when that reference is absent."""
        mine = [r for r in self.rows if str(r.get("model")) == model]
        return next((r for r in mine if (r.get("reference") or "train") == reference), mine[0] if mine else None)

    def train_row(self, model: str) -> dict | None:
        """The row scored against the training split, None when there is none."""
        r = self.row(model, "train")
        return r if r is not None and (r.get("reference") or "train") == "train" else None

    def seeds(self) -> list:
        """The sample seeds the rows were scored with: the ``seeds`` of the rows (eval.run --seeds K: each
        number is a mean over them), else the one seed of the file; [] when it says none."""
        lists = {tuple(r["seeds"]) for r in self.rows if isinstance(r.get("seeds"), list) and r["seeds"]}
        if len(lists) == 1:
            return list(next(iter(lists)))
        return [self.meta["seed"]] if "seed" in self.meta and not lists else []

    def settings(self) -> str:
        """One line on how the numbers were made, seeds as they were, e.g. ``2000 generated samples per
        model and sample seed, mean ± sd over sample seeds 0, 1, 2; 64 histogram bins``."""
        parts = []
        seeds = self.seeds()
        n = self.meta.get("n")
        if len(seeds) > 1:
            parts.append((f"{n} generated samples per model and sample seed, " if n else "")
                         + f"mean ± sd over sample seeds {', '.join(map(str, seeds))}")
        elif seeds:
            parts.append((f"{n} generated samples per model, " if n else "") + f"sample seed {seeds[0]}")
        elif n:
            parts.append(f"{n} generated samples per model; the sample seeds differ between models (each row "
                         "says which)")
        if "bins" in self.meta:
            parts.append(f"{self.meta['bins']} histogram bins")
        if "created" in self.meta:
            parts.append(f"scored {str(self.meta['created'])[:10]}")
        return "; ".join(parts)


def results_path(folder: str | os.PathLike) -> Path:
    """Where a folder of models keeps ``eval.run``'s results (whether it exists or not)."""
    return Path(folder) / RESULTS


def load_results(folder: str | os.PathLike) -> Results | None:
    """``results.json`` in ``folder`` (as written by ``python -m eval.run``), or None when there is none.

    Raises:
        ValueError: naming the file, when it cannot be read or is not in eval.run's format.
    """
    try:
        doc = read_collection_results(folder)
    except ValueError:
        doc = _run_folder_results(folder)  # a run folder's own results.json (one model), else re-raise
        if doc is None:
            raise
    if doc is None:
        return None
    rows = [r for r in doc["rows"] if isinstance(r, dict) and "model" in r]
    meta = {k: v for k, v in doc.items() if k != "rows"}
    return Results(rows=rows, meta=meta, path=results_path(folder))


def stored_rows(doc: dict | None, model: str) -> dict[str, dict]:
    """{reference: results row} of a model's own ``results.json`` (``{"results": {reference: result}}``),
    flattened by ``eval.run``'s own :func:`eval.run.stored_row` (means and sds over sample seeds where it
    scored several, as the collection's rows hold them); {} when it holds none."""
    from eval.run import stored_row

    res = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(res, dict):
        return {}
    return {str(ref): stored_row(r, model=model, reference=str(ref)) for ref, r in res.items() if isinstance(r, dict)}


def _run_folder_results(folder: str | os.PathLike) -> dict | None:
    """A single run folder's ``results.json`` in eval.run's collection form (one row per reference), or
    None when it is not one."""
    from gan.rundir import RunDir

    run = RunDir(folder)
    try:
        doc = run.read_results()
    except ValueError:
        return None
    rows = list(stored_rows(doc, run.name).values())
    if not rows:
        return None
    meta = {k: v for k, v in doc.items() if k not in ("results", "model") and not isinstance(v, (dict, list))}
    return {**meta, "rows": rows}


def unavailable_reasons(row: dict | None) -> dict[str, str]:
    """``{metric: reason}`` from a row's ``unavailable`` field; {} when it gives none."""
    u = (row or {}).get(K.KEY_UNAVAILABLE)
    return {str(k): plain_message(str(v)) for k, v in u.items()} if isinstance(u, dict) else {}


def metric_value(row: dict | None, key: str) -> float | None:
    """A finite float from a results row, or None."""
    if row is None:
        return None
    try:
        v = float(row.get(key))
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# Metrics that compare samples with the training images themselves (copies), whatever the reference set.
TRAIN_ONLY = ("memorization", "memorization_derm")


def metric_note(row: dict | None, spec: MetricSpec, results: "Results | None" = None,
                reference: str = "train") -> str:
    """Why metric ``spec`` (a catalogue entry) has no value in ``row``: ``eval``'s own reason when the row
    gives one; for a copy rate against the validation set, where the training-split value is."""
    if row is None:
        return "not scored yet; `python -m eval.run` scores it"
    if row.get("error"):
        return plain_message(f"not scored: {row['error']}")
    if spec.name in TRAIN_ONLY and (row.get("reference") or "train") != "train":
        train = results.train_row(str(row.get("model"))) if results is not None else None
        v = metric_value(train, spec.key)
        where = f" ({v:.3g} there)" if v is not None else ""
        return f"a copy rate compares samples with the training images: see it scored against train{where}"
    why = unavailable_reasons(row).get(spec.name)
    if why:
        return why
    if row.get(spec.key) is None:
        return (f"not scored: the scoring that made these numbers did not compute {spec.label} and gives no reason; "
                "rerun `python -m eval.run`")
    return "not a finite number"
