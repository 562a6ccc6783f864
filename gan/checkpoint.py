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
import re
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from gan.config import FORMAT_VERSION
from gan.fileio import atomic_write

KIND_TRAIN = "lesiongan-training-checkpoint"
KIND_GENERATOR = "lesiongan-generator"
# What each kind must hold beyond kind, version, model and config: (key, type).
REQUIRED = {
    KIND_TRAIN: (("G", dict), ("D", dict), ("G_ema", dict), ("opt", dict), ("nimg", int), ("phase", int),
                 ("time_s", (int, float)), ("data_epoch", int), ("data_pos", int), ("rng", dict)),
    KIND_GENERATOR: (("G_ema", dict),),
}
_RNG_KEYS = ("noise", "aug", "torch")


def save(obj: dict, path: str | os.PathLike) -> None:
    """Atomically ``torch.save`` a checkpoint dict.

    Raises:
        gan.fileio.WriteError: the file could not be written (a full disk...): the message names it
            and says that its previous version is intact.
    """
    def write(f):
        try:
            torch.save(obj, f)
        except RuntimeError as e:  # torch's zip writer reports a failed write (full disk) this way
            if "inline_container" not in str(e) and "PytorchStreamWriter" not in str(e):
                raise
            raise OSError(f"torch's writer failed, is the disk full? {error_line(e)}") from None

    atomic_write(path, write)


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
    # torch.save writes a zip archive; anything else (a raw pickle, random bytes, a legacy file) is
    # refused before any unpickler sees it.
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable PyTorch checkpoint (not the whole zip archive torch.save "
                         f"writes: truncated, damaged, a raw pickle or another format); refused unread, for safety")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged file can fail anywhere inside the unpickler
        msg = str(e)
        # "Unsupported global: GLOBAL x.y", or for a blocked module (os, subprocess...) "Trying to load
        # unsupported GLOBAL posix.system whose module posix is blocked."
        found = re.search(r"unsupported (?:global: )?GLOBAL (\S+)", msg, re.IGNORECASE)
        if isinstance(e, pickle.UnpicklingError) and found:
            raise ValueError(f"{path}: refused to load, for safety: it holds {found.group(1)}, not only tensors "
                             f"and plain values (a pickle that can run code); only LesionGAN checkpoints are "
                             f"read, and nothing in it was run") from None
        raise ValueError(f"{path}: not a readable PyTorch checkpoint (truncated, damaged, or holding more than "
                         f"tensors and plain values): {torch_load_reason(e)}") from None
    if not isinstance(ckpt, dict) or ckpt.get("kind") not in (KIND_TRAIN, KIND_GENERATOR):
        raise ValueError(f"{path}: not a LesionGAN checkpoint (no 'kind' field naming one)")
    if ckpt["kind"] not in kinds:
        raise ValueError(f"{path}: is a {ckpt['kind']}, expected one of {list(kinds)}")
    if ckpt.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {ckpt.get('version')} is not supported "
                         f"(this LesionGAN reads version {FORMAT_VERSION})")
    missing = [k for k, t in REQUIRED[ckpt["kind"]] if not isinstance(ckpt.get(k), t)]
    if ckpt["kind"] == KIND_TRAIN and "rng" not in missing:
        missing += [f"rng.{k}" for k in _RNG_KEYS if not isinstance(ckpt["rng"].get(k), torch.Tensor)]
    if missing:
        raise ValueError(f"{path}: incomplete {ckpt['kind']}: missing or malformed {', '.join(missing)}")
    from gan.config import RunConfig

    try:
        info = ckpt.get("info")
        ckpt["info"] = json.loads(info) if isinstance(info, str) else dict(info or {})
        config = ckpt.get("config")
        config = RunConfig.from_json(config) if isinstance(config, str) else RunConfig.from_dict(config)
        ckpt["config"] = config.located(Path(path).parent)  # a generator file's paths are relative to its folder
    except (ValueError, TypeError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: its run config is unusable: {e}") from None
    from gan.data.labels import class_name_problem

    for name in getattr(ckpt["config"].model_cfg, "class_names", ()) or ():
        why = class_name_problem(name)
        if why is not None:  # class names become folder names (gan.synthesize --layout imagefolder)
            raise ValueError(f"{path}: refused: its class name {name!r} {why}, so it cannot name a folder")
    return ckpt


def check_resumable(ckpt: dict, path: str | os.PathLike) -> None:
    """Check that a training checkpoint (as :func:`load` returns it) fits the model its own config
    describes, before any data is decoded: G, D and G_ema load into freshly built networks, the
    optimizer states of the saved phase into fresh optimizers (their moment tensors shaped like the
    parameters), the CPU random states into generators.

    Raises:
        ValueError: naming ``path`` and what does not fit.
    """
    config = ckpt["config"]
    spec, mcfg = config.spec, config.model_cfg
    what = "model config"
    try:
        G, D = spec.build(mcfg)
        for what, net, key in (("G_ema", G, "G_ema"), ("G", G, "G"), ("D", D, "D")):
            net.load_state_dict(ckpt[key])
        stage = spec.schedule(mcfg, int(ckpt["nimg"]))
        if int(ckpt["phase"]) == stage.phase:  # the loop restores optimizers only then (gan.loop)
            for name, opt in spec.prepare_phase(G, D, mcfg, stage).items():
                what = f"optimizer {name}"
                opt.load_state_dict(ckpt["opt"][name])
                for p, state in opt.state.items():
                    bad = [k for k, v in state.items() if torch.is_tensor(v) and v.dim() and v.shape != p.shape]
                    if bad:
                        raise ValueError(f"state {bad[0]} is {tuple(state[bad[0]].shape)} for a parameter of "
                                         f"{tuple(p.shape)}")
        for name in ("aug", "torch"):
            what = f"rng.{name}"
            torch.Generator().set_state(ckpt["rng"][name])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path}: cannot resume: its {what} does not fit its own {spec.name} config "
                         f"({error_line(e)})") from None


