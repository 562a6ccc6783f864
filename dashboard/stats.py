"""Training statistics as the pages show them: ``stats.jsonl`` (read by :mod:`gan.rundir`, one row per
step) as a DataFrame, smoothing, a progressive run's phases, the losses over the end of training."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from gan.rundir import RunDir


def read_stats(run: RunDir | str | os.PathLike) -> pd.DataFrame:
    """A run folder's ``stats.jsonl`` as a DataFrame sorted by images seen (``nimg``).

    One row per step: after a resume the last line logged for a step wins. Lines that do not parse
    (a run still writing its last line) are skipped. Missing columns stay missing; callers check
    with ``in df``. Empty when the folder has no stats.
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    df = pd.DataFrame(run.read_stats())
    if "nimg" in df:
        df["nimg"] = df["nimg"].astype("int64")
    return df


def smooth(values: Sequence[float] | pd.Series, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing). ``weight`` in [0, 1); 0 = raw.

    Non-finite values are skipped (they neither pull the average nor decay it) and stay NaN in the
    output.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    x = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(x)
    out = pd.Series(np.where(finite, x, np.nan)).ewm(alpha=1.0 - weight, adjust=True, ignore_na=True).mean()
    return np.where(finite, out.to_numpy(), np.nan)


def is_progressive(df: pd.DataFrame) -> bool:
    """True when the run grew its resolution or faded layers in (a progressive GAN)."""
    if "resolution" in df and df["resolution"].nunique() > 1:
        return True
    return "alpha" in df and bool((df["alpha"] < 1.0).any())


def last_value(df: pd.DataFrame, column: str) -> Any:
    """The last non-missing value of ``column``, or None."""
    if column not in df:
        return None
    s = df[column].dropna()
    return s.iloc[-1] if len(s) else None


def until(df: pd.DataFrame | None, nimg: int | None) -> pd.DataFrame | None:
    """The rows logged at or before ``nimg`` images (a shipped snapshot's part of its run); all rows
    when ``nimg`` is None."""
    if df is None or nimg is None or "nimg" not in df:
        return df
    return df[df["nimg"] <= nimg]


# The loss each registered model trains with: BCE losses (near 0.3-3) and a WGAN critic's loss (any sign,
# its own scale) are different quantities and never share an axis or a column without saying so.
BCE, WGAN = "BCE", "WGAN-GP"
LOSS_TYPES = {"dcgan": BCE, "pggan-seed": BCE, "pggan": WGAN}


def loss_type(model: str | None, df: pd.DataFrame | None = None) -> str | None:
    """"BCE" or "WGAN-GP" for a model name (``RunConfig.model``); a stats table that logs a gradient
    penalty is WGAN-GP whatever the name. None when neither tells."""
    if df is not None and "grad_penalty" in df:
        return WGAN
    if model in LOSS_TYPES:
        return LOSS_TYPES[model]
    if df is not None and ("D_fake_after" in df or ("D_real" in df and df["D_real"].between(0, 1).all())):
        return BCE  # sigmoid outputs in [0, 1]: a BCE discriminator
    return None


@dataclass(frozen=True)
class TailSummary:
    """A logged series over the last part of training: mean, sample sd and how many logged rows."""

    mean: float
    sd: float | None
    n: int
    from_nimg: int
    to_nimg: int


def tail_summary(df: pd.DataFrame | None, column: str, fraction: float = 0.1) -> TailSummary | None:
    """Mean and sd of ``column`` over the last ``fraction`` of training (rows with images seen at or after
    ``(1 - fraction)`` of the last logged count; at least the last row). None without finite values."""
    if df is None or column not in df or "nimg" not in df or df.empty:
        return None
    d = df[["nimg", column]].dropna()
    d = d[np.isfinite(d[column].astype(float))]
    if d.empty:
        return None
    last = int(d["nimg"].iloc[-1])
    tail = d[d["nimg"] >= (1.0 - fraction) * last]
    if tail.empty:
        tail = d.iloc[-1:]
    v = tail[column].astype(float).to_numpy()
    return TailSummary(mean=float(v.mean()), sd=float(v.std(ddof=1)) if len(v) > 1 else None, n=len(v),
                       from_nimg=int(tail["nimg"].iloc[0]), to_nimg=last)


def series_columns(df: pd.DataFrame) -> list[str]:
    """The numeric series a stats or metrics table logs, without the bookkeeping columns."""
    skip = {"nimg", "kimg", "time_s", "resolution", "alpha", "phase", "batch", "lr", "reference",
            "n", "seed", "seconds"}  # metrics.jsonl bookkeeping: samples, sample seed, scoring time
    return [c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def read_metrics(run: RunDir | str | os.PathLike) -> pd.DataFrame:
    """A run folder's ``metrics.jsonl`` (metrics of G_ema scored during training) as a DataFrame sorted
    by images seen; empty when the folder has none."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    df = pd.DataFrame(run.read_metrics())
    if "nimg" in df:
        df["nimg"] = df["nimg"].astype("int64")
    return df


def phase_spans(df: pd.DataFrame) -> list[tuple[int, int, str]]:
    """Each phase of a progressive run as (first nimg, last nimg, label such as "16 px"): where its label
    goes (centred over its own span). [] for a run with one phase."""
    if df.empty or "nimg" not in df:
        return []
    key = "phase" if "phase" in df else ("resolution" if "resolution" in df else None)
    if key is None:
        return []
    d = df.dropna(subset=[key])
    if d.empty or d[key].nunique() < 2:
        return []
    vals, nimg = d[key].to_numpy(), d["nimg"].to_numpy()
    res = d["resolution"].to_numpy() if "resolution" in d else None
    starts = [0] + [i for i in range(1, len(vals)) if vals[i] != vals[i - 1]]
    spans = []
    for j, i in enumerate(starts):
        end = starts[j + 1] if j + 1 < len(starts) else len(vals)
        x0 = int(nimg[i - 1]) if i > 0 else int(nimg[0])  # the switch happened after the previous log
        x1 = int(nimg[end - 1])
        label = f"{int(res[i])} px" if res is not None and np.isfinite(res[i]) else f"phase {int(vals[i])}"
        if "alpha" in d and (d["alpha"].iloc[i:end] < 1.0).any():
            label += " fade-in"
        spans.append((x0, x1, label))
    return spans


def long_table(frames: dict[str, pd.DataFrame], keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Logged series of several models in one long table (``model``, ``nimg``, ``time_s``, ``series``,
    ``value``), for a CSV or JSON download of what a chart draws; ``keys``: the series (default: every
    series of each table, :func:`series_columns`). Rows without a value are left out."""
    parts = []
    for name, df in frames.items():
        for key in (keys if keys is not None else series_columns(df)):
            if key not in df or "nimg" not in df:
                continue
            d = df[["nimg", key] + (["time_s"] if "time_s" in df else [])].dropna(subset=[key])
            parts.append(pd.DataFrame({"model": name, "nimg": d["nimg"].astype("int64"),
                                       "time_s": d["time_s"] if "time_s" in d else np.nan, "series": key,
                                       "value": d[key].astype(float)}))
    if not parts:
        return pd.DataFrame(columns=["model", "nimg", "time_s", "series", "value"])
    return pd.concat(parts, ignore_index=True)
