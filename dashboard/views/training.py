"""Training: run status, loss curves and D outputs per model (phase marks, the shipped snapshot marked,
log-y, y-range, images seen or wall time), any logged series overlaid across models and against the
shipped models, metrics scored during training, CSV and JSON downloads of every curve, the run config
and the fixed-noise grids (several models side by side)."""

import json

import pandas as pd
import streamlit as st

from dashboard import comparison, figures
from dashboard.discovery import discover_models
from dashboard.formatting import format_count, format_duration
from dashboard.stats import BCE, WGAN, is_progressive, last_value, long_table, loss_type, series_columns
from dashboard.status import run_status
from dashboard.ui import loaders, sidebar, widgets

st.title("Training")
folder, entries = sidebar.models_or_stop()
frames = {e.name: df for e in entries if (df := loaders.stats(e)) is not None}
metric_frames = {e.name: m for e in entries if (m := loaders.training_metrics(e)) is not None}
configs = {e.name: c for e in entries if (c := loaders.config(e)[0]) is not None}
kinds = {e.name: loss_type((configs.get(e.name) or {}).get("model"), frames.get(e.name)) for e in entries}
colours = {e.name: figures.COLOURS[i % len(figures.COLOURS)] for i, e in enumerate(entries)}
shipped = {e.name: loaders.run_results(e).get("best_snapshot") for e in entries}


def marks(name: str, df) -> list[figures.Mark]:
    """The shipped snapshot of a model, where its results say one was chosen from the run."""
    best = shipped.get(name)
    if not isinstance(best, dict) or not isinstance(best.get("nimg"), (int, float)):
        return []
    return [figures.Mark(int(best["nimg"]), f"shipped snapshot, {format_count(best['nimg'])}", df,
                         colours.get(name, figures.TICK))]


def downloads(table, stem: str, key: str) -> None:
    """CSV and JSON downloads of the curves in ``table`` (:func:`dashboard.stats.long_table`)."""
    a, b, _ = st.columns([1, 1, 3])
    a.download_button("Curves (CSV)", table.to_csv(index=False), f"{stem}.csv", "text/csv", key=f"{key}_csv",
                      on_click="ignore", icon=":material/download:")
    b.download_button("Curves (JSON)", json.dumps(json.loads(table.to_json(orient="records")), indent=1),
                      f"{stem}.json", "application/json", key=f"{key}_json", on_click="ignore",
                      icon=":material/download:")


def fresh(key: str, options) -> None:
    """Forget a multiselect's choice that names what is no longer offered (another folder was picked), so
    it opens on its default instead of on nothing."""
    old = st.session_state.get(key)
    if old and any(x not in options for x in old):
        del st.session_state[key]


# --- status strip --------------------------------------------------------------------------------
st.header("Run status")
statuses = {e.name: run_status(e, frames.get(e.name), configs.get(e.name), shipped.get(e.name)) for e in entries}
live = [n for n, s in statuses.items() if s.live]
running = live[-1] if live else None  # the newest run still training: the charts open on it


# While a run trains (or the visitor follows training) the strip redraws on its own: the time since the
# writer's last heartbeat keeps counting, and a run that ends stops saying "running".
@st.fragment(run_every=sidebar.FOLLOW_S if live or sidebar.following() else None)
def status_strip() -> None:
    with st.container(key="tr_status"):
        for e in entries:
            s = run_status(e, loaders.stats(e), configs.get(e.name), shipped.get(e.name))
            icon = {"running": ":material/autorenew:", "finished": ":material/check_circle:",
                    "starting": ":material/hourglass_top:", "shipped": ":material/inventory_2:",
                    "saved": ":material/save:"}.get(s.state, ":material/pause_circle:")
            a, b = st.columns([1, 2], vertical_alignment="center")
            a.markdown(f"{icon} **{e.name}**")
            if s.fraction is not None:
                b.progress(s.fraction, text=s.summary())
            else:
                b.markdown(s.summary())


status_strip()

# --- chart controls ------------------------------------------------------------------------------
st.header("Curves")
c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
weight = c1.slider("Smoothing", 0.0, 0.99, 0.8, 0.01, key="tr_smooth",
                   help="Exponential moving average weight (as in TensorBoard); 0 shows the raw values.")
x_axis = c2.radio("x axis", list(figures.X_AXES), format_func=figures.X_AXES.get, horizontal=True, key="tr_x")
show_raw = c3.checkbox("Show raw values", value=True, key="tr_raw")
log_y = c4.checkbox("Log y", value=False, key="tr_logy", help="Values at or below 0 (a WGAN critic's loss) "
                                                             "are not drawn on a log axis.")
r1, r2, _ = st.columns([1, 1, 2])
y_lo = r1.number_input("y from", value=None, key="tr_ylo", placeholder="auto", format="%.4g")
y_hi = r2.number_input("y to", value=None, key="tr_yhi", placeholder="auto", format="%.4g",
                       help="Clip the y axis, e.g. to look past an early loss spike.")
