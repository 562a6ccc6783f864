"""Evaluation: colour histograms real vs generated, the metric values, nearest training neighbours in
pixels and in the dermoscopy encoder's features."""

import streamlit as st

from dashboard.figures import histogram_figure
from dashboard.realdata import closest_feature_pairs, closest_pairs, colour_histogram
from dashboard.results import arrow, metric_note, metric_value, metrics
from dashboard.ui import loaders, sidebar, widgets
from eval import keys as K

st.title("Evaluation")
folder, entries = sidebar.models_or_stop()
c1, c2 = st.columns([2, 1])
with c1:
    entry = widgets.pick_model(entries, key="ev_model", need_weights=True)
if entry is None:
    st.stop()
n_samples = c2.select_slider("Generated samples", [64, 128, 256, 512], value=128, key="ev_n",
                             help="Samples used for the histogram and the neighbour search on this page.")

# --- metric values -----------------------------------------------------------------------------
st.subheader("Metrics")
results, rerr = loaders.results(folder)
row = None
if rerr:
    st.warning(f"Could not read the evaluation results: {rerr}")
elif results is None:
    st.info("No results.json in this folder yet: run `python -m eval.run` to score the models.")
elif entry.name not in results.models:
    st.info(f"results.json has no row for {entry.name}; rerun `python -m eval.run`.")
else:
    reference = widgets.reference_picker(results, [entry.name], key="ev_ref")
    row = results.row(entry.name, reference)
    if row.get("error"):
        st.warning(f"eval.run could not score {entry.name}: {row['error']}")
    # One row of tiles per feature space: the colour, pixel and Inception metrics, then the dermoscopy
    # encoder's (keys ending in _derm); thirteen tiles in one row would be too narrow to read.
    specs = metrics()
    groups = [[m for m in specs if not m.key.endswith("_derm")], [m for m in specs if m.key.endswith("_derm")]]
    cols, ordered = [], []
    for g in (g for g in groups if g):
        cols += st.columns(len(g))
        ordered += g
    for col, spec in zip(cols, ordered):
        val = metric_value(row, spec.key)
        col.metric(f"{spec.label} {arrow(spec)}", f"{val:.4g}" if val is not None else "n/a",
                   help=f"{spec.description} {spec.better.capitalize()} is better. Key: `{spec.key}`.")
        if val is None and not row.get("error"):
            col.caption(metric_note(row, spec))
    facts = []
    if row.get(K.KEY_N_FAKE) is not None:
        facts.append(f"{row[K.KEY_N_FAKE]} generated vs {row.get(K.KEY_N_REAL)} real images")
    if row.get(K.KEY_RESOLUTION) is not None:
        facts.append(f"at {row[K.KEY_RESOLUTION]} px")
    if row.get(K.KEY_SEED) is not None:
        facts.append(f"seed {row[K.KEY_SEED]}")
    real_div = metric_value(row, K.KEY_MSSSIM_REAL)
    if real_div is not None:
        facts.append(f"real images' own MS-SSIM {real_div:.4g} (the diversity to match)")
    if facts:
        st.caption("Scored on " + ", ".join(facts) + ".")

G, err = loaders.generator(entry)
if G is None:
    st.error(err)
    st.stop()
fakes, gerr = loaders.generate(entry, range(n_samples))
if fakes is None:
    st.error(gerr)
    st.stop()
bank, berr = loaders.real_bank(entry)

# --- colour histograms ---------------------------------------------------------------------------
st.subheader("Colour histograms")
if bank is None:
    st.info(f"{berr} Showing the generated images' histogram alone; `python -m eval.fingerprint` makes one.")
widgets.plot(histogram_figure(bank.hist if bank is not None else None, colour_histogram(fakes), entry.name),
        key="ev_hist")
st.caption(f"Solid: training images (from the fingerprint). Dotted: {n_samples} generated images, seeds "
           f"0–{n_samples - 1}. Curves that overlap mean the generator reproduces the lesion and skin colours.")

# --- nearest training neighbours ----------------------------------------------------------------
st.subheader("Nearest training neighbours")
train_row = results.row(entry.name, "train") if results is not None else None


