"""Plotly figures of the pages: logged series against images seen or wall time (one model's losses, or any
series overlaid across models), phase marks, colour histograms.

Every chart follows the same rules: sparse series are drawn with markers (a single logged step is a
visible point), tooltips give 4 significant digits and the whole series name, tick and title text is dark
enough for 4.5:1 contrast, and BCE and WGAN losses never share an axis (the pages draw one panel per loss
type).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.stats import phase_spans, smooth

TEMPLATE = "plotly_white"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
CHANNELS = (("R", "#d62728"), ("G", "#2ca02c"), ("B", "#1f77b4"))
TEXT = "#262730"  # chart text: 15:1 on white
TICK = "#3d4150"  # tick labels: 10:1 on white (Streamlit's chart grey is ~3.7:1)
SPARSE = 40  # series with at most this many points are drawn with markers too
X_AXES = {"nimg": "images seen", "time_s": "wall time"}

# Whole names for the series training and metric logging write (tooltips and legends never cut them off).
SERIES_LABELS = {
    "loss_D": "D loss", "loss_G": "G loss", "D_real": "D(x): D output on real images",
    "D_fake": "D(G(z)): D output on generated images", "D_fake_after": "D(G(z)) after the D step",
    "grad_penalty": "gradient penalty", "alpha": "fade-in alpha", "lr": "learning rate", "batch": "batch",
}


def series_label(key: str) -> str:
    """The display name of a logged series: the catalogue's label for a metric key, else a known name."""
    if key in SERIES_LABELS:
        return SERIES_LABELS[key]
    from dashboard.results import metrics

    for m in metrics():
        if m.key == key:
            return m.label
    return key


@dataclass(frozen=True)
class Trace:
    """One line: column ``key`` of ``df`` (which has ``nimg`` and, for a wall-time x, ``time_s``)."""

    df: pd.DataFrame
    key: str
    name: str
    colour: str
    dash: str = "solid"


@dataclass(frozen=True)
class Mark:
    """A vertical dashed line at ``nimg`` images seen with a label (a shipped or best snapshot); ``df``:
    the run's stats, to place it on a wall-time axis."""

    nimg: int
    label: str
    df: pd.DataFrame | None = None
    colour: str = "#3d4150"


def _mark_x(m: Mark, x: str, scale: float) -> float | None:
    if x == "nimg":
        return float(m.nimg)
    if m.df is None or "time_s" not in m.df or "nimg" not in m.df:
        return None
    d = m.df[["nimg", "time_s"]].dropna()
    return float(np.interp(m.nimg, d["nimg"], d["time_s"])) / scale if len(d) else None


def _draw_marks(fig: go.Figure, marks: Sequence[Mark], x: str, scale: float) -> None:
    for i, m in enumerate(marks):
        xv = _mark_x(m, x, scale)
        if xv is None:
            continue
        fig.add_vline(x=xv, line_dash="dash", line_color=m.colour, line_width=1.5)
        # Inside the plot at the bottom, clear of the phase labels and the legend above it.
        fig.add_annotation(x=xv, y=0.02 + 0.09 * i, xref="x", yref="paper", text=m.label, showarrow=False,
                           xanchor="right", yanchor="bottom", font=dict(size=11, color=TEXT),
                           bgcolor="rgba(255,255,255,0.85)")


def _layout(fig: go.Figure, **kw) -> go.Figure:
    fig.update_layout(template=TEMPLATE, hovermode="x unified", font=dict(color=TEXT), hoverlabel=dict(namelength=-1),
                      legend=dict(orientation="h", yanchor="bottom", xanchor="left", x=0), **kw)
    if fig.layout.margin.t is None:
        fig.update_layout(margin=dict(l=10, r=10, t=70, b=10))
    if fig.layout.legend.y is None:
        fig.update_layout(legend=dict(y=1.12))
    fig.update_xaxes(tickfont=dict(color=TICK), title_font=dict(color=TEXT), linecolor="#8a8d96")
    fig.update_yaxes(tickfont=dict(color=TICK), title_font=dict(color=TEXT), linecolor="#8a8d96")
    return fig


def time_unit(seconds: float) -> tuple[str, float]:
    """("min", 60) or ("h", 3600): the wall-time unit that reads best for a run this long."""
    return ("h", 3600.0) if seconds >= 2 * 3600 else ("min", 60.0)


def _xy(df: pd.DataFrame, key: str, x: str, scale: float) -> tuple[np.ndarray, np.ndarray] | None:
    if key not in df or x not in df:
        return None
    d = df[[x, key]].dropna()
    if d.empty:
        return None
    return d[x].to_numpy(dtype=float) / scale, d[key].to_numpy(dtype=float)


