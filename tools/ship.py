"""Release tooling: put a trained run into ``checkpoints/`` and write the model cards.

    python tools/ship.py RUN_DIR --name dcgan      # generator (G_ema), stats, a few grids, fingerprints
    python -m eval.run                             # scores -> checkpoints/results.json, <model>/results.json
    python tools/ship.py --cards                   # MODEL_CARD.md per model, from all of the above

The fingerprints of the training and validation splits live once in ``checkpoints/fingerprints/``;
each model folder links to them (``fingerprint.npz``, ``fingerprint-val.npz``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gan import checkpoint as ckpt_io  # noqa: E402
from gan.fileio import atomic_write_text  # noqa: E402
from gan.loop import export_generator  # noqa: E402

CKPTS = ROOT / "checkpoints"
FP_TRAIN = "fingerprints/isic2017-train-64.npz"
FP_VAL = "fingerprints/isic2017-validation-64.npz"
IDS = "fingerprints/isic2017-train-ids.txt"
MAX_MB = 25

CITATIONS = """\
- ISIC 2017: N. C. F. Codella et al., "Skin Lesion Analysis Toward Melanoma Detection: A Challenge at the
  2017 International Symposium on Biomedical Imaging (ISBI)", arXiv:1710.05006. Use follows the ISIC
  archive's terms for each image.
