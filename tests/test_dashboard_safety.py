"""The dashboard's Utility and privacy page (dashboard/views/safety.py) through Streamlit's AppTest, on the
demo folder with utility and privacy sections written the way eval.utility and eval.privacy write them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard import discovery
from dashboard.demo import make_demo_folder
from eval import privacy as P
from eval import utility as U
from gan.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "dashboard" / "views" / "safety.py")
TIMEOUT = 30
pytestmark = pytest.mark.timeout(120)
CLASSES = ["melanoma", "nevus", "seborrheic_keratosis"]


def _utility_doc() -> dict:
    rng = np.random.default_rng(0)
    tests = []
    for name, n in (("ham10000", 120), ("made-b", 90)):
        y = rng.integers(0, 3, n)
        probs = {s: [np.abs(np.eye(3)[y] * (0.2 + 0.1 * i) + rng.random((n, 3))) for i in range(2)]
                 for s in U.SETTINGS}
        probs = {s: [p / p.sum(1, keepdims=True) for p in ps] for s, ps in probs.items()}
        tests.append(U.summarize(U.TestSet(name, "made", torch.zeros(0), y), probs, CLASSES, B=50, seed=1))
    doc = {"format": U.FORMAT, "version": U.VERSION, "command": "python -m eval.utility --made", "quick": True,
           "recipe": {"steps": 10, "batch": 8}, "seeds": [0, 1], "settings": list(U.SETTINGS), "tests": tests,
           "warnings": [], "steps": {s: 10 for s in U.SETTINGS}, "exposure": "matched", "share": "uniform",
           "synthetic_ratio": 0.5, "interval": "seeds x images", "preregistered": True}
    U.attach_primary(doc)
    doc["verdicts"] = U.verdicts(doc)
    old = {k: v for k, v in doc.items() if k not in ("primary", "preregistered", "interval", "exposure", "share")}
    doc["v1"] = {**old, "version": 1, "command": "python -m eval.utility --v1"}
    return doc


def _privacy_doc(names: list[str]) -> dict:
    res = P.attack_auc(np.random.default_rng(0).normal(0.2, 1, 100), np.random.default_rng(1).normal(0, 1, 50),
                       B=50)
    res.update({"space": "pixel_32"})
    res["verdict"] = P.verdict(res)
    pairs = [{"space": "pixel_32", "member": i, "name": names[i], "sample": 3 * i + 1, "sample_class": None,
              "distance": 0.1 + 0.01 * i, "ratio_to_heldout_median": 0.8} for i in range(3)]
    return {"format": P.FORMAT, "version": P.VERSION, "command": "python -m eval.privacy --made", "n_samples": 500,
            "seed": 0, "n_members": 100, "n_nonmembers": 50,
            "attacks": {"distance_pixel": res, "distance_derm": {"unavailable": "no dermoscopy encoder"},
                        "discriminator": {"unavailable": "no discriminator: only the exported generator"}},
            "closest_pairs": pairs, "disclaimer": P.DISCLAIMER}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    root = make_demo_folder(tmp_path_factory.mktemp("demo_safety"))
    run = RunDir(root / "dcgan-demo")
    names = __import__("json").loads(str(np.load(run.fingerprint("train"))["meta"]))["names"]
    run.update_results("utility", _utility_doc())
    run.update_results("privacy", _privacy_doc(names))
    return root


def _app(monkeypatch, folder: Path):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(discovery.ENV_CHECKPOINTS, str(folder))
    st.cache_data.clear()
    st.cache_resource.clear()
    return AppTest.from_file(PAGE, default_timeout=TIMEOUT).run()


def test_safety_page_shows_utility_bars_privacy_aucs_and_pairs(monkeypatch, demo):
    at = _app(monkeypatch, demo)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == ["Utility and privacy"]
    assert len(at.get("plotly_chart")) == 7  # three utility metrics for v2, three for v1, one privacy figure
    deltas = [d for d in at.dataframe if "comparison" in d.value.columns]
    assert deltas and list(deltas[0].value["comparison"]) == [
        "real-long minus real", "real+synthetic minus real", "synthetic minus real", "real+augment minus real",
        "real+synthetic minus real+augment", "real+synthetic minus real-long"]
    # The pre-registered reading, in words, as a success or warning box
    boxes = [b.value for b in (*at.success, *at.warning)]
    assert any(b.startswith("Pre-registered comparison on ham10000") for b in boxes), boxes
    # The shortcut check is absent from this made report; the v1 report sits in its own expander, drawn too
    assert len(at.expander) == 1 and "earlier protocol" in at.expander[0].label
    assert len(deltas) == 2  # one differences table per report
    assert any("--v1" in c.value for c in at.caption) and any("steps in proportion" in c.value for c in at.caption)
    text = "\n".join(m.value for m in at.markdown)
    assert "**Distance, pixels**: " in text and "(AUC " in text  # the verdict line with its numbers
    infos = "\n".join(i.value for i in at.info)
    assert "no discriminator" in infos and "no dermoscopy encoder" in infos
    assert not [i for i in at.image if len(i.value) == 2]  # remade only when asked: the first visit stays quick
    at.toggle(key="sf_pairs").set_value(True).run()
    assert not at.exception
    pairs = [i for i in at.image if len(i.value) == 2]
    assert len(pairs) == 3
    # Words, not the audit's internal names: the space in plain words, the verdict without its rule.
    shown = "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])
    text = "\n".join(m.value for m in at.markdown)
    assert "**Pixels at 32 px**" in text and "pixel_32" not in shown and "rule:" not in shown
    assert "remade from the audit's seed" in shown
    alts = [img.alt for img in pairs[0].proto.imgs]
    assert alts[0].startswith("Real training image ISIC_") and alts[1].startswith("Synthetic sample 1 of seed 0")
    at.radio(key="sf_test_v2").set_value("made-b").run()
    assert not at.exception and any("made-b" in m.value for m in at.markdown)


def test_safety_page_without_reports_says_how_to_make_them(monkeypatch, demo):
    at = _app(monkeypatch, demo)
    at.selectbox(key="sf_model").set_value("pggan-demo").run()
    assert not at.exception, [e.value for e in at.exception]
    infos = "\n".join(i.value for i in at.info)
    # pggan-demo is unconditional: no utility command that would be refused, but the reason and the privacy command
    assert "pggan-demo is unconditional" in infos and "python -m eval.utility" not in infos
    assert "python -m eval.privacy" in infos
    assert not at.get("plotly_chart")


def test_the_closest_pairs_samples_are_the_audits_within_a_grey_level(demo):
    from dashboard.discovery import discover_models
    from dashboard.ui import loaders
    from gan import load_generator

    [entry] = [e for e in discover_models(demo) if e.name == "dcgan-demo"]
    picks = [1, 4, 260, 299]  # in two of the audit's batches of 256
    got, err = loaders.audit_samples(entry, 300, 0, picks)
    want = load_generator(entry.weights).generate(300, seed=0)[picks]  # as eval.privacy drew them
    assert err is None and got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    assert "rerun python -m eval.privacy" in loaders.audit_samples(entry, 10, 0, [12])[1]
