"""Evaluation: the metric values, colour histograms real vs generated, nearest training neighbours in
pixels and in the dermoscopy encoder's features. Every statistic here comes from fp32 samples, as
``python -m eval.run`` scores them."""

import shlex

import streamlit as st

from dashboard import sampling
from dashboard.comparison import SCORE_GROUPS, floor_caption, fmt_number, group_of, scored_metrics
from dashboard.figures import histogram_figure
from dashboard.realdata import closest_feature_pairs, closest_pairs, colour_histogram
from dashboard.results import arrow, metric_note, metric_value
from dashboard.roots import MAX_CHARS
from dashboard.ui import loaders, sidebar, widgets
from eval import keys as K
from eval.registry import get_metric
from gan.rundir import FINGERPRINTS

EXACT = sampling.EXACT
REF_WORDS = {"train": "training", "validation": "validation"}
TILES_PER_ROW = 5


def q(path) -> str:
    """A path for a command on the page, as the sidebar shows it (never the server's absolute path)."""
    return shlex.quote(sidebar.display(path))


st.title("Evaluation")
folder, entries = sidebar.models_or_stop()
c1, c2 = st.columns([2, 1])
with c1:
    entry = widgets.pick_model(entries, key="ev_model", need_weights=True)
if entry is None:
    st.stop()
n_samples = c2.select_slider("Generated samples", [64, 128, 256, 512], value=128, key="ev_n",
                             help="Samples used for the histogram and the neighbour search on this page.")
# The command that scores this folder and writes the scores this page reads.
score_cmd = f"python -m eval.run --checkpoints {q(folder)}"

# --- metric values -----------------------------------------------------------------------------
st.header("Metrics")
results, rerr = loaders.results(folder)
row = None
refs_scored = results.references(entry.name) if results is not None else []
refs_fp = [r for r in FINGERPRINTS if entry.run.fingerprint(r) is not None]
refs = list(dict.fromkeys([*refs_scored, *refs_fp])) or ["train"]
reference = st.radio("Scored against", refs, horizontal=True, key="ev_ref",
                     format_func=lambda r: f"{r} ({REF_WORDS.get(r, r)} images)",
                     help="train: the training split's fingerprint (as in the report); validation: the held-out "
                          "split's. Metric tiles and the histogram below follow this choice.") \
    if len(refs) > 1 else refs[0]
if rerr:
    st.warning(f"Could not read the evaluation results: {rerr}")
elif results is None or entry.name not in results.models:
    st.info((f"No scores for `{sidebar.display(folder)}` yet." if results is None else
             f"{entry.name} has not been scored yet.")
            + " The first command scores every model here and writes the scores this page reads; the second "
              f"prints {entry.name}'s scores alone.")
    real = entry.run.fingerprint("train")
    st.code(f"{score_cmd}\npython -m eval.run --real {q(real) if real else 'DATA'} --fake {q(entry.weights)}",
            language="bash")
