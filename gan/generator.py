"""Inference: ``load_generator(path)`` opens any LesionGAN checkpoint and returns G_ema, ready."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gan import checkpoint as ckpt_io
from gan.config import RunConfig
from gan.imageutil import to_uint8_hwc
from gan.models.base import count_params
from gan.nets import fuse_for_inference
from gan.precision import PRECISIONS, PrecisionChoice, asked, choose
from gan.rundir import find_weights

SAMPLING_BENCH_BATCH = 16  # latents per timed forward pass when precision="auto" measures


class LoadedGenerator:
    """A trained generator (G_ema) with the stage it was saved at.

    Attributes:
        net: the ``nn.Module`` in eval mode, as trained (its state_dict is the file's).
        fast_net: the network sampling runs: BatchNorm folded into the convolutions, channels-last,
            the 1x1-input and RGB-head transposed convolutions rewritten
            (:func:`gan.nets.fuse_for_inference`);
            equal to ``net`` up to float rounding.
        precision: ``"fp32"`` or ``"bf16"``, the arithmetic ``fast_net`` runs in.
        precision_reason: one line saying why (``"fp32: as asked"``, or what ``"auto"`` measured, e.g.
            ``"fp32: this CPU has no native bf16 (emulated bf16 is slower)"``).
        model_name: registry name (``"dcgan"``, ``"pggan"``, ``"pggan-seed"``).
        resolution: output side in px.
        alpha: fade-in weight of the newest block (1 unless saved mid fade-in).
        z_dim: latent size.
        num_params: parameters of the generator.
        config: the resolved :class:`~gan.config.RunConfig` the file carries.
        info: images seen (``nimg``), hardware, training time, dates...
        path: the file it came from.
        class_names: the classes of a conditional model, in index order ([] for an unconditional one).
    """

    def __init__(self, net: nn.Module, model_name: str, resolution: int, alpha: float, z_dim: int,
                 config: RunConfig, info: dict, path: Path, fuse: bool = True,
                 precision: str | PrecisionChoice = "fp32"):
        self.net = net.eval().requires_grad_(False)
        choice = precision if isinstance(precision, PrecisionChoice) else asked(precision)
        precision = choice.precision
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}")
        if precision == "bf16" and not fuse:
            raise ValueError("precision='bf16' runs on the fused fast path; fuse=False samples the network "
                             "exactly as trained, in fp32")
        self.precision, self.precision_reason = precision, choice.reason
        self._dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        self.fast_net = fuse_for_inference(self.net, self._dtype) if fuse else self.net
        self.model_name, self.resolution, self.alpha, self.z_dim = model_name, resolution, alpha, z_dim
        self.config, self.info, self.path = config, info, path
        self.num_params = count_params(net)
        self.class_names: list[str] = list(getattr(config.model_cfg, "class_names", ()) or ())

    @property
    def conditional(self) -> bool:
        return bool(self.class_names)

    def class_index(self, label: int | str) -> int:
        """The index of a class given by name or index; ValueError listing the known classes."""
        if not self.class_names:
            raise ValueError(f"{self.path}: this {self.model_name} is unconditional: it takes no class")
        if isinstance(label, str):
            if label not in self.class_names:
                raise ValueError(f"unknown class {label!r}; this model knows {', '.join(self.class_names)}")
            return self.class_names.index(label)
        i = int(label)
        if not 0 <= i < len(self.class_names):
            raise ValueError(f"class index {i} out of range: this model knows {len(self.class_names)} classes "
                             f"({', '.join(self.class_names)})")
        return i

    def labels_for(self, n: int, labels=None, seed: int = 0) -> torch.Tensor | None:
        """Class indices (long, on the device) for ``n`` images of a conditional model.

        Args:
            n: number of images.
            labels: one class for all (name or index), or one per image (names or indices); None
                draws classes in the training data's class shares (uniform when the file does not
                record them), from ``seed``: label ``i`` of a seed does not depend on ``n``.
            seed: drives the draw when ``labels`` is None.

        Returns:
            None for an unconditional model (which refuses ``labels``).
        """
        if not self.class_names:
            if labels is not None:
                raise ValueError(f"{self.path}: this {self.model_name} is unconditional: it takes no labels")
            return None
        if labels is None:
            counts = self.config.data.class_counts or {}
            w = torch.tensor([float(counts.get(c, 0)) for c in self.class_names])
            w = w if w.sum() > 0 else torch.ones(len(self.class_names))
            cdf = torch.cumsum(w / w.sum(), 0)
            u = torch.rand(n, generator=torch.Generator().manual_seed(int(seed) + 7_919))
            idx = torch.searchsorted(cdf, u, right=True).clamp_(max=len(self.class_names) - 1)
        elif isinstance(labels, (str, int, np.integer)):
            idx = torch.full((n,), self.class_index(labels), dtype=torch.long)
        else:
            seq = labels.tolist() if isinstance(labels, (torch.Tensor, np.ndarray)) else list(labels)
            if len(seq) != n:
                raise ValueError(f"{len(seq)} labels for {n} images")
            idx = torch.tensor([self.class_index(v) for v in seq], dtype=torch.long)
        return idx.to(self.device)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` latents for ``seed`` (N(0, 1), drawn on the CPU so every device gets the same ones).
        Latent ``i`` of a seed does not depend on ``n``: ``latents(8, s)[:4] == latents(4, s)``."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        g = torch.Generator().manual_seed(int(seed))
        # torch's CPU normal sampler fills blocks of 16 and redraws a tensor's tail when its size is not a
        # multiple of 16: draw whole blocks and cut, so that a longer draw starts with every shorter one.
        size = n * self.z_dim
        z = torch.randn(max(16, -(-size // 16) * 16), generator=g)[:size]
        return z.view(n, self.z_dim).to(self.device)

    @torch.inference_mode()
    def synthesize(self, z: torch.Tensor, batch_size: int = 256, labels=None, seed: int = 0) -> np.ndarray:
        """Images for latents ``z`` (N, z_dim) as uint8 numpy (N, H, W, 3); ``labels`` (conditional
        models) as in :meth:`labels_for`, ``seed`` drives the class draw when they are None."""
        y = self.labels_for(len(z), labels, seed)
        out = np.empty((len(z), self.resolution, self.resolution, 3), dtype=np.uint8)
        for i in range(0, len(z), batch_size):
            kw = {} if y is None else {"labels": y[i:i + batch_size]}
            x = self.fast_net(z[i:i + batch_size].to(self.device, self._dtype), resolution=self.resolution,
                              alpha=self.alpha, **kw)
            out[i:i + len(x)] = to_uint8_hwc(x)
        return out

    def generate(self, n: int, seed: int = 0, batch_size: int = 256, labels=None) -> np.ndarray:
        """``n`` images for ``seed`` as uint8 numpy (N, H, W, 3); the same seed (and labels) give the
        same images. A conditional model takes ``labels``: a class name or index for all images, or
        one per image; None draws classes in the training data's shares."""
        return self.synthesize(self.latents(n, seed), batch_size, labels=labels, seed=seed)

    def __repr__(self) -> str:
        return (f"LoadedGenerator({self.model_name}, {self.resolution} px, alpha={self.alpha:g}, {self.precision}, "
                f"{self.num_params:,} params, {self.info.get('nimg', '?')} images seen, from {self.path})")


