"""Figures and tables of the membership audit on known halves (``eval.audit``; the model's results'
``privacy_split`` section): the headline table, ROC curves on log axes, privacy over training length and
the copy shares, with the sentence that says what was audited and the commands that make the section.
Pure functions of the stored section: nothing is computed here."""
from __future__ import annotations

import math

import pandas as pd
import plotly.graph_objects as go

from dashboard.figures import TEXT, TICK
from eval.audit import CARD_NOTE, HALVES

COLOURS = {"distance_pixel": "#2a7ab0", "distance_derm": "#c2571a", "discriminator": "#3a8f3a",
           "domias_derm": "#8a3fa0"}
NAMES = {"distance_pixel": "nearest sample, pixels", "distance_derm": "nearest sample, dermoscopy features",
         "discriminator": "discriminator score", "domias_derm": "density ratio (DOMIAS), dermoscopy features"}


def what_was_audited(section: dict) -> str:
    """One sentence: which models were audited (never the shipped weights), how many members and samples."""
    halves = (section.get("split") or {}).get("halves") or {}
    n = sum(int(h.get("n", 0)) for h in halves.values() if isinstance(h, dict))
    kimg = section.get("kimg")
    parts = [f"The audited models are {section.get('note') or CARD_NOTE}: two of them, each trained on a seeded random "
             "half of the training images, so every image is a member of one and a non-member of the other"]
    if n:
        parts.append(f"{n:,} members against {n:,} non-members of the same distribution")
    if isinstance(kimg, (int, float)):
        parts.append(f"at {kimg:g}k images seen")
    if section.get("n_samples"):
        parts.append(f"{int(section['n_samples']):,} synthetic samples per model, seed {section.get('seed', 0)}")
    return "; ".join(parts) + "."


def audit_commands(recipe: str, kimg: int, data: str = "../shared/data/isic2017") -> str:
    """The commands that audit ``recipe`` (a run folder as the pages show it) at ``kimg`` thousand images and
    put the result into its results (``eval.audit``; ``python -m eval.audit --help`` says more)."""
    kimg = max(int(kimg), 1)
    keep = math.gcd(kimg, 20)  # eval.audit train keeps one every 20 by default; one must fall on kimg itself
    train = [f"python -m eval.audit train AUDIT --recipe {recipe} --half {h} --kimg {kimg}"
             + (f" --keep-kimg {keep}" if keep != 20 else "") for h in HALVES]
    return "\n".join([f"python -m eval.audit split --data {data} --out AUDIT", *train,
                      f"python -m eval.audit score AUDIT --kimg {kimg} --ship {recipe}"])


def _ci(lo: float, hi: float) -> str:
    return f"[{lo:.3f}, {hi:.3f}]"


def tpr_words(t: dict | None) -> str:
    """TPR at one FPR as a table cell: value and exact interval, or why it cannot be estimated."""
    if not t:
        return "–"
    if not t.get("estimable"):
        n = t.get("reason", "").split("n = ")[-1].split(" ")[0]
        return f"not estimable with {n} non-members" if n else "not estimable"
    return f"{t['tpr']:.3f} {_ci(*t['ci95'])}"


def headline_table(section: dict) -> pd.DataFrame:
    """One row per attack: AUC [95% CI], TPR at 1% and 0.1% FPR, the permutation null, the shift control."""
    rows = []
    for key, a in section.get("attacks", {}).items():
        name = NAMES.get(key, key)
        if "auc" not in a:
            rows.append({"attack": name, "AUC [95% CI]": "not run: " + a.get("unavailable", "")})
            continue
        null = a.get("null") or {}
        shift = a.get("shift_control") or {}
        rows.append({
            "attack": name,
            "AUC [95% CI]": f"{a['auc']:.3f} {_ci(*a['ci95'])}" if "ci95" in a else f"{a['auc']:.3f}",
            "TPR at 1% FPR [exact CI]": tpr_words(a.get("tpr_at_fpr", {}).get("0.01")),
            "TPR at 0.1% FPR": tpr_words(a.get("tpr_at_fpr", {}).get("0.001")),
            "shuffled labels: AUC (95% range)": (f"{null['auc_mean']:.3f} ({null['auc_range95'][0]:.3f}–"
                                                 f"{null['auc_range95'][1]:.3f})") if null else "–",
            "shift control: AUC [95% CI]": (f"{shift['auc']:.3f} {_ci(*shift['ci95'])}" if "auc" in shift
                                            else "not defined for this attack"),
        })
    return pd.DataFrame(rows)


