"""Curation at synthesis: the sample filter behind ``gan.synthesize --keep-if-classifier REAL``.

``gan`` imports no ``eval`` module, so ``gan.synthesize`` finds this one as the provider ``classifier`` of
the entry-point group ``lesiongan.sample_filters`` (``pyproject.toml``; loaded by :func:`gan.hooks.provider`).
A provider has one function, :func:`sample_filter`, that returns an object with

- ``proba(images, label) -> np.ndarray``: p(``label`` | image) for uint8 NHWC images, one float each;
- ``info``: a JSON-ready description for the set's manifest (classifier, seeds, real data and its hash);
- ``summary``: the same in a phrase, for the set's README.

The judge is the one :mod:`eval.class_fidelity` uses: the utility protocol v2 ``real`` classifier (the
small CNN of :mod:`eval.classifier` trained on the real labelled images only), one network per seed
``0..K-1``, probabilities averaged over seeds. Trained networks are cached (keyed by a hash of their
training images, labels, recipe and seed), so a second set curated against the same real images trains
nothing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

PROVIDER = "classifier"  # the name gan.synthesize asks for


@dataclass(frozen=True)
class ClassifierFilter:
    """Real-only classifiers (one per seed) and the classes of their outputs, in order."""

    nets: tuple[torch.nn.Module, ...]
    classes: tuple[str, ...]
    info: dict

    def proba(self, images: np.ndarray, label: str) -> np.ndarray:
        """p(``label`` | image) for uint8 (N, H, W, 3) ``images``, averaged over the seeds' classifiers."""
        from eval.classifier import predict_proba

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
        c = self.classes.index(label)
        return np.mean([predict_proba(net, x)[:, c] for net in self.nets], axis=0).astype(np.float64)

    @property
    def summary(self) -> str:
        """The judge in a phrase, for the set's README."""
        real = self.info["real"]
        return (f"a classifier trained on real images alone (`{real['name']}`, {real['trained_on']} images, SHA-256 "
                f"`{real['sha256'][:16]}…`; {len(self.nets)} seed(s) averaged)")


def sample_filter(real: str, classes: list[str], size: int, *, needed: list[str] | None = None, seeds: int = 1,
                  steps: int | None = None, cache_dir: str | Path | None = None,
                  progress: bool = True) -> ClassifierFilter:
    """The real-only classifier filter for a generator with ``classes``, judging images of ``size`` px.

    Args:
        real: a labelled real data set, ``PATH`` or ``PATH@split`` (an ISIC 2017 split), as
            ``eval.utility --test`` reads it; decoded at ``size`` px.
        classes: the generator's classes, in its order (the classifier's outputs).
        size: the side of the images judged (the generator's resolution).
        needed: the classes the filter will be asked about (default: all); each needs real images.
        seeds: classifiers to train and average, seeds ``0..seeds-1``.
        steps: training steps of each (default: the utility protocol v2's).
        cache_dir: the cache folder (default ``$LESIONGAN_CACHE`` or ``~/.cache/lesiongan``): decoded real
            images there, trained classifiers in its ``classifiers/``.
        progress: progress bars on stderr.

    Raises:
        ValueError: one line naming ``--keep-if-classifier`` and ``real`` when the data set is missing,
            unlabelled, or lacks a needed class.
    """
    from eval.class_fidelity import classifier_for
    from eval.utility import RECIPE_V2, make_test_set, parse_test
    from gan.assets import portable_name
    from gan.data import load_dataset
    from gan.data.cache import default_cache_dir
    from gan.data.dataset import content_sha256, dataset_name

    flag = f"--keep-if-classifier {real}"
    recipe = replace(RECIPE_V2, steps=RECIPE_V2.steps if steps is None else steps)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path, split = parse_test(real)
    if not Path(path).exists():
        raise ValueError(f"{flag}: no such data set")
    try:
        ds = load_dataset(path, size=size, split=split, cache_dir=cache, progress=progress)
    except ValueError as e:
        raise ValueError(f"{flag}: {e}") from None
    if not any(label is not None for label in ds.labels):
        raise ValueError(f"{flag}: no labels (layout {ds.layout}): the classifier learns classes from a labelled set")
    present = ds.class_counts()
    missing = [c for c in (needed if needed is not None else classes) if c not in present]
    if missing:
        raise ValueError(f"{flag}: no real images of class {', '.join(missing)} (it has "
                         f"{', '.join(present) or 'none'}): the classifier cannot judge a class it never saw")
    train = make_test_set(ds, list(classes), dataset_name(ds))
    nets = tuple(classifier_for(train.images, train.y, list(classes), k, recipe.steps, cache / "classifiers",
                                progress) for k in range(seeds))
    info = {
        "provider": f"{__name__}.sample_filter",
        "classifier": "utility protocol v2 'real' (small CNN, real images only), probabilities averaged over seeds",
        "recipe": asdict(recipe), "seeds": list(range(seeds)), "input_size": int(size),
        "real": {"name": dataset_name(ds), "source": portable_name(ds.source), "split": ds.split,
                 "layout": ds.layout, "sha256": content_sha256(ds), "trained_on": int(len(train.y)),
                 "class_counts": {c: int((train.y == i).sum()) for i, c in enumerate(classes)}},
    }
    return ClassifierFilter(nets, tuple(classes), info)
