"""Where a model's run stands, for the status strip: running (a live writer holds the run folder's lock),
finished, stopped, or a shipped snapshot; images done of planned, time per thousand images, estimated
time left, and the writer's last heartbeat. Never from file times: a clone or a copy gives every file a
new time."""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from dashboard.discovery import ModelEntry
from dashboard.formatting import format_count, format_duration

_READ = object()  # run_status's default: read the lock's holder from the folder


@dataclass(frozen=True)
class RunStatus:
    """A model's run.

    Attributes:
        state: "starting" (a live writer, no step logged yet), "running" (a live writer), "finished"
            (all planned images seen), "shipped" (a snapshot chosen from its run: ``results.json``'s
            ``best_snapshot``), "saved" (a generator file and no training checkpoint: an export) or
            "stopped" (no live writer before the planned images: killed or crashed; ``--resume``
            continues it).
        nimg: images seen at the last log (0 before the first).
        planned: images the config asks for (``train.kimg`` x 1000), None without a config.
        per_kimg_s: wall seconds per thousand images over the last logs, None with fewer than two.
        eta_s: estimated seconds left (running runs only).
        heartbeat_s: seconds since the writer's last heartbeat (running runs only).
        snapshot_nimg: a shipped model's snapshot: images seen when it was taken.
        run_nimg: a shipped model's run: how far it went.
    """

    state: str
    nimg: int
    planned: int | None
    per_kimg_s: float | None
    eta_s: float | None
    heartbeat_s: float | None
    snapshot_nimg: int | None = None
    run_nimg: int | None = None

    @property
    def live(self) -> bool:
        return self.state in ("running", "starting")

    @property
    def fraction(self) -> float | None:
        """Share of the planned images seen, for a run in progress or ended (not for a shipped snapshot)."""
        if self.state in ("shipped", "saved") or not self.planned:
            return None
        return min(self.nimg / self.planned, 1.0)

    def summary(self) -> str:
        """One line: "running · 12.3k of 150k images (8%) · 41 s per 1k images · about 1.6 h left · updated 5 s
        ago", or "shipped snapshot at 480k of a 540k run"."""
        if self.state == "shipped":
            text = f"shipped snapshot at {format_count(self.snapshot_nimg)} images"
            if self.run_nimg and self.run_nimg > self.snapshot_nimg:
                text += f" of a {format_count(self.run_nimg)} run"
            elif self.run_nimg:
                text += ", where its run ended"
            if self.planned and self.planned > max(self.run_nimg or 0, self.snapshot_nimg):
                text += f" (planned {format_count(self.planned)})"
            return text
        done = format_count(self.nimg) or "0"
        if self.state == "saved":
            return f"generator saved, not training · its run logged {done} images"
        parts = [self.state]
        if self.planned:
            parts.append(f"{done} of {format_count(self.planned)} images ({self.fraction:.0%})")
        else:
            parts.append(f"{done} images")
        if self.per_kimg_s is not None and self.live:
            parts.append(f"{self.per_kimg_s:.3g} s per 1k images")
        if self.eta_s is not None:
            parts.append(f"about {format_duration(self.eta_s)} left")
        if self.heartbeat_s is not None:
            parts.append(f"updated {format_duration(max(self.heartbeat_s, 0.0))} ago")
        if self.state == "stopped":
            parts.append("not training (python -m gan.train --resume continues it)")
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


def _age(stamp: object, now: float) -> float | None:
    """Seconds since an ISO time (the lock record's heartbeat), None when it is not one."""
    try:
        return now - datetime.fromisoformat(str(stamp)).timestamp()
    except (TypeError, ValueError):
        return None


def run_status(entry: ModelEntry, df: pd.DataFrame | None, config: dict | None, shipped: dict | None = None,
               holder: object = _READ, now: float | None = None) -> RunStatus:
    """The status of ``entry`` from its stats (``df``), resolved config dict, the ``best_snapshot``
    section of its ``results.json`` (``shipped``: {"nimg", "final_nimg"}) and the writer holding its
    lock (``holder``: :meth:`gan.rundir.RunDir.holder`'s record or None; read from the folder by default)."""
    now = time.time() if now is None else now
    if holder is _READ:
        holder = entry.run.holder()
    planned = None
    if config is not None:
        kimg = (config.get("train") or {}).get("kimg")
        planned = int(round(float(kimg) * 1000)) if kimg else None
    nimg = int(df["nimg"].iloc[-1]) if df is not None and len(df) else 0
    pace = per_kimg(df)
    if isinstance(holder, dict) and not (planned is not None and nimg >= planned):
        state = "running" if nimg else "starting"
        eta = (planned - nimg) / 1000.0 * pace if planned and pace and nimg else None
        return RunStatus(state, nimg, planned, pace, eta, _age(holder.get("heartbeat"), now))
    if isinstance(shipped, dict) and isinstance(shipped.get("nimg"), (int, float)):
        run = shipped.get("final_nimg")
        return RunStatus("shipped", nimg, planned, pace, None, None, int(shipped["nimg"]),
                         int(run) if isinstance(run, (int, float)) else (nimg or None))
    if planned is not None and nimg >= planned:
        return RunStatus("finished", nimg, planned, pace, None, None)
    if entry.run.checkpoint_path is None and entry.run.generator_path is not None:
        return RunStatus("saved", nimg, planned, pace, None, None)
    return RunStatus("stopped", nimg, planned, pace, None, None)
