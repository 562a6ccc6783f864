"""The model card's "Utility and privacy" section, from a model's results.json (sections ``utility``, written by
``eval.utility``, and ``privacy``, written by ``eval.privacy``). ``tools/ship.py`` calls :func:`card_lines`."""
from __future__ import annotations

ATTACK_NAMES = {"distance_pixel": "black-box distance, pixels", "distance_derm": "black-box distance, derm1 features",
                "discriminator": "white-box, D's score (LOGAN)"}


def reproducing(command: str) -> str:
    """The recorded command without the options that do not change its numbers (``--out``, ``--threads``,
    ``--json``, ``--no-save``)."""
    words, out, skip = command.split(), [], False
    for w in words:
        if skip:
            skip = False
            continue
        if w in ("--out", "--threads"):
            skip = True
            continue
        if w in ("--json", "--no-save") or w.startswith(("--out=", "--threads=")):
            continue
        out.append(w)
    return " ".join(out)


def utility_table(util: dict, key: str = "melanoma_auc") -> list[str]:
    """Markdown: one row per test set and setting, ``key``'s mean ± sd and its paired difference from real."""
    lines = ["| test set | setting | melanoma AUC | Δ vs real [95% CI] | SK AUC | balanced acc. |",
             "| --- | --- | --- | --- | --- | --- |"]
    for t in util.get("tests", []):
        for s, r in t["results"].items():
            d = t["deltas"].get(s, {}).get(key)
            delta = f"{d['mean']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else "(reference)"
            cells = [f"{r[k]['mean']:.3f} ± {r[k]['sd']:.3f}" if k in r else "n/a"
                     for k in (key, "sk_auc", "balanced_accuracy")]
            lines.append(f"| {t['name']} ({t['n']:,}) | `{s}` | {cells[0]} | {delta} | {cells[1]} | {cells[2]} |")
    return lines


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
    """The section's lines (ending with a blank line) for the model ``name``; ``doc`` is its results.json."""
    util, priv = doc.get("utility"), doc.get("privacy")
    lines = ["## Utility and privacy", ""]
    if util:
        r = util.get("recipe", {})
        lines += [f"Downstream utility (`{reproducing(util.get('command', 'python -m eval.utility'))}`): a small CNN trained from "
                  f"scratch at 64 px ({r.get('steps', 0):,} steps of {r.get('batch')}, class-balanced loss) on real, "
                  "real + synthetic (minority classes filled up to the majority's count), synthetic only, and real + "
                  "as many classically augmented images; mean ± sd over seeds "
                  f"{', '.join(map(str, util.get('seeds', [])))}"
                  f"{' (`--quick`)' if util.get('quick') else ''}; differences from `real` with 95% intervals from a "
                  "paired bootstrap over the test images.", "", *utility_table(util), ""]
        for t in util.get("tests", []):
            det = t.get("detectable", {}).get("melanoma_auc")
            if det is not None:
                lines.append(f"- {t['name']}: the smallest melanoma-AUC difference this run can detect is about {det:.3f}.")
        lines += [f"- {v}" for v in util.get("verdicts", [])] + [f"- **Warning**: {w}" for w in util.get("warnings", [])]
        lines.append("")
    else:
        why = ("an unconditional generator gives no labelled images to train a classifier on"
               if conditional is False else "not measured yet")
        lines += [f"Downstream utility: {why} (`python -m eval.utility --real ../shared/data/isic2017 --synthetic "
                  f"checkpoints/{name}/generator.pt` needs a conditional model).", ""]
    if priv:
        lines += [f"Membership-inference audit (`{reproducing(priv.get('command', 'python -m eval.privacy'))}`): the "
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
                  "training split (the Results above): a difference between the two splits, not membership, can move "
                  "an AUC above 0.5 as well; the attacks cannot tell the two apart.",
                  f"- {priv.get('disclaimer', '')}", ""]
    else:
        lines += [f"Membership-inference audit: not run yet (`python -m eval.privacy --checkpoint "
                  f"checkpoints/{name}/generator.pt --real ../shared/data/isic2017`).", ""]
    return lines
