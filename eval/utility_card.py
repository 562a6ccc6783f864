"""The model card's "Utility and privacy" section, from a model's results.json (sections ``utility``, written by
``eval.utility``, ``class_fidelity``, written by ``eval.class_fidelity``, and ``privacy``, written by
``eval.privacy``). ``tools/ship.py`` calls :func:`card_lines`."""
from __future__ import annotations

from gan.assets import reproducing

ATTACK_NAMES = {"distance_pixel": "black-box distance, pixels", "distance_derm": "black-box distance, derm1 features",
                "discriminator": "white-box, D's score (LOGAN)"}


def _ci(d: dict) -> str:
    return f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]"


def utility_table(util: dict, key: str = "melanoma_auc") -> list[str]:
    """Markdown: one row per test set and setting, ``key``'s mean ± sd and its difference from real."""
    lines = ["| test set | setting | melanoma AUC | Δ vs real [95% CI] | SK AUC | balanced acc. |",
             "| --- | --- | --- | --- | --- | --- |"]
    for t in util.get("tests", []):
        for s, r in t["results"].items():
            d = t["deltas"].get(s, {}).get(key)
            cells = [f"{r[k]['mean']:.3f} ± {r[k]['sd']:.3f}" if k in r else "n/a"
                     for k in (key, "sk_auc", "balanced_accuracy")]
            lines.append(f"| {t['name']} ({t['n']:,}) | `{s}` | {cells[0]} | {_ci(d) if d else '(reference)'} | "
                         f"{cells[1]} | {cells[2]} |")
    return lines


def utility_command(util: dict) -> str:
    """The command that reproduces a utility report; a v1 report needs ``--protocol v1`` now that v2 is the default."""
    cmd = reproducing(util.get("command", "python -m eval.utility"))
    if util.get("version", 1) < 2 and "--protocol" not in cmd:
        cmd += " --protocol v1"
    return cmd


def protocol_words(util: dict) -> str:
    """How a utility report was made, in one sentence."""
    r = util.get("recipe", {})
    arch = "ResNet-18" if r.get("arch") == "resnet18" else "small CNN"
    seeds = f"{len(util.get('seeds', []))} seeds{' (`--quick`)' if util.get('quick') else ''}"
    if util.get("version", 1) >= 2 and util.get("exposure"):
        steps = util.get("steps", {})
        share = (f"{util['synthetic_ratio']:g} synthetic image per real image of every class" if util.get("share") == "uniform"
                 else "minority classes filled up to the majority's count")
        return (f"protocol v2: a {arch} trained from scratch at 64 px on real, real trained as long as the longest "
                f"setting (`real-long`), real + synthetic ({share}) and real + as many classically augmented "
                f"images, each setting's steps in proportion to its size ({', '.join(f'{s} {n:,}' for s, n in steps.items())}); "
                f"{seeds}; 95% intervals from a bootstrap over training seeds and test images together")
    return (f"protocol v1: a {arch} trained from scratch at 64 px for {r.get('steps', 0):,} steps in every setting on "
            "real, real + synthetic (minority classes filled up to the majority's count), synthetic only and real + "
            f"as many classically augmented images; {seeds}; 95% intervals over the test images only")


def shortcut_lines(util: dict) -> list[str]:
    """The shortcut check's rows (the classifier trained with synthetic images), one per test set and class."""
    lines = []
    for t in util.get("tests", []):
        sc = (t.get("shortcut") or {}).get("real+synthetic")
        if not sc:
            continue
        if not lines:
            lines = ["Shortcut check (the `real+synthetic` classifier on fresh synthetic images against real test images "
                     "of the same class; AUC 0.5: it treats them alike):", "",
                     "| test set | class | AUC synthetic vs real | called that class: synthetic | real | linear probe AUC |",
                     "| --- | --- | --- | --- | --- | --- |"]
        for c, v in sc["per_class"].items():
            lines.append(f"| {t['name']} | {c.replace('_', ' ')} | {v['auc_synthetic_vs_real']['mean']:.3f} | "
                         f"{v['recall_synthetic']['mean']:.0%} | {v['recall_real']['mean']:.0%} | "
                         f"{sc['probe_auc']['mean']:.3f} |")
    return lines + [""] if lines else []


def privacy_table(priv: dict) -> list[str]:
    lines = ["| attack | AUC | 95% CI | verdict |", "| --- | --- | --- | --- |"]
    for k, a in priv.get("attacks", {}).items():
        name = ATTACK_NAMES.get(k, k)
        if "auc" in a:
            lines.append(f"| {name} | {a['auc']:.3f} | [{a['ci95'][0]:.3f}, {a['ci95'][1]:.3f}] | "
                         f"{a['verdict'].split(' (AUC')[0]} |")
        else:
            lines.append(f"| {name} | n/a | | {a.get('unavailable', 'not run')} |")
    return lines


