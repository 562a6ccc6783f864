"""The dashboard's Utility and privacy page (dashboard/views/safety.py) through Streamlit's AppTest, on the
demo folder with utility, privacy and privacy_split sections written the way eval.utility, eval.privacy and
eval.audit write them."""
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


KIMG = 480


def _split_audit(folder: Path) -> Path:
    """An audit folder as ``eval.audit score`` and ``length`` leave it (audit-000480.json, length.json), for
    a recipe trained on two halves of 1,000 ISIC 2017 training images: the attacks' pooled scores drawn
    with a weak leak in derm features, summarised by eval.audit's own functions."""
    import json

    from eval import audit as A
    from eval import membership as M

    rng = np.random.default_rng(0)
    n_half, n_val = 1000, 150
    attacks = {}
    for i, (name, shift) in enumerate((("distance_pixel", 0.0), ("distance_derm", 0.15), ("discriminator", 0.05),
                                       ("domias_derm", 0.1))):
        member, nonmember = rng.normal(shift, 1, 2 * n_half), rng.normal(0, 1, 2 * n_half)
        res = {"what": A.ATTACKS[name], **A.summarize(member, nonmember, bootstrap=50, seed=100 * (i + 1))}
        res["halves"] = {h: {"auc": 0.5 + shift / 3} for h in A.HALVES}
        if name == "domias_derm":
            res["shift_control"] = {"unavailable": "not defined for this attack (its reference set is the "
                                                   "non-member half)"}
        else:
            ctrl = P.attack_auc(rng.normal(0.05, 1, 2 * n_half), rng.normal(0, 1, 2 * n_val), 50, seed=7)
            res["shift_control"] = {"auc": ctrl["auc"], "ci95": ctrl["ci95"], "n_half": 2 * n_half,
                                    "n_heldout": 2 * n_val, "what": "non-member half against the validation split"}
        attacks[name] = res
    copies = {space: {h: M.copy_share(rng.normal(size=(400, 8)), rng.normal(size=(n_half, 8)),
                                      rng.normal(size=(n_half, 8))) for h in A.HALVES} for space in ("pixels", "derm1")}
    doc = {"format": A.AUDIT_FORMAT, "version": A.AUDIT_VERSION, "protocol": "split", "kimg": KIMG,
           "n_samples": 10_000, "seed": 0, "bootstrap": 50, "note": A.CARD_NOTE,
           "split": {"seed": 0, "halves": {h: {"list": f"half-{h}.txt", "n": n_half, "sha256": "0" * 64}
                                           for h in A.HALVES}},
           "snapshots": {h: {"file": f"half-{h}/snapshots/snapshot-000480000.pt", "nimg": KIMG * 1000,
                             "training_seed": 0} for h in A.HALVES},
           "attacks": attacks, "copies": copies, "created": "2026-01-01T00:00:00+00:00", "seconds": 1.0,
           "command": f"python -m eval.audit score {folder} --kimg {KIMG}"}
    rows = [{"kimg": k, **{name: {"auc": 0.5 + k / 4000, "tpr_at_1pct": 0.01, "tpr_ci95": [0.006, 0.016]}
                           for name in attacks}, "fd_derm": 30.0 / (1 + k / 40)} for k in range(0, KIMG + 1, 40)]
    folder.mkdir(parents=True)
    (folder / f"audit-{KIMG:06d}.json").write_text(json.dumps(doc))
    (folder / "length.json").write_text(json.dumps({"format": A.AUDIT_FORMAT, "version": A.AUDIT_VERSION,
                                                    "protocol": "split-length", "n_samples": 5000, "seed": 0,
                                                    "note": A.CARD_NOTE, "rows": rows,
                                                    "command": f"python -m eval.audit length {folder}"}))
    A.markdown(doc)  # eval.audit reads it as its own
    return folder


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    from eval import audit as A

    root = make_demo_folder(tmp_path_factory.mktemp("demo_safety"))
    run = RunDir(root / "dcgan-demo")
    names = __import__("json").loads(str(np.load(run.fingerprint("train"))["meta"]))["names"]
    run.update_results("utility", _utility_doc())
    run.update_results("privacy", _privacy_doc(names))
    A.ship(_split_audit(tmp_path_factory.mktemp("audit") / "AUDIT"), KIMG, run.path)  # section privacy_split
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
    # three utility metrics for v2, three for v1, the audit on known halves' ROC and length figures, one for
    # the validation-split audit
    assert len(at.get("plotly_chart")) == 9
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


