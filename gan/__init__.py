"""LesionGAN: GANs for dermoscopic skin-lesion images.

``from gan import load_generator``; see :mod:`gan.train` for training.
"""
from gan.generator import LoadedGenerator, load_generator

__all__ = ["LoadedGenerator", "load_generator"]
