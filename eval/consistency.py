"""Class consistency of a conditional generator: does it draw the class it is asked for?

The share of samples asked for as class ``c`` that the dermoscopy encoder (:mod:`eval.encoder`)
classifies as ``c``, beside the same share for real labelled images, which is the ceiling the encoder
itself allows. The decision is the argmax over the encoder's logits of the generator's classes only
(an ISIC 2017 model: melanoma, nevus and seborrheic keratosis; the encoder's HAM10000 class
``benign_keratosis`` stands for seborrheic keratosis, a narrower diagnosis: :data:`ENCODER_ALIASES`).

    python -m eval.consistency --checkpoint checkpoints/dcgan-cond/generator.pt \\
        --real ../shared/data/isic2017/ISIC-2017_Validation_Data --encoder checkpoints/derm-encoder [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

import numpy as np

from gan.assets import portable_name

# A generator's class -> the encoder column that stands for it, where the names differ.
ENCODER_ALIASES = {"seborrheic_keratosis": "benign_keratosis"}


def encoder_columns(encoder: Any, classes: Sequence[str]) -> list[int]:
    """The encoder's logit column for each class; ValueError naming a class it cannot judge."""
    cols = []
    for c in classes:
        name = c if c in encoder.class_names else ENCODER_ALIASES.get(c)
        if name not in encoder.class_names:
            raise ValueError(f"the encoder ({', '.join(encoder.class_names)}) has no class for {c!r}")
        cols.append(encoder.class_names.index(name))
    return cols


def classify(encoder: Any, images: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Index into ``classes`` of each image's most likely class among ``classes`` (argmax over
    those logits)."""
    logits = encoder.logits(images)
    return np.argmax(logits[:, encoder_columns(encoder, classes)], axis=1)


def confusion(predicted: np.ndarray, asked: np.ndarray, k: int) -> np.ndarray:
    """Row-normalised (k, k) matrix: row = asked (or true) class, column = predicted class."""
    m = np.zeros((k, k), np.float64)
    np.add.at(m, (asked, predicted), 1.0)
    return m / np.clip(m.sum(axis=1, keepdims=True), 1, None)


def class_consistency(encoder: Any, G: Any, n: int = 500, seed: int = 0, real: Any = None) -> dict:
    """Consistency of conditional generator ``G`` (``gan.load_generator``) under ``encoder``.

    Args:
        encoder: a loaded encoder (``eval.encoder.load_encoder``).
        G: a conditional generator.
        n: samples per class.
        seed: latent seed (the same latents for every class).
        real: optional labelled real images (an ``ImageSet`` from ``gan.data.load_dataset``) for the
            encoder's own share on real images of each class.

    Returns:
        ``{"classes", "n_per_class", "seed", "fake": {c: share}, "fake_confusion": [[...]],
        "real": {c: share}, "real_count": {c: n}, "real_confusion", "encoder": {...}}``.
    """
    classes = list(getattr(G, "class_names", []) or [])
    if not classes:
        raise ValueError(f"{getattr(G, 'path', 'the generator')}: unconditional: class consistency needs a "
                         f"conditional model")
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    k = len(classes)
    asked, predicted = [], []
    for i, c in enumerate(classes):
        predicted.append(classify(encoder, G.generate(n, seed=seed, labels=c), classes))
        asked.append(np.full(n, i))
    fake = confusion(np.concatenate(predicted), np.concatenate(asked), k)
    out: dict[str, Any] = {"classes": classes, "n_per_class": n, "seed": seed,
                           "fake": {c: float(fake[i, i]) for i, c in enumerate(classes)},
                           "fake_confusion": fake.round(4).tolist(),
                           "encoder": {"metric_version": getattr(encoder, "metric_version", None),
                                       "sha256": getattr(encoder, "sha256", None),
                                       "columns": [encoder.class_names[j] for j in encoder_columns(encoder, classes)]}}
    if real is not None:
        labels = list(real.labels)
        keep = [j for j, c in enumerate(labels) if c in classes]
        if not keep:
            raise ValueError(f"{getattr(real, 'source', 'the real set')}: no images of {', '.join(classes)}")
        images = real.images[keep]
        images = images.permute(0, 2, 3, 1).numpy() if hasattr(images, "permute") else np.asarray(images)
        truth = np.array([classes.index(labels[j]) for j in keep])
        conf = confusion(classify(encoder, images, classes), truth, k)
        out["real"] = {c: float(conf[i, i]) for i, c in enumerate(classes)}
        out["real_count"] = {c: int((truth == i).sum()) for i, c in enumerate(classes)}
        out["real_confusion"] = conf.round(4).tolist()
        out["real_source"] = portable_name(str(getattr(real, "source", "")))
    return out


def markdown(result: dict) -> str:
    """The result as a Markdown table: per class, the share of samples and of real images the
    encoder puts in that class."""
    real = result.get("real")
    lines = ["| asked for | classified as asked (samples) | real images classified correctly |",
             "| --- | --- | --- |"]
    for c in result["classes"]:
        r = f"{real[c]:.3f} (n = {result['real_count'][c]})" if real else "n/a"
        lines.append(f"| {c} | {result['fake'][c]:.3f} (n = {result['n_per_class']}) | {r} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from gan.cli import entry_point, prog

    @entry_point
    def run(argv: list[str] | None) -> int:
        p = argparse.ArgumentParser(prog=prog("eval.consistency", "lesiongan-consistency"),
                                    description=__doc__.split("\n\n")[0])
        p.add_argument("--checkpoint", required=True, help="a conditional generator (file or run folder)")
        p.add_argument("--encoder", help="the dermoscopy encoder (default: $LESIONGAN_DERM_ENCODER, else the shipped "
                                         "checkpoints/derm-encoder, found from any folder)")
        p.add_argument("--real", help="labelled real images for the encoder's own share (e.g. the ISIC 2017 "
                                      "validation split)")
        p.add_argument("--n", type=int, default=500, help="samples per class (default 500)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--json", action="store_true", help="JSON on stdout")
        a = p.parse_args(argv)
        from eval.encoder import load_encoder
        from eval.metrics.derm import encoder_for_flag
        from gan import load_generator
        from gan.data import load_dataset

        try:
            enc = load_encoder(encoder_for_flag(a.encoder, "--encoder"))
            G = load_generator(a.checkpoint)
            real = load_dataset(a.real, size=enc.config.size, progress=False) if a.real else None
            res = class_consistency(enc, G, a.n, a.seed, real)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(json.dumps(res, indent=1) if a.json else markdown(res))
        return 0

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
