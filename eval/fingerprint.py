"""Reference fingerprints: everything the metrics need from a real image set, in one small data file.

    python -m eval.fingerprint --data PATH --size 64 --out FILE [--split train] [--inception-weights PATH]
                               [--derm-encoder PATH | --no-derm]

Format: an ``.npz`` (zip of ``.npy`` arrays, compressed) read with ``np.load(allow_pickle=False)`` -- a
data file that cannot run code. Arrays:

    meta              0-d unicode string: JSON provenance (below)
    hist_rgb256       int64 (3, 256)    per-channel counts of each value over all pixels (RGB)
    hist_hsv256       int64 (3, 256)    the same in PIL's HSV
    nn_bank           uint8 (N, B, B, 3) every image box-downscaled to B = 32 px, for nearest-neighbour
                                        search (memorization); absent with --no-bank
    thumbs            uint8 (T, S, S, 3) up to 128 images at the fingerprint size S, a seeded random
                                        choice, for galleries and the real MS-SSIM figure
    thumb_index       int64 (T,)        their indices into the set (names in meta)
    inception_pool3   float16 (N, 2048) torch-fidelity Inception-v3 pool features, only when weights
                                        were available; FID statistics and KID come from these
    derm_features     float32 (N, D)    the dermoscopy encoder's features (D = 128 for derm1; the images
                                        resized to its 64 px with lanczos when at another size), in bank
                                        order: the bank of the k-NN metrics and of memorization_derm
    derm_mu           float32 (D,)      their mean and covariance (torch-fidelity's
    derm_sigma        float64 (D, D)    fid_features_to_statistics), for fd_derm

meta JSON: format ("lesiongan-fingerprint"), version, source (the data set by name, never a path of the
machine that made it: :func:`gan.assets.portable_name`), layout, split, image_count, size,
preprocessing, created (UTC ISO date), names (all N, in bank order), labels (class counts), skipped
(unreadable files), bank {size, resize, count}, thumbs {count, seed}, inception {weights_sha256, dtype}
or null, derm {metric_version, encoder_sha256, dim, input_size, resize, layer, dtype} or null (no encoder),
tool. The derm metrics refuse features whose metric_version or encoder_sha256 differ from the encoder
they run with.

Why this layout: the whole training set at 64 px (2000 x 64 x 64 x 3 = 24.6 MB) is too big to ship
beside every checkpoint; at 32 px it is 6.1 MB raw, which keeps
memorization working on a fresh machine with no data set (at 32 px, stated in its result;
the ISIC 2017 training split gives a 7.2 MB file: bank 5.1 MB, thumbnails 1.1 MB, derm features 1.0 MB
compressed). Inception
features are stored as float16 (8 MB more for 2000 images, made only where weights exist): the
2048 x 2048 covariance alone would be 16.8 MB in float32, and features serve KID as well as FID.
The derm features are small (2000 x 128 float32 = 1 MB) and kept in full: KID, precision/recall,
density/coverage and the feature-space copy rate need every real image's vector, not only statistics.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from gan.cli import entry_point, prog
from gan.assets import portable_name
from gan.fileio import atomic_write, prepare_output
from eval.images import as_nhwc_uint8, resize_images, rgb_to_hsv

FORMAT = "lesiongan-fingerprint"
VERSION = 1
BANK_SIZE = 32
N_THUMBS = 128


@dataclass
class Fingerprint:
    """A loaded (or freshly made) fingerprint. ``meta`` is the provenance dict described above."""

    meta: dict
    hist_rgb256: np.ndarray
    hist_hsv256: np.ndarray
    nn_bank: np.ndarray | None = None
    thumbs: np.ndarray | None = None
    thumb_index: np.ndarray | None = None
    inception_pool3: np.ndarray | None = None
    derm_features: np.ndarray | None = None
    derm_mu: np.ndarray | None = None
    derm_sigma: np.ndarray | None = None
    path: str | None = field(default=None, compare=False)

    @property
    def size(self) -> int:
        return int(self.meta["size"])

    @property
    def count(self) -> int:
        return int(self.meta["image_count"])

    @property
    def names(self) -> list[str]:
        return list(self.meta.get("names", []))

    @property
    def bank_names(self) -> list[str]:
        names = self.names
        return names if len(names) == self.count else [str(i) for i in range(self.count)]

    def as_evalset(self, role: str, size: int | None = None):
        """This fingerprint as one side of an evaluation (no images; its stored features)."""
        from eval.evalset import EvalSet

        if size is not None and size != self.size:
            raise ValueError(f"{role} fingerprint {self.path or ''} is at {self.size} px but --size is {size}; "
                             f"evaluate at {self.size} or make a fingerprint at {size}")
        feats: dict[str, Any] = {"hist_rgb256": self.hist_rgb256, "hist_hsv256": self.hist_hsv256}
        inc = self.meta.get("inception")
        if self.inception_pool3 is not None and inc:
            feats[f"inception_pool3:{inc['weights_sha256']}"] = self.inception_pool3
        derm = self.meta.get("derm")
        if self.derm_features is not None and derm:
            from eval.metrics.derm import FEATURES, STATS

            tag = f"{derm['metric_version']}:{derm['encoder_sha256']}"
            feats[f"{FEATURES}:{tag}"] = self.derm_features
            if self.derm_mu is not None and self.derm_sigma is not None:
                feats[f"{STATS}:{tag}"] = MappingProxyType({"mu": self.derm_mu, "sigma": self.derm_sigma})
        return EvalSet(role=role, kind="fingerprint", source=str(self.path or self.meta.get("source", "")),
                       images=None, names=self.bank_names, size=self.size, native_resolution=None,
                       resize=str(self.meta.get("preprocessing", "")), skipped=int(self.meta.get("skipped", 0)),
                       fingerprint=self, features=MappingProxyType(feats))


def make_fingerprint(data: Any, size: int = 64, *, split: str | None = None, layout: str = "auto",
                     inception_weights: str | os.PathLike | None = None, bank_size: int | None = BANK_SIZE,
                     n_thumbs: int = N_THUMBS, seed: int = 0, batch_size: int = 64,
                     progress: bool = False, derm_encoder: str | os.PathLike | bool | None = None) -> Fingerprint:
    """Compute a fingerprint of a real image set.

    Args:
        data: data set path (read with ``gan.data.load_dataset``), an ``ImageSet``, or uint8 images.
        size: image size in px the set is evaluated at.
        split, layout: passed to ``gan.data.load_dataset`` for paths.
        inception_weights: weights file, or None for torch-fidelity's cached file; without either the
            fingerprint has no Inception features (FID/KID then need the images).
        bank_size: side of the nearest-neighbour bank (None: no bank; memorization then needs the images).
        n_thumbs: thumbnails kept at ``size`` (a random choice with ``seed``).
        derm_encoder: the dermoscopy encoder (file or folder) whose features to store; None: the
            default one (``eval.metrics.derm.encoder_file()``) when it exists, else none; False: none.
    """
    from eval.metrics.histogram import channel_histograms
    from eval.metrics import inception

    source, lay, names, labels, skipped = "<array>", "array", None, {}, 0
    preprocessing = "none"
    if isinstance(data, (str, os.PathLike)):
        from gan.data import load_dataset

        kw = {"layout": layout, "progress": progress}
        if split is not None:
            kw["split"] = split
        data = load_dataset(str(data), size=size, **kw)
        preprocessing = f"gan.data.load_dataset(size={size}, layout={getattr(data, 'layout', layout)}, split={split})"
    if hasattr(data, "images") and hasattr(data, "names"):
        source = str(getattr(data, "source", "") or "")
        lay = str(getattr(data, "layout", "") or "")
        names = list(data.names)
        skipped = len(getattr(data, "skipped", []) or [])
        if hasattr(data, "class_counts"):
            labels = {str(k): int(v) for k, v in data.class_counts().items()}
        info = getattr(data, "info", None) or {}
        if preprocessing == "none":
            preprocessing = f"gan.data ImageSet (size={getattr(data, 'size', '?')})"
        if info.get("resize"):
            preprocessing += f": {info['resize']}"
        imgs = as_nhwc_uint8(data.images, "fingerprint data")
    else:
        imgs = as_nhwc_uint8(data, "fingerprint data")
    if imgs.shape[1] != size or imgs.shape[2] != size:
        imgs = resize_images(imgs, size, "lanczos")
        preprocessing += f" + pil-lanczos to {size}"
    if len(imgs) == 0:
        raise ValueError(f"fingerprint: no images in {source}")
    names = names or [str(i) for i in range(len(imgs))]

    hist_rgb = channel_histograms(imgs)
    hist_hsv = channel_histograms(rgb_to_hsv(imgs))
    bank = None
    if bank_size:
        bank = resize_images(imgs, min(bank_size, size), "box")
    rng = np.random.default_rng(seed)
    t_idx = np.sort(rng.permutation(len(imgs))[:n_thumbs]).astype(np.int64)
    feats, inc_meta = None, None
    w = inception.find_weights(inception_weights)
    if w is not None:
        feats = inception.inception_features(imgs, w, batch_size, progress, desc="inception fingerprint")
        feats = feats.astype(np.float16)
        inc_meta = {"weights_sha256": inception.weights_id(w), "dtype": "float16", "layer": "pool3 (2048)"}
    derm_f, derm_stats, derm_meta = derm_block(imgs, derm_encoder, size, batch_size, progress)
    meta = {
        "format": FORMAT, "version": VERSION, "source": portable_name(source), "layout": lay, "split": split,
        "image_count": int(len(imgs)), "size": int(size), "preprocessing": preprocessing,
        "created": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "names": names, "labels": labels, "skipped": skipped,
        "bank": {"size": int(bank.shape[1]), "resize": "pil-box", "count": int(len(bank))} if bank is not None else None,
        "thumbs": {"count": int(len(t_idx)), "seed": seed},
        "inception": inc_meta,
        "derm": derm_meta,
        "tool": "eval.fingerprint",
    }
    return Fingerprint(meta=meta, hist_rgb256=hist_rgb, hist_hsv256=hist_hsv, nn_bank=bank,
                       thumbs=imgs[t_idx], thumb_index=t_idx, inception_pool3=feats, derm_features=derm_f,
                       derm_mu=None if derm_stats is None else derm_stats["mu"],
                       derm_sigma=None if derm_stats is None else derm_stats["sigma"])


def derm_block(imgs: np.ndarray, encoder: Any, size: int, batch_size: int = 64, progress: bool = False):
    """A fingerprint's dermoscopy part: (features, statistics, ``meta["derm"]``) of the encoder on ``imgs``,
    or (None, None, None).

    Args:
        imgs: uint8 NHWC images at ``size`` px.
        encoder: the encoder file or folder; None: the default one when it exists (else none); False: none.
        size: the images' side in px (they are resized to the encoder's input size when it differs).
        batch_size, progress: as for :func:`make_fingerprint`.

    Raises:
        ValueError: an encoder named that is not there.
    """
    from eval.metrics import derm

    if encoder is False:
        return None, None, None
    path = derm.encoder_file(None if encoder is None or encoder is True else encoder)
    if not path.is_file():
        if encoder is None:
            return None, None, None  # no default encoder here: a fingerprint without derm features
        raise ValueError(f"--derm-encoder {str(encoder)!r}: no encoder file there")
    enc = derm.load(path)
    f = derm.features_of(imgs, enc, batch_size, progress)
    from eval.metrics.derm_extractor import derm_statistics

    stats = derm_statistics(f)
    resize = "none" if size == enc.config.size else f"pil-{enc.resize} from {size} to {enc.config.size} px"
    return f, stats, {"metric_version": enc.metric_version, "encoder_sha256": enc.sha256, "dim": int(f.shape[1]),
                      "input_size": enc.config.size, "resize": resize, "layer": "embedding", "dtype": "float32"}


def save_fingerprint(fp: Fingerprint, path: str | os.PathLike) -> Path:
    """Write ``fp`` to ``path`` (``.npz``, compressed) atomically; returns the path written (``fp`` is
    left as it is: ``load_fingerprint(path)`` gives the copy that knows its file)."""
    arrays = {"meta": np.array(json.dumps(fp.meta)), "hist_rgb256": fp.hist_rgb256, "hist_hsv256": fp.hist_hsv256}
    for name in ("nn_bank", "thumbs", "thumb_index", "inception_pool3", "derm_features", "derm_mu", "derm_sigma"):
        if getattr(fp, name) is not None:
            arrays[name] = getattr(fp, name)

    def write(f):
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        f.write(buf.getvalue())

    atomic_write(path, write)
    return Path(path)


def _check(cond: bool, path, what: str) -> None:
    if not cond:
        raise ValueError(f"{path}: not a valid fingerprint ({what})")


def _numpy_reason(e: Exception) -> str:
    """numpy's error, without its advice to load a file of pickled objects with ``allow_pickle=True``."""
    return "it holds pickled Python objects, refused unread, for safety" if "allow_pickle" in str(e) else str(e)