else:
    row = results.row(entry.name, reference)
    if (row.get("reference") or "train") != reference:
        st.info(f"{entry.name} was not scored against the {reference} set; showing its "
                f"{row.get('reference') or 'train'} row.")
    if row.get("error"):
        st.warning(loaders.say(f"The scoring could not score {entry.name}: {row['error']}"))
    # One row of tiles per feature space, as the Overview's score tables (comparison.SCORE_GROUPS):
    # thirteen tiles in one row would be too narrow to read. Metrics eval.run computes on request (the
    # C2STs) join their row when the scores have them.
    specs = scored_metrics(results)
    groups = [[m for m in specs if group_of(m) == i] for i in range(len(SCORE_GROUPS))]
    cols, ordered = [], []
    for g in (g for g in groups if g):
        for i in range(0, len(g), TILES_PER_ROW):  # tiles wide enough for their label and value
            cols += st.columns(TILES_PER_ROW)[:len(g[i:i + TILES_PER_ROW])]
        ordered += g
    missing: dict[str, list[str]] = {}  # reason -> metrics: long reasons once, under the tiles
    for col, spec in zip(cols, ordered):
        val = metric_value(row, spec.key)
        sd = metric_value(row, f"{spec.key}_sd")
        # The Overview's numbers, written the same way (comparison.fmt_number: 3 significant digits).
        col.metric(f"{spec.label} {arrow(spec)}", "n/a" if val is None else fmt_number(val),
                   help=f"{spec.description} {spec.better.capitalize()} is better.")
        if sd is not None:
            col.caption(f"± {fmt_number(sd, 2)} (sd over sample seeds)")
        floor = floor_caption(row, spec)
        if floor:
            col.caption(floor)
        if val is None and not row.get("error"):
            note = metric_note(row, spec, results, reference)
            if len(note) <= 90:
                col.caption(note)
            else:
                col.caption("see below")
                missing.setdefault(note, []).append(spec.label)
    for note, labels in missing.items():
        st.markdown(f":material/info: {', '.join(labels)}: {note}")
    facts = []
    if row.get(K.KEY_N_FAKE) is not None:
        facts.append(f"{row[K.KEY_N_FAKE]} generated (fp32) vs {row.get(K.KEY_N_REAL)} "
                     f"{REF_WORDS.get(row.get('reference') or 'train', '')} images")
    if row.get(K.KEY_RESOLUTION) is not None:
        facts.append(f"at {row[K.KEY_RESOLUTION]} px")
    seeds = row.get("seeds") if isinstance(row.get("seeds"), list) and len(row["seeds"]) > 1 else None
    if seeds:
        facts.append(f"mean ± sd over sample seeds {', '.join(map(str, seeds))}")
    elif row.get(K.KEY_SEED) is not None:
        facts.append(f"sample seed {row[K.KEY_SEED]}")
    real_div = metric_value(row, K.KEY_MSSSIM_REAL)
    if real_div is not None:
        facts.append(f"real images' own MS-SSIM {real_div:.3g} (the diversity to match)")
    if facts:
        st.markdown("Scored on " + ", ".join(facts) + ".")

G, err = loaders.generator(entry, EXACT)
if G is None:
    st.error(err)
    st.stop()
fakes, gerr = loaders.generate(entry, range(n_samples), precision=EXACT)
if fakes is None:
    st.error(gerr)
    st.stop()
bank, berr = loaders.real_bank(entry)  # the training split: neighbours are always training images

# --- colour histograms ---------------------------------------------------------------------------
st.header("Colour histograms")
ref_bank, ref_err = (bank, berr) if reference == "train" else loaders.real_bank(entry, reference)
ref_hist, ref_source = None, None
if ref_bank is not None:
    ref_hist = ref_bank.hist
    ref_source = f"{REF_WORDS.get(reference, reference)} images, from the statistics stored with the model"
else:
    fp_name = FINGERPRINTS.get(reference, "fingerprint.npz")
    split_flag = "" if reference == "train" else f" --split {reference}"
    st.info(f"{ref_err} Make it from the data set with the command below, or give the data set's path to "
            "compare with its images directly.")
    data_path = st.text_input("Data set path (ISIC 2017 folder or any image folder)", key="ev_data",
                              max_chars=MAX_CHARS, placeholder="a data folder this server shares",
                              help="Only folders below the ones this server shares can be read.")
    data_folder, data_shown = loaders.data_folder(data_path) if data_path.strip() else (None, "")
    st.code(f"python -m eval.fingerprint --data {shlex.quote(data_shown) if data_folder else 'DATA'}{split_flag} "
            f"--size {G.resolution} --out {q(entry.path / fp_name)}", language="bash")
    if data_path.strip():
        real, derr = loaders.dataset_sample(data_path, G.resolution, 512, 0)
        if real is None:
            st.warning(derr)
        else:
            ref_hist = colour_histogram(real)
            ref_source = f"{len(real)} images from `{data_shown}`"
widgets.plot(histogram_figure(ref_hist, colour_histogram(fakes), entry.name), key="ev_hist")
if ref_hist is not None:
    st.markdown(f"Solid: {ref_source}. Dotted: {n_samples} generated images (fp32, seeds 0–{n_samples - 1}). "
                "Curves that overlap mean the generator reproduces the lesion and skin colours.")
else:
    st.markdown(f"Only the generated images' histogram ({n_samples} fp32 samples, seeds 0–{n_samples - 1}): "
                "there are no real images to compare with yet.")

# --- nearest training neighbours ----------------------------------------------------------------
st.header("Nearest training neighbours")
train_row = results.train_row(entry.name) if results is not None else None


