"""What ``evaluate`` accepts as ``real``/``fake``/``heldout``, resolved into one ``EvalSet`` type.

An input can be a folder of images or a data set path (read with ``gan.data.load_dataset``), an
``ImageSet`` already loaded, a generator file or object (``n`` samples drawn with ``seed``), a saved
fingerprint (``.npz``, see ``eval.fingerprint``), or a uint8 array (NHWC or NCHW). Every set records
where it came from, how many images it holds, the size it is evaluated at and how it got there.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from eval.images import DEFAULT_RESIZE, RESIZE_MODES, as_nhwc_uint8, resize_images
from eval.evalset import EvalSet, FeatureCache  # noqa: F401  (FeatureCache: callers find it here too)


def _is_generator(obj: Any) -> bool:
    return hasattr(obj, "generate") and hasattr(obj, "resolution")


def _is_imageset(obj: Any) -> bool:
    return hasattr(obj, "images") and hasattr(obj, "names") and not isinstance(obj, (np.ndarray,))


def _from_imageset(ds: Any, role: str, kind: str, size: int, resize: str, label: str | None = None) -> EvalSet:
    images, names = ds.images, ds.names
    if label is not None:  # the images of one class
        labels = list(getattr(ds, "labels", None) or [])
        keep = [i for i, c in enumerate(labels) if c == label]
        if not keep:
            known = sorted({c for c in labels if c is not None})
            raise ValueError(f"--class {label}: no {role} images of that class in "
                             f"{getattr(ds, 'source', 'the data set')} (classes: {', '.join(known) or 'none'})")
        images = images[keep]
        names = [names[i] for i in keep] if names is not None else None
    imgs = as_nhwc_uint8(images, f"{role} data set")
    native = imgs.shape[1]
    info = getattr(ds, "info", None) or {}
    resized = f"gan.data: {info.get('resize', 'its own preprocessing')}"
    if imgs.shape[1] != size or imgs.shape[2] != size:
        imgs = resize_images(imgs, size, resize)
        resized += f", then pil-{resize} to {size}"
    skipped = len(getattr(ds, "skipped", []) or [])
    names = list(names) if names is not None else [str(i) for i in range(len(imgs))]
    return EvalSet(role=role, kind=kind, source=str(getattr(ds, "source", "") or ""), images=imgs,
                   names=names, size=size, native_resolution=native, resize=resized, skipped=skipped, label=label,
                   split=getattr(ds, "split", None))


def _from_generator(G: Any, role: str, source: str, n: int, seed: int, size: int, resize: str,
                    batch_size: int, label: str | None = None) -> EvalSet:
    if n < 1:
        raise ValueError(f"--n must be at least 1 to sample a generator, got {n}")
    if label is None:
        out = G.generate(n, seed=seed, batch_size=batch_size)
    else:
        classes = list(getattr(G, "class_names", []) or [])
        if not classes:
            raise ValueError(f"--class {label}: the {role} generator ({source}) is unconditional")
        if label not in classes:
            raise ValueError(f"--class {label}: the {role} generator knows {', '.join(classes)}")
        out = G.generate(n, seed=seed, batch_size=batch_size, labels=label)
    imgs = as_nhwc_uint8(out, f"{role} generator output")
    native = imgs.shape[1]
    mode = "none"
    if native != size or imgs.shape[2] != size:
        imgs = resize_images(imgs, size, resize)
        mode = f"pil-{resize}"
    return EvalSet(role=role, kind="generator", source=source, images=imgs,
                   names=[f"seed{seed:04d}-{i:05d}" for i in range(n)], size=size,
                   native_resolution=native, resize=mode, seed=seed, label=label)


def _read_cache(path: Path):
    """An ``ImageSet``-like view of a ``gan.data`` cache file (checked against its own key and checksum)."""
    from types import SimpleNamespace

    from gan.data import cache

    try:
        images, doc = cache.read_cache(path)  # checked against its own key and checksum
    except Exception as e:
        raise ValueError(f"{path}: not a readable gan.data cache file ({e})") from e
    return SimpleNamespace(images=images, names=list(doc["names"]), source=str(doc.get("source", path)),
                           size=int(doc["size"]), layout=doc.get("layout", "cache"), skipped=doc.get("skipped", []),
                           info={"resize": doc.get("resize", "gan.data cache")})


def _load_dataset(path: str, size: int, progress: bool, split: str | None = None):
    try:
        from gan.data import load_dataset
    except ImportError as e:  # pragma: no cover - gan.data ships with the package
        raise ValueError(f"reading {path} needs gan.data ({e})") from e
    return load_dataset(path, size=size, progress=progress, split=split)


HELDOUT_SPLIT = {"train": "validation"}  # a data set split -> the split that is held out from it


def default_heldout(real: EvalSet, *, resize: str = DEFAULT_RESIZE, progress: bool = False,
                    label: str | None = None) -> EvalSet | None:
    """The held-out set that goes with ``real`` when none is given: for the ISIC 2017 training split
    read from its folder, that folder's validation split (of class ``label`` when given), at
    ``real``'s size; None for anything else, or when that split cannot be read."""
    other = HELDOUT_SPLIT.get(real.split or "")
    if real.kind != "dataset" or other is None or not Path(real.source).is_dir():
        return None
    try:
        ds = _load_dataset(real.source, real.size, progress, split=other)
        return _from_imageset(ds, "heldout", "dataset", real.size, resize, label)
    except ValueError:  # no such split next to it (a lone *_Data folder), or no image of that class
        return None


