"""The dermoscopy encoder: a small ResNet trained from scratch on HAM10000's seven diagnoses at 64 px,
whose 128-d penultimate layer is the feature space of the ``*_derm`` metrics (and whose head is a
lesion-type classifier).

    enc = load_encoder("checkpoints/derm-encoder")   # or .../encoder.pt; no flags, no code run
    f = enc.features(images)          # uint8 NHWC (or NCHW) -> (N, 128) float32
    p = enc.predict_proba(images)     # (N, 7), columns in enc.class_names order
    enc.sha256, enc.metric_version    # what every result computed with it names ("derm1")

Training (:mod:`eval.encoder_train`), from the command line::

    python -m eval.encoder_train train --data ../shared/data/ham10000 --out runs/derm-encoder
    python -m eval.encoder_train train --resume runs/derm-encoder/00000-derm-encoder-ham10000-64
    python -m eval.encoder_train ship RUN --to checkpoints/derm-encoder --isic2017 ../shared/data/isic2017

**Resize.** The network sees 64x64 RGB. Images of another size are centre-cropped to a square and
resized to 64 px by :func:`eval.images.resize_images` with its default mode, ``"lanczos"`` (PIL
LANCZOS): the filter :mod:`gan.data` uses for real images and every other metric uses by default.
Pixels are scaled to [-1, 1]; nothing else is normalised (colour is diagnostic, and the metric must
see colour shifts).

**Files.** ``encoder.pt`` is a ``torch.save`` dict of tensors and plain values (kind
``"lesiongan-encoder"``: the network's state_dict and its :class:`EncoderConfig` as JSON), loaded
with ``torch.load(weights_only=True)``. A run folder and the shipped ``checkpoints/derm-encoder/``
name their files ``encoder-*`` (``FILES``), not ``config.json``/``stats.jsonl``, so that the model
folders' discovery (:func:`gan.rundir.discover`) never takes the encoder for a GAN.

A retrained encoder is a new metric version (``derm2``, ...), never a silent replacement: results
name the version and the file's SHA-256.
"""
from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan.fileio import sha256_file
from eval.images import DEFAULT_RESIZE, as_nhwc_uint8, resize_images

KIND_ENCODER = "lesiongan-encoder"
KIND_TRAINING = "lesiongan-encoder-training"
FORMAT_VERSION = 1
METRIC_VERSION = "derm1"
INPUT_SIZE = 64
# HAM10000's seven diagnoses in gan.data's class order (gan.data.labels.class_order): class index = position.
HAM_CLASSES = ("melanoma", "nevus", "basal_cell_carcinoma", "actinic_keratosis", "benign_keratosis",
               "dermatofibroma", "vascular_lesion")

# The files of an encoder run folder and of the shipped folder.
ENCODER, CHECKPOINT, CONFIG, STATS, SPLIT, MODEL_CARD = ("encoder.pt", "encoder-checkpoint.pt", "encoder-config.json",
                                                         "encoder-stats.jsonl", "encoder-split.json", "MODEL_CARD.md")
FILES = {
    CONFIG: "the resolved EncoderConfig and EncoderTrainConfig, written before the first step",
    STATS: "one JSON line per epoch: loss, held-out balanced accuracy, per-class recall, melanoma AUC",
    SPLIT: "the lesion_id split: held-out lesion ids and image ids, and the counts",
    CHECKPOINT: "network, optimizer, epoch and configs after the last finished epoch: what --resume reads",
    ENCODER: "the trained network alone with its config: what load_encoder reads",
    MODEL_CARD: "the model card (python -m eval.encoder_train ship)",
}

# Architectures measured for derm1 (see the model card): widths and residual blocks per stage,
# and the stride of the stem convolution.
ARCHS = {
    "resnet18": dict(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), stem_stride=1),
    "resnet18-s2": dict(widths=(64, 128, 256, 512), blocks=(2, 2, 2, 2), stem_stride=2),
    "resnet10-w32": dict(widths=(32, 64, 128, 256), blocks=(1, 1, 1, 1), stem_stride=1),
    "resnet18-w32": dict(widths=(32, 64, 128, 256), blocks=(2, 2, 2, 2), stem_stride=1),
    "resnet18-w32-s2": dict(widths=(32, 64, 128, 256), blocks=(2, 2, 2, 2), stem_stride=2),
}


