"""Overview: the report's comparison table, completed, with a few samples per model."""

import streamlit as st

from dashboard import comparison
from dashboard.results import arrow, metrics
from dashboard.ui import loaders, sidebar, widgets
from eval.registry import describe_quality_bar

st.title("LesionGAN models")
folder, entries = sidebar.models_or_stop()
st.caption(f"Models in `{folder}`")

results, results_err = loaders.results(folder)
if results_err:
    st.warning(f"Could not read the evaluation results: {results_err}")

gens, facts, stats, load_errors = {}, {}, {}, []
for e in entries:
    G, err = loaders.generator(e)
    if G is not None:
        gens[e.name] = G
        facts[e.name] = comparison.generator_facts(G)
    elif e.weights is not None:
        load_errors.append(err)
    df = loaders.stats(e)
    if df is not None:
        stats[e.name] = df
for err in load_errors:
    st.error(err)

st.subheader("Comparison")
reference = widgets.reference_picker(results, [e.name for e in entries], key="ov_ref")
table, notes = comparison.overview_table(entries, stats, facts, results, reference)
text = st.column_config.TextColumn
bar = describe_quality_bar()
st.dataframe(
    comparison.display_table(table),
    width="stretch",
    column_config={
        "final D loss": text(help="Last logged discriminator loss (training balance, not image quality)"),
        "final G loss": text(help="Last logged generator loss"),
        **{m.label: text(f"{m.label} {arrow(m)}", help=f"{m.description} {m.better.capitalize()} is better.")
           for m in metrics()},
        comparison.QUALITY_BAR_COLUMN: text(help=f"The project's quality bar against the training split: {bar}"),
    },
)
for note in notes:
    st.caption(f"ℹ️ {note}")
if results is not None and results.settings():
    st.caption(f"Metrics: {results.settings()} (`{results.path.name}`).")

st.markdown("**How to read it**")
lines = ["- **final D / G loss**: last logged training losses; they show the balance of the two networks, "
         "not image quality."]
for m in metrics():
    line = f"- **{m.label}** ({arrow(m)} {m.better} is better): {m.description}"
    if m.sees:
        line += f" Sees: {m.sees}."
    if m.misses:
        line += f" Misses: {m.misses}."
    lines.append(line)
lines += [f"- **quality bar**: {bar}, scored against the training split: the colour statistics a shipped "
          "model must reach.",
          "- **resolution, parameters, images seen, training time, hardware**: output size, generator size, "
          "and how much training each model got, where."]
st.caption("\n".join(lines))

st.subheader("Samples")
st.caption("Seeds 0–7 for every model; the Generate page makes more.")
for e in entries:
    if e.name not in gens:
        continue
    images, err = loaders.generate(e, range(8))
    st.markdown(f"**{e.name}** · {facts[e.name].get('architecture') or ''}")
    if err:
        st.error(err)
    else:
        widgets.image_row(images, width=80)
    card = e.read_model_card()
    if card is not None:
        with st.expander(f"Model card: {e.name}"):
            st.markdown(card)
