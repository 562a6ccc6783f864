"""The Overview's comparison table: one row per model with its final losses, the catalogue's metrics,
whether it meets the quality bar, and how much training it got; plus notes on what is missing and why."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from dashboard.discovery import ModelEntry
from dashboard.formatting import format_count, format_duration, plain_message
from dashboard.results import Results, metric_note, metric_value, metrics, unavailable_reasons
from dashboard.stats import BCE, last_value, loss_type, tail_summary, until
from eval.registry import MetricSpec, get_metric, list_metrics, meets_quality_bar

QUALITY_BAR_COLUMN = "quality bar"
FLOOR = " floor"  # the column of a metric's real-vs-real floor (the C2STs), beside its value


def scored_metrics(results: Results | None) -> tuple[MetricSpec, ...]:
    """The metrics to list: the catalogue ``eval.run`` computes by default, then every other registered
    metric (the classifier two-sample tests, ``swd``...) whose headline key a row of ``results`` holds."""
    default = metrics()
    names = {m.name for m in default}
    rows = results.rows if results is not None else []
    return default + tuple(m for m in map(get_metric, list_metrics())
                           if m.name not in names and any(m.key in r for r in rows))


def floor_key(spec: MetricSpec) -> str | None:
    """The key of a metric's real-vs-real floor, registered beside its headline (``<key>_floor``), or None."""
    key = f"{spec.key}_floor"
    return key if key in spec.keys else None


def floor_caption(row: dict | None, spec: MetricSpec) -> str | None:
    """For a metric with a floor (the C2STs): its 95% interval and the floor beside it, or why there is no
    floor; None for other metrics or when the row has no value."""
    fk = floor_key(spec)
    if fk is None or metric_value(row, spec.key) is None:
        return None
    lo, hi = metric_value(row, f"{spec.key}_lo95"), metric_value(row, f"{spec.key}_hi95")
    text = f"95% [{fmt_number(lo, 2)}, {fmt_number(hi, 2)}]; " if lo is not None and hi is not None else ""
    floor = metric_value(row, fk)
    if floor is None:
        return text + unavailable_reasons(row).get(fk, "no real-vs-real floor scored")
    return text + f"real-vs-real floor {fmt_mean_sd(floor, metric_value(row, f'{fk}_sd'))}"


def _metric_note(res_row: dict, spec: MetricSpec, results: Results | None, reference: str) -> str:
    """Why ``spec`` has no value in ``res_row``; a held-out test (the C2STs) scored in the train row
    says so when another reference is shown."""
    train = results.train_row(str(res_row.get("model"))) if results is not None else None
    if floor_key(spec) and reference != "train" and metric_value(train, spec.key) is not None:
        return (f"a test against the held-out images, scored in the train row "
                f"({fmt_number(metric_value(train, spec.key))} there)")
    return metric_note(res_row, spec, results, reference)


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
        "classes": len(getattr(G, "class_names", None) or []) or None,
    }


@dataclass(frozen=True)
class Snapshot:
    """How much training a model got, one number for every table and sentence.

    Attributes:
        nimg: images seen by the weights the pages sample and ``eval.run`` scored: a shipped model's
            chosen snapshot (``results.json``'s ``best_snapshot``), else the generator file's own count,
            else the last logged step.
        run_nimg: images seen when its run stopped (more than ``nimg`` when a snapshot was shipped
            from the middle of the run).
    """

    nimg: int | None
    run_nimg: int | None

    @property
    def earlier(self) -> bool:
        """The model is a snapshot from before its run's last logged step."""
        return self.nimg is not None and self.run_nimg is not None and self.run_nimg > self.nimg


