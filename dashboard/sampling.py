"""Generation for the pages: load a generator, images per seed, a latent interpolation, a ZIP of PNGs.

Torch is imported inside the functions, so importing this module stays cheap.
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

MAX_COUNT = 128  # images per Generate request; 64 at 64 px take well under a second on 2 cores
MAX_SEED = 2**31 - 1  # the largest seed the pages accept (numpy's legacy seeding range)
PREVIEW, EXACT = "auto", "fp32"  # load_generator precisions: bf16 where measured faster (pictures only), fp32


def load_generator(path: str | os.PathLike, precision: str = EXACT) -> Any:
    """Load a generator on the CPU with ``gan.load_generator``.

    ``EXACT`` (fp32, the pages' default) is what ``python -m eval.run`` and ``gan.sample`` use, and what
    every image and statistic on the pages is computed from. ``PREVIEW`` (``"auto"``) samples in bf16
    (within a few grey levels of fp32) only where the CPU runs bf16 natively and a one-off measurement
    of the model finds it faster, else in fp32; ``G.precision_reason`` says which and why. It is the
    Generate page's opt-in preview."""
    from gan import load_generator as _load

    return _load(path, device="cpu", precision=precision)


def cap_count(requested: int, cap: int = MAX_COUNT, seed: int = 0) -> tuple[int, str | None]:
    """Clamp a requested image count to [1, cap] and so that no seed passes :data:`MAX_SEED` (image i
    uses ``seed + i``); the message says what happened, None when nothing did."""
    requested = int(requested)
    room = MAX_SEED - int(seed) + 1
    if requested > room and room <= cap:
        return max(room, 1), (f"Asked for {requested} images from seed {seed}; showing {max(room, 1)}: seeds stop at "
                              f"{MAX_SEED}, the largest seed.")
    if requested > cap:
        return cap, f"Asked for {requested} images; showing {cap}, the most this page generates at once."
    if requested < 1:
        return 1, "Asked for fewer than one image; showing one."
    return requested, None


def seed_latents(G: Any, seeds: Sequence[int]):
    """One latent per seed, so image ``i`` is reproducible on its own from ``seeds[i]``."""
    import torch

    return torch.cat([G.latents(1, int(s)) for s in seeds], dim=0)


def class_names(G: Any) -> list[str]:
    """The classes of a conditional generator ([] for an unconditional one)."""
    return list(getattr(G, "class_names", []) or [])


def seed_labels(G: Any, seeds: Sequence[int], label: str | None) -> list[str] | None:
    """One class per image: ``label`` for all, or (None) each seed's own draw from the training class
    shares, so image ``i`` is reproducible from ``seeds[i]`` alone. None for an unconditional model."""
    names = class_names(G)
    if not names:
        return None
    if label is not None:
        return [label] * len(seeds)
    return [names[int(G.labels_for(1, None, seed=int(s))[0])] for s in seeds]


def _synthesize(G: Any, z: Any, labels: Sequence[str] | None = None) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return G.synthesize(z) if labels is None else G.synthesize(z, labels=list(labels))


def generate_images(G: Any, seeds: Sequence[int], label: str | None = None) -> np.ndarray:
    """uint8 (n, H, W, 3) images, one per seed, under ``torch.inference_mode``; a conditional model
    draws class ``label`` (None: each seed's class from the training class shares)."""
    return _synthesize(G, seed_latents(G, seeds), seed_labels(G, seeds, label))


def slerp(a: Any, b: Any, t: Any):
    """Spherical interpolation between latent batches ``a`` and ``b`` (shape (1, z)) at fractions ``t`` (k,)."""
    import torch

    a_n = a / a.norm(dim=-1, keepdim=True)
    b_n = b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    t = t.reshape(-1, 1).to(a)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate(G: Any, seed_a: int, seed_b: int, steps: int = 8, label: str | None = None) -> np.ndarray:
    """Images along the great circle between the latents of two seeds (``steps`` >= 2, both ends
    included); a conditional model keeps one class along the path (``label``, else seed a's class)."""
    import torch

    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    za, zb = G.latents(1, int(seed_a)), G.latents(1, int(seed_b))
    labels = seed_labels(G, [seed_a], label)
    return _synthesize(G, slerp(za, zb, torch.linspace(0, 1, steps)), labels * steps if labels else None)


def seed_filename(seed: int) -> str:
    return f"seed{int(seed):04d}.png"


# How a download lays its images out: gan.synthesize's layouts, in words for the page.
LAYOUTS = {"folder": "one folder (each file's class in the manifest)",
           "imagefolder": "a folder per class (torchvision ImageFolder)",
           "isic2017": "the ISIC 2017 training layout, with its ground-truth CSV"}


def layouts(G: Any) -> list[str]:
    """The layouts a download of ``G``'s images can take: a folder per class and the ISIC 2017 layout
    only for a conditional model (the second only when its classes are the challenge's)."""
    from gan.synthesize import ISIC2017_CLASSES

    names = class_names(G)
    if not names:
        return ["folder"]
    return ["folder", "imagefolder", *(["isic2017"] if set(names) <= set(ISIC2017_CLASSES) else [])]


def labelled_set(G: Any, model: str, weights: str | os.PathLike, sha256: str, seeds: Sequence[int],
                 label: str | None = None, layout: str = "folder") -> tuple[list, dict]:
    """The files of a download and its ``manifest.json``, in ``gan.synthesize``'s format (its items,
    layouts, file paths and manifest), so the set reads like one that command wrote: each file with its
    class and seed. Image ``i`` is latent 0 of ``seeds[i]`` (``G.latents(1, seed)``) and, for a
    conditional model, class ``label`` or the seed's own draw from the training mix. The generator is
    named by its file name and SHA-256, and the training data by its folder's name: no server path."""
    import uuid

    from gan import synthesize as S

    seeds = [int(s) for s in seeds]
    labels = seed_labels(G, seeds, label) or [None] * len(seeds)
    items = [S.Item(seed_filename(s), c, s, 0) for s, c in zip(seeds, labels)]
    S.check_layout(layout, class_names(G), items)
    m = S.manifest(G, Path(weights), items, layout, G.resolution, seeds[0] if seeds else 0,
                   "the LesionGAN dashboard's Generate page", uuid.uuid4().hex)
    cfg = m["generator"]["config"]
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else None
    if data and data.get("path"):
        cfg["data"] = {**data, "path": os.path.basename(str(data["path"]).rstrip("/"))}
    m["generator"].update(file=os.path.basename(str(weights)), sha256=sha256, dashboard_model=model)
    m["seed_rule"] = ("image i is latent 0 of its own seed: gan.load_generator(generator).latents(1, seed); a class "
                      "drawn from the training mix is labels_for(1, None, seed)" if label is None else
                      f"image i is latent 0 of its own seed: gan.load_generator(generator).latents(1, seed); class {label}")
    m["support_files"] = S.support_files(layout)[1:]  # the challenge's CSV; no README (the manifest says it all)
    return items, m


def zip_set(images: np.ndarray, items: Sequence, manifest: dict) -> bytes:
    """A ZIP of a labelled set (:func:`labelled_set`): each image at its manifest path, the ISIC 2017
    layout's ground-truth CSV, and ``manifest.json``."""
    import json

    from gan import synthesize as S

    if len(images) != len(items):
        raise ValueError(f"{len(images)} images but {len(items)} files")
    buf = io.BytesIO()
    # PNGs are already compressed: storing them is as small and much faster than deflating again.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for img, entry in zip(images, manifest["files"]):
            zf.writestr(entry["file"], png_bytes(img))
        if manifest["layout"] == "isic2017":
            zf.writestr(S.ISIC2017_CSV, S.ground_truth_csv(list(items)))
        zf.writestr(S.MANIFEST, json.dumps(manifest, indent=1) + "\n")
    return buf.getvalue()


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file (the generator the images came from)."""
    from gan.fileio import sha256_file

    return sha256_file(path)
