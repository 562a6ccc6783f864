"""Overview: the report's comparison beside this project's runs, the score table, training facts and a few
samples per model."""

import shlex

import streamlit as st

from dashboard import comparison
from dashboard.results import arrow, metrics
from dashboard.stats import WGAN
from dashboard.ui import loaders, sidebar, widgets
from eval.registry import describe_quality_bar

st.title("LesionGAN models")
folder, entries = sidebar.models_or_stop()
st.markdown(f"Models in `{sidebar.display(folder)}`")

results, results_err = loaders.results(folder)
if results_err:
    st.warning(f"Could not read the evaluation results: {results_err}")

gens, facts, stats, configs, curves, previous, snapshots, load_errors = {}, {}, {}, {}, {}, {}, {}, []
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
    cfg, _ = loaders.config(e)
    if cfg is not None:
        configs[e.name] = cfg
    m = loaders.training_metrics(e)
    if m is not None:
        curves[e.name] = m
    prev = loaders.previous(e)
    if prev is not None:
        previous[e.name] = prev
    # One count of images seen per model for every table and sentence: its shipped snapshot's.
    snapshots[e.name] = comparison.snapshot(loaders.run_results(e).get("best_snapshot"), facts.get(e.name),
                                            stats.get(e.name))
for err in load_errors:
    st.error(err)

num = st.column_config.NumberColumn
text = st.column_config.TextColumn
bar = describe_quality_bar().replace("<=", "≤")

# --- the report's table ------------------------------------------------------------------------
st.header("The report vs this project")
models = comparison.parity_models(entries, configs, stats, results, curves, previous, snapshots)
if not models:
    st.info("No unconditional `dcgan`, `pggan-seed` or `pggan` run in this folder, so nothing to set beside the "
            f"report's table. The report: DCGAN D 0.57 / G 3.1, PGGAN D 0.05 / G 3.98 ({comparison.REPORT_TRAINING}).")
else:
    parity = comparison.parity_table(models)
    st.dataframe(
        comparison.styled(parity, comparison.PARITY_COLUMNS, index_label="row",
                          as_given=comparison.REPORT_ROW_LABELS),
        width="stretch",
        hide_index=True,
        key="ov_parity",
        column_config={
            "row": text("row", width="medium"),
            "recipe": text(width="medium"),
            comparison.LOSS_COLUMN: text("loss", width="small",
                                         help="BCE: the report's losses. WGAN-GP: a critic's loss, another scale "
                                              "and sign: not comparable with BCE numbers."),
            "images seen": num(help="Images the models' weights saw in training (a shipped model: its snapshot); "
                                    "the report's: 500 epochs x 2,000."),
            comparison.D_COLUMN: num("D loss", help="The report: its final value. Ours: mean ± sd over the last "
                                                    "10% of training (a single last log swings too much)."),
            comparison.G_COLUMN: num("G loss", help="As D loss."),
            "how measured": text(width="large"),
        },
    )
    wgan = [m.name for m in models if parity.loc[f"this project: {m.name}", comparison.LOSS_COLUMN] == WGAN]
    st.markdown(f"The report trained {comparison.REPORT_TRAINING}; this project's runs are shorter (images seen "
                "above). Losses say how the two networks balance, not how good the images are; the claims below "
                "are judged on the metrics."
                + (f" {', '.join(wgan)}: a WGAN critic's losses (any sign, another scale), not comparable with the "
                   "BCE numbers above." if wgan else ""))
    for c in comparison.report_claims(models):
        icon = {"supported": ":material/check_circle:", "not supported": ":material/cancel:",
                "mixed": ":material/contrast:"}.get(c.verdict, ":material/help:")
        st.markdown(f"{icon} **{c.claim}: {c.verdict} here.** {c.evidence}")

