"""Atomic, code-free checkpoint files.

Two kinds, both ``torch.save`` dicts of tensors and plain Python values, loaded with
``torch.load(weights_only=True)`` so that a file can never execute code:

* training checkpoints (``KIND_TRAIN``): G, D, G_ema, both optimizers, images seen, RNG states, the
  resolved config (JSON) and the format version; what ``--resume`` needs.
* exported generators (``KIND_GENERATOR``): G_ema's weights, its config and an ``info`` block; what
  shipping and sampling need.
"""
from __future__ import annotations

import json
import os
import pickle
from datetime import datetime, timezone
from pathlib import Path

import torch

from gan.config import FORMAT_VERSION
from gan.fileio import atomic_write

KIND_TRAIN = "lesiongan-training-checkpoint"
KIND_GENERATOR = "lesiongan-generator"
def save(obj: dict, path: str | os.PathLike) -> None:
    """Atomically ``torch.save`` a checkpoint dict."""
    atomic_write(path, lambda f: torch.save(obj, f))


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu",
         kinds: tuple[str, ...] = (KIND_TRAIN, KIND_GENERATOR)) -> dict:
    """Load a LesionGAN file safely and check what it is.

    Args:
        path: the ``.pt`` file.
        map_location: where tensors go.
        kinds: the file kinds the caller accepts.

    Returns:
        The checkpoint dict, with ``config`` as a :class:`~gan.config.RunConfig` and ``info`` as a dict.

    Raises:
        ValueError: missing, truncated or foreign files, files holding code or objects other than
            tensors and plain values, unsupported format versions, configs that are not valid. The
            message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged file can fail anywhere inside the unpickler
        msg = str(e).strip()
        first = msg.splitlines()[0] if msg else type(e).__name__
        if isinstance(e, pickle.UnpicklingError) and ("global" in msg.lower() or "not allowed" in msg):
            raise ValueError(f"{path}: refused to load: the file holds objects other than tensors and plain "
                             f"values (possibly code); only LesionGAN checkpoints are accepted ({first})") from None
        raise ValueError(f"{path}: not a readable PyTorch file (truncated or another format): {first}") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") not in (KIND_TRAIN, KIND_GENERATOR):
        raise ValueError(f"{path}: not a LesionGAN checkpoint (no 'kind' field naming one)")
    if ckpt["kind"] not in kinds:
        raise ValueError(f"{path}: is a {ckpt['kind']}, expected one of {list(kinds)}")
    if ckpt.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {ckpt.get('version')} is not supported "
                         f"(this LesionGAN reads version {FORMAT_VERSION})")
    from gan.config import RunConfig

    try:
        info = ckpt.get("info")
        ckpt["info"] = json.loads(info) if isinstance(info, str) else dict(info or {})
        config = ckpt.get("config")
        ckpt["config"] = RunConfig.from_json(config) if isinstance(config, str) else RunConfig.from_dict(config)
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: its run config is unusable: {e}") from None
    return ckpt


def export_generator(train_ckpt: dict, out: str | os.PathLike) -> Path:
    """Write the compact, generator-only file (G_ema + config + info) for shipping and sampling.

    Args:
        train_ckpt: a training checkpoint dict (as saved, or as :func:`load` returns it): needs
            ``model``, ``config`` (a RunConfig, its dict or its JSON), ``G_ema`` and ``info``.
        out: the file to write (atomically).
    """
    info = train_ckpt.get("info") or {}
    info = json.loads(info) if isinstance(info, str) else dict(info)
    config = train_ckpt["config"]
    if hasattr(config, "to_json"):
        config = config.to_json()
    elif not isinstance(config, str):
        config = json.dumps(config)
    state = {k: v.detach().cpu().contiguous() for k, v in train_ckpt["G_ema"].items()}
    info["exported"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out = Path(out)
    save({"kind": KIND_GENERATOR, "version": FORMAT_VERSION, "model": train_ckpt["model"],
          "config": config, "G_ema": state, "info": json.dumps(info)}, out)
    return out