def _copy_note(metric: str, thr: float | None) -> str:
    """The copy rate of the registered metric ``metric`` as scored, and its threshold."""
    spec = get_metric(metric)
    rate = metric_value(train_row, spec.key)
    n = train_row.get(K.KEY_N_FAKE) if train_row else None
    parts = []
    if rate is not None:
        parts.append(f"{spec.label} {rate:.3g} on {n} samples per sample seed (scored against the training split)")
    if thr is not None:
        parts.append(f"pairs under its threshold {thr:.3g} are flagged")
    if parts:
        return "; ".join(parts) + "."
    return f"No copy rate scored yet: `{score_cmd}` computes it."


if bank is None:
    st.info(f"{berr} Copies are searched among the training images, which the training fingerprint holds: "
            f"`python -m eval.fingerprint --data DATA --size {G.resolution} --out {q(entry.path / FINGERPRINTS['train'])}`.")
    st.stop()
if reference != "train":
    st.markdown("A copy is a copy of a training image, so neighbours are searched among the training images "
                f"whatever the reference chosen above ({reference}).")
k = st.slider("Pairs to show", 4, 24, 8, 4, key="ev_pairs")

st.subheader("In pixels")
pixel_seeds: set[int] = set()
if bank.bank is None or not len(bank.bank):
    st.info(f"{entry.name}: the fingerprint was made without an image bank (--no-bank), so there is nothing "
            "to search.")
else:
    with st.spinner("Searching the training images…"):
        pairs = closest_pairs(fakes, bank.bank, bank.bank_names, k)
    pixel_seeds = {p.fake_index for p in pairs}
    thr = metric_value(train_row, K.KEY_NN_THRESHOLD)
    side = bank.bank.shape[1]
    st.markdown(
        f"The {k} of {n_samples} generated images (fp32) closest to any of the {len(bank.bank)} training images, "
        f"closest first. Both at {side}×{side} px (box filter), distance = RMS pixel difference on [0, 1], "
        f"as in the copy rate. {_copy_note('memorization', thr)} Look for copies of training images."
    )
    for start in range(0, len(pairs), 4):
        cols = st.columns(4)
        for col, p in zip(cols, pairs[start:start + 4]):
            col.image([p.fake, p.real], width=96, output_format="PNG",
                      caption=[f"seed {p.fake_index}", p.real_name],
                      alt=[f"Generated by {entry.name}, seed {p.fake_index}",
                           f"Real training image {p.real_name}, nearest in pixels"])
            flag = " ⚠ below copy threshold" if thr and p.distance < thr else ""
            col.caption(f"distance {p.distance:.3f}{flag}")

st.subheader("In the dermoscopy encoder's features")
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
            with st.spinner("Searching the training images' features…"):
                fpairs = closest_feature_pairs(fakes, feats, bank, k)
        except ValueError as e:
            st.info(f"{entry.name}: no feature-space neighbours: {e}")
if fpairs is not None:
    thr_d = metric_value(train_row, K.KEY_NN_THRESHOLD_DERM)
    st.markdown(
        f"The {k} of {n_samples} generated images whose {enc.metric_version} features ({enc.dim}-d, the encoder's "
        f"penultimate layer) are closest to any of the {len(bank.derm_features)} training images' features, "
        "closest first; distance = Euclidean between features, as in the feature-space copy rate. It finds "
        "copies that are shifted, flipped or slightly recoloured, which pixels miss, and also different lesions "
        f"that look alike to the encoder. {_copy_note('memorization_derm', thr_d)} Training images from the "
        f"fingerprint's {bank.bank.shape[1]} px bank; ◆ marks a sample also among the closest in pixels."
    )
    for start in range(0, len(fpairs), 4):
        cols = st.columns(4)
        for col, p in zip(cols, fpairs[start:start + 4]):
            # One image per column, each with its own caption: the generated image at its own size,
            # the training image from the bank.
            a, b = col.columns(2, gap=None, width=192)
            a.image(p.fake, width=96, output_format="PNG", caption=f"seed {p.fake_index}",
                    alt=f"Generated by {entry.name}, seed {p.fake_index}")
            b.image(p.real, width=96, output_format="PNG", caption=p.real_name,
                    alt=f"Real training image {p.real_name}, nearest in encoder features")
            flag = " ⚠ below copy threshold" if thr_d and p.distance < thr_d else ""
            both = " ◆" if p.fake_index in pixel_seeds else ""
            col.caption(f"feature distance {p.distance:.3f}{flag}{both}")
