"""The dermoscopy encoder (:mod:`eval.encoder`) as a torch-fidelity feature extractor, and the features
and statistics of an image set through it.

    from eval.metrics.derm_extractor import EXTRACTOR_NAME, derm_features
    f = derm_features(images, "checkpoints/derm-encoder/encoder.pt")     # float32 (N, 128)

:class:`FeatureExtractorDerm` is registered with ``torch_fidelity.register_feature_extractor`` under
``EXTRACTOR_NAME`` when this module is imported, so ``torch_fidelity.calculate_metrics(...,
feature_extractor="lesiongan-derm", feature_extractor_weights_path=ENCODER_FILE)`` works as well.
It takes what torch-fidelity passes to every extractor, uint8 NCHW tensors, and gives the encoder's
128-d embedding (``"embedding"``, the layer for FID, KID and precision/recall) or its logits
(``"logits"``). Images not at the encoder's 64 px are resized to it inside ``forward`` by
:func:`eval.images.resize_images` with its default mode, ``lanczos`` (the resize every LesionGAN
metric uses).

This module imports torch-fidelity (2-3 s); :mod:`eval.metrics.derm` imports it only when a derm
metric runs.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torch_fidelity import register_feature_extractor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.helpers import vassert
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from eval.encoder import load_encoder, to_input
from eval.images import as_nhwc_uint8, resize_images

EXTRACTOR_NAME = "lesiongan-derm"
LAYER_EMBEDDING = "embedding"  # the 128-d penultimate layer: the feature space of the *_derm metrics
LAYER_LOGITS = "logits"        # the lesion-type head (HAM10000's seven classes)


class FeatureExtractorDerm(FeatureExtractorBase):
    """torch-fidelity feature extractor of a LesionGAN dermoscopy encoder.

    Args:
        name: the registered name (``EXTRACTOR_NAME``).
        features_list: layers to return, from ``("embedding", "logits")``.
        feature_extractor_weights_path: the encoder file (``encoder.pt``) or its folder; required
            (there is nothing to download).
    """

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        vassert(feature_extractor_weights_path is not None,
                f"{name} needs feature_extractor_weights_path: the encoder file (e.g. checkpoints/derm-encoder)")
        enc = load_encoder(feature_extractor_weights_path)
        self.net = enc.net
        self.size, self.resize = enc.config.size, enc.resize
        self.sha256, self.metric_version = enc.sha256, enc.metric_version
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return LAYER_EMBEDDING, LAYER_LOGITS

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return {"fid": LAYER_EMBEDDING, "kid": LAYER_EMBEDDING, "prc": LAYER_EMBEDDING, "isc": LAYER_LOGITS}[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 64, 64, dtype=torch.uint8)

    def forward(self, x):
        vassert(torch.is_tensor(x) and x.dtype == torch.uint8 and x.dim() == 4 and x.shape[1] == 3,
                "Expecting image as torch.Tensor with dtype=torch.uint8, shape N x 3 x H x W")
        if tuple(x.shape[2:]) != (self.size, self.size):
            nhwc = np.ascontiguousarray(x.permute(0, 2, 3, 1).cpu().numpy())
            x = torch.from_numpy(resize_images(nhwc, self.size, self.resize)).permute(0, 3, 1, 2).to(x.device)
        features, logits = self.net(to_input(x.contiguous()))
        out = {LAYER_EMBEDDING: features.float(), LAYER_LOGITS: logits.float()}
        return tuple(out[k] for k in self.features_list)


def register() -> None:
    """Register :class:`FeatureExtractorDerm` with torch-fidelity (once per process)."""
    if EXTRACTOR_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(EXTRACTOR_NAME, FeatureExtractorDerm)


register()


class _Images(Dataset):
    """uint8 NHWC images as the uint8 CHW tensors a torch-fidelity input data set yields."""

    def __init__(self, images: np.ndarray):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.images[i]).permute(2, 0, 1).contiguous()


@lru_cache(maxsize=2)
def _extractor(path: str, mtime_ns: int, nbytes: int) -> FeatureExtractorDerm:
    return create_feature_extractor(EXTRACTOR_NAME, [LAYER_EMBEDDING], cuda=False, verbose=False,
                                    feature_extractor_weights_path=path, feature_extractor_compile=False)


def extractor(path: str | os.PathLike) -> FeatureExtractorDerm:
    """torch-fidelity's instance of the registered extractor for the encoder file ``path`` (cached
    while the file is unchanged)."""
    p = Path(path).resolve()
    st = p.stat()
    return _extractor(str(p), st.st_mtime_ns, st.st_size)


def derm_features(images: np.ndarray, encoder_file: str | os.PathLike, batch_size: int = 64,
                  progress: bool = False) -> np.ndarray:
    """float32 (N, D) encoder embeddings of uint8 images (NHWC or NCHW, any size: resized to the
    encoder's 64 px with lanczos), extracted by torch-fidelity's ``get_featuresdict_from_dataset``
    through the registered extractor. Does not depend on ``batch_size`` beyond float rounding."""
    fe = extractor(encoder_file)
    x = as_nhwc_uint8(images, "derm encoder input")
    if len(x) == 0:
        return np.zeros((0, fe.net.head.in_features), np.float32)
    # save_cpu_ram: no DataLoader worker processes (the images are in memory already).
    out = get_featuresdict_from_dataset(_Images(x), fe, batch_size, cuda=False, save_cpu_ram=True, verbose=progress)
    return out[LAYER_EMBEDDING].numpy().astype(np.float32, copy=False)


def derm_statistics(features: np.ndarray) -> dict:
    """torch-fidelity's ``fid_features_to_statistics``: {"mu" float32 (D,), "sigma" float64 (D, D)}."""
    from eval.metrics.fid import fid_statistics

    return fid_statistics(features)
