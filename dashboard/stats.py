"""Training statistics as the pages show them: ``stats.jsonl`` (read by :mod:`gan.rundir`, one row per
step) as a DataFrame, smoothing, a progressive run's phase boundaries, the final losses."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Boundaries:
    """Where a progressive run switched phase and where it faded a new resolution in (images seen)."""

    phases: list[tuple[int, str]] = field(default_factory=list)  # (nimg at phase start, label)
    fades: list[tuple[int, int]] = field(default_factory=list)  # (start nimg, end nimg) with alpha < 1


def phase_boundaries(df: pd.DataFrame) -> Boundaries:
    """Phase starts and fade-in spans from the ``phase``/``resolution``/``alpha`` columns of stats.jsonl.

    Rows that lack a column (older or partial lines) are ignored for that column.
    """
    if df.empty or "nimg" not in df:
        return Boundaries()
    phases: list[tuple[int, str]] = []
    key = "phase" if "phase" in df else ("resolution" if "resolution" in df else None)
    if key is not None:
        d = df.dropna(subset=[key])
        vals, nimg = d[key].to_numpy(), d["nimg"].to_numpy()
        res = d["resolution"].to_numpy() if "resolution" in d else None
        for i in range(1, len(vals)):
            if vals[i] != vals[i - 1]:
                label = f"phase {int(vals[i])}" if key == "phase" else ""
                if res is not None and np.isfinite(res[i]):
                    label = f"{label} · {int(res[i])}px".strip(" ·")
                # The switch happened between the two logged points; draw it at the first new one.
                phases.append((int(nimg[i]), label))
    fades: list[tuple[int, int]] = []
    if "alpha" in df:
        d = df.dropna(subset=["alpha"])
        nimg, fading = d["nimg"].to_numpy(), d["alpha"].to_numpy() < 1.0
        start = None
        for i, f in enumerate(fading):
            if f and start is None:
                start = int(nimg[i - 1]) if i > 0 else int(nimg[i])
            if not f and start is not None:
                fades.append((start, int(nimg[i])))
                start = None
        if start is not None:
            fades.append((start, int(nimg[-1])))
    return Boundaries(phases=phases, fades=fades)


def last_value(df: pd.DataFrame, column: str) -> Any:
    """The last non-missing value of ``column``, or None."""
    if column not in df:
        return None
    s = df[column].dropna()
    return s.iloc[-1] if len(s) else None


def final_losses(df: pd.DataFrame) -> dict[str, float | None]:
    """The last logged D and G loss (what the report's comparison table quotes)."""
    return {k: (float(v) if (v := last_value(df, k)) is not None else None) for k in ("loss_D", "loss_G")}


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
