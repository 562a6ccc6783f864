"""Where a training run stands, for the status strip: running or finished, images done of planned, time
per thousand images, estimated time left, last update. Pure functions of the run folder's files."""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from dashboard.discovery import ModelEntry, file_stamp
from dashboard.formatting import format_count, format_duration

RECENT_S = 180  # a run that wrote nothing for longer than this (and three log intervals) has stopped


@dataclass(frozen=True)
class RunStatus:
    """A run's progress.

    Attributes:
        state: "starting" (config written, no step logged yet), "running", "finished" or "stopped"
            (not finished, nothing written for a while: killed or crashed; ``--resume`` continues it).
        nimg: images seen at the last log (0 before the first).
        planned: images the config asks for (``train.kimg`` x 1000), None without a config.
        per_kimg_s: wall seconds per thousand images over the last logs, None with fewer than two.
        eta_s: estimated seconds left (running runs only).
        last_update_s: seconds since the run last wrote its stats or config.
    """

    state: str
    nimg: int
    planned: int | None
    per_kimg_s: float | None
    eta_s: float | None
    last_update_s: float | None

    @property
    def fraction(self) -> float | None:
        return min(self.nimg / self.planned, 1.0) if self.planned else None

    def summary(self) -> str:
        """One line: "running · 12.3k of 150k images (8%) · 41 s per kimg · about 1.6 h left · updated 5 s ago"."""
        parts = [self.state]
        done = format_count(self.nimg) or "0"
        if self.planned:
            parts.append(f"{done} of {format_count(self.planned)} images ({self.fraction:.0%})")
        else:
            parts.append(f"{done} images")
        if self.per_kimg_s is not None:
            parts.append(f"{self.per_kimg_s:.3g} s per kimg")
        if self.eta_s is not None:
            parts.append(f"about {format_duration(self.eta_s)} left")
        if self.last_update_s is not None:
            parts.append(f"updated {format_duration(max(self.last_update_s, 0.0))} ago")
        return " · ".join(parts)


def per_kimg(df: pd.DataFrame | None, last: int = 5) -> float | None:
    """Wall seconds per thousand images over the last ``last`` logged steps (the current pace)."""
    if df is None or "time_s" not in df or "nimg" not in df:
        return None
    d = df[["nimg", "time_s"]].dropna().tail(last + 1)
    if len(d) < 2:
        return None
    dn = float(d["nimg"].iloc[-1] - d["nimg"].iloc[0])
    dt = float(d["time_s"].iloc[-1] - d["time_s"].iloc[0])
    return dt / dn * 1000.0 if dn > 0 and dt >= 0 else None


def run_status(entry: ModelEntry, df: pd.DataFrame | None, config: dict | None, now: float | None = None
               ) -> RunStatus:
    """The status of ``entry`` from its stats (``df``), resolved config dict and file times."""
    now = time.time() if now is None else now
    planned = None
    if config is not None:
        kimg = (config.get("train") or {}).get("kimg")
        planned = int(round(float(kimg) * 1000)) if kimg else None
    nimg = int(df["nimg"].iloc[-1]) if df is not None and len(df) else 0
    pace = per_kimg(df)
    stamps = [s for s in (file_stamp(entry.stats), file_stamp(entry.config), file_stamp(entry.weights)) if s]
    last = now - max(stamps) if stamps else None
    if planned is not None and nimg >= planned:
        state = "finished"
    elif df is None or not len(df):
        state = "starting" if last is not None and last < RECENT_S else "stopped"
    else:
        quiet = max(RECENT_S, 3 * (pace or 0) * _log_kimg(config))
        state = "running" if last is not None and last < quiet else "stopped"
    if planned is None and entry.run.generator_path is not None and state != "running":
        state = "finished"
    eta = (planned - nimg) / 1000.0 * pace if state == "running" and planned and pace else None
    return RunStatus(state, nimg, planned, pace, eta, last)


def _log_kimg(config: dict | None) -> float:
    try:
        return float(((config or {}).get("train") or {}).get("log_kimg") or 1.0)
    except (TypeError, ValueError):
        return 1.0