def export_generator(train_ckpt: dict, out: str | os.PathLike) -> Path:
    """Write the compact, generator-only file (G_ema + config + info) for shipping and sampling.

    Args:
        train_ckpt: a training checkpoint dict (as saved, or as :func:`load` returns it): needs
            ``model``, ``config`` (a RunConfig, its dict or its JSON), ``G_ema`` and ``info``.
        out: the file to write (atomically).
    """
    from gan.config import RunConfig

    info = train_ckpt.get("info") or {}
    info = json.loads(info) if isinstance(info, str) else dict(info)
    config = train_ckpt["config"]
    if isinstance(config, str):
        config = RunConfig.from_json(config)
    elif not isinstance(config, RunConfig):
        config = RunConfig.from_dict(config)
    out = Path(out)
    config = config.portable(out.parent).to_json()  # a file to share: no path of this machine
    state = {k: v.detach().cpu().contiguous() for k, v in train_ckpt["G_ema"].items()}
    info["exported"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    save({"kind": KIND_GENERATOR, "version": FORMAT_VERSION, "model": train_ckpt["model"],
          "config": config, "G_ema": state, "info": json.dumps(info)}, out)
    return out


def error_line(e: BaseException) -> str:
    """The first line of an error, with its first detail when it only announces them
    (``Error(s) in loading state_dict for Generator:``)."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    return f"{lines[0]} {lines[1]}" if lines[0].endswith(":") and len(lines) > 1 else lines[0]


def torch_load_reason(e: BaseException) -> str:
    """What went wrong in ``torch.load``, without torch's advice to load the file unsafely."""
    msg = str(e)
    if "WeightsUnpickler error:" in msg:  # the reason follows torch's advice paragraph
        reason = msg.split("WeightsUnpickler error:", 1)[1]
        reason = reason.split("Check the documentation of torch.load", 1)[0]
        return " ".join(reason.split()) or type(e).__name__
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip() and "weights_only" not in ln
             and not ln.strip().startswith(("Weights only load failed", "Check the documentation of torch.load"))]
    return lines[0] if lines else type(e).__name__
