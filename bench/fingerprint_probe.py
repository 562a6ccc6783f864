"""What lets a classifier spot a generator's samples? Real images given one of its properties at a time.

    python bench/fingerprint_probe.py --real ../shared/data/isic2017 --generator checkpoints/dcgan-cond \
        --out DIR [--n 2000] [--seed 0] [--seeds 3] [--threads 1]

The classifier two-sample tests (``eval.metrics.c2st``) say how well a classifier tells a generator's
samples from held-out real lesions, not why. This probe takes ``--n`` real training images (a seeded
choice; all 2,000 of ISIC 2017 train by default), measures the generator's samples of the same classes
(one sample per real image, drawn with that image's class, ``--seed`` its latents) with
``bench/artefacts.py``'s spectral statistics and their colour histograms, and gives the real images
ONE property of the generator at a time, at the generator's measured strength:

    none          the real images unchanged: the real-vs-real floor of the tests (with all 2,000 images,
                  the very test ``eval.run`` reports as ``c2st_*_floor``)
    checkerboard  a fixed-sign pattern on the three Nyquist cells of the 2-D FFT, (-1)^y, (-1)^x and
                  (-1)^(x+y), weighted by the generator's median excess share in each cell over the real
                  images', at the amplitude (a 1-D root search) that makes the median Nyquist share the
                  generator's (:func:`fit_checkerboard`). The amplitude is below one grey level, so the
                  sum is rounded stochastically (plain rounding of uint8 images would erase it)
    lowpass       the generator-matched blur: each image's FFT scaled down on the rings of
                  max(|f_y|, |f_x|) in [1/8, 1/4) and [1/4, 3/8) cycles per pixel, by the gains that give
                  the median band shares the generator's (closed form, then three corrections:
                  :func:`fit_band_gains`); lower and higher frequencies unchanged. (A Gaussian blur cannot
                  match: at the sigma that matches [1/4, 3/8) it leaves [1/8, 1/4) 28% above the
                  generator's share and halves [3/8, 1/2], which the DCGAN keeps at the real level.)
    colour        each channel's values remapped so that, class by class, the set's RGB histograms become
                  the generator's (histogram matching over all pixels of a class, :func:`colour_match`)
    all           colour, then lowpass, then checkerboard, each fitted again on the previous step's output

Each probe set is written as a PNG folder (``DIR/probes/<name>/``; lossless), the generator's samples as
``DIR/generator/``, and each folder is scored as ``python -m eval.run --real REAL --fake FOLDER --heldout
REAL/ISIC-2017_Validation_Data --metrics c2st_pixel c2st_derm --seed K`` scores it (``eval.evaluate``,
in this process), for K = ``--seed`` .. ``--seed + --seeds - 1`` (mean and sd over them). The samples
and the probes are fixed sets; only the tests' draws, folds and classifiers change with K.

``DIR/probe.json`` holds every statistic, fitted parameter and test result; the Markdown table goes
to stdout. Reading it: a probe whose accuracy reaches the generator's carries what makes the samples
detectable; "of the excess" is (probe - none) / (generator - none), the share of the generator's
accuracy above the floor that the one property gives a real image. Progress on stderr.

Bad input (a missing folder, a file that is not a generator, an unconditional generator: the probe
draws each real image's class from it) ends with one line and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its siblings, also when loaded by file path
from artefacts import BANDS, _power, band_shares, nyquist_share  # noqa: E402

PROBES = ("none", "checkerboard", "lowpass", "colour", "all")
C2ST_METRICS = ("c2st_pixel", "c2st_derm")
SIZE = 64
MIN_IMAGES = 20  # the C2STs' 5 folds need at least 20 images a side
BAND_FIT = (0, 1)  # the bands the blur is fitted to: [1/8, 1/4) and [1/4, 3/8) cycles per pixel
TOLERANCE = 0.10  # a probe's statistic within 10% of the generator's counts as matched
HELDOUT = "ISIC-2017_Validation_Data"


# -- statistics ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SetStats:
    """What the probe matches, for one image set (uint8 NHWC, square, even side).

    nyquist: median Nyquist share (``artefacts.nyquist_share``).
    cells: median share of each Nyquist cell alone: (N/2, 0), (0, N/2), (N/2, N/2).
    bands: median band shares (``artefacts.band_shares`` over ``artefacts.BANDS``).
    mean, sd: per RGB channel over all pixels, on 0..255.
    hist: (3, 256) counts of each channel's values.
    """

    nyquist: float
    cells: tuple[float, float, float]
    bands: tuple[float, ...]
    mean: tuple[float, float, float]
    sd: tuple[float, float, float]
    hist: np.ndarray = field(compare=False, repr=False)


def set_stats(images: np.ndarray) -> SetStats:
    """:class:`SetStats` of uint8 NHWC ``images``."""
    power = _power(images)
    h = power.shape[1] // 2
    total = np.maximum(power.sum(axis=(1, 2)), 1e-12)
    cells = np.median(np.stack([power[:, h, 0], power[:, 0, h], power[:, h, h]], axis=1) / total[:, None], axis=0)
    px = images.reshape(-1, 3).astype(np.float64)
    hist = np.stack([np.bincount(images[..., c].ravel(), minlength=256) for c in range(3)])
    return SetStats(nyquist=float(np.median(nyquist_share(images, power=power))),
                    cells=tuple(float(c) for c in cells),
                    bands=tuple(float(b) for b in np.median(band_shares(images, power=power), axis=0)),
                    mean=tuple(float(m) for m in px.mean(axis=0)), sd=tuple(float(s) for s in px.std(axis=0)),
                    hist=hist)


def colour_jsd(a: SetStats, b: SetStats) -> float:
    """The colour distance of ``eval.run``'s ``js_rgb_hist64``: mean over RGB of the base-2 Jensen-Shannon
    divergence of the two sets' 64-bin histograms."""
    from eval.metrics.histogram import histogram_jsd

    return float(histogram_jsd(a.hist, b.hist, 64)["js_rgb_hist64"])


