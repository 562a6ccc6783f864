"""Do the metrics see what they claim? Real images scored clean and degraded.

    python bench/metric_validity.py [--data ../shared/data/isic2017] [--split validation] \
        [--fingerprint checkpoints/fingerprints/isic2017-train-64.npz] [--seed 0] [--no-c2st-pixel] \
        [--threads N] [--json]

The ISIC 2017 validation images (150, read by ``gan.data.load_dataset`` at 64 px, the evaluation
size) are scored against the training split's fingerprint, first as they are, then degraded at 64 px
in each of the ways below. A metric that sees what it claims scores every degradation worse than the
clean images, and a stronger degradation worse than a weaker one. The parameters were fixed from what
each metric claims to see before any result was seen, and are not tuned to make a row pass:

    blur-1, blur-2    Gaussian blur, sigma 1 and 2 px (scipy.ndimage.gaussian_filter, reflect, 4 sigma)
    jpeg-10           JPEG at quality 10 (PIL, its default 4:2:0 chroma subsampling), decoded again
    noise-0.05, -0.1  additive Gaussian noise of sd 0.05 and 0.1 on [0, 1] intensities, clipped
    hue-sat           hue turned by +18 degrees (0.05 of the circle) and saturation x1.3 (PIL's HSV)
    checker-8         an 8 px checkerboard (4 px squares) added at +-0.03 on [0, 1]: low contrast
    collapsed         10 images (a seeded choice) each repeated 15 times: as many images as clean

The classifier two-sample tests (``c2st_derm``, ``c2st_pixel``; ``eval.metrics.c2st``) need a real
side other than the images degraded, so for them the roles turn: the degraded validation images stand
in for samples and the real side is 150 training images (a seeded choice, read from ``--data``; their
derm features from the pixels). The clean row is then exactly the real-vs-real floor (training vs
validation images) that ``eval.run`` reports beside each model's value.

Expectations checked (``EXPECTATIONS``; every row is published, pass or fail): ``fd_derm`` worse than
clean for every degradation, and blur-2 > blur-1, noise-0.1 > noise-0.05; ``precision_derm`` below
clean for blur and noise; ``recall_derm`` and ``coverage_derm`` below clean for the collapsed set;
``c2st_derm`` and ``c2st_pixel`` above the clean floor for every degradation.

Also printed: each metric's time per condition (``evaluate``'s ``timing``), so that the cost
of each metric is known. Progress on stderr (tqdm), the table (Markdown, or ``--json``) on stdout.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = "../shared/data/isic2017"
DEFAULT_FINGERPRINT = "checkpoints/fingerprints/isic2017-train-64.npz"
SIZE = 64

# The table's columns: (result key, title). The derm keys come from the encoder's metrics (eval/metrics/derm*).
COLUMNS = (
    ("fd_derm", "FD derm"), ("kid_derm", "KID derm"), ("precision_derm", "precision"),
    ("recall_derm", "recall"), ("density_derm", "density"), ("coverage_derm", "coverage"),
    ("js_rgb_hist64", "JSD colour"), ("wasserstein_rgb", "Wasserstein"), ("diversity_msssim_fake", "MS-SSIM (fake)"),
)
DERM_KEYS = tuple(k for k, _ in COLUMNS if k.endswith("_derm"))
OTHER_METRICS = ("hist_js", "wasserstein", "diversity")
# The C2STs (metric name = headline key): scored against the training images as their real side.
C2ST_COLUMNS = (("c2st_derm", "C2ST derm"), ("c2st_pixel", "C2ST pixel"))
C2ST_SIDE = 150  # training images on the C2STs' real side (as many as the validation split)


# --------------------------------------------------------------------------------------------------
# Degradations: pure functions of uint8 NHWC images (and a seed where they draw random numbers)
# --------------------------------------------------------------------------------------------------


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """Float pixels on [0, 255] -> uint8, rounded and clipped."""
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` px in both image axes (``scipy.ndimage``, reflected
    borders, kernel cut at 4 sigma), each channel on its own."""
    from scipy.ndimage import gaussian_filter

    x = images.astype(np.float64)
    return _to_uint8(gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="reflect", truncate=4.0))


def jpeg(images: np.ndarray, quality: int) -> np.ndarray:
    """Each image encoded as a JPEG at ``quality`` (PIL, default chroma subsampling) and decoded again."""
    from PIL import Image

    out = np.empty_like(images)
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return out


def gaussian_noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise of standard deviation ``sigma`` on intensities in [0, 1], clipped to
    [0, 1] and rounded back to uint8; the noise is drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    x = images.astype(np.float64) / 255.0 + rng.normal(0.0, sigma, images.shape)
    return _to_uint8(np.clip(x, 0.0, 1.0) * 255.0)