def log_ticks(lo: float, hi: float) -> dict:
    """Tick values and plain labels for a log axis from ``lo`` to ``hi``: every decade, and 2 and 5 in
    between when the axis spans under two decades (Plotly's own minor labels read "2 5 2 5", or "100µ")."""
    lo, hi = max(float(lo), 1e-12), max(float(hi), float(lo) * 10)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if last - first <= 2 else (1,)
    vals = [m * 10.0 ** e for e in range(first, last + 1) for m in steps if lo <= m * 10.0 ** e <= hi * 1.0001]
    return {"tickvals": vals, "ticktext": [f"{v:g}" for v in vals]}


def readable(fig: go.Figure) -> go.Figure:
    """Ticks, axis titles and legend at full contrast (Streamlit's chart theme draws them in a pale grey)."""
    fig.update_xaxes(tickfont={"color": TICK}, title_font={"color": TEXT})
    fig.update_yaxes(tickfont={"color": TICK}, title_font={"color": TEXT})
    fig.update_layout(legend_font_color=TEXT)
    return fig


def roc_figure(section: dict) -> go.Figure | None:
    """ROC curves of every attack, both axes logarithmic (what matters is the low-FPR corner), with chance."""
    attacks = {k: a for k, a in section.get("attacks", {}).items() if "roc" in a}
    if not attacks:
        return None
    fig = go.Figure()
    lo = min(min(f for f in a["roc"]["fpr"] if f > 0) for a in attacks.values())
    fig.add_trace(go.Scatter(x=[lo, 1], y=[lo, 1], mode="lines", name="chance (no leak)",
                             line={"color": "#6b6f7a", "dash": "dot", "width": 1}))
    for k, a in attacks.items():
        pts = [(f, t) for f, t in zip(a["roc"]["fpr"], a["roc"]["tpr"]) if f > 0]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[max(p[1], lo / 10) for p in pts], mode="lines+markers",
                                 name=NAMES.get(k, k), marker={"size": 4}, line={"color": COLOURS.get(k)}))
    fig.update_layout(title={"text": "ROC curves, log axes (members positive)", "font": {"color": TEXT, "size": 15}},
                      xaxis={"type": "log", "title": "false-positive rate", **log_ticks(lo, 1)},
                      yaxis={"type": "log", "title": "true-positive rate", **log_ticks(lo / 10, 1)},
                      font={"color": TEXT}, height=420,
                      legend={"orientation": "h", "y": -0.25}, margin={"t": 50, "b": 10, "l": 10, "r": 10})
    return readable(fig)


def length_figure(rows: list[dict]) -> go.Figure | None:
    """Attack AUC over images seen, FD derm on a second axis: pick the snapshot that fits a privacy budget."""
    if not rows:
        return None
    from plotly.subplots import make_subplots

    fig = make_subplots(specs=[[{"secondary_y": True}]])
    k = [r["kimg"] for r in rows]
    for key in NAMES:
        if any(key in r for r in rows):
            fig.add_trace(go.Scatter(x=k, y=[r.get(key, {}).get("auc") for r in rows], mode="lines+markers",
                                     name=f"AUC: {NAMES[key]}", line={"color": COLOURS[key]}, marker={"size": 5}),
                          secondary_y=False)
    fds = [r.get("fd_derm") for r in rows]
    if any(f is not None for f in fds):
        fig.add_trace(go.Scatter(x=k, y=fds, mode="lines", name="FD derm (right axis)",
                                 line={"color": TEXT, "dash": "dot"}), secondary_y=True)
        pos = [f for f in fds if f is not None and f > 0]
        if pos:
            fig.update_yaxes(title_text="FD derm (lower is better)", type="log", secondary_y=True,
                             **log_ticks(min(pos), max(pos)))
    fig.add_hline(y=0.5, line_dash="dot", line_color="#6b6f7a")
    fig.update_yaxes(title_text="attack AUC (0.5: no leak)", secondary_y=False)
    fig.update_layout(title={"text": "Privacy over training length", "font": {"color": TEXT, "size": 15}},
                      xaxis={"title": "thousand images seen"}, font={"color": TEXT}, height=420,
                      legend={"orientation": "h", "y": -0.3}, margin={"t": 50, "b": 10, "l": 10, "r": 10})
    return readable(fig)


def copies_table(section: dict) -> pd.DataFrame:
    """Per feature space: the share of samples closer to a training image than that image's nearest other
    training image, beside the same share for non-member images (the base rate)."""
    rows = []
    for space, halves in section.get("copies", {}).items():
        syn = sum(h["synthetic_count"] for h in halves.values()) / sum(h["n_synthetic"] for h in halves.values())
        base = sum(h["nonmember_count"] for h in halves.values()) / sum(h["n_nonmembers"] for h in halves.values())
        rows.append({"space": "pixels" if space == "pixels" else "dermoscopy features",
                     "share of synthetic samples": f"{syn:.1%}",
                     "share of real images it never saw (base rate)": f"{base:.1%}"})
    return pd.DataFrame(rows)