def test_the_membership_audit_on_known_halves_comes_first_the_validation_split_audit_second(monkeypatch, demo):
    from dashboard import privacy_split

    section = RunDir(demo / "dcgan-demo").read_results()["privacy_split"]
    at = _app(monkeypatch, demo)
    assert not at.exception, [e.value for e in at.exception]
    assert [h.value for h in at.subheader] == ["Membership audit on known halves",
                                                "Members vs the validation split: confounded by distribution shift"]
    # One sentence that says what was audited: never the shipped weights.
    [what] = [c.value for c in at.caption if "half the data" in c.value]
    assert what.startswith("The audited models are the same recipe trained on half the data, not the shipped "
                           "weights:") and what.count(". ") == 0 and what.endswith(".")
    assert "2,000 members against 2,000 non-members" in what and "at 480k images seen" in what
    # The headline table is the section's, number for number.
    table = next(t.value for t in at.table if "attack" in t.value.columns)
    assert table.equals(privacy_split.headline_table(section))
    pix = section["attacks"]["distance_pixel"]
    assert table.iloc[0]["AUC [95% CI]"] == f"{pix['auc']:.3f} [{pix['ci95'][0]:.3f}, {pix['ci95'][1]:.3f}]"
    t = pix["tpr_at_fpr"]["0.001"]  # 2,000 non-members: the 0.1% FPR is estimable
    assert t["estimable"] and table.iloc[0]["TPR at 0.1% FPR"].startswith(f"{t['tpr']:.3f} [")
    assert table.iloc[3]["shift control: AUC [95% CI]"] == "not defined for this attack"
    # ROC curves on log axes, privacy over training length, copy shares.
    charts = {c["layout"]["title"]["text"]: c for c in
              (__import__("json").loads(p.proto.spec) for p in at.get("plotly_chart"))}
    roc = charts["ROC curves, log axes (members positive)"]
    assert roc["layout"]["xaxis"]["type"] == roc["layout"]["yaxis"]["type"] == "log"
    assert [d["name"] for d in roc["data"]] == ["chance (no leak)", *privacy_split.NAMES.values()]
    length = charts["Privacy over training length"]
    assert length["data"][0]["x"] == [r["kimg"] for r in section["length"]["rows"]]
    copies = next(t.value for t in at.table if "space" in t.value.columns)
    assert list(copies["space"]) == ["pixels", "dermoscopy features"]
    # The older audit, in its own block, with its closest pairs.
    assert any(c.value.startswith("100 training images (members) against 50 validation images") for c in at.caption)
    assert "**Distance, pixels**: " in "\n".join(m.value for m in at.markdown)
    assert "Membership-attack AUC, 95% interval" in charts
    # No internal names on the page: keys, rule names, the audit folder's path.
    shown = "\n".join(str(x.value) for x in (*at.markdown, *at.caption, *at.info, *at.subheader, *at.header))
    shown += "\n".join(d.value.to_string() for d in (*at.dataframe, *at.table))
    for word in ("kimg", "distance_pixel", "domias_derm", "ci_low", "privacy_split", str(demo.parent)):
        assert word not in shown, word


def test_safety_page_without_reports_says_how_to_make_them(monkeypatch, demo):
    at = _app(monkeypatch, demo)
    at.selectbox(key="sf_model").set_value("pggan-demo").run()
    assert not at.exception, [e.value for e in at.exception]
    infos = "\n".join(i.value for i in at.info)
    # pggan-demo is unconditional: no utility command that would be refused, but the reason and the privacy command
    assert "pggan-demo is unconditional" in infos and "python -m eval.utility" not in infos
    assert "Class fidelity needs a conditional model: pggan-demo's samples have no class to be judged on." in infos
    assert "python -m eval.privacy" in infos
    assert not at.get("plotly_chart")
    # No audit on known halves: the page says so and gives the commands that make it, for this model's recipe.
    assert "The membership audit on known halves has not been run for pggan-demo." in infos
    assert "python -m eval.audit --help" in infos
    [code] = [c.value for c in at.code]
    assert code.splitlines() == [
        "python -m eval.audit split --data ../shared/data/isic2017 --out AUDIT",
        f"python -m eval.audit train AUDIT --recipe {demo.name}/pggan-demo --half a --kimg 64 --keep-kimg 4",
        f"python -m eval.audit train AUDIT --recipe {demo.name}/pggan-demo --half b --kimg 64 --keep-kimg 4",
        f"python -m eval.audit score AUDIT --kimg 64 --ship {demo.name}/pggan-demo"]


def test_audit_commands_keep_a_snapshot_at_the_audited_length():
    from dashboard.privacy_split import audit_commands

    lines = audit_commands("checkpoints/dcgan-cond", 110).splitlines()
    assert lines[1] == "python -m eval.audit train AUDIT --recipe checkpoints/dcgan-cond --half a --kimg 110 " \
                       "--keep-kimg 10"
    assert lines[-1] == "python -m eval.audit score AUDIT --kimg 110 --ship checkpoints/dcgan-cond"
    assert "--keep-kimg" not in audit_commands("checkpoints/dcgan", 480)  # the default, 20, divides 480


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
