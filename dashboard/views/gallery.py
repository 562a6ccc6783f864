"""Gallery: real and generated images side by side, per model."""

import streamlit as st

from dashboard.realdata import sample_indices
from dashboard.ui import loaders, sidebar, widgets

st.title("Gallery")
folder, entries = sidebar.models_or_stop()

c1, c2, c3 = st.columns([3, 1, 1])
data_path = c1.text_input("Data set path (optional)", key="ga_data",
                          help="A folder `gan.data.load_dataset` can read. Empty: real images come from each "
                               "model's fingerprint thumbnails.")
count = c2.slider("Images per side", 4, 32, 12, 4, key="ga_count")
seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="ga_seed")

shown = [e for e in entries if e.weights is not None]
if not shown:
    st.info("None of these models has weights yet, so there is nothing to generate.")
for e in shown:
    st.subheader(e.name)
    G, err = loaders.generator(e)
    if G is None:
        st.error(err)
        continue
    left, right = st.columns(2)
    with left:
        st.markdown("**Real**")
        if data_path.strip():
            real, rerr = loaders.dataset_sample(data_path, G.resolution, count, seed)
            source = f"from `{data_path}`"
        else:
            bank, rerr = loaders.real_bank(e)
            real = None
            if bank is not None:
                if len(bank.thumbs):
                    real = bank.thumbs[sample_indices(len(bank.thumbs), count, seed)]
                    source = "thumbnails stored in the model's fingerprint"
                else:
                    rerr = f"{e.name}: the fingerprint holds no thumbnails; give a data set path above."
        if real is None:
            st.info(rerr if data_path.strip() else f"{rerr} Give a data set path above to show real images.")
        else:
            widgets.image_row(real, width=80)
            st.caption(f"{len(real)} real images, {source}.")
    with right:
        st.markdown("**Generated**")
        fake, gerr = loaders.generate(e, range(seed, seed + count))
        if fake is None:
            st.error(gerr)
        else:
            widgets.image_row(fake, width=80)
            st.caption(f"Seeds {seed}–{seed + count - 1}, {G.resolution}×{G.resolution}.")