def card_lines(doc: dict, name: str, conditional: bool | None = None) -> list[str]:
    """The section's lines (ending with a blank line) for the model ``name``; ``doc`` is its results.json. A model
    with a ``class_fidelity`` section gets that section first, at the same level
    (:func:`eval.class_fidelity.card_lines`)."""
    util, priv = doc.get("utility"), doc.get("privacy")
    lines = []
    if doc.get("class_fidelity"):
        from eval.class_fidelity import card_lines as fidelity_lines

        lines += fidelity_lines(doc["class_fidelity"])
    lines += ["## Utility and privacy", ""]
    if util:
        lines += [f"Downstream utility (`{utility_command(util)}`), "
                  f"{protocol_words(util)}.", ""]
        p = util.get("primary")
        if p:
            lines += [f"**Pre-registered result** ({p['test']}, `real+synthetic` minus `real`, melanoma AUC): "
                      f"{p['mean']:+.3f}, 95% CI [{p['ci95'][0]:+.3f}, {p['ci95'][1]:+.3f}]: {p['outcome']} at the "
                      f"{p['margin']:+.2f} margin, {'above' if p['above_real_augment'] else 'not above'} `real+augment`; "
                      f"success criterion {'met' if p['success'] else 'not met'}.", ""]
        lines += [*utility_table(util), ""]
        for t in util.get("tests", []):
            det = t.get("detectable", {}).get("melanoma_auc")
            if det is not None:
                lines.append(f"- {t['name']}: the smallest melanoma-AUC difference this run can detect is about {det:.3f}.")
        lines += [f"- {v}" for v in util.get("verdicts", []) if not v.startswith("Primary comparison")]
        lines += [f"- **Warning**: {w}" for w in util.get("warnings", [])]
        lines.append("")
        lines += shortcut_lines(util)
        v1 = util.get("v1")
        if v1:
            lines += [f"The earlier protocol, for comparison (`{utility_command(v1)}`), {protocol_words(v1)}. "
                      "Its settings that add images also trained on each real image less often, its synthetic images "
                      "all belonged to the minority classes, and its intervals left out the seeds' spread:", "",
                      *utility_table(v1), ""]
    else:
        why = ("an unconditional generator gives no labelled images to train a classifier on"
               if conditional is False else "not measured yet")
        lines += [f"Downstream utility: {why} (`python -m eval.utility --real ../shared/data/isic2017 --synthetic "
                  f"checkpoints/{name}/generator.pt` needs a conditional model).", ""]
    if doc.get("privacy_split"):
        from eval.audit import card_lines as audit_lines

        lines += audit_lines(doc["privacy_split"])
    if priv:
        older = " (members against the validation split; confounded by distribution shift, see the audit on known " \
                "halves above)" if doc.get("privacy_split") else ""
        lines += [f"Membership-inference audit{older} (`{reproducing(priv.get('command', 'python -m eval.privacy'))}`): the "
                  f"{priv.get('n_members'):,} training images (members) against the {priv.get('n_nonmembers'):,} held-out "
                  f"validation images (non-members), {priv.get('n_samples', 0):,} synthetic samples of seed "
                  f"{priv.get('seed')}; AUC 0.5 means the attack cannot tell them apart.", "", *privacy_table(priv), ""]
        pairs = priv.get("closest_pairs", [])
        if pairs:
            nearest = min(pairs, key=lambda p: p.get("ratio_to_heldout_median") or 1e9)
            lines.append(f"- Closest pair: training image {nearest['name']} and sample {nearest['sample']} "
                         f"({nearest['space']}, distance {nearest['distance']:.4g}, "
                         f"{nearest['ratio_to_heldout_median']:.2f} x the held-out images' median nearest distance); "
                         "the dashboard's Utility and privacy page shows the closest pairs.")
        lines += ["- The non-members are the ISIC 2017 validation split, which every model also fits less well than the "
                  "training split (the validation-split row of the scores under Evaluation): a difference between "
                  "the two splits, not membership, can move an AUC above 0.5 as well; the attacks cannot tell the two "
                  "apart.",
                  f"- {priv.get('disclaimer', '')}", ""]
    else:
        lines += [f"Membership-inference audit: not run yet (`python -m eval.privacy --checkpoint "
                  f"checkpoints/{name}/generator.pt --real ../shared/data/isic2017`).", ""]
    return lines