def line_figure(traces: Sequence[Trace], x: str = "nimg", weight: float = 0.0, show_raw: bool = True,
                log_y: bool = False, y_range: tuple[float | None, float | None] | None = None,
                y_title: str = "", title: str | None = None, height: int = 340,
                phases_from: pd.DataFrame | None = None, legend: bool = True, marks: Sequence[Mark] = ()
                ) -> go.Figure:
    """Series against images seen (``x="nimg"``) or wall time (``"time_s"``).

    Args:
        traces: the lines; each drawn smoothed (bold) and, with ``show_raw``, raw (faint).
        weight: smoothing weight in [0, 1) (0: raw only).
        log_y: a logarithmic y axis (values <= 0 are not drawn there).
        y_range: (low, high), either None for automatic.
        phases_from: a progressive run's stats: its phases are marked (dotted lines at the switches, a
            label centred over each phase, fade-ins shaded).
        marks: snapshots to mark with a dashed line and a label (the shipped one).
    """
    fig = go.Figure()
    scale, x_title = 1.0, X_AXES.get(x, x)
    if x == "time_s":
        longest = max((float(t.df["time_s"].max()) for t in traces if "time_s" in t.df), default=0.0)
        unit, scale = time_unit(longest)
        x_title = f"wall time ({unit})"
    xs_all = []
    for t in traces:
        xy = _xy(t.df, t.key, x, scale)
        if xy is None:
            continue
        xs, ys = xy
        xs_all.append(xs)
        mode = "lines+markers" if len(xs) <= SPARSE else "lines"
        hover = f"{t.name}: %{{y:.4g}}<extra></extra>"
        smoothed = weight > 0 and len(ys) > 1
        if show_raw or not smoothed:
            fig.add_trace(go.Scatter(x=xs, y=ys, name=f"{t.name} (raw)" if smoothed else t.name, mode=mode,
                                     line=dict(color=t.colour, width=1 if smoothed else 2, dash=t.dash),
                                     marker=dict(size=7 if len(xs) == 1 else 5),
                                     opacity=0.35 if smoothed else 1.0, hovertemplate=hover.replace(
                                         t.name, f"{t.name} (raw)" if smoothed else t.name)))
        if smoothed:
            fig.add_trace(go.Scatter(x=xs, y=smooth(ys, weight), name=t.name, mode=mode,
                                     line=dict(color=t.colour, width=2.5, dash=t.dash), marker=dict(size=5),
                                     hovertemplate=hover))
    if phases_from is not None and phase_spans(phases_from):
        _draw_phases(fig, phases_from, x, scale)
        # Two rows of phase labels above the plot: the legend goes above them.
        fig.update_layout(margin=dict(t=105), legend=dict(y=1.2))
    _draw_marks(fig, marks, x, scale)
    if x == "nimg":
        fig.update_xaxes(tickformat="~s", hoverformat=",d")
    else:
        fig.update_xaxes(hoverformat=".3g")
    xs_cat = np.concatenate(xs_all) if xs_all else np.array([])
    if len(xs_cat) and np.ptp(xs_cat) == 0:
        # One logged step: plotly would zoom to +-1 around it (ticks 255, 255.5 ...); show it from zero.
        v = float(xs_cat[0])
        fig.update_xaxes(range=[0, v * 1.25 if v > 0 else 1])
    fig.update_xaxes(title_text=x_title)
    if log_y:
        fig.update_yaxes(type="log")
    if y_range is not None and any(v is not None for v in y_range):
        lo, hi = y_range
        if log_y:
            lo = np.log10(lo) if lo and lo > 0 else None
            hi = np.log10(hi) if hi and hi > 0 else None
        fig.update_yaxes(range=[lo, hi], autorange=False if lo is not None and hi is not None else None)
        if lo is None or hi is None:
            fig.update_yaxes(autorangeoptions=dict(minallowed=lo, maxallowed=hi), autorange=True)
    fig.update_yaxes(title_text=y_title, hoverformat=".4g")
    if title:
        fig.update_layout(title=dict(text=title, font=dict(size=15, color=TEXT), x=0, xanchor="left", y=0.98))
    if not legend:  # one named series, its name on the y axis: no legend row above the plot
        fig.update_layout(showlegend=False, margin=dict(l=10, r=10, t=20 if not title else 45, b=10))
    return _layout(fig, height=height)


