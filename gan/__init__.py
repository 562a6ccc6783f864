"""LesionGAN: GANs for dermoscopic skin-lesion images.

``from gan import load_generator``; see :mod:`gan.train` for training.

Importing ``gan`` loads nothing heavy: the names below load :mod:`gan.generator` (and torch) when first
used, so that a command can catch Ctrl-C from its first moment (:func:`gan.cli.entry_point`).
"""
from __future__ import annotations

__all__ = ["LoadedGenerator", "load_generator"]


def __getattr__(name: str):
    if name in __all__:
        from gan import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'gan' has no attribute {name!r}")