def hue_saturation_shift(images: np.ndarray, hue: float = 0.05, saturation: float = 1.3) -> np.ndarray:
    """Hue turned by ``hue`` of the colour circle (0.05 = 18 degrees) and saturation multiplied by
    ``saturation`` (clipped), in PIL's HSV (each channel 0..255)."""
    from PIL import Image

    from eval.images import rgb_to_hsv

    hsv = rgb_to_hsv(images).astype(np.float64)
    hsv[..., 0] = np.mod(np.rint(hsv[..., 0] + hue * 256.0), 256.0)  # hue wraps around the circle
    hsv[..., 1] = hsv[..., 1] * saturation
    hsv = _to_uint8(hsv)
    n, h, w, _ = hsv.shape
    tall = Image.fromarray(hsv.reshape(n * h, w, 3), mode="HSV").convert("RGB")
    return np.asarray(tall).reshape(n, h, w, 3).copy()


def checkerboard_pattern(height: int, width: int, period: int = 8) -> np.ndarray:
    """(height, width) of +-1: squares of ``period // 2`` px, so the pattern repeats every ``period`` px."""
    if period < 2 or period % 2:
        raise ValueError(f"checkerboard period must be an even number of px >= 2, got {period}")
    yy, xx = np.mgrid[:height, :width]
    return np.where((yy // (period // 2) + xx // (period // 2)) % 2 == 0, 1.0, -1.0)


def checkerboard(images: np.ndarray, period: int = 8, amplitude: float = 0.03) -> np.ndarray:
    """A checkerboard of ``period`` px added at +-``amplitude`` on [0, 1] intensities (all channels),
    the kind of artefact transposed convolutions leave; clipped."""
    pat = checkerboard_pattern(images.shape[1], images.shape[2], period)[None, :, :, None]
    return _to_uint8(images.astype(np.float64) + amplitude * 255.0 * pat)


def collapse(images: np.ndarray, k: int = 10, seed: int = 0) -> np.ndarray:
    """A collapsed set as large as ``images``: ``k`` of them (a seeded choice) each repeated
    ``len(images) // k`` times (so ``len(images)`` must be a multiple of ``k``), in blocks."""
    n = len(images)
    if k < 1 or n % k:
        raise ValueError(f"collapse: {n} images cannot be {k} images repeated to the same count")
    chosen = np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))
    return np.ascontiguousarray(np.repeat(images[chosen], n // k, axis=0))


@dataclass(frozen=True)
class Condition:
    """One row of the table: a name, what was done, and the function doing it to uint8 images."""

    name: str
    what: str
    apply: Callable[[np.ndarray, int], np.ndarray]  # (images, seed) -> images


CONDITIONS = (
    Condition("clean", "the validation images as they are", lambda x, s: x),
    Condition("blur-1", "Gaussian blur, sigma 1 px", lambda x, s: gaussian_blur(x, 1.0)),
    Condition("blur-2", "Gaussian blur, sigma 2 px", lambda x, s: gaussian_blur(x, 2.0)),
    Condition("jpeg-10", "JPEG, quality 10", lambda x, s: jpeg(x, 10)),
    Condition("noise-0.05", "Gaussian noise, sd 0.05 on [0, 1]", lambda x, s: gaussian_noise(x, 0.05, s)),
    Condition("noise-0.1", "Gaussian noise, sd 0.1 on [0, 1]", lambda x, s: gaussian_noise(x, 0.1, s)),
    Condition("hue-sat", "hue +18 degrees, saturation x1.3", lambda x, s: hue_saturation_shift(x, 0.05, 1.3)),
    Condition("checker-8", "8 px checkerboard, +-0.03 on [0, 1]", lambda x, s: checkerboard(x, 8, 0.03)),
    Condition("collapsed", "10 images, each repeated 15 times", lambda x, s: collapse(x, 10, s)),
)


# --------------------------------------------------------------------------------------------------
# Expectations: (row the check belongs to, description, predicate over {condition: result})
# --------------------------------------------------------------------------------------------------


def _lt(rows: dict, a: str, b: str, key: str) -> bool | None:
    """rows[a][key] < rows[b][key]; None when either number is missing."""
    va, vb = rows.get(a, {}).get(key), rows.get(b, {}).get(key)
    if not isinstance(va, (int, float)) or not isinstance(vb, (int, float)):
        return None
    return bool(va < vb)


def _expectations() -> list[tuple[str, str, Callable[[dict], bool | None]]]:
    out = []
    for c in CONDITIONS[1:]:
        out.append((c.name, "FD > clean", lambda r, n=c.name: _lt(r, "clean", n, "fd_derm")))
    out.append(("blur-2", "FD > blur-1", lambda r: _lt(r, "blur-1", "blur-2", "fd_derm")))
    out.append(("noise-0.1", "FD > noise-0.05", lambda r: _lt(r, "noise-0.05", "noise-0.1", "fd_derm")))
    for n in ("blur-1", "blur-2", "noise-0.05", "noise-0.1"):
        out.append((n, "precision < clean", lambda r, n=n: _lt(r, n, "clean", "precision_derm")))
    out.append(("collapsed", "recall < clean", lambda r: _lt(r, "collapsed", "clean", "recall_derm")))
    out.append(("collapsed", "coverage < clean", lambda r: _lt(r, "collapsed", "clean", "coverage_derm")))
    for key, title in C2ST_COLUMNS:
        for c in CONDITIONS[1:]:
            out.append((c.name, f"{title} > clean", lambda r, n=c.name, k=key: _lt(r, "clean", n, k)))
    return out


EXPECTATIONS = _expectations()


def check(rows: dict[str, dict]) -> dict[str, list[dict]]:
    """{condition: [{"check", "passed" (True, False or None when a number is missing)}]}."""
    out: dict[str, list[dict]] = {c.name: [] for c in CONDITIONS}
    for name, what, pred in EXPECTATIONS:
        out.setdefault(name, []).append({"check": what, "passed": pred(rows)})
    return out


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def derm_metric_names() -> list[str]:
    """The registered metrics that write the ``*_derm`` columns (empty before they are registered)."""
    from eval.registry import get_metric, list_metrics

    names = []
    for name in list_metrics():
        keys = set(get_metric(name).result_keys())
        if keys & set(DERM_KEYS):
            names.append(name)
    return names


def load_images(data: str, split: str, size: int = SIZE) -> tuple[np.ndarray, list[str]]:
    """The split's images at ``size`` px (``gan.data.load_dataset``: the fingerprint's preprocessing)."""
    from gan.data import load_dataset

    ds = load_dataset(data, size=size, split=split, progress=False)
    return ds.images.permute(0, 2, 3, 1).contiguous().numpy(), list(ds.names)


def run(images: np.ndarray, real, seed: int = 0, conditions=CONDITIONS, metrics: list[str] | None = None,
        progress: bool = True, c2st_real: np.ndarray | None = None, c2st: tuple[str, ...] = ("c2st_derm", "c2st_pixel")
        ) -> dict:
    """Score ``images`` clean and under each condition against ``real`` (a fingerprint path or anything
    ``eval.evaluate`` takes as the real set).

    With ``c2st_real`` (uint8 real images other than ``images``: training images), the metrics named in
    ``c2st`` score each condition against them as the real side, with the clean ``images`` as the
    reference: their clean row is the real-vs-real floor.

    Returns:
        {"rows": {condition: {key: value, "timing": {metric: s}, "degrade_s": s, "unavailable": {...}}},
         "checks": :func:`check`'s output, "metrics": the metric names scored, "encoder": the derm
         metrics' encoder (version, SHA-256, where the real features came from) or None}.
    """
    from tqdm import tqdm

    from eval import evaluate
    from eval.sources import FeatureCache, resolve

    metrics = list(metrics) if metrics is not None else [*derm_metric_names(), *OTHER_METRICS]
    cache = FeatureCache()  # the real set's statistics are computed once for all rows
    real_set = resolve(real, "real", size=images.shape[1])
    c2st = list(c2st) if c2st_real is not None else []
    if c2st:  # resolved once: their features are computed once for all rows
        c2st_sides = {"real": resolve(images, "real", size=images.shape[1]),
                      "heldout": resolve(c2st_real, "heldout", size=images.shape[1])}
    rows: dict[str, dict] = {}
    encoder = None
    for c in tqdm(conditions, desc="conditions", unit="row", disable=not progress):
        t = time.perf_counter()
        x = c.apply(images, seed)
        degrade_s = time.perf_counter() - t
        res = evaluate(real_set, x, metrics, seed=seed, cache=cache)
        if c2st:
            more = evaluate(c2st_sides["real"], x, c2st, heldout=c2st_sides["heldout"], seed=seed, cache=cache)
            res = {**res, **{k: v for k, v in more.items() if k.startswith("c2st_")},
                   "timing": {**res["timing"], **more["timing"]},
                   "unavailable": {**res["unavailable"], **more["unavailable"]}}
        row = {k: res[k] for k, _ in (*COLUMNS, *C2ST_COLUMNS) if k in res}
        row.update({"n_fake": res["n_fake"], "n_real": res["n_real"], "timing": res["timing"],
                    "degrade_s": round(degrade_s, 3), "unavailable": res["unavailable"], "what": c.what})
        row.update({k: v for k, v in res.items() if k.startswith("c2st_")})  # AUC, intervals, the floor
        rows[c.name] = row
        derm = next((cfg for cfg in res["config"].values() if "encoder_sha256" in cfg), None)
        encoder = encoder or (derm and {k: derm[k] for k in ("metric_version", "encoder_sha256", "real_features")})
    return {"rows": rows, "checks": check(rows), "metrics": metrics, "encoder": encoder}


def _fmt(v) -> str:
    if not isinstance(v, (int, float)):
        return "n/a"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def _cell(row: dict, key: str) -> str:
    """A table cell: the value, with its 95% interval for a C2ST."""
    lo, hi = row.get(f"{key}_lo95"), row.get(f"{key}_hi95")
    if key.startswith("c2st_") and isinstance(lo, float) and isinstance(hi, float):
        return f"{_fmt(row.get(key))} [{lo:.2f}, {hi:.2f}]"
    return _fmt(row.get(key))


def verdict(checks: list[dict]) -> str:
    """One cell: each check with pass / FAIL / n/a."""
    if not checks:
        return "(reference)"
    mark = {True: "pass", False: "**FAIL**", None: "n/a"}
    return "; ".join(f"{c['check']}: {mark[c['passed']]}" for c in checks)


def markdown(out: dict, command: str) -> str:
    """The table as Markdown: one row per condition, the metric columns, the checks."""
    columns = [*COLUMNS, *(c for c in C2ST_COLUMNS if any(c[0] in r for r in out["rows"].values()))]
    head = ["condition", *(t for _, t in columns), "expectations"]
    lines = [f"`{command}`", "", "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, row in out["rows"].items():
        cells = [f"{name} ({row['what']})", *(_cell(row, k) for k, _ in columns), verdict(out["checks"][name])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def timing_table(out: dict) -> str:
    """Seconds per metric per row (median over rows), and the degradation's own time."""
    per: dict[str, list[float]] = {}
    for row in out["rows"].values():
        for m, s in row["timing"].items():
            per.setdefault(m, []).append(s)
    lines = ["| metric | median s per row | max s |", "| --- | --- | --- |"]
    for m, ss in per.items():
        lines.append(f"| {m} | {np.median(ss):.3f} | {max(ss):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=DEFAULT_DATA, help=f"ISIC 2017 folder (default {DEFAULT_DATA})")
    p.add_argument("--split", default="validation", help="split scored clean and degraded (default validation)")
    p.add_argument("--fingerprint", default=DEFAULT_FINGERPRINT,
                   help=f"reference: the training split's fingerprint (default {DEFAULT_FINGERPRINT})")
    p.add_argument("--seed", type=int, default=0, help="noise, the collapsed set's choice, KID subsets, MS-SSIM pairs")
    p.add_argument("--no-c2st-pixel", action="store_true",
                   help="leave out c2st_pixel (a small CNN trained 5 times per row: most of the table's time)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    a = p.parse_args(argv)
    for flag, path in (("--data", a.data), ("--fingerprint", a.fingerprint)):
        if not Path(path).exists():
            p.error(f"{flag} {path}: no such file or folder")
    if a.threads is not None:
        import torch

        torch.set_num_threads(max(1, a.threads))
    t0 = time.perf_counter()
    images, _ = load_images(a.data, a.split)
    if len(images) % 10:
        p.error(f"--split {a.split}: {len(images)} images, not a multiple of 10 (the collapsed set)")
    train, _ = load_images(a.data, "train")
    side = train[np.sort(np.random.default_rng(a.seed).choice(len(train), min(C2ST_SIDE, len(train)), replace=False))]
    out = run(images, a.fingerprint, a.seed, c2st_real=side,
              c2st=("c2st_derm",) if a.no_c2st_pixel else ("c2st_derm", "c2st_pixel"))
    total = time.perf_counter() - t0
    command = "python bench/metric_validity.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    out.update({"command": command, "seconds": round(total, 1), "n_images": int(len(images)), "split": a.split,
                "data": a.data, "fingerprint": a.fingerprint, "size": SIZE, "seed": a.seed, "c2st_real": len(side),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"})
    if a.json:
        print(json.dumps(out, indent=1))
    else:
        print(markdown(out, command))
        print()
        print(timing_table(out))
        failed = [(n, c["check"]) for n, cs in out["checks"].items() for c in cs if c["passed"] is False]
        enc = out["encoder"] or {}
        print(f"\n{len(images)} {a.split} images vs {a.fingerprint} at {SIZE} px (the C2STs: vs {len(side)} training "
              f"images), seed {a.seed}; encoder "
              f"{enc.get('metric_version')} (sha256 {str(enc.get('encoder_sha256'))[:12]}, real features from the "
              f"{enc.get('real_features')}); {total:.0f} s; failed: {failed or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
