"""Utility and privacy: does synthetic data help a classifier (``eval.utility``), is each class's sample that
class (``eval.class_fidelity``), and could it give away the training images (``eval.privacy``)? All read what
those commands computed and stored with the model (its results' ``utility``, ``class_fidelity`` and
``privacy`` sections, written through gan.rundir): the page computes nothing heavy but the few closest
synthetic samples it shows, remade from their seed."""

import re


import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import privacy_split
from dashboard.figures import TEXT
from dashboard.ui import loaders, sidebar, widgets

METRICS = (("melanoma_auc", "Melanoma AUC"), ("sk_auc", "Seborrheic keratosis AUC"),
           ("balanced_accuracy", "Balanced accuracy"))
ATTACKS = {"distance_pixel": "Distance, pixels", "distance_derm": "Distance, derm1 features",
           "discriminator": "Discriminator score (white-box)"}


def space_words(space: str | None) -> str:
    """A feature space as the audit names it (``pixel_64``, ``derm1 features``) in words."""
    m = re.fullmatch(r"pixel_(\d+)", str(space))
    if m:
        return f"Pixels at {m.group(1)} px"
    if str(space).startswith("derm"):
        return "Dermoscopy encoder's features"
    return str(space)


def verdict_words(text: str) -> str:
    """An attack's verdict without the rule that chose it (``...; rule: ci_low > 0.5)``)."""
    return re.sub(r";\s*rule:[^)]*", "", str(text))


