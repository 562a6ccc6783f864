"""The Inception stage shared by FID and KID: finding weights, building torch-fidelity's
Inception-v3 feature extractor, and the 2048-d pool features of a set.

Nothing here ever downloads: weights come from ``--inception-weights PATH`` or from the file
torch-fidelity itself would have cached (``<torch hub dir>/checkpoints/weights-inception-...pth``).
Without either, FID and KID are reported unavailable with ``NO_WEIGHTS``.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from eval.registry import MetricUnavailable

FEATURE_LAYER = "2048"  # pool3 features, the layer FID and KID use
EXTRACTOR_NAME = "inception-v3-compat"
NO_WEIGHTS = "no Inception weights (pass --inception-weights PATH; no network here)"


# basename of torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3 (a test checks they agree);
# spelled out so that finding no weights does not cost torch-fidelity's 2-3 s import.
WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"


def default_weights_path() -> Path:
    """Where torch-fidelity caches its Inception weights after a download."""
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILENAME


def find_weights(path: str | os.PathLike | None = None) -> Path | None:
    """The Inception weights file to use: ``path`` if given (must exist), else torch-fidelity's cached
    file if present, else None (never downloads)."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ValueError(f"--inception-weights {str(path)!r}: no such file")
        return p
    p = default_weights_path()
    return p if p.is_file() else None


@lru_cache(maxsize=8)
def _sha256(path: str, mtime: float, nbytes: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def weights_id(path: str | os.PathLike) -> str:
    """Short content hash of a weights file: fingerprints name the weights their features came from."""
    st = os.stat(path)
    return _sha256(str(Path(path).resolve()), st.st_mtime, st.st_size)


@lru_cache(maxsize=2)
def _extractor(path: str, wid: str):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    # torch-fidelity loads the file with weights_only=False; load it code-free first so that a
    # file holding anything but tensors is refused before that.
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        from gan.checkpoint import torch_load_reason

        raise ValueError(f"--inception-weights {path!r}: not a plain state_dict ({torch_load_reason(e)})") from None
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError(f"--inception-weights {path!r}: not a state_dict of tensors")
    try:
        return FeatureExtractorInceptionV3(EXTRACTOR_NAME, [FEATURE_LAYER], feature_extractor_weights_path=path)
    except RuntimeError as e:
        raise ValueError(f"--inception-weights {path!r}: does not fit torch-fidelity's Inception-v3 ({e})") from e


def extractor(path: str | os.PathLike):
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with the weights at ``path`` (cached)."""
    return _extractor(str(Path(path).resolve()), weights_id(path))


def inception_features(images: np.ndarray, weights: str | os.PathLike, batch_size: int = 64,
                       progress: bool = False, desc: str = "inception") -> np.ndarray:
    """float32 (N, 2048) pool features of uint8 NHWC ``images`` (resized to 299 px inside the network
    with torch-fidelity's TF1-compatible bilinear interpolation)."""
    from tqdm import tqdm

    net = extractor(weights)
    out = np.empty((len(images), 2048), np.float32)
    with torch.no_grad():
        for start in tqdm(range(0, len(images), batch_size), desc=desc, unit="batch", disable=not progress,
                          leave=False):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).permute(0, 3, 1, 2)
            (feat,) = net(x.contiguous())
            out[start:start + len(x)] = feat.numpy()
    return out


def require_weights(cfg) -> Path:
    """The weights ``cfg`` points at, or ``MetricUnavailable(NO_WEIGHTS)``."""
    p = find_weights(cfg.inception_weights)
    if p is None:
        raise MetricUnavailable(NO_WEIGHTS)
    return p


def set_features(s, weights: Path, cfg) -> np.ndarray:
    """A set's Inception features for these weights: from its fingerprint if it stores them, else
    computed from its images once per set in ``cfg.cache``."""
    wid = weights_id(weights)
    name = f"inception_pool3:{wid}"
    known = cfg.cache.names(s)
    if name not in known and s.images is None:
        have = [k.split(":", 1)[1] for k in known if k.startswith("inception_pool3:")]
        if have:
            raise MetricUnavailable(f"the {s.role} fingerprint's Inception features come from other weights "
                                    f"(sha256 {have[0]}, these are {wid})")
        raise MetricUnavailable(f"the {s.role} fingerprint has no Inception features (it was made "
                                f"without weights) and no images to compute them")
    return cfg.cache.get(s, name, lambda: inception_features(s.images, weights, cfg.batch_size, cfg.progress,
                                                             desc=f"inception {s.role}")).astype(np.float32)