@dataclass(frozen=True)
class EncoderConfig:
    """The network, and what its outputs mean; saved inside ``encoder.pt``.

    Args:
        arch: a name for the shape below (``ARCHS`` holds the measured ones).
        widths: channels of each ResNet stage (each after the first halves the resolution).
        blocks: residual blocks (two 3x3 convolutions each) per stage.
        stem_stride: stride of the first 3x3 convolution (2 halves the 64 px input at once).
        embed_dim: size of the feature vector (the penultimate layer: global average pool, then a
            linear layer and BatchNorm).
        dropout: dropout on the features before the head, in training only.
        class_names: the head's classes, in output order.
        size: input side in pixels.
        metric_version: the name results give to this encoder's feature space.
        format: version of this config's and the file's layout.
    """

    arch: str = "resnet18-w32-s2"
    widths: tuple[int, ...] = (32, 64, 128, 256)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    stem_stride: int = 2
    embed_dim: int = 128
    dropout: float = 0.2
    class_names: tuple[str, ...] = HAM_CLASSES
    size: int = INPUT_SIZE
    metric_version: str = METRIC_VERSION
    format: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.blocks) or not self.widths:
            raise ValueError(f"encoder widths {self.widths} and blocks {self.blocks} must be non-empty and as long")
        if min(self.widths) < 1 or min(self.blocks) < 1 or self.embed_dim < 1 or self.stem_stride not in (1, 2):
            raise ValueError("encoder widths, blocks and embed_dim must be positive, stem_stride 1 or 2")
        if len(self.class_names) < 2:
            raise ValueError(f"the encoder needs at least two classes, got {list(self.class_names)}")

    @classmethod
    def for_arch(cls, arch: str, **changes) -> EncoderConfig:
        """The config of a measured architecture (``ARCHS``), with ``changes``."""
        if arch not in ARCHS:
            raise ValueError(f"--arch {arch!r}: known architectures are {', '.join(ARCHS)}")
        return cls(arch=arch, **ARCHS[arch], **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        from gan.configdict import config_from_dict

        return config_from_dict(cls, d, "encoder config")


class _Block(nn.Module):
    """A basic ResNet block: two 3x3 convolutions with BatchNorm, a projected shortcut when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class EncoderNet(nn.Module):
    """The network: stem, ResNet stages, global average pool, 128-d embedding, linear head.

    ``forward(x)`` takes float NCHW in [-1, 1] and returns ``(features, logits)``.
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        w0 = cfg.widths[0]
        self.stem = nn.Sequential(nn.Conv2d(3, w0, 3, cfg.stem_stride, 1, bias=False), nn.BatchNorm2d(w0),
                                  nn.ReLU(inplace=True))
        layers, cin = [], w0
        for i, (w, n) in enumerate(zip(cfg.widths, cfg.blocks)):
            for j in range(n):
                layers.append(_Block(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.stages = nn.Sequential(*layers)
        # The feature vector is linear + BatchNorm (no ReLU): no dead, constant dimensions in the
        # Fréchet statistics, and roughly unit scale on the training images.
        self.embed = nn.Sequential(nn.Linear(cin, cfg.embed_dim, bias=False), nn.BatchNorm1d(cfg.embed_dim))
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.embed_dim, len(cfg.class_names))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.stages(self.stem(x))
        f = self.embed(h.mean((2, 3)))
        return f, self.head(self.drop(f))


def to_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> the network's float input in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


class DermEncoder:
    """A trained encoder, ready to embed and classify uint8 images (what :func:`load_encoder` returns).

    Attributes:
        config: its :class:`EncoderConfig`.
        class_names: the columns of :meth:`predict_proba`.
        metric_version: ``config.metric_version`` ("derm1").
        sha256: SHA-256 of the file it was loaded from (None when built in memory).
        path: that file.
        resize: the resize mode for images not at ``config.size`` (``eval.images`` default, "lanczos").
    """

    def __init__(self, net: EncoderNet, config: EncoderConfig, path: Path | None = None, sha256: str | None = None):
        self.net = net.eval()
        self.config = config
        self.class_names = list(config.class_names)
        self.metric_version = config.metric_version
        self.path = path
        self.sha256 = sha256
        self.resize = DEFAULT_RESIZE

    def __repr__(self) -> str:
        return f"DermEncoder({self.config.arch}, {self.metric_version}, {self.path})"

    @property
    def dim(self) -> int:
        return self.config.embed_dim

    @torch.no_grad()
    def outputs(self, images, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Features and logits of ``images``.

        Args:
            images: uint8 RGB, NHWC or NCHW, numpy or torch (one HWC image is a batch of one); any
                size (see the module's note on resizing).
            batch_size: images per forward pass (results do not depend on it beyond float rounding).

        Returns:
            ``(features (N, embed_dim) float32, logits (N, classes) float32)``.
        """
        x = resize_images(as_nhwc_uint8(images), self.config.size, self.resize)
        feats, logits = [], []
        self.net.eval()
        for i in range(0, len(x), batch_size):
            batch = torch.from_numpy(x[i:i + batch_size]).permute(0, 3, 1, 2)
            f, y = self.net(to_input(batch))
            feats.append(f.float().numpy())
            logits.append(y.float().numpy())
        k = len(self.class_names)
        return (np.concatenate(feats) if feats else np.zeros((0, self.dim), np.float32),
                np.concatenate(logits) if logits else np.zeros((0, k), np.float32))

    def features(self, images, batch_size: int = 256) -> np.ndarray:
        """The (N, 128) float32 feature vectors (the penultimate layer) of uint8 images."""
        return self.outputs(images, batch_size)[0]

    def logits(self, images, batch_size: int = 256) -> np.ndarray:
        """The head's (N, classes) logits."""
        return self.outputs(images, batch_size)[1]

    def predict_proba(self, images, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, classes), columns in ``class_names`` order."""
        return softmax(self.logits(images, batch_size))


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


# -- files ------------------------------------------------------------------------------------


def save_encoder(net: EncoderNet, config: EncoderConfig, path: str | os.PathLike, info: dict | None = None) -> Path:
    """Write ``encoder.pt`` atomically: the state_dict (float32, contiguous) and the config as JSON."""
    from gan.checkpoint import save

    state = {k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.detach().cpu().contiguous()
             for k, v in net.state_dict().items()}
    path = Path(path)
    save({"kind": KIND_ENCODER, "version": FORMAT_VERSION, "config": json.dumps(config.to_dict()),
          "state": state, "info": json.dumps(info or {})}, path)
    return path


def load_file(path: str | os.PathLike, kinds: tuple[str, ...]) -> dict:
    """Load an encoder file (or training checkpoint) safely: a zip archive that ``torch.load``
    reads with ``weights_only=True`` (tensors and plain values only), of one of ``kinds``.

    Raises:
        ValueError: naming the file: missing, empty, not torch's zip format (a raw pickle, random
            bytes), holding objects that could run code, of another kind or format version.
    """
    from gan.checkpoint import torch_load_reason

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such encoder file")
    if path.stat().st_size == 0 or not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not an encoder file (empty, truncated, a raw pickle or another format); "
                         f"refused unread, for safety")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged file can fail anywhere inside the unpickler
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if isinstance(e, pickle.UnpicklingError) and found:
            raise ValueError(f"{path}: refused to load, for safety: it holds {found.group(1)}, not only tensors "
                             f"and plain values; nothing in it was run") from None
        raise ValueError(f"{path}: not a readable encoder file: {torch_load_reason(e)}") from None
    if not isinstance(d, dict) or d.get("kind") not in kinds:
        kind = d.get("kind") if isinstance(d, dict) else None
        raise ValueError(f"{path}: not a {' or '.join(kinds)} file (its kind: {kind!r})")
    if d.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: encoder format version {d.get('version')} is not supported (this reads "
                         f"{FORMAT_VERSION})")
    try:
        d["config"] = EncoderConfig.from_dict(json.loads(d["config"]))
        d["info"] = json.loads(d.get("info") or "{}")
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: its encoder config is unusable: {e}") from None
    return d


def build_net(config: EncoderConfig, state: dict, path: str | os.PathLike) -> EncoderNet:
    """The network of ``config`` with ``state`` loaded (ValueError naming ``path`` when they do not fit)."""
    net = EncoderNet(config)
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError) as e:
        from gan.checkpoint import error_line

        raise ValueError(f"{path}: its weights do not fit its own encoder config ({error_line(e)})") from None
    return net.eval()


def load_encoder(path: str | os.PathLike) -> DermEncoder:
    """Load a trained encoder, code-free and without flags.

    Args:
        path: ``encoder.pt``, or a folder holding one (``checkpoints/derm-encoder``, a run folder).

    Raises:
        ValueError: naming the file (see :func:`load_file`).
    """
    path = Path(path)
    if path.is_dir():
        path = path / ENCODER
    d = load_file(path, (KIND_ENCODER,))
    if not isinstance(d.get("state"), dict):
        raise ValueError(f"{path}: incomplete encoder file: no state dict")
    return DermEncoder(build_net(d["config"], d["state"], path), d["config"], path, sha256_file(path))