def load_fingerprint(path: str | os.PathLike) -> Fingerprint:
    """Read a fingerprint written by ``save_fingerprint`` (never unpickles anything)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a fingerprint file ({_numpy_reason(e)})") from e
    with z:
        _check("meta" in z.files, path, "no meta")
        try:
            meta = json.loads(str(z["meta"]))
            arr = {k: z[k] for k in z.files if k != "meta"}
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not a valid fingerprint (meta is not JSON: {e})") from None
        except (ValueError, RecursionError) as e:  # an object array: numpy refuses to unpickle it
            raise ValueError(f"{path}: not a valid fingerprint ({_numpy_reason(e)})") from None
        _check(isinstance(meta, dict) and meta.get("format") == FORMAT, path, f"format is not {FORMAT}")
        _check(int(meta.get("version", 0)) <= VERSION, path,
               f"version {meta.get('version')} is newer than this code reads ({VERSION})")
    for k in ("hist_rgb256", "hist_hsv256"):
        _check(k in arr and arr[k].shape == (3, 256), path, f"{k} missing or not (3, 256)")
    for k in ("nn_bank", "thumbs"):
        if k in arr:
            _check(arr[k].dtype == np.uint8 and arr[k].ndim == 4 and arr[k].shape[-1] == 3, path,
                   f"{k} is not uint8 (N, S, S, 3)")
    if "nn_bank" in arr:
        _check(len(arr["nn_bank"]) == int(meta["image_count"]), path, "nn_bank count differs from image_count")
    if "derm_features" in arr:
        f, d = arr["derm_features"], (meta.get("derm") or {}).get("dim")
        _check(bool(meta.get("derm")) and f.dtype == np.float32 and f.shape == (int(meta["image_count"]), d), path,
               "derm_features are not float32 (image_count, derm.dim) or meta.derm is missing")
        _check(arr.get("derm_mu") is not None and arr["derm_mu"].shape == (d,) and arr.get("derm_sigma") is not None
               and arr["derm_sigma"].shape == (d, d), path, "derm_mu / derm_sigma missing or of the wrong shape")
    return Fingerprint(meta=meta, hist_rgb256=arr["hist_rgb256"].astype(np.int64),
                       hist_hsv256=arr["hist_hsv256"].astype(np.int64), nn_bank=arr.get("nn_bank"),
                       thumbs=arr.get("thumbs"), thumb_index=arr.get("thumb_index"),
                       inception_pool3=arr.get("inception_pool3"), derm_features=arr.get("derm_features"),
                       derm_mu=arr.get("derm_mu"), derm_sigma=arr.get("derm_sigma"), path=str(path))


@entry_point
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=prog("eval.fingerprint", "lesiongan-fingerprint"), description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="data set folder (any layout gan.data reads)")
    p.add_argument("--size", type=int, default=64, help="evaluation size in px (default 64)")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument("--split", default=None, help="data set split, e.g. train or val (default: gan.data's)")
    p.add_argument("--layout", default="auto")
    p.add_argument("--inception-weights", default=None, help="Inception weights file (default: torch-fidelity's cache)")
    p.add_argument("--derm-encoder", default=None,
                   help="dermoscopy encoder whose features to store (default: checkpoints/derm-encoder when present)")
    p.add_argument("--no-derm", action="store_true", help="store no dermoscopy-encoder features")
    p.add_argument("--bank-size", type=int, default=BANK_SIZE, help="nearest-neighbour bank size in px (default 32)")
    p.add_argument("--no-bank", action="store_true", help="store no image bank (memorization then needs the data)")
    p.add_argument("--thumbs", type=int, default=N_THUMBS, help="thumbnails to keep (default 128)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if not a.out.endswith(".npz"):
        p.error(f"--out {a.out!r}: must end in .npz")
    if a.size < 1 or a.bank_size < 1 or a.thumbs < 0:
        p.error("--size and --bank-size must be positive, --thumbs non-negative")
    if a.no_derm and a.derm_encoder is not None:
        p.error("--derm-encoder and --no-derm go against each other; pass one")
    try:
        prepare_output(a.out, "--out", kind="file")  # before any image is decoded
        fp = make_fingerprint(a.data, a.size, split=a.split, layout=a.layout, inception_weights=a.inception_weights,
                              bank_size=None if a.no_bank else a.bank_size, n_thumbs=a.thumbs, seed=a.seed,
                              progress=True, derm_encoder=False if a.no_derm else a.derm_encoder)
        save_fingerprint(fp, a.out)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    inc = "with" if fp.inception_pool3 is not None else "without (no weights)"
    derm = f"with {fp.meta['derm']['metric_version']}" if fp.derm_features is not None else "without"
    print(f"wrote {a.out}: {fp.count} images at {fp.size} px, {inc} Inception features, {derm} derm features, "
          f"{os.path.getsize(a.out) / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