def relative(s: SetStats, ref: SetStats, gen: SetStats) -> dict:
    """``s``'s statistics as the table reads them: Nyquist and band shares over ``ref``'s (the real
    images'), colour JSD to ``ref`` and to ``gen`` (the generator's samples), channel means and sds."""
    return {"nyquist_vs_real": s.nyquist / ref.nyquist,
            "bands_vs_real": [b / r for b, r in zip(s.bands, ref.bands)],
            "colour_jsd_real": colour_jsd(s, ref), "colour_jsd_generator": colour_jsd(s, gen),
            "rgb_mean": list(s.mean), "rgb_sd": list(s.sd), "nyquist_share": s.nyquist, "band_shares": list(s.bands)}


# -- the probes: pure functions of uint8 NHWC images -----------------------------------------------

def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def nyquist_pattern(size: int, weights) -> np.ndarray:
    """(size, size) float: ``weights[0] * (-1)^y + weights[1] * (-1)^x + weights[2] * (-1)^(x+y)``, the
    patterns whose energy lands on the FFT cells (N/2, 0), (0, N/2) and (N/2, N/2) alone."""
    yy, xx = np.mgrid[:size, :size]
    w = np.asarray(weights, np.float64)
    return w[0] * (-1.0) ** yy + w[1] * (-1.0) ** xx + w[2] * (-1.0) ** (xx + yy)


def add_pattern(images: np.ndarray, pattern: np.ndarray, amplitude: float, seed: int = 0) -> np.ndarray:
    """``pattern`` times ``amplitude`` (on [0, 1] intensities) added to every channel, then stochastically
    rounded (down or up with the odds that keep each value's expectation; seeded): the generator's
    excess lies below one grey level, which plain rounding of uint8 images would erase. Clipped; the
    images themselves at amplitude 0."""
    u = np.random.default_rng(seed).random(images.shape)
    return np.clip(np.floor(images.astype(np.float64) + amplitude * 255.0 * pattern[None, :, :, None] + u),
                   0, 255).astype(np.uint8)


