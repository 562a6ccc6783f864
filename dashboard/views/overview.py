"""Overview: the report's comparison table, completed, with a few samples per model."""

import streamlit as st

from dashboard import lib, ui

st.title("LesionGAN models")
folder, entries = ui.models_or_stop()
st.caption(f"Models in `{folder}`")

results, results_err = ui.results(folder)
if results_err:
    st.warning(f"Could not read the evaluation results: {results_err}")

gens, facts, stats, load_errors = {}, {}, {}, []
for e in entries:
    G, err = ui.generator(e)
    if G is not None:
        gens[e.name] = G
        facts[e.name] = lib.generator_facts(G)
    elif e.weights is not None:
        load_errors.append(err)
    df = ui.stats(e)
    if df is not None:
        stats[e.name] = df
for err in load_errors:
    st.error(err)

st.subheader("Comparison")
reference = ui.reference_picker(results, [e.name for e in entries], key="ov_ref")
table, notes = lib.overview_table(entries, stats, facts, results, reference)
text = st.column_config.TextColumn
st.dataframe(
    lib.display_table(table),
    width="stretch",
    column_config={
        "final D loss": text(help="Last logged discriminator loss (training balance, not image quality)"),
        "final G loss": text(help="Last logged generator loss"),
        **{m.label: text(f"{m.label} {'↓' if m.better == 'lower' else '↑'}",
                         help=f"{m.what} {m.better.capitalize()} is better.") for m in lib.METRICS},
    },
)
for note in notes:
    st.caption(f"ℹ️ {note}")
if results is not None and results.settings():
    st.caption(f"Metrics: {results.settings()} (`{results.path.name}`).")

st.markdown("**How to read it**")
lines = ["- **final D / G loss**: last logged training losses; they show the balance of the two networks, "
         "not image quality."]
lines += [f"- **{m.label}** ({'↓ lower' if m.better == 'lower' else '↑ higher'} is better): {m.what}"
          for m in lib.METRICS]
lines += ["- **resolution, parameters, images seen, training time, hardware**: output size, generator size, "
          "and how much training each model got, where."]
st.caption("\n".join(lines))

st.subheader("Samples")
st.caption("Seeds 0–7 for every model; the Generate page makes more.")
for e in entries:
    if e.name not in gens:
        continue
    images, err = ui.generate(e, range(8))
    st.markdown(f"**{e.name}** · {facts[e.name].get('architecture') or ''}")
    if err:
        st.error(err)
    else:
        ui.image_row(images, width=80)
    if e.model_card is not None:
        with st.expander(f"Model card: {e.name}"):
            st.markdown(e.model_card.read_text(encoding="utf-8"))
