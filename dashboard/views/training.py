"""Training: loss curves against images seen, D outputs, phase marks, the run config and the fixed-noise grids."""

import streamlit as st

from dashboard import figures
from dashboard.formatting import format_count, format_duration
from dashboard.stats import is_progressive, last_value, phase_boundaries
from dashboard.ui import loaders, sidebar, widgets
from gan.rundir import GRIDS, STATS

st.title("Training")
folder, entries = sidebar.models_or_stop()
frames = {e.name: df for e in entries if (df := loaders.stats(e)) is not None}

c1, c2 = st.columns([3, 1])
weight = c1.slider("Smoothing", 0.0, 0.99, 0.8, 0.01, key="tr_smooth",
                   help="Exponential moving average weight (as in TensorBoard); 0 shows the raw values.")
show_raw = c2.checkbox("Show raw values", value=True, key="tr_raw")

tab_one, tab_all, tab_grids = st.tabs(["Per model", "Overlaid", "Fixed-noise grids"])

with tab_one:
    if not frames:
        st.info(f"No {STATS} in these folders yet: curves appear after the first logging step.")
    else:
        entry = widgets.pick_model([e for e in entries if e.name in frames], key="tr_model")
        df = frames[entry.name]
        bounds = phase_boundaries(df) if is_progressive(df) else None
        st.markdown("**Losses**")
        widgets.plot(figures.loss_figure(df, weight, show_raw, bounds), key="tr_loss")
        if bounds is not None:
            st.caption("Dotted lines: a new phase (resolution) starts. Shaded: a new resolution is faded in "
                       "(alpha < 1).")
        if {"D_real", "D_fake"} & set(df.columns):
            st.markdown("**Discriminator outputs**")
            widgets.plot(figures.d_output_figure(df, weight, show_raw, bounds), key="tr_dout")
            st.caption("D(x): mean discriminator output on real images; D(G(z)): on generated images. "
                       "A widening gap means D is winning.")
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
    if len(frames) < 1:
        st.info("No training statistics to overlay yet.")
    else:
        chosen = st.multiselect("Models", list(frames), default=list(frames), key="tr_overlay")
        if chosen:
            widgets.plot(figures.overlay_figure({n: frames[n] for n in chosen}, weight), key="tr_overlay_fig")
            st.caption("Models trained for different numbers of images end at different x positions.")

with tab_grids:
    with_grids = [e for e in entries if e.grids()]
    if not with_grids:
        st.info(f"No fixed-noise grids ({GRIDS}/) in these folders yet.")
    else:
        entry = widgets.pick_model(with_grids, key="tr_grid_model")
        grids = entry.grids()
        if len(grids) > 1:
            nimg = st.select_slider("Images seen", [n for n, _ in grids], value=grids[-1][0], key="tr_grid_pos",
                                    format_func=format_count)
        else:
            nimg = grids[0][0]
        path = dict(grids)[nimg]
        st.image(str(path), caption=f"{entry.name} after {format_count(nimg)} images "
                                    f"({len(grids)} grids saved)", width=512)