def cell_weights(target: SetStats, ref: SetStats) -> tuple[float, float, float]:
    """Unit-norm weights of the three Nyquist patterns that put energy in the cells in the proportions of
    ``target``'s median excess share over ``ref``'s; all on (N/2, N/2), the plain checkerboard, when
    ``target`` has no excess."""
    excess = np.maximum(np.subtract(target.cells, ref.cells), 0.0)
    if excess.sum() <= 0:
        return 0.0, 0.0, 1.0
    w = np.sqrt(excess / excess.sum())
    return float(w[0]), float(w[1]), float(w[2])


def median_nyquist(images: np.ndarray) -> float:
    return float(np.median(nyquist_share(images)))


def fit_checkerboard(images: np.ndarray, target: float, weights) -> float:
    """The amplitude (on [0, 1]) of :func:`nyquist_pattern` (``weights``) that, added to ``images`` and
    rounded to uint8, gives a median Nyquist share of ``target``; 0 when ``images`` already have as much.

    Raises:
        ValueError: when even an amplitude of 1 does not reach ``target``.
    """
    from scipy.optimize import brentq

    pattern = nyquist_pattern(images.shape[1], weights)

    def gap(a: float) -> float:
        return median_nyquist(add_pattern(images, pattern, a)) / target - 1.0

    if gap(0.0) >= 0:
        return 0.0
    lo, hi = 0.0, 0.5 / 255.0
    while gap(hi) < 0:
        lo, hi = hi, hi * 2
        if hi > 1.0:
            raise ValueError(f"no checkerboard amplitude up to 1 reaches a Nyquist share of {target:.3g}")
    return float(brentq(gap, lo, hi, xtol=1e-6))


def band_gains_filter(images: np.ndarray, gains, bands=BANDS) -> np.ndarray:
    """Each channel's 2-D FFT multiplied by ``gains[i]`` on the cells with max(|f_y|, |f_x|) in ``bands[i]``
    (the rings ``artefacts.band_shares`` measures; the last closed), by 1 elsewhere; rounded to uint8."""
    f = np.abs(np.fft.fftfreq(images.shape[1]))
    r = np.maximum(f[:, None], f[None, :])
    g = np.ones_like(r)
    for i, ((lo, hi), gain) in enumerate(zip(bands, gains)):
        g[(r >= lo) & ((r < hi) if i < len(bands) - 1 else (r <= hi))] = gain
    x = np.fft.fft2(images.astype(np.float64), axes=(1, 2)) * g[None, :, :, None]
    return _to_uint8(np.fft.ifft2(x, axes=(1, 2)).real)


def fit_band_gains(images: np.ndarray, targets: dict[int, float], steps: int = 3) -> list[float]:
    """Gains for :func:`band_gains_filter` (1 for the bands not in ``targets``) that bring the median
    share of each band ``i`` in ``targets`` to ``targets[i]``: the closed form sqrt(target / own share),
    then ``steps`` corrections by the same rule on the filtered, rounded images."""
    gains = [1.0] * len(BANDS)
    got = np.median(band_shares(images), axis=0)
    for _ in range(steps + 1):
        for i, t in targets.items():
            gains[i] *= math.sqrt(t / max(got[i], 1e-12))
        got = np.median(band_shares(band_gains_filter(images, gains)), axis=0)
    return gains