def resolve(obj: Any, role: str, *, size: int | None, n: int = 2000, seed: int = 0,
            resize: str = DEFAULT_RESIZE, batch_size: int = 64, progress: bool = False,
            label: str | None = None) -> EvalSet:
    """Turn any accepted input into an ``EvalSet`` at ``size`` px (None: the input's own size).

    Args:
        obj: folder / data set path, ``.npz`` fingerprint path, generator file (``.pt``) or a run or
            model folder with weights (``gan.rundir.find_weights``: the exported G_ema wins), an
            ``ImageSet``, a generator object (``generate(n, seed=, batch_size=)`` and ``resolution``),
            a ``Fingerprint``, a uint8 array, or an ``EvalSet`` (returned as is).
        role: "real", "fake" or "heldout" (used in messages).
        size: evaluation size in px.
        n, seed: how many samples to draw from a generator, and with which seed.
        resize: PIL filter for images of another size (``eval.images.RESIZE_MODES``).
        batch_size: generator batch size (does not change the samples).
        label: one class only (``--class``): a conditional generator draws that class, a labelled
            data set keeps that class's images; fingerprints and arrays carry no labels and are refused.
    """
    from eval.fingerprint import Fingerprint, load_fingerprint

    def unlabelled(what: str) -> ValueError:
        return ValueError(f"--class {label}: the {role} input is {what}, which holds no labels; give the "
                          f"labelled data set's folder")

    if resize not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {resize!r} (--resize); known: {', '.join(RESIZE_MODES)}")
    if isinstance(obj, EvalSet):
        if label is not None and obj.label != label:
            raise unlabelled(f"a prepared set of class {obj.label}")
        return obj
    if isinstance(obj, Fingerprint):
        if label is not None:
            raise unlabelled("a fingerprint")
        return obj.as_evalset(role, size)
    if _is_generator(obj):
        size = size or int(obj.resolution)
        return _from_generator(obj, role, f"<{type(obj).__name__}>", n, seed, size, resize, batch_size, label)
    if label is not None and (isinstance(obj, np.ndarray) or type(obj).__name__ == "Tensor"):
        raise unlabelled("an image array")
    if isinstance(obj, np.ndarray) or type(obj).__name__ == "Tensor":
        imgs = as_nhwc_uint8(obj, f"{role} images")
        native = imgs.shape[1]
        size = size or native
        mode = "none" if imgs.shape[1:3] == (size, size) else f"pil-{resize}"
        imgs = resize_images(imgs, size, resize)
        return EvalSet(role=role, kind="array", source="<array>", images=imgs,
                       names=[str(i) for i in range(len(imgs))], size=size, native_resolution=native,
                       resize=mode)
    if _is_imageset(obj):
        return _from_imageset(obj, role, "dataset", size or int(getattr(obj, "size", 0) or 64), resize, label)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if not path.exists():
            raise ValueError(f"{role} input {str(path)!r} does not exist")
        if path.is_file() and path.suffix == ".npz":
            if label is not None:
                raise unlabelled(f"a fingerprint ({path})")
            return load_fingerprint(path).as_evalset(role, size)
        if path.is_file() and path.suffix == ".safetensors":
            ds = _read_cache(path)
            return _from_imageset(ds, role, "dataset", size or int(ds.size), resize, label)
        from gan.rundir import find_weights, is_weights_source  # here: importing gan imports torch

        if is_weights_source(path):  # a run folder: its weights, not a folder of images
            path = find_weights(path)
        if path.is_file() and path.suffix in (".pt", ".pth"):
            try:
                from gan import load_generator
            except ImportError as e:  # pragma: no cover
                raise ValueError(f"loading generator {path} needs gan.load_generator ({e})") from e
            G = load_generator(str(path), device="cpu")
            size = size or int(G.resolution)
            return _from_generator(G, role, str(path.resolve()), n, seed, size, resize, batch_size, label)
        if path.is_file():
            raise ValueError(f"{role} input {str(path)!r}: expected a folder, a fingerprint (.npz), a generator "
                             f"(.pt) or a gan.data cache (.safetensors)")
        size = size or 64
        ds = _load_dataset(str(path), size, progress)
        kind = "dataset" if getattr(ds, "layout", "folder") != "folder" else "folder"
        es = _from_imageset(ds, role, kind, size, resize, label)
        if es.skipped and progress:
            print(f"{role}: skipped {es.skipped} unreadable file(s) in {path}", file=sys.stderr)
        return es
    raise ValueError(f"cannot evaluate {role} input of type {type(obj).__name__}: expected a folder, "
                     f"data set, generator (.pt), fingerprint (.npz) or uint8 array")