# --- scores ------------------------------------------------------------------------------------
st.header("Scores")
reference = widgets.reference_picker(results, [e.name for e in entries], key="ov_ref")
table, notes = comparison.overview_table(entries, stats, facts, results, reference, configs, snapshots)
st.markdown(f"**Quality bar** (judged against the training split): {bar}. ★ marks the best value in each column.")
score_config = {
    "model": text("model"),
    comparison.LOSS_COLUMN: text("loss", help="The training loss: BCE or WGAN-GP."),
    **{m.label: num(f"{m.label} {arrow(m)}", help=f"{m.description} {m.better.capitalize()} is better.")
       for m in metrics()},
    comparison.QUALITY_BAR_COLUMN: text("bar", help=f"The project's quality bar against the training split: {bar}"),
}
best = comparison.best_index(table)
for i, (title, keys) in enumerate(comparison.SCORE_GROUPS if results is not None else ()):
    cols = comparison.score_columns(table, keys)
    extra = [comparison.QUALITY_BAR_COLUMN] if i == len(comparison.SCORE_GROUPS) - 1 else []
    if not cols and not extra:
        continue
    st.subheader(title)
    st.dataframe(comparison.styled(table, [comparison.LOSS_COLUMN, *cols, *extra], best, index_label="model"),
                 width="stretch", hide_index=True, key=f"ov_scores_{i}", column_config=score_config)
for note in notes:
    st.markdown(f":material/info: {note}")
if results is None:
    st.code(f"python -m eval.run --checkpoints {shlex.quote(sidebar.display(folder))}", language="bash")
if results is not None and results.settings():
    st.markdown(f"How the scores were made: {results.settings()}.")

st.header("Training")
st.dataframe(
    comparison.styled(table, comparison.TRAINING_COLUMNS, index_label="model"),
    width="stretch",
    hide_index=True,
    key="ov_training",
    column_config={
        "model": text("model"),
        "architecture": text(),
        comparison.LOSS_COLUMN: text("loss"),
        comparison.D_COLUMN: num("D loss", help="Mean ± sd over the last 10% of training up to the model's "
                                                "snapshot. BCE and WGAN-GP losses are different quantities: "
                                                "compare within a loss type."),
        comparison.G_COLUMN: num("G loss", help="As D loss."),
        "images seen": num(help="Images the model's weights saw in training: for a shipped model, its snapshot "
                                "(the run may have gone on; the Training page shows how far)."),
        "training time": num(help="Wall time of the training run."),
        "parameters": num(help="Generator parameters."),
        "resolution": num(),
        "hardware": text(width="medium"),
    },
)

with st.expander("How to read the columns"):
    lines = ["- **D / G loss**: mean ± sd over the last 10% of training up to the model's snapshot; they show the "
             "balance of the two networks, not image quality. BCE and WGAN-GP losses are not comparable."]
    for m in metrics():
        line = f"- **{m.label}** ({arrow(m)} {m.better} is better): {m.description}"
        if m.sees:
            line += f" Sees: {m.sees}."
        if m.misses:
            line += f" Misses: {m.misses}."
        lines.append(line)
    lines += [f"- **quality bar**: {bar}, scored against the training split: the colour statistics a shipped "
              "model must reach."]
    st.markdown("\n".join(lines))

st.header("Samples")
st.markdown("Seeds 0–7 for every model; the Generate page makes more.")
for e in entries:
    if e.name not in gens:
        continue
    images, err = loaders.generate(e, range(8))
    st.subheader(e.name)
    arch = facts[e.name].get("architecture")
    if arch:
        st.markdown(comparison.describe_architecture(arch, facts[e.name].get("classes")) or "")
    if err:
        st.error(err)
    else:
        widgets.image_row(images, width=96, alts=[f"Generated by {e.name}, seed {s}" for s in range(8)])
    card = e.read_model_card()
    if card is not None:
        with st.expander(f"Model card: {e.name}"):
            st.caption("The card that ships with the model, its file keys and log names in plain words; commands "
                       "as written.")
            st.markdown(widgets.demote_headings(widgets.safe_markdown(card, sidebar.display)))