y_range = (y_lo, y_hi) if y_lo is not None or y_hi is not None else None

tab_one, tab_all, tab_grids = st.tabs(["Per model", "Overlaid", "Fixed-noise grids"])

with tab_one:
    if not frames:
        st.info("No training statistics in these folders yet: curves appear after the first logging step.")
    else:
        entry = widgets.pick_model([e for e in entries if e.name in frames], key="tr_model", default=running)
        df = frames[entry.name]
        kind = kinds.get(entry.name)
        progressive = is_progressive(df)
        here = marks(entry.name, df)
        st.subheader(f"Losses ({kind})" if kind else "Losses")
        widgets.plot(figures.loss_figure(df, weight, show_raw, kind, x_axis, log_y, y_range, progressive, here),
                     key="tr_loss")
        notes = []
        if kind == WGAN:
            notes.append("A WGAN critic's loss is a distance estimate: negative values and their own scale are "
                         "normal, and it is not comparable with a BCE loss.")
        if progressive:
            notes.append("Labels sit over their phase (resolution); dotted lines: a new phase starts; shaded: "
                         "a new resolution is faded in (alpha < 1).")
        if here:
            notes.append(f"Dashed line: the snapshot that ships ({format_count(here[0].nimg)} images), chosen as "
                         "the best scored during training; the pages sample and score it.")
        if len(df) == 1:
            notes.append("One logged step so far: drawn as points.")
        if notes:
            st.markdown(" ".join(notes))
        if {"D_real", "D_fake"} & set(df.columns):
            st.subheader("Discriminator outputs")
            widgets.plot(figures.d_output_figure(df, weight, show_raw, x_axis, log_y, progressive, kind, here),
                         key="tr_dout")
            st.markdown("D(x): mean discriminator output on real images; D(G(z)): on generated images. "
                        "A widening gap means D is winning.")
        mdf = metric_frames.get(entry.name)
        if mdf is not None:
            st.subheader("Metrics during training")
            keys = series_columns(mdf)
            ref = str(last_value(mdf, "reference") or "").lower()
            against = ("the training images" if "train" in ref else "the validation images" if "val" in ref
                       else "its reference images" if ref else "")
            st.markdown(f"Scored while it trained, on the generator's moving average, {len(mdf)} "
                        f"time{'s' if len(mdf) != 1 else ''}" + (f", against {against}" if against else "") + ".")
            cols = st.columns(2)
            for i, key in enumerate(keys):
                with cols[i % 2]:
                    widgets.plot(figures.line_figure(
                        [figures.Trace(mdf, key, figures.series_label(key), figures.COLOURS[i % 8])], x_axis, 0.0,
                        True, log_y, None, y_title=figures.series_label(key), height=240, legend=False,
                        marks=marks(entry.name, df)), key=f"tr_metric_{key}")
        downloads(pd.concat([long_table({entry.name: d}) for d in (df, mdf) if d is not None], ignore_index=True),
                  f"{entry.name}-curves", "tr_dl")
        best = shipped.get(entry.name)
        res = last_value(df, "resolution")
        m = st.columns(5 if here else 4)
        m[0].metric("Images seen by the run", format_count(last_value(df, "nimg")),
                    help="By the run's last logged step (a shipped model's weights are its snapshot, beside).")
        m[1].metric("Wall time", format_duration(last_value(df, "time_s")) or "—")
        m[2].metric("Resolution", f"{int(res)} px" if res is not None else "—")
        m[3].metric("Logged steps", len(df))
        if here:
            m[4].metric("Shipped snapshot", format_count(best["nimg"]),
                        help="Images seen by the weights that ship, which the other pages sample and score.")
        config, cerr = loaders.config(entry)
        if cerr:
            st.warning(cerr)
        elif config is not None:
            with st.expander("Run configuration, as resolved when the run started"):
                st.json(config, expanded=2)