def load_generator(path: str | os.PathLike, device: str | torch.device = "cpu", fuse: bool = True,
                   precision: str = "fp32") -> LoadedGenerator:
    """Open a training checkpoint or an exported generator and return its G_ema for inference.

    Args:
        path: a ``checkpoint.pt`` or ``generator.pt``, or a run folder holding one (the exported
            generator is preferred).
        device: where the network goes (CPU unless told otherwise).
        fuse: sample through the BatchNorm-folded, channels-last copy of the network (faster; equal
            up to float rounding). ``False`` samples through the network exactly as trained.
        precision: ``"fp32"`` (default; what ``eval.run`` scores), ``"bf16"`` (within a few grey levels
            of fp32; faster only where the device runs bf16 natively) or ``"auto"`` (the dashboard's
            preview): fp32 where bf16 is not native; where it is, whichever of the two samples this
            network faster, measured once per machine and cached (:mod:`gan.precision`).
            ``G.precision_reason`` says what was chosen and why.

    Returns:
        A :class:`LoadedGenerator`; ``G.generate(n, seed)`` gives uint8 (N, H, W, 3) images.

    Raises:
        ValueError: the file is missing, truncated, of another kind, holds code, or its config does
            not fit its weights.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device = check_device(device)
    path = find_weights(path)
    ckpt = ckpt_io.load(path, map_location="cpu")
    config = ckpt["config"]
    spec, mcfg = config.spec, config.model_cfg
    try:
        net = spec.build_generator(mcfg)
        net.load_state_dict(ckpt["G_ema"])
    except (KeyError, TypeError, RuntimeError, ValueError) as e:
        raise ValueError(f"{path}: checkpoint does not match its model config: {ckpt_io.error_line(e)}") from None
    bad = [k for k, v in ckpt["G_ema"].items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"{path}: refused: NaN or infinite values in {len(bad)} of the generator's tensors "
                         f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}), so it would draw blank "
                         f"images; the run diverged before this file was saved: use an earlier checkpoint")
    info = dict(ckpt.get("info") or {})
    if ckpt["kind"] == ckpt_io.KIND_TRAIN:
        info.setdefault("nimg", int(ckpt["nimg"]))
    try:
        stage = spec.schedule(mcfg, int(info.get("nimg", 0)))
        resolution = int(info.get("resolution", stage.resolution))
        alpha = float(info.get("alpha", stage.alpha))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: its info block is unusable ({e})") from None
    _check_stage(net, path, spec.name, mcfg.z_dim, resolution, alpha)
    net = net.to(device)
    if precision == "auto":
        precision = (sampling_precision(net, spec.name, mcfg.z_dim, resolution, alpha, device) if fuse else
                     PrecisionChoice("fp32", "fp32: fuse=False samples the network exactly as trained"))
    return LoadedGenerator(net, spec.name, resolution, alpha, mcfg.z_dim, config, info, path, fuse, precision)


def sampling_run(net: nn.Module, precision: str, z_dim: int, resolution: int, alpha: float,
                 device: torch.device):
    """A function that runs ``net``'s sampling fast path once in ``precision`` over
    :data:`SAMPLING_BENCH_BATCH` latents: what ``precision="auto"`` times."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    fast = fuse_for_inference(net.eval(), dtype)
    z = torch.randn(SAMPLING_BENCH_BATCH, z_dim, generator=torch.Generator().manual_seed(0)).to(device, dtype)
    kw = {"labels": torch.zeros(len(z), dtype=torch.long, device=device)} if getattr(net, "num_classes", 0) else {}

    @torch.inference_mode()
    def run():
        return fast(z, resolution=resolution, alpha=alpha, **kw)
    return run