def _draw_phases(fig: go.Figure, df: pd.DataFrame, x: str, scale: float) -> None:
    spans = phase_spans(df)
    if not spans:
        return

    def to_x(n: float) -> float:
        if x == "nimg":
            return float(n)
        d = df[["nimg", "time_s"]].dropna()
        return float(np.interp(n, d["nimg"], d["time_s"])) / scale

    for i, (x0, x1, label) in enumerate(spans):
        a, b = to_x(x0), to_x(x1)
        if "fade" in label:
            fig.add_vrect(x0=a, x1=b, fillcolor="#888", opacity=0.12, line_width=0)
        if i > 0:
            fig.add_vline(x=a, line_dash="dot", line_color="#555", line_width=1)
        # Centred over its own phase; every other label one line higher, so narrow phases never collide.
        fig.add_annotation(x=(a + b) / 2, y=1.0 if i % 2 == 0 else 1.07, xref="x", yref="paper", text=label,
                           showarrow=False, yanchor="bottom", font=dict(size=10, color=TEXT))


def loss_figure(df: pd.DataFrame, weight: float = 0.9, show_raw: bool = True, loss: str | None = None,
                x: str = "nimg", log_y: bool = False, y_range=None, phases: bool = True,
                marks: Sequence[Mark] = ()) -> go.Figure:
    """D and G loss of one model; ``loss`` ("BCE", "WGAN-GP") names what the numbers are."""
    kind = f" ({loss})" if loss else ""
    d_name = "D (critic) loss" if loss == "WGAN-GP" else "D loss"
    return line_figure([Trace(df, "loss_D", d_name + kind, COLOURS[0]), Trace(df, "loss_G", "G loss" + kind,
                                                                             COLOURS[1])],
                       x, weight, show_raw, log_y, y_range, y_title=f"loss{kind}", height=380,
                       phases_from=df if phases else None, marks=marks)


def d_output_figure(df: pd.DataFrame, weight: float = 0.9, show_raw: bool = True, x: str = "nimg",
                    log_y: bool = False, phases: bool = True, loss: str | None = None,
                    marks: Sequence[Mark] = ()) -> go.Figure:
    """Mean D output on real images, D(x), and on generated ones, D(G(z))."""
    title = "mean critic score" if loss == "WGAN-GP" else "mean D output (probability real)"
    return line_figure([Trace(df, "D_real", SERIES_LABELS["D_real"], COLOURS[2]),
                        Trace(df, "D_fake", SERIES_LABELS["D_fake"], COLOURS[3])],
                       x, weight, show_raw, log_y, None, y_title=title, height=340,
                       phases_from=df if phases else None, marks=marks)


def overlay_figure(frames: dict[str, pd.DataFrame], key: str, weight: float = 0.9, show_raw: bool = False,
                   x: str = "nimg", log_y: bool = False, y_range=None, title: str | None = None,
                   colours: dict[str, str] | None = None, marks: Sequence[Mark] = (),
                   dashes: dict[str, str] | None = None) -> go.Figure:
    """Series ``key`` of several models on one axis (one model, one colour; ``dashes``: a model's line
    style, e.g. dotted for the shipped models a new run is compared with)."""
    colours = colours or {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(frames)}
    traces = [Trace(df, key, name, colours[name], (dashes or {}).get(name, "solid"))
              for name, df in frames.items() if key in df]
    return line_figure(traces, x, weight, show_raw, log_y, y_range, y_title=series_label(key), title=title,
                       height=320, marks=marks)


def histogram_figure(real: np.ndarray | None, fake: np.ndarray | None, name: str = "generated") -> go.Figure:
    """Real vs generated colour histograms, one panel per RGB channel (each (3, bins), rows sum to 1)."""
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[f"{c} channel" for c, _ in CHANNELS])
    for ci, (cname, colour) in enumerate(CHANNELS):
        for hist, label, dash, show in ((real, "real", "solid", ci == 0), (fake, name, "dot", ci == 0)):
            if hist is None:
                continue
            bins = np.arange(hist.shape[1]) * (256 // hist.shape[1])
            fig.add_trace(go.Scatter(x=bins, y=hist[ci], name=label, legendgroup=label, showlegend=show,
                                     mode="lines", line=dict(color=colour if label == "real" else "#333",
                                                             dash=dash, width=2),
                                     hovertemplate=f"{label}, {cname}: %{{y:.4g}}<extra></extra>"),
                          row=1, col=ci + 1)
    fig.update_xaxes(title_text="intensity", range=[0, 255])
    fig.update_yaxes(title_text="share of pixels", row=1, col=1)
    fig.update_annotations(font=dict(color=TEXT))
    return _layout(fig, height=320)