def utility_bars(test: dict, key: str, label: str) -> go.Figure | None:
    """One bar per setting: mean over seeds with the sd as error bar; the other settings' paired difference
    from ``real`` (95% CI) in the hover."""
    rows = [(s, r[key]) for s, r in test["results"].items() if key in r]
    if not rows:
        return None
    hover = []
    for s, _ in rows:
        d = test["deltas"].get(s, {}).get(key)
        hover.append(f"Δ vs real {d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else "reference")
    fig = go.Figure(go.Bar(x=[s for s, _ in rows], y=[r["mean"] for _, r in rows],
                           error_y={"type": "data", "array": [r["sd"] for _, r in rows]},
                           hovertext=hover,
                           marker_color=["#4b505c" if s in ("real", "real-long") else "#2a7ab0" for s, _ in rows]))
    if key.endswith("_auc"):
        # The label on white above the bars' tops, in the chart text colour (not grey on blue).
        fig.add_hline(y=0.5, line_dash="dot", line_color=TEXT, annotation_text="chance (0.5)",
                      annotation_position="top left", annotation_font_color=TEXT,
                      annotation_bgcolor="rgba(255,255,255,0.9)")
    fig.update_layout(title={"text": label, "font": {"color": TEXT, "size": 15}}, height=320,
                      margin={"t": 50, "b": 30, "l": 40, "r": 10}, yaxis={"range": [0, 1], "title": "mean ± sd"},
                      font={"color": TEXT})
    return privacy_split.readable(fig)


SETTING_WORDS = {"real": "real images only", "real-long": "real images only, trained as long as the longest setting",
                 "real+synthetic": "real + synthetic", "real+augment": "real + classical augmentation",
                 "synthetic": "synthetic only"}


def _ci(d: dict) -> str:
    return f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"


def show_utility(util: dict, key: str = "v2") -> None:
    """One utility report: how it was run, the pre-registered reading, bars, differences, the shortcut check."""
    r = util.get("recipe", {})
    steps = util.get("steps") or {}
    seeds = util.get("seeds", [])
    if util.get("exposure") == "matched":
        how = (f"steps in proportion to each setting's size ({', '.join(f'{s} {n:,}' for s, n in steps.items())}), "
               f"so every real image is seen as often in every setting")
    else:
        how = f"{r.get('steps')} optimizer steps in every setting"
    share = (f"{util['synthetic_ratio']:g} synthetic image per real image of every class"
             if util.get("share") == "uniform" else "synthetic images filling every class up to the largest")
    interval = ("95% intervals over training seeds and test images together" if util.get("interval") == "seeds x images"
                else "95% intervals over test images only")
    st.caption(f"A {'ResNet-18' if r.get('arch') == 'resnet18' else 'small CNN'} trained from scratch at 64 px on "
               f"batches of {r.get('batch')}: {how}; {share}; {len(seeds)} seeds in every setting; {interval}"
               f"{' (a quick first look)' if util.get('quick') else ''}. Bars: mean ± sd over the training seeds. "
               f"Command: `{loaders.say(util.get('command', ''))}`.")
    prim = util.get("primary")
    if prim:
        text = (f"Pre-registered comparison on {prim['test']}: adding synthetic images changes melanoma AUC by "
                f"{prim['mean']:+.3f} (95% interval {prim['ci95'][0]:+.3f} to {prim['ci95'][1]:+.3f}): "
                f"**{prim['outcome']}** against real images alone (margin {prim['margin']:+.2f}), "
                f"{'above' if prim['above_real_augment'] else 'not above'} classical augmentation. "
                f"Success criterion {'met' if prim['success'] else 'not met'}.")
        (st.success if prim["success"] else st.warning)(text)
    for w in util.get("warnings", []):
        st.warning(w)
    tests = util.get("tests", [])
    names = [t["name"] for t in tests]
    if not names:
        return
    name = st.radio("Test set", names, horizontal=True, key=f"sf_test_{key}") if len(names) > 1 else names[0]
    test = tests[names.index(name)]
    st.markdown(f"**{name}**: {test['n']:,} images ("
                + ", ".join(f"{c.replace('_', ' ')} {n:,}" for c, n in test["counts"].items()) + ")")
    cols = st.columns(len(METRICS))
    for col, (k, label) in zip(cols, METRICS):
        fig = utility_bars(test, k, label)
        with col:
            if fig is None:
                st.caption(f"{label}: not available on this test set.")
            else:
                widgets.plot(fig, key=f"sf_bar_{key}_{k}")
    rows = [{"comparison": f"{s} minus real", **{label: _ci(d[k]) for k, label in METRICS if k in d}}
            for s, d in test.get("deltas", {}).items()]
    rows += [{"comparison": pair.replace(" vs ", " minus "), **{label: _ci(d[k]) for k, label in METRICS if k in d}}
             for pair, d in test.get("pairs", {}).items()]
    if rows:
        st.markdown(f"Differences (mean over seeds, {interval}):")
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    det = test.get("detectable", {})
    if det:
        st.caption("Smallest difference this run can detect (80% power, 5% two-sided): "
                   + ", ".join(f"{label} {det[k]:.3f}" for k, label in METRICS if k in det) + ".")
    sc = test.get("shortcut")
    if sc:
        st.markdown("**Shortcut check**: does the classifier treat synthetic images of a class like real ones? "
                    "Fresh synthetic images against this test set's real images of the same class.")
        srows = []
        for s, res in sc.items():
            for c, v in res["per_class"].items():
                srows.append({"classifier trained on": SETTING_WORDS.get(s, s), "class": c.replace("_", " "),
                              "images each": v["n"],
                              "tells synthetic from real (AUC, 0.5 = alike)": f"{v['auc_synthetic_vs_real']['mean']:.3f}",
                              "synthetic called this class": f"{v['recall_synthetic']['mean']:.0%}",
                              "real called this class": f"{v['recall_real']['mean']:.0%}",
                              "linear probe on its features (AUC)": f"{res['probe_auc']['mean']:.3f}"})
        st.dataframe(pd.DataFrame(srows), hide_index=True)
    for n in test.get("notes", []):
        st.caption(f"Note: {n}.")
    for v in util.get("verdicts", []):
        st.markdown(f"- {v}")


def privacy_figure(attacks: dict) -> go.Figure | None:
    rows = [(ATTACKS.get(k, k), a) for k, a in attacks.items() if "auc" in a]
    if not rows:
        return None
    fig = go.Figure(go.Scatter(
        x=[a["auc"] for _, a in rows], y=[n for n, _ in rows], mode="markers",
        error_x={"type": "data", "symmetric": False, "array": [a["ci95"][1] - a["auc"] for _, a in rows],
                 "arrayminus": [a["auc"] - a["ci95"][0] for _, a in rows]}, marker={"size": 11, "color": "#2a7ab0"}))
    fig.add_vline(x=0.5, line_dash="dot", line_color=TEXT, annotation_text="no leak (0.5)",
                  annotation_font_color=TEXT, annotation_bgcolor="rgba(255,255,255,0.9)")
    fig.update_layout(title={"text": "Membership-attack AUC, 95% interval", "font": {"color": TEXT, "size": 15}},
                      height=90 + 60 * len(rows), xaxis={"range": [0.3, 1.0]}, font={"color": TEXT},
                      margin={"t": 50, "b": 30, "l": 10, "r": 10})
    return privacy_split.readable(fig)


st.title("Utility and privacy")
folder, entries = sidebar.models_or_stop()
entry = widgets.pick_model(entries, key="sf_model")
if entry is None:
    st.stop()
doc = loaders.run_results(entry)
weights = sidebar.display(entry.weights) if entry.weights is not None else f"{sidebar.display(entry.path)}/generator.pt"

# --- utility ---------------------------------------------------------------------------------------
st.header("Utility: does synthetic data help a classifier?")
util = doc.get("utility")
conditional = bool(((loaders.config(entry)[0] or {}).get("model_cfg") or {}).get("class_names"))
if not util and not conditional:
    others = [e.name for e in entries if ((loaders.config(e)[0] or {}).get("model_cfg") or {}).get("class_names")]
    st.info(f"{entry.name} is unconditional: its samples carry no labels, so the utility report (which trains a "
            f"classifier on labelled synthetic lesions) needs a conditional model"
            + (f", such as {', '.join(others)}." if others else " (`gan.train --cond`)."))
elif not util:
    st.info(f"No utility report for {entry.name} yet: `python -m eval.utility --real ../shared/data/isic2017 "
            f"--synthetic {weights}`.")
else:
    show_utility(util)
    if util.get("v1"):
        with st.expander("The earlier protocol (v1), for comparison"):
            st.caption("Protocol v1 trained every setting for the same number of steps (so adding images meant "
                       "seeing each real image less often), filled the minority classes up to the majority's count "
                       "with synthetic images (so 'synthetic' went with 'not a nevus'), and its intervals covered "
                       "the test images only. Protocol v2 above removes all three.")
            show_utility(util["v1"], key="v1")

# --- class fidelity --------------------------------------------------------------------------------
st.header("Class fidelity: do the samples of each class look like that class?")
fidelity = doc.get("class_fidelity")
if isinstance(fidelity, dict) and fidelity.get("per_class"):
    from eval import class_fidelity

    clf, held = fidelity.get("classifier") or {}, fidelity.get("test") or {}
    st.caption(f"{fidelity.get('n_per_class', 0):,} raw samples per class, judged by a classifier trained on real "
               f"images only ({clf.get('trained_on', 0):,} images, {clf.get('seeds', 0)} seeds), beside "
               f"{held.get('n', 0)} held-out real images ({held.get('name', '')}). AUC: one class against the others, "
               "95% bootstrap intervals over images; recall: the share called that class; MS-SSIM: the mean "
               f"similarity of two images of the same class (higher = less variety). "
               f"Command: `{loaders.say(fidelity.get('command', 'python -m eval.class_fidelity'))}`.")
    st.table(pd.DataFrame(class_fidelity.table_rows(fidelity), columns=class_fidelity.HEAD).style.hide(axis="index"))
    for line in class_fidelity.reading(fidelity):
        st.markdown(f"- {line}")
elif not conditional:
    st.info(f"Class fidelity needs a conditional model: {entry.name}'s samples have no class to be judged on.")
else:
    st.info(f"No class fidelity report for {entry.name} yet: `python -m eval.class_fidelity --checkpoint "
            f"{weights} --real ../shared/data/isic2017`.")

# --- privacy ---------------------------------------------------------------------------------------
st.header("Privacy: membership-inference audit")
st.subheader("Membership audit on known halves")
split = doc.get("privacy_split")
if not isinstance(split, dict) or not split.get("attacks"):
    # The length to audit: the shipped snapshot's, else the planned run's, else the run's so far.
    best = (doc.get("best_snapshot") or {}).get("nimg")
    planned = ((loaders.config(entry)[0] or {}).get("train") or {}).get("kimg")
    df = loaders.stats(entry)
    kimg = (best / 1000 if isinstance(best, (int, float)) else planned if isinstance(planned, (int, float))
            else df["nimg"].iloc[-1] / 1000 if df is not None else 480)
    st.info(f"The membership audit on known halves has not been run for {entry.name}. It trains {entry.name}'s "
            "recipe twice, each time on a random half of the training images, and attacks both models with the "
            "other half as non-members of the same distribution (an hour or more per model on a CPU). These "
            "commands run it and add the result to this page; `python -m eval.audit --help` explains each step.")
    st.code(privacy_split.audit_commands(sidebar.display(entry.path), round(kimg)), language="bash")
else:
    st.caption(privacy_split.what_was_audited(split))
    # A static table: its cells wrap, so every column fits the page (a data frame would scroll sideways).
    st.table(privacy_split.headline_table(split).style.hide(axis="index"))
    st.caption("AUC 0.5 and a true-positive rate equal to the false-positive rate mean the attack cannot tell "
               "members from non-members. Shuffled labels: the same scores with members and non-members shuffled, "
               "what chance looks like at this size. Shift control: the same attack between two sets of "
               "non-members (the non-member halves and the validation split); away from 0.5 it measures a "
               "difference between the splits, not membership.")
    roc = privacy_split.roc_figure(split)
    if roc is not None:
        widgets.plot(roc, key="sf_split_roc")
    length = privacy_split.length_figure((split.get("length") or {}).get("rows") or [])
    if length is not None:
        widgets.plot(length, key="sf_split_length")
        st.caption(f"Each snapshot both halves kept, audited on {int(split['length'].get('n_samples', 0)):,} samples "
                   "per model without bootstrap: the attack AUC as training goes on, beside FD derm (right axis), to "
                   "pick the snapshot that fits a privacy budget.")
    copies = privacy_split.copies_table(split)
    if not copies.empty:
        st.markdown("**Copies**: the share of samples closer to a training image than that image is to its nearest "
                    "other training image, beside the same share for real images the model never saw (the base "
                    "rate an honest model sits at).")
        st.table(copies.style.hide(axis="index"))

st.subheader("Members vs the validation split: confounded by distribution shift")
priv = doc.get("privacy")
if not priv:
    st.info(f"No audit against the validation split for {entry.name} yet: `python -m eval.privacy --checkpoint "
            f"{weights} --real ../shared/data/isic2017`.")
else:
    st.caption(f"{priv.get('n_members')} training images (members) against {priv.get('n_nonmembers')} validation "
               "images (non-members), which every model also fits less well: a difference between the two splits "
               "can raise an AUC as membership would, so the audit on known halves above is the one to read; "
               f"{priv.get('n_samples', 0):,} synthetic samples of seed {priv.get('seed')}. "
               f"Command: `{loaders.say(priv.get('command', ''))}`.")
    fig = privacy_figure(priv.get("attacks", {}))
    if fig is not None:
        widgets.plot(fig, key="sf_privacy")
    for k, a in priv.get("attacks", {}).items():
        label = ATTACKS.get(k, k)
        if "auc" in a:
            st.markdown(f"- **{label}**: {verdict_words(a['verdict'])}")
        else:
            st.info(loaders.say(f"{label}: {a.get('unavailable', 'not run')}"))
    st.caption(priv.get("disclaimer", ""))
    pairs = priv.get("closest_pairs", [])
    if pairs:
        st.markdown("#### Closest training/synthetic pairs")
        # Everything above was computed when the model shipped; these images are remade now (a few
        # seconds: the generator is loaded and the samples drawn), so they wait for the visitor to ask.
        show = st.toggle(f"Show the {len(pairs)} closest pairs the audit found", key="sf_pairs",
                         help="The synthetic samples are remade from the audit's seed, beside the training images "
                              "stored with the model.")
        bank, berr, G, gerr = (*loaders.real_bank(entry), *loaders.generator(entry)) if show else (None,) * 4
        if not show:
            st.caption(f"The audit's {len(pairs)} synthetic samples nearest to a training image, each beside it.")
        elif bank is None or bank.bank is None or G is None:
            st.info(berr or gerr or "The fingerprint has no image bank to show the training images from.")
        else:
            names = {n: i for i, n in enumerate(bank.bank_names)}
            fakes, ferr = loaders.audit_samples(entry, int(priv.get("n_samples", 0)), int(priv.get("seed", 0)),
                                                [int(p["sample"]) for p in pairs])
            if fakes is None:
                st.error(ferr)
                st.stop()
            st.caption("Each synthetic sample is remade from the audit's seed and its number there, in one small "
                       "batch: within a grey level of the image the audit measured.")
            for space in dict.fromkeys(p["space"] for p in pairs):
                st.markdown(f"**{space_words(space)}** (training image left, from the 32 px copies stored with the "
                            "model; synthetic sample right)")
                cols = st.columns(4)
                for i, (p, fake) in enumerate(zip(pairs, fakes)):
                    if p["space"] != space or p["name"] not in names:
                        continue
                    real = bank.bank[names[p["name"]]]
                    cls = f", class {p['sample_class'].replace('_', ' ')}" if p.get("sample_class") else ""
                    with cols[i % 4]:
                        widgets.image_row(
                            np.stack([np.repeat(np.repeat(real, fake.shape[0] // real.shape[0], 0),
                                                fake.shape[1] // real.shape[1], 1), fake]),
                            captions=[p["name"], f"#{p['sample']} · d {p['distance']:.3g}"],
                            alts=[f"Real training image {p['name']}",
                                  f"Synthetic sample {p['sample']} of seed {priv.get('seed')}{cls}, the nearest to "
                                  f"{p['name']} in {space_words(space).lower()} (distance {p['distance']:.3g}, "
                                  f"{p.get('ratio_to_heldout_median') or float('nan'):.2f} x the held-out median)"])