def snapshot(best: dict | None = None, facts: dict | None = None, df: pd.DataFrame | None = None) -> Snapshot:
    """A model's :class:`Snapshot` from its ``best_snapshot`` section, generator facts and stats."""
    last = last_value(df, "nimg") if df is not None else None
    last = int(last) if last is not None else None
    best = best if isinstance(best, dict) else {}
    nimg = best.get("nimg")
    if not isinstance(nimg, (int, float)):
        nimg = (facts or {}).get("images seen")
    nimg = int(nimg) if isinstance(nimg, (int, float)) else last
    run = best.get("final_nimg")
    run = int(run) if isinstance(run, (int, float)) else last
    return Snapshot(nimg, max(run, nimg) if run is not None and nimg is not None else (run or nimg))


def _bar(results: Results | None, model: str) -> str | None:
    ok = meets_quality_bar(results.train_row(model)) if results is not None else None
    return None if ok is None else ("met" if ok else "not met")


def overview_table(
    entries: Sequence[ModelEntry],
    stats: dict[str, pd.DataFrame],
    facts: dict[str, dict[str, Any]],
    results: Results | None,
    reference: str = "train",
    configs: dict[str, dict] | None = None,
    snapshots: dict[str, Snapshot] | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """The comparison table, one row per model, with numbers kept as numbers, plus notes on what is missing.

    Args:
        entries: the models found in the folder.
        stats: model name -> stats DataFrame (may be absent for a model).
        facts: model name -> :func:`generator_facts` (absent when the generator did not load).
        results: what ``eval.run`` wrote, or None.
        reference: which real set the metric columns are scored against ("train" as in the report).
            The quality bar column is always judged on the training split.
        configs: model name -> resolved run config dict (for the loss type of a run without weights).
        snapshots: model name -> :class:`Snapshot` (default: from the generator facts and the stats): the
            images seen the table gives, and where its loss columns end.
    Returns:
        (table, notes): floats and ints (NaN where missing); a metric scored with several sample seeds
        has its spread in ``"<label> sd"``; losses are the mean over the last 10% of training up to the
        model's snapshot, with their sd in ``"... sd"``. :func:`styled` turns it into what the page shows.
    """
    rows, notes = [], []
    configs = configs or {}
    for e in entries:
        f = facts.get(e.name, {})
        snap = (snapshots or {}).get(e.name) or snapshot(None, f, stats.get(e.name))
        df = until(stats.get(e.name), snap.nimg)
        model = f.get("architecture") or (configs.get(e.name) or {}).get("model")
        res_row = results.row(e.name, reference) if results is not None else None
        row: dict[str, Any] = {"model": e.name, "architecture": describe_architecture(model, f.get("classes")),
                               LOSS_COLUMN: loss_type(model, df)}
        for col, key in ((D_COLUMN, "loss_D"), (G_COLUMN, "loss_G")):
            t = tail_summary(df, key)
            row[col] = t.mean if t else None
            row[col + SD_SUFFIX] = t.sd if t else None
        for spec in scored_metrics(results):
            keys = [(spec.label, spec.key)] + ([(spec.label + FLOOR, floor_key(spec))] if floor_key(spec) else [])
            for col, key in keys:
                row[col] = metric_value(res_row, key)
                row[col + SD_SUFFIX] = metric_value(res_row, f"{key}_sd")  # eval.run --seeds K
            if row[spec.label] is None and res_row is not None and not res_row.get("error"):
                notes.append(f"{spec.label} for {e.name}: {_metric_note(res_row, spec, results, reference)}")
        row[QUALITY_BAR_COLUMN] = _bar(results, e.name)
        if results is not None and res_row is None:
            notes.append(f"{e.name}: not scored yet, so no metrics; `python -m eval.run` scores it.")
        elif res_row is not None and res_row.get("error"):
            notes.append(plain_message(f"{e.name}: the scoring could not score it: {res_row['error']}"))
        # The generator file knows best; a run without one yet falls back on its stats.
        t = f.get("training time")
        res = f.get("resolution")
        if df is not None:
            t = last_value(df, "time_s") if t is None else t
            res = last_value(df, "resolution") if res is None else res
        row["resolution"] = int(res) if res else None
        row["parameters"] = f.get("parameters")
        row["images seen"] = snap.nimg
        row["training time"] = float(t) / 3600.0 if t is not None else None
        row["hardware"] = f.get("hardware")
        rows.append(row)
    if results is None:
        notes.insert(0, "No scores for this folder yet: `python -m eval.run` fills the metric columns.")
    elif results.outdated:
        notes.insert(0, f"These scores are in an older format (version {results.meta.get('version')}) that does not "
                        "record why a metric is missing: rerun `python -m eval.run`.")
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.set_index("model")
        for c in table.columns:
            if c not in TEXT_COLUMNS:
                table[c] = pd.to_numeric(table[c], errors="coerce")
    return table, _dedupe_notes(notes)


SD_SUFFIX = " sd"  # a value's spread (over sample seeds, or over the last 10% of training)
LOSS_COLUMN = "loss"
D_COLUMN, G_COLUMN = "D loss", "G loss"
TEXT_COLUMNS = ("architecture", LOSS_COLUMN, QUALITY_BAR_COLUMN, "hardware")
TRAINING_COLUMNS = ("architecture", LOSS_COLUMN, D_COLUMN, G_COLUMN, "images seen", "training time", "hardware",
                    "parameters", "resolution")

_ARCHITECTURES = {
    "dcgan": "DCGAN (Radford et al.)",
    "pggan-seed": "DCGAN grown phase-wise",
    "pggan": "PGGAN, fade-in (Karras et al.)",
}


def describe_architecture(model: str | None, classes: int | None = None) -> str | None:
    """What the network is, in words (not its folder name), e.g. "DCGAN, fixed 64 px (...)"."""
    if model is None:
        return None
    text = _ARCHITECTURES.get(model, model)
    return f"{text} + {classes} classes" if classes else text


# The score table in two parts that each fit a 1440 px screen, by the names eval's registry gives the
# metrics (their keys and labels come from it): the dermoscopy encoder's feature space, then colour,
# pixels and diversity (where the quality bar is judged). The Evaluation page's tiles follow the same rows.
SCORE_GROUPS = (
    ("In the dermoscopy encoder's features", ("fd_derm", "kid_derm", "precision_derm", "recall_derm",
                                              "density_derm", "coverage_derm", "memorization_derm", "c2st_derm")),
    ("Colour, pixels and diversity", ("hist_js", "wasserstein", "diversity", "memorization", "c2st_pixel", "fid",
                                      "kid")),
)


def group_of(spec: MetricSpec) -> int:
    """The row of :data:`SCORE_GROUPS` a metric belongs to (the last for a metric no group names)."""
    return next((i for i, (_, names) in enumerate(SCORE_GROUPS) if spec.name in names), len(SCORE_GROUPS) - 1)


def score_columns(table: pd.DataFrame, names: Sequence[str] | None = None) -> list[str]:
    """The metric columns of ``table`` for the registered metrics ``names`` (default: every metric, in
    :data:`SCORE_GROUPS` order), each followed by its real-vs-real floor's column where it has one;
    metrics that no model has are skipped."""
    known = list_metrics()
    if names is None:
        grouped = [n for _, g in SCORE_GROUPS for n in g]
        names = [n for n in grouped if n in known] + [n for n in known if n not in grouped]
    order = []
    for spec in (get_metric(n) for n in names if n in known):
        order += [spec.label] + ([spec.label + FLOOR] if floor_key(spec) else [])
    return [c for c in order if c in table.columns and table[c].notna().any()]


def best_index(table: pd.DataFrame) -> dict[str, list[str]]:
    """{metric label: the models with the best value} for every metric column with at least two values."""
    out = {}
    for m in map(get_metric, list_metrics()):
        if m.label not in table.columns:
            continue
        col = table[m.label].dropna()
        if len(col) < 2:
            continue
        best = col.min() if m.better == "lower" else col.max()
        out[m.label] = [str(i) for i in col.index[col == best]]
    return out


def fmt_number(v: Any, digits: int = 3) -> str:
    """A value to ``digits`` significant digits (no exponent between 1e-4 and 1e6); "—" for a gap."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    v = float(v)
    if v == 0:
        return "0"
    mag = math.floor(math.log10(abs(v)))
    if -4 <= mag < 6:
        decimals = max(digits - 1 - mag, 0)
        return f"{v:.{decimals}f}"
    return f"{v:.{digits - 1}e}"


def fmt_mean_sd(v: Any, sd: Any, digits: int = 3) -> str:
    """``mean ± sd``: the mean to ``digits`` significant digits, the sd to two; the mean alone without sd."""
    text = fmt_number(v, digits)
    if text == "—" or sd is None or (isinstance(sd, float) and not math.isfinite(sd)):
        return text
    return f"{text} ± {fmt_number(sd, 2)}"


def styled(table: pd.DataFrame, columns: Sequence[str], best: dict[str, list[str]] | None = None,
           index_label: str | None = None, as_given: Sequence[str] = ()):
    """A pandas Styler of ``table[columns]`` for ``st.dataframe``: numbers stay numbers (right-aligned,
    sorted by value), shown to 3 significant digits with "± sd" where the table has a spread; the best
    value of each metric column marked with ★ and a green background. ``index_label``: show the row names
    as a first column of that name (for ``st.dataframe(..., hide_index=True)``). ``as_given``: rows whose
    numbers are shown as their source gives them (the report's 0.57, not 0.570)."""
    best = best or {}
    cols = [c for c in columns if c in table.columns]
    view = table[cols].copy()
    for col in cols:  # a gap in a text column reads "—" (Streamlit draws a null as a grey "None")
        if col in TEXT_COLUMNS or not pd.api.types.is_numeric_dtype(view[col]):
            view[col] = ["—" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in view[col]]
    if index_label:
        # The row names as an ordinary first column (full-contrast text; the page hides the grey index).
        view.insert(0, index_label, [str(i) for i in view.index])
        cols = [index_label, *cols]
    sty = view.style

    for col in cols:
        if col in TEXT_COLUMNS or not pd.api.types.is_numeric_dtype(view[col]):
            sty = sty.format(lambda v: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v),
                             subset=[col])
            continue
        sds = table[col + SD_SUFFIX] if col + SD_SUFFIX in table.columns else None
        texts = {}
        for idx in view.index:
            v = view.at[idx, col]
            if col in ("images seen", "parameters"):
                t = format_count(v) if pd.notna(v) else "—"
            elif col == "training time":
                t = format_duration(v * 3600.0) if pd.notna(v) else "—"
            elif col == "resolution":
                t = f"{int(v)} px" if pd.notna(v) else "—"
            elif idx in as_given and pd.notna(v):
                t = f"{float(v):g}"
            else:
                sd = sds.at[idx] if sds is not None else None
                t = fmt_mean_sd(v if pd.notna(v) else None, sd if sd is not None and pd.notna(sd) else None)
            if idx in best.get(col, []):
                t = f"★ {t}"
            texts[idx] = t
        sty = _format_by_index(sty, col, texts)
    highlight = [(col, idx) for col, idxs in best.items() if col in cols for idx in idxs]
    if highlight:
        def paint(data: pd.DataFrame) -> pd.DataFrame:
            css = pd.DataFrame("", index=data.index, columns=data.columns)
            for col, idx in highlight:
                css.at[idx, col] = "background-color: #d9f2dd; font-weight: 600"
            return css
        sty = sty.apply(paint, axis=None)
    return sty


def _format_by_index(sty, col: str, texts: dict) -> Any:
    """Set the display text of each cell of ``col`` by row label (a Styler formats by value only)."""
    for idx, text in texts.items():
        sty = sty.format(lambda v, _text=text: _text, subset=pd.IndexSlice[[idx], [col]])
    return sty


def _dedupe_notes(notes: list[str]) -> list[str]:
    """Collapse per-model notes that say the same thing: one line per reason and set of models, naming
    every metric it holds for ("FID and KID (dcgan, pggan): no Inception weights ...")."""
    by_why: dict[str, dict[str, list[str]]] = {}  # reason -> metric label -> models
    plain: list[str] = []
    for n in notes:
        m = re.match(r"(.+?) for (.+?): (.+)", n)
        if not m:
            plain.append(n)
            continue
        models = by_why.setdefault(m.group(3), {}).setdefault(m.group(1), [])
        if m.group(2) not in models:
            models.append(m.group(2))
    out = plain[:]
    for why, per_label in by_why.items():
        groups: dict[tuple[str, ...], list[str]] = {}
        for label, models in per_label.items():
            groups.setdefault(tuple(models), []).append(label)
        for models, labels in groups.items():
            names = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
            out.append(f"{names} ({', '.join(models)}): {why}")
    return out


# --- the report's comparison ---------------------------------------------------------------------

@dataclass(frozen=True)
class ReportRow:
    """One model of the report this project implements, with the final losses it gives."""

    label: str
    ours: str  # the registered model that implements its recipe
    loss: str
    loss_D: float
    loss_G: float


REPORT_ROWS = (ReportRow("DCGAN", "dcgan", BCE, 0.57, 3.1), ReportRow("PGGAN", "pggan-seed", BCE, 0.05, 3.98))
REPORT_EPOCHS, REPORT_BATCH, REPORT_SIZE, REPORT_TRAIN_IMAGES = 500, 64, 64, 2000
REPORT_NIMG = REPORT_EPOCHS * REPORT_TRAIN_IMAGES  # 1M images seen
REPORT_TRAINING = (f"{REPORT_EPOCHS} epochs of the {REPORT_TRAIN_IMAGES:,} ISIC 2017 training images "
                   f"({format_count(REPORT_NIMG)} images seen), batch {REPORT_BATCH}, {REPORT_SIZE} px")
PARITY_MODELS = ("dcgan", "pggan-seed", "pggan")  # the report's two recipes, then Karras et al.'s PGGAN
PARITY_RECIPES = {"dcgan": "report's DCGAN", "pggan-seed": "report's PGGAN, phase-wise",
                  "pggan": "Karras et al.'s PGGAN"}


@dataclass(frozen=True)
class ParityModel:
    """One of this project's models as the parity table and the claims use it."""

    name: str  # folder name
    model: str  # RunConfig.model
    stats: pd.DataFrame | None  # up to the model's snapshot
    row: dict | None  # eval.run's row against the training split
    metrics: pd.DataFrame | None = None  # metrics.jsonl: scored during training
    augmented: bool = False  # D trained on augmented images (DiffAugment, ADA): not the report's recipe
    snap: Snapshot = Snapshot(None, None)

    @property
    def nimg(self) -> int | None:
        """Images seen by the model: its snapshot's, else its stats' last step."""
        if self.snap.nimg is not None or self.stats is None:
            return self.snap.nimg
        last = last_value(self.stats, "nimg")
        return int(last) if last is not None else None


@dataclass(frozen=True)
class Previous:
    """The shipped version a model replaced (its folder's ``previous/``): config, stats, training-split
    row and ``best_snapshot`` section."""

    config: dict
    stats: pd.DataFrame | None
    row: dict | None
    best: dict | None = None


def d_augmented(cfg: dict | None) -> bool:
    """Whether a run config trains D on augmented images (DiffAugment or ADA): not the report's recipe."""
    train = (cfg or {}).get("train") or {}
    return bool(train.get("diffaug") or train.get("ada"))


def parity_models(entries: Sequence[ModelEntry], configs: dict[str, dict], stats: dict[str, pd.DataFrame],
                  results: Results | None, metrics_frames: dict[str, pd.DataFrame] | None = None,
                  previous: dict[str, Previous] | None = None, snapshots: dict[str, Snapshot] | None = None
                  ) -> list[ParityModel]:
    """This folder's unconditional models of the report's recipes (and Karras et al.'s PGGAN), in that order.

    A model retrained with D augmentation (DiffAugment, ADA) is no longer the report's recipe: the
    version it replaced (``previous``, from the folder's ``previous/``), trained without it, comes first
    as ``NAME (previous)``. ``snapshots``: each model's :class:`Snapshot` (default: its stats' end); its
    losses are read up to it."""
    out = []
    for model in PARITY_MODELS:
        for e in entries:
            cfg = configs.get(e.name) or {}
            if cfg.get("model") != model or (cfg.get("model_cfg") or {}).get("class_names"):
                continue
            prev = (previous or {}).get(e.name)
            if prev is not None and d_augmented(cfg) and not d_augmented(prev.config):
                snap = snapshot(prev.best, None, prev.stats)
                out.append(ParityModel(f"{e.name} (previous)", model, until(prev.stats, snap.nimg), prev.row,
                                       snap=snap))
            snap = (snapshots or {}).get(e.name) or snapshot(None, None, stats.get(e.name))
            out.append(ParityModel(e.name, model, until(stats.get(e.name), snap.nimg),
                                   results.train_row(e.name) if results is not None else None,
                                   (metrics_frames or {}).get(e.name), d_augmented(cfg), snap))
    return out


def parity_table(models: Sequence[ParityModel], fraction: float = 0.1) -> pd.DataFrame:
    """The report's final D/G losses beside this project's: mean and sd over the last ``fraction`` of
    training, with the loss each row's numbers are (a WGAN critic's loss is not comparable with BCE)."""
    rows = []
    for r in REPORT_ROWS:
        rows.append({"row": f"report: {r.label}", "recipe": f"report's {r.label}", LOSS_COLUMN: r.loss,
                     "images seen": REPORT_NIMG, D_COLUMN: r.loss_D, D_COLUMN + SD_SUFFIX: None,
                     G_COLUMN: r.loss_G, G_COLUMN + SD_SUFFIX: None,
                     "how measured": "final value, as the report gives it"})
    for m in models:
        d, g = tail_summary(m.stats, "loss_D", fraction), tail_summary(m.stats, "loss_G", fraction)
        kind = loss_type(m.model, m.stats)
        if d is None:
            how = "no logged losses"
        elif d.n == 1:
            how = f"one log, at {format_count(d.to_nimg)} images"
        else:
            how = f"last {fraction:.0%}: {d.n} logs, {format_count(d.from_nimg)}–{format_count(d.to_nimg)} images"
        if d is not None and m.snap.earlier:
            how += f", up to the shipped snapshot (the run went on to {format_count(m.snap.run_nimg)})"
        recipe = PARITY_RECIPES.get(m.model, m.model) + (" + D augmentation" if m.augmented else "")
        rows.append({"row": f"this project: {m.name}", "recipe": recipe,
                     LOSS_COLUMN: kind, "images seen": m.nimg,
                     D_COLUMN: d.mean if d else None, D_COLUMN + SD_SUFFIX: d.sd if d else None,
                     G_COLUMN: g.mean if g else None, G_COLUMN + SD_SUFFIX: g.sd if g else None,
                     "how measured": how})
    table = pd.DataFrame(rows).set_index("row")
    for c in ("images seen", D_COLUMN, D_COLUMN + SD_SUFFIX, G_COLUMN, G_COLUMN + SD_SUFFIX):
        table[c] = pd.to_numeric(table[c], errors="coerce")
    return table


PARITY_COLUMNS = (LOSS_COLUMN, D_COLUMN, G_COLUMN, "images seen", "recipe", "how measured")
REPORT_ROW_LABELS = tuple(f"report: {r.label}" for r in REPORT_ROWS)  # numbers as the report prints them


@dataclass(frozen=True)
class Claim:
    """One of the report's claims set against this project's data."""

    claim: str
    verdict: str  # "supported", "not supported", "mixed", "cannot tell"
    evidence: str


def _f(v: float | None) -> str:
    return fmt_number(v, 3)


def _pick(models: Sequence[ParityModel], model: str) -> ParityModel | None:
    return next((m for m in models if m.model == model), None)


def _key(name: str) -> str:
    """The headline result key of the registered metric ``name``."""
    return get_metric(name).key


def _val(m: ParityModel, key: str) -> float | None:
    return metric_value(m.row, key)


def _compare(a: float | None, b: float | None, lower_better: bool) -> int | None:
    """+1 when ``a`` is better than ``b``, -1 when worse, 0 when equal, None when either is missing."""
    if a is None or b is None:
        return None
    if a == b:
        return 0
    return 1 if (a < b) == lower_better else -1


def _verdict(signs: Sequence[int | None]) -> str:
    s = [x for x in signs if x is not None]
    if not s:
        return "cannot tell"
    if all(x > 0 for x in s):
        return "supported"
    if all(x < 0 for x in s):
        return "not supported"
    return "mixed"


def _per_kimg(df: pd.DataFrame | None) -> float | None:
    if df is None or "time_s" not in df or "nimg" not in df or len(df) < 2:
        return None
    d = df[["nimg", "time_s"]].dropna()
    span = d["nimg"].iloc[-1] - d["nimg"].iloc[0]
    return float((d["time_s"].iloc[-1] - d["time_s"].iloc[0]) / span * 1000) if span > 0 else None


def report_claims(models: Sequence[ParityModel]) -> list[Claim]:
    """The report's three claims for progressive growing (learns faster, collapses less, trains more
    stably), each judged on this folder's ``pggan-seed`` (the report's progressive recipe) against ``dcgan``
    (its baseline), in sentences made from the numbers. ``pggan`` is added where it has the numbers."""
    base, prog, karras = _pick(models, "dcgan"), _pick(models, "pggan-seed"), _pick(models, "pggan")
    if base is None or prog is None:
        missing = " and ".join(m for m, x in (("dcgan", base), ("pggan-seed", prog)) if x is None)
        why = f"this folder has no {missing} run to compare"
        return [Claim(c, "cannot tell", why) for c in CLAIMS]
    return [_claim_faster(base, prog, karras), _claim_collapse(base, prog, karras), _claim_stable(base, prog)]


CLAIMS = ("Progressive growing learns faster", "Progressive growing collapses less",
          "Progressive growing trains more stably")


def _same_length(a: float | None, b: float | None) -> bool:
    """Two runs' images seen, within 5 % of each other (both known)."""
    return a is not None and b is not None and abs(a - b) <= 0.05 * max(a, b)


def _claim_faster(base: ParityModel, prog: ParityModel, karras: ParityModel | None) -> Claim:
    key = _key("fd_derm")
    parts, signs = [], []
    during = [m for m in (base, prog) if m.metrics is not None and key in m.metrics and m.metrics[key].notna().any()]
    if len(during) == 2:
        # Compare the two curves where both were scored (images seen in common, to the nearest log).
        a = base.metrics.dropna(subset=[key]).set_index("nimg")[key]
        b = prog.metrics.dropna(subset=[key]).set_index("nimg")[key]
        common = sorted(set(a.index) & set(b.index))
        if common:
            wins = sum(b[n] < a[n] for n in common)
            signs.append(1 if wins > len(common) / 2 else -1 if wins < len(common) / 2 else 0)
            parts.append(f"scored during training, {prog.name}'s FD derm is lower than {base.name}'s at {wins} of "
                         f"{len(common)} common points (at {format_count(common[0])} images: {_f(b[common[0]])} "
                         f"against {_f(a[common[0]])})")
    fb, fp = _val(base, key), _val(prog, key)
    nb, np_ = base.nimg, prog.nimg
    if fb is not None and fp is not None:
        same = _same_length(nb, np_)
        if same:
            when = f"after the same {format_count(nb)} images"
        elif nb is None or np_ is None:
            when = "at the end of training"
        else:
            when = f"at the end of training ({format_count(np_)} images against {format_count(nb)})"
        signs.append(_compare(fp, fb, lower_better=True))
        parts.append(f"{when}, {prog.name} reaches FD derm {_f(fp)} against {base.name}'s {_f(fb)} (lower is better)")
        if karras is not None and _val(karras, key) is not None:
            nk = karras.nimg
            seen = "" if nk is None or (same and _same_length(nk, nb)) else f" after {format_count(nk)} images"
            parts.append(f"{karras.name} (Karras et al.'s) reaches {_f(_val(karras, key))}{seen}")
    tb, tp = _per_kimg(base.stats), _per_kimg(prog.stats)
    if tb and tp:
        cost = ("cheaper steps while it trains at low resolution" if tp < tb else "dearer steps" if tp > tb
                else "the same cost")
        parts.append(f"in wall time {prog.name} spends {_f(tp)} s per 1k images against {_f(tb)} s ({cost})")
    verdict = _verdict(signs)
    return Claim(CLAIMS[0], verdict, _sentence(parts) if parts else "no FD derm scored, at the end or during training")


def _claim_collapse(base: ParityModel, prog: ParityModel, karras: ParityModel | None) -> Claim:
    parts, signs = [], []
    for key, label in ((_key("recall_derm"), "recall"), (_key("coverage_derm"), "coverage")):
        b, p = _val(base, key), _val(prog, key)
        if b is None or p is None:
            continue
        signs.append(_compare(p, b, lower_better=False))
        parts.append(f"{label} {_f(p)} against {_f(b)}")
    text = (f"{prog.name} against {base.name}: " + ", ".join(parts) + " (higher: samples reach more kinds of "
            "real lesions, less collapse)") if parts else ""
    b, p = _val(base, _key("diversity")), _val(prog, _key("diversity"))
    if b is not None and p is not None:
        div = _compare(p, b, lower_better=True)
        text += (f"{'; ' if text else ''}MS-SSIM between its own samples {_f(p)} against {_f(b)} "
                 f"({'more' if div and div > 0 else 'less' if div and div < 0 else 'as'} varied pixel-wise; "
                 "MS-SSIM cannot tell varied noise from varied lesions)")
    if karras is not None and _val(karras, _key("recall_derm")) is not None:
        text += f"; {karras.name}'s recall is {_f(_val(karras, _key('recall_derm')))}"
    return Claim(CLAIMS[1], _verdict(signs), (text + ".") if text else "no recall or coverage scored")


def _claim_stable(base: ParityModel, prog: ParityModel) -> Claim:
    parts, signs = [], []
    for key, label in (("loss_D", "D"), ("loss_G", "G")):
        b, p = tail_summary(base.stats, key), tail_summary(prog.stats, key)
        if b is None or p is None or b.sd is None or p.sd is None:
            continue
        signs.append(_compare(p.sd, b.sd, lower_better=True))
        parts.append(f"{label} loss sd {_f(p.sd)} against {_f(b.sd)}")
    spikes = []
    for m in (prog, base):
        if m.stats is not None and "loss_G" in m.stats and len(m.stats) > 2:
            g = m.stats["loss_G"].astype(float)
            spikes.append(float(np.nanmax(np.abs(np.diff(g.to_numpy())))))
    text = ""
    if parts:
        text = (f"Over the last 10% of training (both BCE), {prog.name} against {base.name}: " + ", ".join(parts)
                + " (smaller: steadier)")
    if len(spikes) == 2:
        text += (f"{'; ' if text else ''}largest jump of G loss between two logs over the whole run "
                 f"{_f(spikes[0])} against {_f(spikes[1])}")
    return Claim(CLAIMS[2], _verdict(signs), (text + ".") if text else "no logged losses to compare")


def _sentence(parts: Sequence[str]) -> str:
    text = "; ".join(parts)
    return text[:1].upper() + text[1:] + "."