def match_histogram(values: np.ndarray, target_counts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 ``values`` (any shape) mapped so that their histogram becomes ``target_counts`` (256,): each
    value takes a random rank inside the ranks its own value holds among ``values`` (ties broken at
    random), and the target value at that quantile. A fixed value map (a lookup table) would leave
    combs of empty and doubled values wherever it stretches the histogram."""
    counts = np.bincount(values.ravel(), minlength=256).astype(np.float64)
    below = np.cumsum(counts) - counts
    q = (below[values] + rng.random(values.shape) * counts[values]) / counts.sum()
    cdf = np.cumsum(np.asarray(target_counts, np.float64))
    return np.minimum(np.searchsorted(cdf / cdf[-1], q, side="right"), 255).astype(np.uint8)


def colour_match(images: np.ndarray, labels, target: np.ndarray, target_labels, seed: int = 0) -> np.ndarray:
    """``images`` with each RGB channel's values remapped (:func:`match_histogram`, ties broken with
    ``seed``) so that the histogram of each class's images is that of ``target``'s images of the same class
    (``labels``, ``target_labels``: one per image, or None for one group; a class ``target`` lacks takes
    all of ``target``)."""
    rng = np.random.default_rng(seed)
    labels = np.array([None] * len(images) if labels is None else list(labels), dtype=object)
    target_labels = np.array([None] * len(target) if target_labels is None else list(target_labels), dtype=object)
    out = np.empty_like(images)
    for cls in dict.fromkeys(labels.tolist()):
        mine = labels == cls
        theirs = target_labels == cls
        t = target[theirs] if theirs.any() else target
        for c in range(3):
            out[mine, ..., c] = match_histogram(images[mine][..., c], np.bincount(t[..., c].ravel(), minlength=256), rng)
    return out


@dataclass(frozen=True)
class Probe:
    """One probe set: its name, its images (uint8 NHWC) and the parameters it was made with."""

    name: str
    images: np.ndarray = field(repr=False)
    params: dict


def build_probes(real: np.ndarray, labels, gen: np.ndarray, gen_labels, progress: bool = False) -> list[Probe]:
    """The :data:`PROBES` sets made from ``real`` (with its ``labels``) so that each carries one property
    of ``gen`` (the generator's samples, with theirs) at its measured strength (module docstring)."""
    from tqdm import tqdm

    ref, tgt = set_stats(real), set_stats(gen)
    weights = cell_weights(tgt, ref)
    band_targets = {i: tgt.bands[i] for i in BAND_FIT}
    bar = tqdm(total=4, desc="fitting probes", unit="probe", disable=not progress, leave=False)

    def checker(x: np.ndarray) -> tuple[np.ndarray, float]:
        a = fit_checkerboard(x, tgt.nyquist, weights)
        return add_pattern(x, nyquist_pattern(x.shape[1], weights), a), a

    def blur(x: np.ndarray) -> tuple[np.ndarray, list[float]]:
        g = fit_band_gains(x, band_targets)
        return band_gains_filter(x, g), g

    probes = [Probe("none", real, {})]
    x, a = checker(real)
    cells = dict(zip(("(N/2,0)", "(0,N/2)", "(N/2,N/2)"), weights))
    probes.append(Probe("checkerboard", x, {"amplitude_grey_levels": a * 255.0, "cell_weights": cells}))
    bar.update()
    x, g = blur(real)
    probes.append(Probe("lowpass", x, {"band_gains": g}))
    bar.update()
    coloured = colour_match(real, labels, gen, gen_labels)
    probes.append(Probe("colour", coloured, {"method": "RGB histogram matching per class"}))
    bar.update()
    x, g = blur(coloured)
    x, a = checker(x)
    probes.append(Probe("all", x, {"band_gains": g, "amplitude_grey_levels": a * 255.0, "cell_weights": cells,
                                   "order": "colour, lowpass, checkerboard"}))
    bar.update()
    bar.close()
    return probes


def calibration(name: str, stats: dict, gen: dict) -> dict[str, float]:
    """Relative errors of the statistics probe ``name`` was fitted to, against the generator's
    (``stats`` and ``gen``: :func:`relative` rows)."""
    out: dict[str, float] = {}
    if name in ("checkerboard", "all"):
        out["nyquist"] = stats["nyquist_vs_real"] / gen["nyquist_vs_real"] - 1
    if name in ("lowpass", "all"):
        for i in BAND_FIT:
            out[f"band{i}"] = stats["bands_vs_real"][i] / gen["bands_vs_real"][i] - 1
    if name in ("colour", "all"):
        out["rgb_mean"] = max(abs(m / g - 1) for m, g in zip(stats["rgb_mean"], gen["rgb_mean"]))
        out["rgb_sd"] = max(abs(m / g - 1) for m, g in zip(stats["rgb_sd"], gen["rgb_sd"]))
    return out


# -- files -----------------------------------------------------------------------------------------

def write_png_folder(images: np.ndarray, names: list[str], folder: Path) -> None:
    """The images as lossless PNGs ``<name>.png`` in ``folder``, written beside it and moved into place
    (an earlier folder of that name is replaced)."""
    from PIL import Image

    tmp = folder.with_name(f".{folder.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for img, name in zip(images, names):
        Image.fromarray(img).save(tmp / f"{name}.png", format="PNG")
    if folder.exists():
        shutil.rmtree(folder)
    tmp.rename(folder)


# -- scoring ---------------------------------------------------------------------------------------

def score_folder(folder: Path, real, heldout, seeds: list[int], cache) -> dict:
    """The C2STs of ``folder``'s images (``eval.evaluate`` with ``real`` and ``heldout`` as ``eval.run``
    resolves them) for each seed: {"per_seed": [rows], key: mean, key_sd: sd (two seeds or more),
    "unavailable": {...}}, over the ``c2st_*`` keys."""
    from eval import sources
    from eval.evaluate import evaluate
    from eval.keys import KEY_UNAVAILABLE
    from eval.run import result_row, spread_row

    fake = sources.resolve(str(folder), "fake", size=real.size)
    rows = []
    for s in seeds:
        res = evaluate(real, fake, list(C2ST_METRICS), heldout=heldout, seed=s, cache=cache)
        rows.append(result_row(res))
    row = spread_row(rows)
    out = {k: v for k, v in row.items() if k.startswith("c2st_")}
    out["unavailable"] = row.get(KEY_UNAVAILABLE, {})
    out["per_seed"] = [{k: v for k, v in r.items() if k.startswith("c2st_") or k == "seed"} for r in rows]
    return out


def _mean_sd(c2st: dict, key: str) -> str:
    v, sd = c2st.get(key), c2st.get(f"{key}_sd")
    if v is None:
        return "n/a"
    return f"{v:.3f}" + (f" ± {sd:.3f}" if sd is not None else "")


def _excess(rows: dict, name: str, key: str) -> float | None:
    """(probe - none) / (generator - none) of ``key``'s mean accuracy."""
    v, floor, gen = (rows[n]["c2st"].get(key) for n in (name, "none", "generator"))
    if None in (v, floor, gen) or abs(gen - floor) < 1e-9:
        return None
    return (v - floor) / (gen - floor)


def markdown_table(rows: dict) -> str:
    """The table of ``probe.json``'s ``rows`` ({name: {"stats": ..., "c2st": ...}})."""
    head = ("| images | Nyquist / real | " + " | ".join(f"{lo * 8:g}/8-{hi * 8:g}/8 / real" for lo, hi in BANDS)
            + " | colour JSD to real | C2ST pixel | C2ST derm | of the excess (pixel / derm) |")
    lines = [head, "|" + " --- |" * (6 + len(BANDS))]
    for name, r in rows.items():
        st = r["stats"]
        ex = [_excess(rows, name, k) for k in C2ST_METRICS]
        lines.append(f"| {name} | {st['nyquist_vs_real']:.2f} | " + " | ".join(f"{b:.2f}" for b in st["bands_vs_real"])
                     + f" | {st['colour_jsd_real']:.4f} | {_mean_sd(r['c2st'], 'c2st_pixel')} | "
                     f"{_mean_sd(r['c2st'], 'c2st_derm')} | "
                     + " / ".join("n/a" if e is None else f"{e:.2f}" for e in ex) + " |")
    return "\n".join(lines)


def closest(rows: dict) -> dict[str, str | None]:
    """Per C2ST, the single-property probe whose mean accuracy is nearest the generator's."""
    out: dict[str, str | None] = {}
    for key in C2ST_METRICS:
        gen = rows["generator"]["c2st"].get(key)
        cand = [(abs(rows[n]["c2st"][key] - gen), n) for n in ("checkerboard", "lowpass", "colour")
                if gen is not None and rows[n]["c2st"].get(key) is not None]
        out[key] = min(cand)[1] if cand else None
    return out


# -- the command -----------------------------------------------------------------------------------

class BadInput(ValueError):
    """An input the probe cannot use; its message names the flag."""


def load_inputs(real_dir: Path, generator: Path, heldout: Path):
    """(the real training ImageSet, the loaded conditional generator); :class:`BadInput` naming the flag."""
    from gan import load_generator
    from gan.data import load_dataset

    for flag, p in (("--real", real_dir), ("--heldout", heldout)):
        if not p.is_dir():
            raise BadInput(f"{flag} {p}: no such folder")
    if not generator.exists():
        raise BadInput(f"--generator {generator}: no such file or folder")
    try:
        G = load_generator(generator)
    except ValueError as e:
        raise BadInput(f"--generator {generator}: not a usable generator ({str(e).splitlines()[0]})") from None
    if not G.class_names:
        raise BadInput(f"--generator {generator}: an unconditional {G.model_name}; the probe draws each real image's "
                       f"class from the generator, so it needs a conditional one (e.g. checkpoints/dcgan-cond)")
    try:
        ds = load_dataset(real_dir, size=SIZE, split="train", progress=False)
    except ValueError as e:
        raise BadInput(f"--real {real_dir}: {str(e).splitlines()[0]}") from None
    unknown = sorted({str(c) for c in ds.labels if c not in G.class_names})
    if unknown:
        raise BadInput(f"--real {real_dir}: classes the generator does not know ({', '.join(unknown)}); it knows "
                       f"{', '.join(G.class_names)}")
    return ds, G


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--real", type=Path, required=True, help="the real data set (ISIC 2017 folder); its training "
                                                            "split makes the probes")
    p.add_argument("--generator", type=Path, required=True, help="a conditional generator (file or model folder)")
    p.add_argument("--out", type=Path, required=True, help="folder for probes/, generator/ and probe.json")
    p.add_argument("--heldout", type=Path, help=f"held-out real images of the C2STs (default: REAL/{HELDOUT})")
    p.add_argument("--n", type=int, default=2000, help="real images (a seeded choice) and samples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="the choice of real images, the latents, the first C2ST seed")
    p.add_argument("--seeds", type=int, default=3, help="C2ST seeds (--seed, --seed + 1, ...; default 3)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    a = p.parse_args(argv)
    try:
        return run(a, argv if argv is not None else sys.argv[1:])
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def run(a: argparse.Namespace, argv: list[str]) -> int:
    from tqdm import tqdm

    from eval import sources
    from eval.sources import FeatureCache
    from gan.assets import portable_command, portable_name
    from gan.fileio import atomic_write_text, prepare_output

    if a.n < MIN_IMAGES:
        raise BadInput(f"--n {a.n}: the C2STs need at least {MIN_IMAGES} images a side")
    if a.seeds < 1:
        raise BadInput(f"--seeds {a.seeds}: must be at least 1")
    if a.threads is not None and a.threads < 1:
        raise BadInput(f"--threads {a.threads}: must be at least 1")
    heldout = a.heldout if a.heldout is not None else a.real / HELDOUT
    try:
        prepare_output(a.out, "--out")
    except ValueError as e:
        raise BadInput(str(e)) from None
    if a.threads is not None:
        import torch

        torch.set_num_threads(a.threads)
    progress = not a.quiet
    t0 = time.perf_counter()
    ds, G = load_inputs(a.real, a.generator, heldout)
    if a.n > len(ds):
        raise BadInput(f"--n {a.n}: the training split of {a.real} has {len(ds)} images")
    pick = np.arange(len(ds)) if a.n == len(ds) else \
        np.sort(np.random.default_rng(a.seed).choice(len(ds), a.n, replace=False))
    images = ds.images.permute(0, 2, 3, 1).contiguous().numpy()
    real, labels = images[pick], [ds.labels[i] for i in pick]
    names = [ds.names[i] for i in pick]
    gen = G.generate(a.n, seed=a.seed, labels=labels)
    probes = build_probes(real, labels, gen, labels, progress)
    t_build = time.perf_counter() - t0

    ref, tgt = set_stats(real), set_stats(gen)
    rows: dict[str, dict] = {}
    folders: dict[str, Path] = {}
    for pr in probes:
        folders[pr.name] = a.out / "probes" / pr.name
        write_png_folder(pr.images, [f"{i:05d}-{n}" for i, n in enumerate(names)], folders[pr.name])
        rows[pr.name] = {"params": pr.params, "stats": relative(set_stats(pr.images), ref, tgt)}
    folders["generator"] = a.out / "generator"
    write_png_folder(gen, [f"{i:05d}-{c}" for i, c in enumerate(labels)], folders["generator"])
    rows["generator"] = {"params": {"seed": a.seed, "classes": "those of the real images"},
                         "stats": relative(tgt, ref, tgt)}
    for name in PROBES[1:]:
        rows[name]["calibration"] = calibration(name, rows[name]["stats"], rows["generator"]["stats"])

    real_set = sources.resolve(ds, "real", size=SIZE)
    held_set = sources.resolve(str(heldout), "heldout", size=SIZE)
    seeds = list(range(a.seed, a.seed + a.seeds))
    cache = FeatureCache()  # the real and held-out sets' encoder features, computed once
    t1 = time.perf_counter()
    for name in tqdm(list(rows), desc="C2STs", unit="set", disable=not progress):
        t = time.perf_counter()
        rows[name]["c2st"] = score_folder(folders[name], real_set, held_set, seeds, cache)
        rows[name]["seconds"] = round(time.perf_counter() - t, 1)
    t_score = time.perf_counter() - t1

    doc = {"command": portable_command(["python bench/fingerprint_probe.py", *argv]),
           "generator": portable_name(G.path), "real": portable_name(a.real.resolve()),
           "heldout": portable_name(heldout.resolve()), "n": a.n, "seed": a.seed, "c2st_seeds": seeds,
           "threads": a.threads, "tolerance": TOLERANCE, "bands": [list(b) for b in BANDS],
           "band_fit": [list(BANDS[i]) for i in BAND_FIT], "closest": closest(rows), "rows": rows,
           "seconds": {"build": round(t_build, 1), "score": round(t_score, 1),
                       "total": round(time.perf_counter() - t0, 1)}}
    atomic_write_text(a.out / "probe.json", json.dumps(doc, indent=1) + "\n")
    print(markdown_table(rows))
    floor = rows["none"]["c2st"]
    print(f"\nfloors (eval.run's real training vs held-out, mean over seeds): pixel "
          f"{_mean_sd(floor, 'c2st_pixel_floor')}, derm {_mean_sd(floor, 'c2st_derm_floor')}")
    for key, name in doc["closest"].items():
        print(f"closest to the generator by {key}: {name}")
    for name in PROBES[1:]:
        off = {k: v for k, v in rows[name]["calibration"].items() if not math.isfinite(v) or abs(v) > TOLERANCE}
        if off:
            print(f"warning: {name}: not within {TOLERANCE:.0%} of the generator: "
                  + ", ".join(f"{k} {v:+.1%}" for k, v in off.items()), file=sys.stderr)
    print(f"wrote {a.out / 'probe.json'} ({doc['seconds']['total']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    from gan.cli import entry_point

    sys.exit(entry_point(main)())
