"""Class fidelity and the classifier two-sample tests in the model cards and on the dashboard: the card's
lines from a made-up ``class_fidelity`` section (exact), the reading computed from the numbers, the C2ST
table with its floors, the shipped cards, and the Utility and privacy page through Streamlit's AppTest."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from eval import class_fidelity as CF

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["melanoma", "nevus", "seborrheic_keratosis"]


def side(auc, ci, recall, msssim, n_class, n):
    return {"auc": auc, "ci95": ci, "n_class": n_class, "n": n, "recall": recall, "msssim": msssim}


def section(per_class: dict, n_test: int = 100) -> dict:
    """A ``class_fidelity`` section as eval.class_fidelity writes it, with the given per-class numbers."""
    return {"format": CF.FORMAT, "version": CF.VERSION, "classes": list(per_class), "n_per_class": 200,
            "synthetic_seed": CF.SYNTHETIC_SEED,
            "classifier": {"recipe": "utility protocol v2 'real' (small CNN)", "steps": 1500, "seeds": 2,
                           "trained_on": 1200},
            "test": {"name": "made/validation", "n": n_test, "notes": []}, "per_class": per_class,
            "command": "python -m eval.class_fidelity --checkpoint G --real R --out X --threads 1"}


FAITHFUL = section({
    "melanoma": {"synthetic": side(0.9, [0.88, 0.92], 0.8, 0.5, 200, 400),
                 "real": side(0.7, [0.6, 0.8], 0.4, 0.25, 40, 100)},
    "nevus": {"synthetic": side(0.85, [0.83, 0.87], 0.7, 0.45, 200, 400),
              "real": side(0.8, [0.7, 0.9], 0.75, 0.3, 60, 100)}})

MIXED = section({
    "melanoma": {"synthetic": side(0.9, [0.88, 0.92], 0.8, 0.4, 200, 600),
                 "real": side(0.7, [0.6, 0.8], 0.4, 0.2, 30, 100)},
    "nevus": {"synthetic": side(0.55, [0.52, 0.58], 0.3, 0.3, 200, 600),
              "real": side(0.8, [0.7, 0.9], 0.75, 0.3, 50, 100)},
    "seborrheic_keratosis": {"synthetic": side(0.82, [0.8, 0.84], 0.5, 0.25, 200, 600),
                             "real": side(0.85, [0.75, 0.93], 0.6, 0.3, 20, 100)}})

SEES = ("What the AUC sees: how well a small CNN trained on 1,200 real images (2 seeds) separates each class from the "
        "others, on samples and on real images alike. It misses whether the samples look real (the C2STs under "
        "Evaluation measure that), what a stronger classifier would tell apart, and variety (the MS-SSIM column). "
        "The real column rests on 100 held-out images ({}), so its intervals are wide.")


def test_card_lines_of_a_faithful_generator_whose_classes_lack_variety():
    assert CF.card_lines(FAITHFUL) == [
        "## Class fidelity", "",
        "Whether the generator's labelled samples are their class (`python -m eval.class_fidelity --checkpoint G "
        "--real R`): 200 raw samples per class, judged by a classifier trained on real images only (the utility "
        "protocol's `real` small CNN, 1,200 images, 1,500 steps, probabilities averaged over 2 seeds), beside the 100 "
        "held-out real images of made/validation. AUC: one class against the others, with 95% bootstrap intervals "
        "over images; recall: the share called that class; MS-SSIM: the mean similarity of two images of the same "
        "class.", "",
        "| class | AUC, synthetic [95% CI] | AUC, real [95% CI] | recall syn. / real | MS-SSIM syn. / real |",
        "| --- | --- | --- | --- | --- |",
        "| melanoma | 0.900 [0.880, 0.920] | 0.700 [0.600, 0.800] | 80% / 40% | 0.500 / 0.250 |",
        "| nevus | 0.850 [0.830, 0.870] | 0.800 [0.700, 0.900] | 70% / 75% | 0.450 / 0.300 |", "",
        "- Class-faithful: the real-only classifier recognises the generator's labelled samples at least as well as "
        "held-out real images of each class (synthetic AUC against the real images' 95% interval: above for "
        "melanoma; within for nevus).",
        "- Synthetic melanoma samples are more \"textbook\" than real ones: AUC 0.900 against 0.700, called melanoma "
        "80% of the time against 40%: easier for the classifier than the real class.",
        "- Less variety: each class's samples are less varied than the real images of the class, their within-class "
        "MS-SSIM 1.5 to 2.0 times the real images' (melanoma 0.500 against 0.250, nevus 0.450 against 0.300; "
        "higher = more alike, less variety).",
        "- " + SEES.format("40 melanoma, 60 nevus"), ""]


def test_the_reading_names_a_blurred_class_and_the_classes_as_varied_as_real():
    assert CF.reading(MIXED) == [
        "Not class-faithful for nevus: the real-only classifier recognises the generator's samples of that class less "
        "well than held-out real images of it, so the class blurs into the others (synthetic AUC against the real "
        "images' 95% interval: above for melanoma; within for seborrheic keratosis; below for nevus).",
        "Synthetic melanoma samples are more \"textbook\" than real ones: AUC 0.900 against 0.700, called melanoma "
        "80% of the time against 40%: easier for the classifier than the real class.",
        "Less variety: the melanoma samples are less varied than the real images of the class, their within-class "
        "MS-SSIM 2.0 times the real images' (melanoma 0.400 against 0.200; higher = more alike, less variety).",
        "As varied as real images or more: nevus and seborrheic keratosis (within-class MS-SSIM at or below the "
        "real images').",
        SEES.format("30 melanoma, 50 nevus, 20 seborrheic keratosis")]
    # A class the real test set lacks has no AUC: it is left out of the comparison, not called faithful.
    gap = section({**MIXED["per_class"], "nevus": {
        "synthetic": side(0.55, [0.52, 0.58], 0.3, 0.3, 200, 600),
        "real": {"auc": None, "reason": "needs images of this class and of others", "n": 100, "recall": None,
                 "msssim": None}}})
    first = CF.reading(gap)[0]
    assert first.startswith("Class-faithful:") and "nevus" not in first
    assert CF.table_rows(gap)[1] == ("nevus", "0.550 [0.520, 0.580]", "n/a", "30% / n/a", "0.300 / n/a")


def test_the_markdown_report_is_the_same_table():
    text = CF.markdown(FAITHFUL)
    assert text.splitlines()[2:] == CF.card_lines(FAITHFUL)[4:8]


def test_the_utility_card_puts_class_fidelity_just_before_utility_and_privacy():
    from eval.utility_card import card_lines

    lines = card_lines({"class_fidelity": FAITHFUL}, "made-cond", conditional=True)
    assert [x for x in lines if x.startswith("#")] == ["## Class fidelity", "## Utility and privacy"]
    assert lines[:len(CF.card_lines(FAITHFUL))] == CF.card_lines(FAITHFUL)
    assert not any("Class fidelity" in x for x in card_lines({}, "made", conditional=False))


@pytest.fixture(scope="module")
def ship():
    spec = importlib.util.spec_from_file_location("ship_tool", REPO / "tools" / "ship.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def c2st_row(form: str, acc: float, floor: float | None) -> dict:
    row = {f"c2st_{form}": acc, f"c2st_{form}_auc": acc + 0.05, f"c2st_{form}_lo95": acc - 0.04,
           f"c2st_{form}_hi95": acc + 0.04}
    if floor is not None:
        row.update({f"c2st_{form}_floor": floor, f"c2st_{form}_floor_auc": floor + 0.01,
                    f"c2st_{form}_floor_lo95": floor - 0.03, f"c2st_{form}_floor_hi95": floor + 0.03})
    return row


def test_the_c2st_lines_show_each_test_beside_its_floor(ship):
    train = {"js_rgb_hist64": 0.002, **c2st_row("derm", 0.7, 0.55), **c2st_row("pixel", 0.8, None),
             "unavailable": {"c2st_pixel_floor": "no training pixels"}}
    # sample seeds: the means in the spread, the row's own values are seed 0's
    train["spread"] = {"c2st_derm": {"mean": 0.72, "sd": 0.01}, "c2st_derm_lo95": {"mean": 0.68, "sd": 0.0},
                       "c2st_derm_hi95": {"mean": 0.76, "sd": 0.0}, "c2st_derm_auc": {"mean": 0.78, "sd": 0.0}}
    doc = {"seeds": 3, "results": {"train": train, "validation": {"js_rgb_hist64": 0.02}},
           "metric_commands": {"c2st_derm": "python -m eval.run --metrics c2st_derm,c2st_pixel --threads 1",
                               "c2st_pixel": "python -m eval.run --metrics c2st_derm,c2st_pixel --threads 1"}}
    assert ship.c2st_lines(doc) == [
        "Classifier two-sample tests (C2ST; Lopez-Paz & Oquab, ICLR 2017; `python -m eval.run --metrics "
        "c2st_derm,c2st_pixel`): a classifier learns to tell the model's samples from the held-out validation images "
        "(5-fold, 150 a side) and is scored on the images it did not train on. Accuracy, mean ± sd over 3 sample "
        "seeds, with its 95% bootstrap interval, and the AUC of the same predictions; the floor is the same test with "
        "real training images in place of the samples:", "",
        "| test | samples vs held-out real: accuracy [95% CI] | AUC | floor, real vs real: accuracy [95% CI] |",
        "| --- | --- | --- | --- |",
        "| C2ST derm (an MLP on the dermoscopy encoder's features) | 0.720 ± 0.010 [0.680, 0.760] | 0.780 | "
        "0.550 [0.520, 0.580] |",
        "| C2ST pixel (a small CNN on 64 px pixels) | 0.800 [0.760, 0.840] | 0.850 | unavailable |", "",
        "0.5 means the classifier cannot tell the samples from real images; the floor, real training images against "
        "the same held-out images, is what \"cannot tell\" reads at this size with this classifier, so read each "
        "accuracy against its floor rather than against 0.5.", ""]
    assert ship.c2st_lines({"results": {"train": {"js_rgb_hist64": 0.002}}}) == []
    assert [x.split("**")[1] for x in ship.metric_notes(("c2st_pixel",))[-2:]] == ["Copy rate derm", "C2ST pixel"]


def test_the_shipped_cards_show_the_c2sts_and_the_conditional_model_its_class_fidelity():
    for name in ("dcgan", "dcgan-cond", "pggan", "pggan-seed"):
        doc = json.loads((REPO / "checkpoints" / name / "results.json").read_text())
        card = (REPO / "checkpoints" / name / "MODEL_CARD.md").read_text()
        s = doc["results"]["train"]["spread"]
        for form in ("derm", "pixel"):
            assert (f"| {s[f'c2st_{form}']['mean']:.3f} ± {s[f'c2st_{form}']['sd']:.3f} [" in card
                    and f"| {s[f'c2st_{form}_floor']['mean']:.3f} ± " in card), (name, form)
        assert ("### Class fidelity" in card) == ("class_fidelity" in doc), name
    card = (REPO / "checkpoints" / "dcgan-cond" / "MODEL_CARD.md").read_text()
    assert card.index("### Class fidelity") < card.index("### Utility and privacy")
    assert "\n".join(CF.card_lines(json.loads((REPO / "checkpoints" / "dcgan-cond" / "results.json").read_text())
                                   ["class_fidelity"])[1:]) in card


@pytest.fixture(scope="module")
def cond_folder(tmp_path_factory) -> Path:
    """Two conditional models (untrained 32 px DCGANs, a config naming their classes): one with a
    ``class_fidelity`` section in its results.json, one without."""
    from dashboard.demo import export_dcgan
    from gan.config import RunConfig
    from gan.rundir import RunDir

    root = tmp_path_factory.mktemp("cond")
    for name in ("cond-a", "cond-b"):
        run = RunDir(root / name).open_for_writing()
        export_dcgan(run.file("generator.pt"), resolution=32)
        run.write_config(RunConfig.from_dict({"model": "dcgan", "data": {"size": 32}, "model_cfg": {
            "resolution": 32, "z_dim": 16, "ngf": 8, "ndf": 8, "class_names": CLASSES}}))
    RunDir(root / "cond-a").update_results("class_fidelity", MIXED)
    return root


@pytest.mark.timeout(120)
def test_the_safety_page_shows_the_class_fidelity_table_or_says_why_not(monkeypatch, cond_folder):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from dashboard import discovery

    monkeypatch.setenv(discovery.ENV_CHECKPOINTS, str(cond_folder))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(REPO / "dashboard" / "views" / "safety.py"), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Class fidelity: do the samples of each class look like that class?" in [h.value for h in at.header]
    [table] = [t.value for t in at.table if "class" in t.value.columns]
    assert list(table.columns) == list(CF.HEAD)
    assert [tuple(r) for r in table.itertuples(index=False)] == CF.table_rows(MIXED)
    text = "\n".join(m.value for m in at.markdown)
    assert all(f"- {line}" in text for line in CF.reading(MIXED))
    assert any(c.value.startswith("200 raw samples per class") and "`python -m eval.class_fidelity --checkpoint G "
               "--real R --out X --threads 1`" in c.value for c in at.caption)
    at.selectbox(key="sf_model").set_value("cond-b").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [t for t in at.table if "class" in t.value.columns]
    assert any(i.value.startswith("No class fidelity report for cond-b yet: `python -m eval.class_fidelity "
                                  "--checkpoint ") for i in at.info)
