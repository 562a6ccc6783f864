"""A tiny, self-contained models folder for trying and testing the dashboard without real checkpoints.

    python -m dashboard.demo /tmp/lesiongan-demo
    LESIONGAN_CHECKPOINTS=/tmp/lesiongan-demo streamlit run dashboard/app.py

The generators are real LesionGAN files (untrained, a few thousand parameters), so everything the
dashboard does with shipped checkpoints works on them; the statistics, grids, fingerprint and results
are synthetic but have the shapes the real ones have. Builds in about 3 s (most of it the dermoscopy
encoder computing the fingerprints' features).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from gan.rundir import FINGERPRINTS, GENERATOR, RunDir, write_collection_results

RES = 32


def export_dcgan(path: str | Path, seed: int = 0, nimg: int = 0, time_s: float = 0.0, resolution: int = RES,
                 z_dim: int = 16, ngf: int = 8) -> Path:
    """Write an untrained DCGAN generator file (``gan.checkpoint.export_generator`` format) to ``path``."""
    import torch

    from gan.checkpoint import export_generator
    from gan.models import get_model

    spec = get_model("dcgan")
    mcfg = {"resolution": resolution, "z_dim": z_dim, "ngf": ngf, "ndf": 8}
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        G = spec.build_generator(spec.config_from_dict(mcfg))
        # An untrained net outputs near-constant grey: set BatchNorm statistics from one batch and make
        # the last layer louder, so samples are colourful and every seed visibly differs.
        for m in G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None
                m.reset_running_stats()
        G.train()
        with torch.no_grad():
            G(torch.randn(256, mcfg["z_dim"]))
        G.eval()
        last = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)][-1]
        last.weight.data.mul_(8.0)
    config = {"model": "dcgan", "model_cfg": mcfg}  # RunConfig.from_dict fills in the defaults
    info = {"nimg": nimg, "time_s": time_s, "hardware": "demo CPU", "resolution": resolution, "alpha": 1.0}
    return export_generator({"model": "dcgan", "config": config, "G_ema": G.state_dict(), "info": info}, path)


def _stats_rows(n: int, total: int, progressive: bool, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(1, n + 1):
        nimg = total * i // n
        t = i / n
        if progressive:
            # Two phases: 8 px, then 16 px faded in over the first half of phase 1.
            phase = 0 if t <= 0.5 else 1
            res = 8 if phase == 0 else 16
            alpha = 1.0 if phase == 0 else min(1.0, (t - 0.5) / 0.25)
        else:
            phase, res, alpha = 0, RES, 1.0
        rows.append({
            "nimg": nimg, "kimg": nimg / 1000, "time_s": 0.05 * nimg,
            "loss_D": float(1.2 * math.exp(-2 * t) + 0.3 + 0.05 * rng.standard_normal()),
            "loss_G": float(0.8 + 1.5 * t + 0.1 * rng.standard_normal()),
            "D_real": float(0.5 + 0.3 * t + 0.02 * rng.standard_normal()),
            "D_fake": float(0.5 - 0.3 * t + 0.02 * rng.standard_normal()),
            "resolution": res, "alpha": alpha, "phase": phase, "batch": 16, "lr": 2e-4,
        })
    return rows


def _grid(seed: int) -> np.ndarray:
    """A 64 px grid of 4 x 4 coloured squares."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8).repeat(16, 0).repeat(16, 1)


def _write_fingerprint(path: Path, seed: int, n: int = 120, side: int = RES, bank: int = 16,
                       split: str = "train") -> None:
    """A real ``eval.fingerprint`` file of synthetic lesions (``eval.testing.lesion_images``): no Inception
    features (they would cost seconds where the weights are cached); the dermoscopy encoder's features
    as ``eval.fingerprint`` stores them, when the encoder is there (the shipped ``checkpoints/derm-encoder``)."""
    from eval.fingerprint import FORMAT, N_THUMBS, VERSION, Fingerprint, derm_block, save_fingerprint
    from eval.images import resize_images, rgb_to_hsv
    from eval.metrics.histogram import channel_histograms
    from eval.testing import lesion_images

    rng = np.random.default_rng(seed)
    imgs = lesion_images(n, side, seed)
    names = [f"ISIC_{seed:02d}{i:05d}" for i in range(n)]
    t_idx = np.sort(rng.permutation(n)[:min(n, N_THUMBS)]).astype(np.int64)
    derm_f, derm_stats, derm_meta = derm_block(imgs, None, side)
    meta = {"format": FORMAT, "version": VERSION, "source": "dashboard.demo (synthetic)", "layout": "array",
            "split": split, "image_count": n, "size": side, "preprocessing": "none", "names": names,
            "labels": {}, "skipped": 0, "bank": {"size": bank, "resize": "pil-box", "count": n},
            "thumbs": {"count": len(t_idx), "seed": seed}, "inception": None, "derm": derm_meta,
            "tool": "dashboard.demo"}
    fp = Fingerprint(meta=meta, hist_rgb256=channel_histograms(imgs),
                     hist_hsv256=channel_histograms(np.array(rgb_to_hsv(imgs))),
                     nn_bank=resize_images(imgs, bank, "box"), thumbs=imgs[t_idx], thumb_index=t_idx,
                     derm_features=derm_f, derm_mu=None if derm_stats is None else derm_stats["mu"],
                     derm_sigma=None if derm_stats is None else derm_stats["sigma"])
    save_fingerprint(fp, path)


