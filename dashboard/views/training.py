"""Training: run status, loss curves and D outputs per model (phase marks, log-y, y-range, images seen or
wall time), any logged series overlaid across models (one panel per loss type), metrics scored during
training, the run config and the fixed-noise grids (several models side by side)."""

import streamlit as st

from dashboard import figures
from dashboard.formatting import format_count, format_duration
from dashboard.stats import BCE, WGAN, is_progressive, last_value, loss_type, series_columns
from dashboard.status import run_status
from dashboard.ui import loaders, sidebar, widgets
from gan.rundir import GRIDS, METRICS, STATS

st.title("Training")
folder, entries = sidebar.models_or_stop()
frames = {e.name: df for e in entries if (df := loaders.stats(e)) is not None}
metric_frames = {e.name: m for e in entries if (m := loaders.training_metrics(e)) is not None}
configs = {e.name: c for e in entries if (c := loaders.config(e)[0]) is not None}
kinds = {e.name: loss_type((configs.get(e.name) or {}).get("model"), frames.get(e.name)) for e in entries}
colours = {e.name: figures.COLOURS[i % len(figures.COLOURS)] for i, e in enumerate(entries)}

# --- status strip --------------------------------------------------------------------------------
st.header("Run status")
running = None  # the newest run still training: the charts open on it
with st.container(key="tr_status"):
    for e in entries:
        s = run_status(e, frames.get(e.name), configs.get(e.name))
        if s.state in ("running", "starting"):
            running = e.name
        icon = {"running": ":material/autorenew:", "finished": ":material/check_circle:",
                "starting": ":material/hourglass_top:"}.get(s.state, ":material/pause_circle:")
        a, b = st.columns([1, 2], vertical_alignment="center")
        a.markdown(f"{icon} **{e.name}**")
        if s.fraction is not None:
            b.progress(s.fraction, text=s.summary())
        else:
            b.markdown(s.summary())

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
        st.info(f"No {STATS} in these folders yet: curves appear after the first logging step.")
    else:
        entry = widgets.pick_model([e for e in entries if e.name in frames], key="tr_model", default=running)
        df = frames[entry.name]
        kind = kinds.get(entry.name)
        progressive = is_progressive(df)
        st.subheader(f"Losses ({kind})" if kind else "Losses")
        widgets.plot(figures.loss_figure(df, weight, show_raw, kind, x_axis, log_y, y_range, progressive),
                     key="tr_loss")
        notes = []
        if kind == WGAN:
            notes.append("A WGAN critic's loss is a distance estimate: negative values and their own scale are "
                         "normal, and it is not comparable with a BCE loss.")
        if progressive:
            notes.append("Labels sit over their phase (resolution); dotted lines: a new phase starts; shaded: "
                         "a new resolution is faded in (alpha < 1).")
        if len(df) == 1:
            notes.append("One logged step so far: drawn as points.")
        if notes:
            st.markdown(" ".join(notes))
        if {"D_real", "D_fake"} & set(df.columns):
            st.subheader("Discriminator outputs")
            widgets.plot(figures.d_output_figure(df, weight, show_raw, x_axis, log_y, progressive, kind),
                         key="tr_dout")
            st.markdown("D(x): mean discriminator output on real images; D(G(z)): on generated images. "
                        "A widening gap means D is winning.")
        mdf = metric_frames.get(entry.name)
        if mdf is not None:
            st.subheader("Metrics during training")
            keys = series_columns(mdf)
            ref = last_value(mdf, "reference")
            st.markdown(f"Scored on G_ema while it trained ({METRICS}, {len(mdf)} scorings"
                        + (f", against the {ref} fingerprint" if ref else "") + ").")
            cols = st.columns(2)
            for i, key in enumerate(keys):
                with cols[i % 2]:
                    widgets.plot(figures.line_figure(
                        [figures.Trace(mdf, key, figures.series_label(key), figures.COLOURS[i % 8])], x_axis, 0.0,
                        True, log_y, None, y_title=figures.series_label(key), height=240, legend=False),
                        key=f"tr_metric_{key}")
        res = last_value(df, "resolution")
        m = st.columns(4)
        m[0].metric("Images seen", format_count(last_value(df, "nimg")))
        m[1].metric("Wall time", format_duration(last_value(df, "time_s")) or "—")
        m[2].metric("Resolution", f"{int(res)} px" if res is not None else "—")
        m[3].metric("Logged steps", len(df))
        config, cerr = loaders.config(entry)
        if cerr:
            st.warning(cerr)
        elif config is not None:
            with st.expander(f"Resolved run config ({entry.config.name})"):
                st.json(config, expanded=2)

with tab_all:
    if not frames and not metric_frames:
        st.info("No training statistics to overlay yet.")
    else:
        names = list(dict.fromkeys([*frames, *metric_frames]))
        chosen = st.multiselect("Models", names, default=names, key="tr_overlay")
        stat_keys = list(dict.fromkeys(k for n in chosen if n in frames for k in series_columns(frames[n])))
        metric_keys = list(dict.fromkeys(k for n in chosen if n in metric_frames
                                         for k in series_columns(metric_frames[n])))
        options = stat_keys + [k for k in metric_keys if k not in stat_keys]
        default = [k for k in ("loss_D", "loss_G") if k in options] + \
                  [k for k in ("fd_derm",) if k in metric_keys]
        picked = st.multiselect("Series", options, default=default, key="tr_series",
                                format_func=figures.series_label,
                                help="Any series the runs logged: losses and D outputs (stats.jsonl) and metrics "
                                     "scored during training (metrics.jsonl).")
        for key in picked:
            if key in metric_keys and key not in stat_keys:
                # Metrics measure the images, whatever the loss: one panel for every model.
                group = {n: metric_frames[n] for n in chosen if n in metric_frames and key in metric_frames[n]}
                widgets.plot(figures.overlay_figure(group, key, weight, show_raw, x_axis, log_y, y_range,
                                                    title=f"{figures.series_label(key)} (scored during training)",
                                                    colours=colours), key=f"tr_ov_{key}")
                continue
            # Losses and D outputs mean different things under BCE and WGAN-GP: one panel per loss type.
            for kind in (BCE, WGAN, None):
                group = {n: frames[n] for n in chosen if n in frames and key in frames[n] and kinds.get(n) == kind}
                if not group:
                    continue
                label = kind or "loss type unknown"
                widgets.plot(figures.overlay_figure(group, key, weight, show_raw, x_axis, log_y, y_range,
                                                    title=f"{figures.series_label(key)} · {label} models",
                                                    colours=colours), key=f"tr_ov_{key}_{label}")
        if picked:
            st.markdown("Models trained for different numbers of images end at different x positions. BCE and "
                        "WGAN-GP runs are drawn in separate panels: their losses are different quantities.")

with tab_grids:
    with_grids = [e for e in entries if e.grids()]
    if not with_grids:
        st.info(f"No fixed-noise grids ({GRIDS}/) in these folders yet.")
    else:
        names = [e.name for e in with_grids]
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
