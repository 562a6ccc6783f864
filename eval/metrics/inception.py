"""The Inception stage shared by FID and KID: finding (or fetching) weights, building torch-fidelity's
Inception-v3 feature extractor, and the 2048-d pool features of a set.

Weights come from ``--inception-weights PATH``, else from the file torch-fidelity caches
(``<torch hub dir>/checkpoints/weights-inception-...pth``). When that file is missing, it is
downloaded from torch-fidelity's own URL into that same place, as torch-fidelity would (torch hub's
``download_url_to_file``), with a timeout: ``DOWNLOAD_TIMEOUT_S`` for any network operation to answer
and ``DOWNLOAD_DEADLINE_S`` for the whole file, so a dead network cannot hang ``eval.run``. Offline
(``--offline`` or ``LESIONGAN_OFFLINE=1``) nothing is downloaded. When there are no weights, FID and KID
are reported unavailable with the reason (beginning "no Inception weights"); a failed download is
not tried again in the same process.
"""
from __future__ import annotations

import os
import socket
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from eval.registry import MetricUnavailable
from gan.fileio import sha256_file

FEATURE_LAYER = "2048"  # pool3 features, the layer FID and KID use
EXTRACTOR_NAME = "inception-v3-compat"
OFFLINE_ENV = "LESIONGAN_OFFLINE"
DOWNLOAD_TIMEOUT_S = 20.0   # seconds any network operation may stall (socket timeout)
DOWNLOAD_DEADLINE_S = 600.0  # seconds for the whole download (about 92 MB)
# The download's URL (torch_fidelity.feature_extractor_inceptionv3.URL_INCEPTION_V3; a test checks they agree).
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"


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
    return sha256_file(path)[:16]  # once per file version (path, mtime, size)


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


def offline_from_env() -> bool:
    """Whether ``$LESIONGAN_OFFLINE`` forbids downloads (1, true, yes or on)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


_failed: dict[str, str] = {}  # target path -> why its download failed (FID and KID wait once, not twice)


def download_weights(progress: bool = False, timeout: float = DOWNLOAD_TIMEOUT_S,
                     deadline: float = DOWNLOAD_DEADLINE_S) -> Path:
    """Download torch-fidelity's Inception-v3 weights into its cache (:func:`default_weights_path`)
    with torch hub's ``download_url_to_file``, as torch-fidelity would, but bounded in time; returns
    the file. ``MetricUnavailable`` saying why when it fails or runs past ``deadline`` seconds."""
    target = default_weights_path()
    if str(target) in _failed:
        raise MetricUnavailable(_failed[str(target)])
    outcome: dict[str, BaseException] = {}

    def fetch() -> None:
        # download_url_to_file opens its connection without a timeout: the socket default applies.
        # It writes a temporary file beside the target and moves it into place when complete.
        old = socket.getdefaulttimeout()
        socket.setdefaulttimeout(timeout)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(WEIGHTS_URL, str(target), progress=progress)
        except BaseException as e:  # noqa: BLE001 - reported below, whatever it was
            outcome["error"] = e
        finally:
            socket.setdefaulttimeout(old)

    worker = threading.Thread(target=fetch, name="inception-download", daemon=True)
    worker.start()
    worker.join(deadline)  # name resolution ignores socket timeouts: the deadline bounds it too
    why = None
    if worker.is_alive():
        why = f"the download did not finish in {deadline:.0f} s"
    elif "error" in outcome:
        why = download_failure(outcome["error"])
    elif not target.is_file():
        why = "the download left no file"
    if why is not None:
        _failed[str(target)] = (f"no Inception weights: none in torch-fidelity's cache, and they could not be "
                                f"downloaded ({why}); pass --inception-weights PATH")
        raise MetricUnavailable(_failed[str(target)])
    return target


def download_failure(e: BaseException) -> str:
    """Why a download failed, in a few plain words: a results file keeps them, so neither the exception's
    text (it names this machine's paths and resolver) nor a path goes in."""
    import errno
    import urllib.error

    if isinstance(e, urllib.error.HTTPError):
        return f"the server answered HTTP {e.code}"
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
        return f"torch's cache folder cannot be written: {os.strerror(e.errno).lower()}"
    if isinstance(e, OSError):  # URLError, socket errors, timeouts: no route to the server
        return "offline: the server could not be reached"
    return f"the download failed with {type(e).__name__}"


def require_weights(cfg) -> Path:
    """The weights ``cfg`` points at, else torch-fidelity's cached file, else that file downloaded
    (unless ``cfg.offline``); ``MetricUnavailable`` saying why there are none."""
    p = find_weights(cfg.inception_weights)
    if p is None:
        if getattr(cfg, "offline", False):
            raise MetricUnavailable(f"no Inception weights: none in torch-fidelity's cache, and downloads are off "
                                    f"(--offline or {OFFLINE_ENV}=1); pass --inception-weights PATH")
        p = download_weights(progress=getattr(cfg, "progress", False))
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