def sampling_precision(net: nn.Module, model: str, z_dim: int, resolution: int, alpha: float,
                       device: torch.device) -> PrecisionChoice:
    """What ``precision="auto"`` samples ``net`` in on ``device`` (:func:`gan.precision.choose`)."""
    what = f"sampling {model} {resolution}px alpha {alpha:g} {count_params(net)} params batch {SAMPLING_BENCH_BATCH}"
    return choose(device, what, lambda p: sampling_run(net, p, z_dim, resolution, alpha, device))


def check_device(device: str | torch.device) -> torch.device:
    """The ``torch.device`` for ``device``, checked to exist on this machine.

    Raises:
        ValueError: ``"DEVICE: why"`` for a string torch does not know, or a CUDA device where there
            is none (or fewer GPUs than its index).
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:  # torch's own words for a device string it does not know
        raise ValueError(f"{device}: {str(e).splitlines()[0]}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{device}: CUDA is not available on this machine")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{device}: this machine has {torch.cuda.device_count()} GPU(s)")
    elif dev.type not in ("cpu", "mps") or (dev.type == "mps" and not torch.backends.mps.is_available()):
        raise ValueError(f"{device}: not a device this machine offers (cpu or cuda)")
    return dev


def _check_stage(net: nn.Module, path: Path, model: str, z_dim: int, resolution: int, alpha: float) -> None:
    """The file's info block names a stage (resolution, fade-in alpha) its network can draw: one
    latent through it gives one image of that size."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"{path}: info alpha {alpha} is outside [0, 1]")
    # A conditional network draws the same shapes for every class: class 0 stands for all.
    labels = {"labels": torch.zeros(1, dtype=torch.long)} if getattr(net, "num_classes", 0) else {}
    try:
        with torch.inference_mode():
            shape = tuple(net.eval()(torch.zeros(1, z_dim), resolution=resolution, alpha=alpha, **labels).shape)
    except (RuntimeError, ValueError, KeyError, IndexError, AssertionError, TypeError) as e:
        shape = f"an error ({ckpt_io.error_line(e)})"
    if shape != (1, 3, resolution, resolution):
        raise ValueError(f"{path}: its info says {resolution} px (alpha {alpha:g}) but its {model} network "
                         f"gives {shape} there; the file is inconsistent")