with tab_all:
    # A run's curves beside the shipped models' (dotted), when another folder is shown.
    base_folder = sidebar.default_folder()
    base = [] if folder == base_folder else [e for e in discover_models(base_folder)
                                               if loaders.stats(e) is not None]
    extra, extra_metrics = {}, {}
    if base:
        fresh("tr_base", [e.name for e in base])
        picked_base = st.multiselect(
            "Compare with shipped models", [e.name for e in base], key="tr_base",
            help="Their curves join the charts below, dotted, with their shipped snapshot marked.")
        for e in base:
            if e.name in picked_base:
                label = f"{e.name} (shipped)"
                extra[label] = loaders.stats(e)
                if (mm := loaders.training_metrics(e)) is not None:
                    extra_metrics[label] = mm
                kinds[label] = loss_type(((loaders.config(e)[0]) or {}).get("model"), extra[label])
                colours[label] = figures.COLOURS[(len(colours)) % len(figures.COLOURS)]
                shipped[label] = loaders.run_results(e).get("best_snapshot")
    all_frames, all_metrics = {**frames, **extra}, {**metric_frames, **extra_metrics}
    dashes = {n: "dot" for n in extra}
    if not all_frames and not all_metrics:
        st.info("No training statistics to overlay yet.")
    else:
        names = list(dict.fromkeys([*frames, *metric_frames]))
        fresh("tr_overlay", names)
        chosen = st.multiselect("Models", names, default=names, key="tr_overlay") + list(extra)
        stat_keys = list(dict.fromkeys(k for n in chosen if n in all_frames for k in series_columns(all_frames[n])))
        metric_keys = list(dict.fromkeys(k for n in chosen if n in all_metrics
                                         for k in series_columns(all_metrics[n])))
        options = stat_keys + [k for k in metric_keys if k not in stat_keys]
        default = [k for k in ("loss_D", "loss_G") if k in options] + \
                  [k for k in metric_keys[:1] if k not in stat_keys]
        fresh("tr_series", options)
        picked = st.multiselect("Series", options, default=default, key="tr_series",
                                format_func=figures.series_label,
                                help="Any series the runs logged: losses and D outputs, and metrics scored during "
                                     "training.")
        drawn = {}
        for key in picked:
            if key in metric_keys and key not in stat_keys:
                # Metrics measure the images, whatever the loss: one panel for every model.
                group = {n: all_metrics[n] for n in chosen if n in all_metrics and key in all_metrics[n]}
                drawn.update({(n, key): df for n, df in group.items()})
                widgets.plot(figures.overlay_figure(group, key, weight, show_raw, x_axis, log_y, y_range,
                                                    title=f"{figures.series_label(key)} (scored during training)",
                                                    colours=colours, dashes=dashes,
                                                    marks=[m for n in group for m in marks(n, all_frames.get(n))]),
                             key=f"tr_ov_{key}")
                continue
            # Losses and D outputs mean different things under BCE and WGAN-GP: one panel per loss type.
            for kind in (BCE, WGAN, None):
                group = {n: all_frames[n] for n in chosen if n in all_frames and key in all_frames[n]
                         and kinds.get(n) == kind}
                if not group:
                    continue
                drawn.update({(n, key): df for n, df in group.items()})
                label = kind or "loss type unknown"
                widgets.plot(figures.overlay_figure(group, key, weight, show_raw, x_axis, log_y, y_range,
                                                    title=f"{figures.series_label(key)} · {label} models",
                                                    colours=colours, dashes=dashes,
                                                    marks=[m for n in group for m in marks(n, group[n])]),
                             key=f"tr_ov_{key}_{label}")
        if picked:
            st.markdown("Models trained for different numbers of images end at different x positions. BCE and "
                        "WGAN-GP runs are drawn in separate panels: their losses are different quantities."
                        + (" Dotted: the shipped models; dashed lines: their shipped snapshots." if extra else ""))
            if drawn:
                downloads(pd.concat([long_table({n: df}, [k]) for (n, k), df in drawn.items()], ignore_index=True),
                          "overlaid-curves", "tr_ov_dl")

with tab_grids:
    with_grids = [e for e in entries if e.grids()]
    if not with_grids:
        st.info("No fixed-noise grids in these folders yet: a run saves one at every snapshot.")
    else:
        names = [e.name for e in with_grids]
        fresh("tr_grid_models", names)
        shown = st.multiselect("Models", names, default=[running if running in names else names[0]],
                               key="tr_grid_models",
                               help="Several models side by side at the same images seen.")
        shown_entries = [e for e in with_grids if e.name in shown] or with_grids[:1]
        grids = {e.name: e.grids() for e in shown_entries}
        positions = sorted({n for g in grids.values() for n, _ in g})
        newest = positions[-1]
        # Jump to the newest grid when one arrives (a run being followed), else keep the user's choice.
        if st.session_state.get("tr_grid_newest") != newest:
            st.session_state["tr_grid_newest"] = newest
            st.session_state["tr_grid_pos"] = newest
        if st.session_state.get("tr_grid_pos") not in positions:
            st.session_state["tr_grid_pos"] = newest
        if len(positions) > 1:
            nimg = st.select_slider("Images seen", positions, key="tr_grid_pos", format_func=format_count)
        else:
            nimg = positions[0]
        cols = st.columns(len(shown_entries)) if len(shown_entries) > 1 else [st.container()]
        for col, e in zip(cols, shown_entries):
            # Each model's latest grid at or before the chosen point.
            earlier = [(n, p) for n, p in grids[e.name] if n <= nimg]
            if not earlier:
                col.info(f"{e.name}: no grid by {format_count(nimg)} images.")
                continue
            n, path = earlier[-1]
            col.image(str(path), caption=f"{e.name} after {format_count(n)} images ({len(grids[e.name])} grids saved)",
                      width=512 if len(shown_entries) == 1 else "stretch",
                      alt=f"Fixed-noise grid of images generated by {e.name} after {n} images seen")