def _copy_note(rate_key: str, thr: float | None) -> str:
    rate = metric_value(train_row, rate_key)
    n = train_row.get(K.KEY_N_FAKE) if train_row else None
    parts = []
    if rate is not None:
        parts.append(f"`{rate_key}` = {rate:.4g} on {n} samples (results.json, training split)")
    if thr is not None:
        parts.append(f"pairs under its threshold {thr:.4g} are flagged")
    return ("; ".join(parts) + ".") if parts else "No copy rate in results.json yet (`python -m eval.run`)."


if bank is None:
    st.info("Needs the training images' fingerprint (see above).")
    st.stop()
k = st.slider("Pairs to show", 4, 24, 8, 4, key="ev_pairs")

st.markdown("**In pixels**")
pixel_seeds: set[int] = set()
if bank.bank is None or not len(bank.bank):
    st.info(f"{entry.name}: the fingerprint was made without an image bank (--no-bank), so there is nothing "
            "to search.")
else:
    pairs = closest_pairs(fakes, bank.bank, bank.bank_names, k)
    pixel_seeds = {p.fake_index for p in pairs}
    thr = metric_value(train_row, K.KEY_NN_THRESHOLD)
    side = bank.bank.shape[1]
    st.caption(
        f"The {k} of {n_samples} generated images closest to any of the {len(bank.bank)} training images, "
        f"closest first. Both at {side}×{side} px (box filter), distance = RMS pixel difference on [0, 1], "
        f"as in the copy rate. {_copy_note(K.KEY_COPY_RATE, thr)} Look for copies of training images."
    )
    for start in range(0, len(pairs), 4):
        cols = st.columns(4)
        for col, p in zip(cols, pairs[start:start + 4]):
            col.image([p.fake, p.real], width=96, output_format="PNG",
                      caption=[f"seed {p.fake_index}", p.real_name])
            flag = " ⚠ below copy threshold" if thr and p.distance < thr else ""
            col.caption(f"distance {p.distance:.3f}{flag}")

st.markdown("**In the dermoscopy encoder's features**")
enc, eerr = loaders.derm_encoder(bank)
fpairs = None
if enc is None:
    st.info(f"{entry.name}: no feature-space neighbours: {eerr}")
else:
    feats, ferr = loaders.derm_features(entry, range(n_samples), enc)
    if feats is None:
        st.error(ferr)
    else:
        try:
            fpairs = closest_feature_pairs(fakes, feats, bank, k)
        except ValueError as e:
            st.info(f"{entry.name}: no feature-space neighbours: {e}")
if fpairs is not None:
    thr_d = metric_value(train_row, K.KEY_NN_THRESHOLD_DERM)
    st.caption(
        f"The {k} of {n_samples} generated images whose {enc.metric_version} features ({enc.dim}-d, the encoder's "
        f"penultimate layer) are closest to any of the {len(bank.derm_features)} training images' features, "
        "closest first; distance = Euclidean between features, as in the feature-space copy rate. It finds "
        "copies that are shifted, flipped or slightly recoloured, which pixels miss, and also different lesions "
        f"that look alike to the encoder. {_copy_note(K.KEY_COPY_RATE_DERM, thr_d)} Training images from the "
        f"fingerprint's {bank.bank.shape[1]} px bank; ◆ marks a sample also among the closest in pixels."
    )
    for start in range(0, len(fpairs), 4):
        cols = st.columns(4)
        for col, p in zip(cols, fpairs[start:start + 4]):
            # One image per column, each with its own caption: the generated image at its own size,
            # the training image from the bank.
            a, b = col.columns(2, gap=None, width=192)
            a.image(p.fake, width=96, output_format="PNG", caption=f"seed {p.fake_index}")
            b.image(p.real, width=96, output_format="PNG", caption=p.real_name)
            flag = " ⚠ below copy threshold" if thr_d and p.distance < thr_d else ""
            both = " ◆" if p.fake_index in pixel_seeds else ""
            col.caption(f"feature distance {p.distance:.3f}{flag}{both}")