- All images come from the International Skin Imaging Collaboration (ISIC) archive."""

RECIPES = {
    "dcgan": "The report's DCGAN (PyTorch's DCGAN example): nz=100, 64 feature maps, no biases, BatchNorm, "
             "N(0, 0.02) init, BCE, Adam(2e-4, 0.5, 0.999), batch 64.",
    "pggan-seed": "The report's progressive recipe: DCGAN-style blocks grown 16 -> 32 -> 64 px, a toRGB/fromRGB "
                  "pair per phase, earlier phases' layers frozen while a new phase trains, BCE, Adam(2e-4, 0.5, "
                  "0.999), batch 64. At 64 px the networks in use are exactly the report's DCGAN.",
    "pggan": "Karras et al. 2018 (ICLR), scaled down for a CPU: growing from 8 px with smooth fade-in, "
             "equalized learning rate, pixelwise feature normalization, minibatch standard deviation, "
             "WGAN-GP (lambda 10) with drift 0.001, Adam(1e-3, 0, 0.99) reset per phase, per-resolution batch.",
}


def _link(target: str, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.relpath(CKPTS / target, link.parent), link)


def ship(run_dir: Path, name: str, n_grids: int) -> None:
    out = CKPTS / name
    out.mkdir(parents=True, exist_ok=True)
    ckpt = ckpt_io.load(run_dir / "checkpoint.pt", kinds=(ckpt_io.KIND_TRAIN,))
    gen = export_generator(ckpt, out / "generator.pt")
    size_mb = gen.stat().st_size / 1e6
    if size_mb > MAX_MB:
        raise SystemExit(f"{gen}: {size_mb:.1f} MB is over the {MAX_MB} MB limit for shipped weights")
    shutil.copyfile(run_dir / "stats.jsonl", out / "stats.jsonl")
    shutil.copyfile(run_dir / "config.json", out / "training_options.json")
    grids = sorted((run_dir / "grids").glob("grid-*.png"))
    pick = sorted({grids[round(i * (len(grids) - 1) / max(n_grids - 1, 1))] for i in range(n_grids)})
    shutil.rmtree(out / "grids", ignore_errors=True)
    (out / "grids").mkdir()
    for g in pick:
        shutil.copyfile(g, out / "grids" / g.name)
    _link(FP_TRAIN, out / "fingerprint.npz")
    _link(FP_VAL, out / "fingerprint-val.npz")
    meta = json.loads(str(np.load(CKPTS / FP_TRAIN, allow_pickle=False)["meta"]))
    atomic_write_text(CKPTS / IDS, "\n".join(meta["names"]) + "\n")
    print(f"{name}: {gen} ({size_mb:.1f} MB, {ckpt['nimg']} images seen), {len(pick)} grids")


def _fmt(v, digits=4) -> str:
    return "n/a" if v is None else (f"{v:.{digits}f}" if isinstance(v, float) else str(v))


def _val_sentence(val: dict) -> str:
    js, w = val.get("js_rgb_hist64"), val.get("wasserstein_rgb")
    if js is None or w is None:
        return "."
    within = js <= 0.010 and w <= 0.020
    return (f"; against the held-out validation images it scores JSD {js:.4f} and Wasserstein {w:.4f}, "
            f"{'also within' if within else 'outside'} the bar's numbers.")


def card(mdir: Path) -> str:
    from gan import load_generator

    name = mdir.name
    G = load_generator(mdir / "generator.pt")
    opts = json.loads((mdir / "training_options.json").read_text())
    stats = [json.loads(line) for line in (mdir / "stats.jsonl").read_text().splitlines() if line.strip()]
    last = stats[-1]
    results = json.loads((mdir / "results.json").read_text())["results"] if (mdir / "results.json").is_file() else {}
    t = opts["train"]
    kimg = G.info.get("nimg", 0) / 1000
    hours = G.info.get("time_s", last.get("time_s", 0)) / 3600
    planned = G.config["train"]["kimg"]  # the checkpoint's config: a resume may have extended the run
    from gan.config import to_dict
    from gan.models import get_model
    defaults = to_dict(get_model(opts["model"]).Config())
    mset = " ".join(f"--set {k}={json.dumps(v, separators=(',', ':'))}" for k, v in opts["model_cfg"].items()
                    if k != "resolution" and json.dumps(v) != json.dumps(defaults.get(k)))
    retrain = (f"python -m gan.train --model {opts['model']} --data ../shared/data/isic2017 --out runs "
               f"--size {opts['data']['size']} --kimg {planned:g} --seed {t['seed']}"
               f"{' --augment' if t['augment'] else ''}{' --channels-last' if t['channels_last'] else ''} {mset}")
    lines = [f"# Model card: `{name}`", "",
             f"{RECIPES.get(opts['model'], opts['model'])}", "",
             "## Data", "",
             f"- ISIC 2017 challenge, Part 3, **training split**: {opts['data'].get('num_images', 2000)} "
             "dermoscopic images (1,372 nevus, 374 melanoma, 254 seborrheic keratosis), unconditional "
             "(labels not used).",
             f"- Image ids: [`{IDS}`](../{IDS}). The 150 validation images were held out: they are the "
             "held-out set of the memorization check and the second row of the results.",
             "- Preprocessing: the challenge's 256x256 images, centre square crop, PIL LANCZOS resize to "
             f"{opts['data']['size']} px, uint8; random flips and 90-degree rotations during training"
             f"{'' if t['augment'] else ' (off for this run)'}.",
             "- Licence and citation:", CITATIONS, "",
             "## Training", "",
             f"- Images seen: **{kimg:,.1f} k** of the {planned:g} k planned"
             f"{'' if kimg >= planned else ' (stopped early: the session ran out of time; the run resumes with --resume)'}.",
             f"- Wall time: {hours:.2f} h on {G.info.get('hardware', 'unknown hardware')} (at the last resume); the machine was shared "
             "with the other models' runs, so the time is not a speed figure (see bench/ for those).",
             f"- Generator parameters: {G.num_params:,}; output {G.resolution} px; sampled from G_ema "
             f"(half-life {t['ema_kimg']} kimg, BatchNorm statistics re-estimated for the EMA weights).",
             f"- Final logged losses (mean of the last {t['log_kimg']} kimg): D {last.get('loss_D', float('nan')):.3f}, "
             f"G {last.get('loss_G', float('nan')):.3f}; D(x) {last.get('D_real', float('nan')):.3f}, "
             f"D(G(z)) {last.get('D_fake', float('nan')):.3f}.",
             f"- Model config: `{json.dumps(opts['model_cfg'])}`",
             f"- Retrain from scratch: `{retrain.strip()}`", "",
             "## Results", "",
             "Scored by `python -m eval.run` (2,000 samples, seed 0, 64 px, no resizing; histograms 64 bins "
             "over [0, 256), base-2 JSD, RGB mean; Wasserstein of pixel intensities on [0, 1], RGB mean; "
             "MS-SSIM 3 scales at 64 px over 1,000 random pairs; memorization at 32 px against the training "
             "split's image bank). One pair alone: `python -m eval.run --real "
             f"checkpoints/{name}/fingerprint.npz --fake checkpoints/{name}/generator.pt "
             f"--heldout checkpoints/{name}/fingerprint-val.npz --n 2000 --seed 0 --json`.", "",
             "| against | colour JSD (lower better) | Wasserstein (lower better) | MS-SSIM fake / real (lower = more diverse) | copy rate | FID / KID |",
             "| --- | --- | --- | --- | --- | --- |"]
    for ref, r in results.items():
        un = r.get("unavailable", {})
        fid = "unavailable: " + un["fid"] if "fid" in un else f"{_fmt(r.get('fid_inception_299'), 2)} / {_fmt(r.get('kid_inception_299'))}"
        lines.append(f"| {ref} split | {_fmt(r.get('js_rgb_hist64'))} | {_fmt(r.get('wasserstein_rgb'))} | "
                     f"{_fmt(r.get('diversity_msssim_fake'), 3)} / {_fmt(r.get('diversity_msssim_real'), 3)} | "
                     f"{_fmt(r.get('memorization_copy_rate'), 3)} | {fid} |")
    if not results:
        lines.append("| (not scored yet: run `python -m eval.run`) | | | | | |")
    train = results.get("train", {})
    js, w = train.get("js_rgb_hist64"), train.get("wasserstein_rgb")
    met = js is not None and w is not None and js <= 0.010 and w <= 0.020
    lines += ["", "The validation split has 150 images, so its row carries more sampling noise than the "
              "training row. For scale: two disjoint halves of the training split score JSD 0.0010 and Wasserstein 0.0048; "
              "the project's quality bar is JSD <= 0.010 and Wasserstein <= 0.020 against the training split. "
              f"This model **{'meets' if met else 'does not meet'}** that bar"
              + (_val_sentence(results.get("validation", {})) if results.get("validation") else ".") , "",
              "## Known limits", "",
              "- 64 px only: far below diagnostic resolution. Synthetic images are for data augmentation research, "
              "never for diagnosis.",
              "- Unconditional: the class mix follows the training split (about 69% nevus); no control over the "
              "diagnosis.",
              "- Trained on a 2-core CPU for a short time: expect blur and repeated textures; compare the grids "
              "under `grids/` with the real thumbnails in the dashboard's Gallery. The colour range, lesion "
              "sizes and dark-corner vignetting of the data come through; fine structures (hairs, ruler "
              "marks, pigment networks) rarely do at 64 px.",
              "- FID/KID need Inception weights that this machine could not download; the colour and pixel "
              "measures above do not capture shape or texture quality.",
              "- The memorization check works at 32 px in pixel space; it catches near-copies, not "
              "semantic ones.", ""]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", nargs="?", type=Path)
    p.add_argument("--name", help="model folder name under checkpoints/")
    p.add_argument("--grids", type=int, default=5)
    p.add_argument("--cards", action="store_true", help="write MODEL_CARD.md for every shipped model")
    args = p.parse_args()
    if args.run_dir:
        ship(args.run_dir, args.name or args.run_dir.name.split("-", 1)[1].rsplit("-", 2)[0], args.grids)
    if args.cards:
        for mdir in sorted(d for d in CKPTS.iterdir() if (d / "generator.pt").is_file()):
            atomic_write_text(mdir / "MODEL_CARD.md", card(mdir))
            print(f"wrote {mdir / 'MODEL_CARD.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
