"""Evaluation: colour histograms real vs generated, the metric values, nearest training neighbours."""

import streamlit as st

from dashboard import lib, ui

st.title("Evaluation")
folder, entries = ui.models_or_stop()
c1, c2 = st.columns([2, 1])
with c1:
    entry = ui.pick_model(entries, key="ev_model", need_weights=True)
if entry is None:
    st.stop()
n_samples = c2.select_slider("Generated samples", [64, 128, 256, 512], value=128, key="ev_n",
                             help="Samples used for the histogram and the neighbour search on this page.")

# --- metric values -----------------------------------------------------------------------------
st.subheader("Metrics")
results, rerr = ui.results(folder)
row = None
if rerr:
    st.warning(f"Could not read the evaluation results: {rerr}")
elif results is None:
    st.info("No results.json in this folder yet: run `python -m eval.run` to score the models.")
elif entry.name not in results.models:
    st.info(f"results.json has no row for {entry.name}; rerun `python -m eval.run`.")
else:
    reference = ui.reference_picker(results, [entry.name], key="ev_ref")
    row = results.row(entry.name, reference)
    if row.get("error"):
        st.warning(f"eval.run could not score {entry.name}: {row['error']}")
    cols = st.columns(len(lib.METRICS))
    for col, info in zip(cols, lib.METRICS):
        val = lib.metric_value(row, info.key)
        arrow = "↓" if info.better == "lower" else "↑"
        col.metric(f"{info.label} {arrow}", f"{val:.4g}" if val is not None else "n/a",
                   help=f"{info.what} {info.better.capitalize()} is better. Key: `{info.key}`.")
        if val is None and not row.get("error"):
            col.caption(lib.metric_note(row, info))
    facts = []
    if row.get(lib.K.KEY_N_FAKE) is not None:
        facts.append(f"{row[lib.K.KEY_N_FAKE]} generated vs {row.get(lib.K.KEY_N_REAL)} real images")
    if row.get(lib.K.KEY_RESOLUTION) is not None:
        facts.append(f"at {row[lib.K.KEY_RESOLUTION]} px")
    if row.get(lib.K.KEY_SEED) is not None:
        facts.append(f"seed {row[lib.K.KEY_SEED]}")
    real_div = lib.metric_value(row, lib.K.KEY_MSSSIM_REAL)
    if real_div is not None:
        facts.append(f"real images' own MS-SSIM {real_div:.4g} (the diversity to match)")
    if facts:
        st.caption("Scored on " + ", ".join(facts) + ".")

G, err = ui.generator(entry)
if G is None:
    st.error(err)
    st.stop()
fakes, gerr = ui.generate(entry, range(n_samples))
if fakes is None:
    st.error(gerr)
    st.stop()
bank, berr = ui.real_bank(entry)

# --- colour histograms ---------------------------------------------------------------------------
st.subheader("Colour histograms")
if bank is None:
    st.info(f"{berr} Showing the generated images' histogram alone; `python -m eval.fingerprint` makes one.")
ui.plot(lib.histogram_figure(bank.hist if bank is not None else None, lib.colour_histogram(fakes), entry.name),
        key="ev_hist")
st.caption(f"Solid: training images (from the fingerprint). Dotted: {n_samples} generated images, seeds "
           f"0–{n_samples - 1}. Curves that overlap mean the generator reproduces the lesion and skin colours.")

# --- nearest training neighbours ----------------------------------------------------------------
st.subheader("Nearest training neighbours")
if bank is None:
    st.info("Needs the training images' fingerprint (see above).")
elif bank.bank is None or not len(bank.bank):
    st.info(f"{entry.name}: the fingerprint was made without an image bank (--no-bank), so there is nothing "
            "to search.")
else:
    k = st.slider("Pairs to show", 4, 24, 8, 4, key="ev_pairs")
    pairs = lib.closest_pairs(fakes, bank.bank, bank.bank_names, k)
    train_row = results.row(entry.name, "train") if results is not None else None
    thr = lib.metric_value(train_row, lib.K.KEY_NN_THRESHOLD)
    side = bank.bank.shape[1]
    st.caption(
        f"The {k} of {n_samples} generated images closest to any of the {len(bank.bank)} training images, "
        f"closest first. Both at {side}×{side} px (box filter), distance = RMS pixel difference on [0, 1], "
        "as in the copy rate." + (f" Pairs under the copy threshold {thr:.3f} are flagged." if thr else "")
        + " Look for copies of training images."
    )
    for start in range(0, len(pairs), 4):
        cols = st.columns(4)
        for col, p in zip(cols, pairs[start:start + 4]):
            col.image([p.fake, p.real], width=96, output_format="PNG",
                      caption=[f"seed {p.fake_index}", p.real_name])
            flag = " ⚠ below copy threshold" if thr and p.distance < thr else ""
            col.caption(f"distance {p.distance:.3f}{flag}")
