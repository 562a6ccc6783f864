"""Plotly figures of the pages: loss and D-output curves with phase marks, overlaid runs, colour histograms."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.stats import Boundaries, smooth

TEMPLATE = "plotly_white"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
CHANNELS = (("R", "#d62728"), ("G", "#2ca02c"), ("B", "#1f77b4"))


def _layout(fig: go.Figure, **kw) -> go.Figure:
    fig.update_layout(template=TEMPLATE, hovermode="x unified", margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.1, xanchor="left", x=0), **kw)
    return fig


def _draw_boundaries(fig: go.Figure, b: Boundaries, rows: int = 1) -> None:
    for x0, x1 in b.fades:
        for r in range(1, rows + 1):
            fig.add_vrect(x0=x0, x1=x1, fillcolor="#888", opacity=0.12, line_width=0, row=r, col=1)
    for x, label in b.phases:
        for r in range(1, rows + 1):
            fig.add_vline(x=x, line_dash="dot", line_color="#555", line_width=1, row=r, col=1,
                          annotation_text=label if r == 1 else None, annotation_position="top left",
                          annotation_font_size=10)


def _curves_figure(df: pd.DataFrame, series: tuple[tuple[str, str, str], ...], y_title: str, height: int,
                   weight: float, show_raw: bool, boundaries: Boundaries | None) -> go.Figure:
    """Columns of ``df`` against images seen: faint raw lines, bold smoothed lines, phase marks."""
    fig = make_subplots(rows=1, cols=1)
    for key, colour, label in series:
        if key not in df:
            continue
        if show_raw:
            fig.add_trace(go.Scatter(x=df["nimg"], y=df[key], name=f"{label} (raw)", mode="lines",
                                     line=dict(color=colour, width=1), opacity=0.3))
        fig.add_trace(go.Scatter(x=df["nimg"], y=smooth(df[key], weight), name=f"{label} (smoothed)",
                                 mode="lines", line=dict(color=colour, width=2.5)))
    if boundaries is not None:
        _draw_boundaries(fig, boundaries)
    fig.update_xaxes(title_text="images seen")
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, height=height)


def loss_figure(df: pd.DataFrame, weight: float = 0.9, show_raw: bool = True,
                boundaries: Boundaries | None = None) -> go.Figure:
    """D and G loss of one model against images seen: faint raw lines, bold smoothed lines, phase marks."""
    return _curves_figure(df, (("loss_D", COLOURS[0], "D loss"), ("loss_G", COLOURS[1], "G loss")),
                          "loss", 380, weight, show_raw, boundaries)


def overlay_figure(frames: dict[str, pd.DataFrame], weight: float = 0.9) -> go.Figure:
    """Smoothed D and G losses of several models on shared axes (D top, G bottom)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("D loss (smoothed)", "G loss (smoothed)"))
    for i, (name, df) in enumerate(frames.items()):
        colour = COLOURS[i % len(COLOURS)]
        for r, key in ((1, "loss_D"), (2, "loss_G")):
            if key in df:
                fig.add_trace(go.Scatter(x=df["nimg"], y=smooth(df[key], weight), name=name, legendgroup=name,
                                         showlegend=r == 1, mode="lines", line=dict(color=colour, width=2)),
                              row=r, col=1)
    fig.update_xaxes(title_text="images seen", row=2, col=1)
    return _layout(fig, height=520)


def d_output_figure(df: pd.DataFrame, weight: float = 0.9, show_raw: bool = True,
                    boundaries: Boundaries | None = None) -> go.Figure:
    """Mean D output on real images, D(x), and on generated ones, D(G(z))."""
    return _curves_figure(df, (("D_real", COLOURS[2], "D(x) real"), ("D_fake", COLOURS[3], "D(G(z)) generated")),
                          "mean D output", 340, weight, show_raw, boundaries)


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
                                                             dash=dash, width=2)),
                          row=1, col=ci + 1)
    fig.update_xaxes(title_text="intensity", range=[0, 255])
    fig.update_yaxes(title_text="share of pixels", row=1, col=1)
    return _layout(fig, height=320)