def make_demo_folder(root: str | Path, broken: bool = False, evaluate: bool = False) -> Path:
    """Write a demo models folder at ``root`` and return it.

    Contents: ``dcgan-demo`` (fixed resolution) and ``pggan-demo`` (progressive statistics with phases and
    a fade-in), each with generator.pt, stats.jsonl, grids/, fingerprint.npz and fingerprint-val.npz;
    ``results.json`` in eval.run's format: scored by the real ``eval.run`` when ``evaluate`` (slower),
    else fixed numbers with FID/KID unavailable as on a machine without Inception weights.
    ``broken=True`` adds ``broken-demo`` whose generator.pt is not a checkpoint, to show how the pages
    report it.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    specs = [("dcgan-demo", False, 1, 48_000), ("pggan-demo", True, 2, 64_000)]
    for name, progressive, seed, total in specs:
        run = RunDir(root / name).open_for_writing()
        export_dcgan(run.file(GENERATOR), seed, total, 0.05 * total)
        for row in _stats_rows(20, total, progressive, seed):
            run.append_stats(row)
        for k in (0, total // 2, total):
            run.write_grid(k, _grid(seed * 100 + k))
        _write_fingerprint(run.file(FINGERPRINTS["train"]), seed)
        _write_fingerprint(run.file(FINGERPRINTS["validation"]), seed + 10, n=100, split="validation")
        run.write_model_card(
            f"# {name}\n\nAn untrained {RES} px DCGAN with synthetic statistics, made by `dashboard.demo` to "
            "try the dashboard. It generates noise, not lesions.\n")
    if evaluate:
        _run_eval(root)
    else:
        _write_results(root)
    if broken:  # after scoring: eval.run would (rightly) stop on it
        run = RunDir(root / "broken-demo").open_for_writing()
        run.file(GENERATOR).write_bytes(b"this is not a checkpoint")
    return root


def _run_eval(root: Path) -> None:
    """Score the demo models with the real ``python -m eval.run`` (64 samples; about 10 s on 2 cores)."""
    import contextlib
    import io

    from eval.run import main as eval_main

    with contextlib.redirect_stdout(io.StringIO()):
        rc = eval_main(["--checkpoints", str(root), "--n", "64", "--quiet"])
    if rc != 0:
        raise RuntimeError(f"eval.run failed on the demo folder {root} (exit {rc})")


def _write_results(root: Path) -> None:
    """A results.json like eval.run's (rows per model and reference, FID/KID unavailable)."""
    from eval import keys as K
    from eval.run import to_csv

    why = "no Inception weights (pass --inception-weights PATH; no network here)"
    rows = []
    derm = {"dcgan-demo": (41.3, 0.52, 0.21, 0.08, 0.15, 0.06, 0.0), "pggan-demo": (33.8, 0.41, 0.27, 0.12, 0.22, 0.1, 0.01)}
    for name, js, w1, div, copy in (("dcgan-demo", 0.112, 0.041, 0.31, 0.0), ("pggan-demo", 0.087, 0.029, 0.27, 0.01)):
        for ref, n_real in (("train", 120), ("validation", 100)):
            row = {"model": name, "reference": ref, "generator": str(RunDir(root / name).weights()),
                   K.KEY_N_REAL: n_real, K.KEY_N_FAKE: 64, K.KEY_RESOLUTION: RES, K.KEY_SEED: 0,
                   K.KEY_JS_RGB: js, K.KEY_WASSERSTEIN_RGB: w1, K.KEY_MSSSIM_FAKE: div, K.KEY_MSSSIM_REAL: 0.25,
                   K.KEY_MSSSIM_GAP: div - 0.25, K.KEY_SECONDS: 1.0, K.KEY_RESIZE: {"real": "none", "fake": "none"},
                   K.KEY_UNAVAILABLE: {"fid": why, "kid": why}}
            fd, kid, prec, rec, dens, cov, copy_d = derm[name]
            row.update({K.KEY_FD_DERM: fd, K.KEY_KID_DERM: kid, K.KEY_PRECISION_DERM: prec, K.KEY_RECALL_DERM: rec,
                        K.KEY_DENSITY_DERM: dens, K.KEY_COVERAGE_DERM: cov})
            if ref == "train":
                row.update({K.KEY_COPY_RATE: copy, K.KEY_NN_THRESHOLD: 0.05, K.KEY_COPY_RATE_DERM: copy_d,
                            K.KEY_NN_THRESHOLD_DERM: 2.5})
            else:
                row[K.KEY_JS_RGB] += 0.004
                for m in ("memorization", "memorization_derm"):
                    row[K.KEY_UNAVAILABLE][m] = f"{m} needs a held-out real set and none was given (--heldout PATH)"
            rows.append(row)
    meta = {"created": "2026-01-01T00:00:00+00:00", "command": "dashboard.demo", "n": 64, "seed": 0, "bins": 64}
    write_collection_results(root, rows, meta, to_csv(rows))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder to write (created if missing)")
    p.add_argument("--broken", action="store_true", help="also add a model whose generator.pt is corrupt")
    p.add_argument("--evaluate", action="store_true", help="score the models with python -m eval.run (~10 s)")
    args = p.parse_args(argv)
    print(make_demo_folder(args.out, broken=args.broken, evaluate=args.evaluate))


if __name__ == "__main__":
    main()
