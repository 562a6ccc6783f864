"""Generate: images from a chosen model and seed, a latent interpolation, and a ZIP download."""

import streamlit as st

from dashboard import sampling
from dashboard.ui import loaders, sidebar, widgets

st.title("Generate")
folder, entries = sidebar.models_or_stop()

c1, c2, c3 = st.columns([2, 1, 1])
with c1:
    entry = widgets.pick_model(entries, key="gen_model", need_weights=True)
if entry is None:
    st.stop()
G, err = loaders.generator(entry)
if G is None:
    st.error(err)
    st.stop()
seed = int(c2.number_input("Seed", 0, 2**31 - 1, 0, key="gen_seed",
                           help="Image i uses seed + i, so every image can be remade on its own."))
requested = int(c3.number_input("Count", 1, None, 16, key="gen_count",
                                help=f"At most {sampling.MAX_COUNT} images per request."))
count, cap_msg = sampling.cap_count(requested)

MIX = "Training mix (each seed draws its class)"
classes = sampling.class_names(G)
label = None
if classes:
    choice = st.selectbox("Class", [MIX, *classes], key="gen_class",
                          help="This model is class-conditional: generate one class, or let each seed draw its "
                               "class in the training data's proportions.")
    label = None if choice == MIX else choice

if cap_msg:
    st.warning(cap_msg)
seeds = list(range(seed, seed + count))
images, gerr = loaders.generate(entry, seeds, label)
if images is None:
    st.error(gerr)
    st.stop()

precision = getattr(G, "precision", "fp32")
precision_note = (" (within a few grey levels of fp32; `python -m gan.sample` gives the exact fp32 images)"
                  if precision == "bf16" else "")
labels = sampling.seed_labels(G, seeds, label)
class_note = "" if not classes else f" · class {label or 'drawn per seed from the training mix'}"
st.caption(f"{entry.name} · {G.model_name} · {G.resolution}×{G.resolution} · "
           f"seeds {seeds[0]}–{seeds[-1]} ({count} image{'s' if count != 1 else ''}){class_note} · "
           f"{precision} sampling{precision_note}")
captions = [f"seed {s}" + (f" · {c}" if labels and label is None else "") for s, c in zip(seeds, labels or seeds)]
with st.container(key="gen_images"):
    widgets.image_row(images, captions=captions, width=96)
st.download_button(
    f"Download {count} PNG{'s' if count != 1 else ''} (ZIP)",
    data=lambda: sampling.zip_pngs(images, seeds),  # built only when the button is clicked
    file_name=f"{entry.name}{'-' + label if label else ''}-seeds{seeds[0]}-{seeds[-1]}.zip",
    mime="application/zip",
    key="gen_zip",
    on_click="ignore",
    icon=":material/download:",
)

st.divider()
st.subheader("Latent interpolation")
i1, i2, i3 = st.columns(3)
seed_a = int(i1.number_input("From seed", 0, 2**31 - 1, 0, key="gen_seed_a"))
seed_b = int(i2.number_input("To seed", 0, 2**31 - 1, 1, key="gen_seed_b"))
steps = int(i3.slider("Steps", 3, 16, 8, key="gen_steps"))
try:
    path = sampling.interpolate(G, seed_a, seed_b, steps, label)
except Exception as e:  # noqa: BLE001
    st.error(f"Interpolation failed: {e}")
else:
    widgets.image_row(path, width=96)
    st.caption(f"Spherical interpolation between the latents of seeds {seed_a} and {seed_b} in {steps} steps.")
