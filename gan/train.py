"""Train a GAN: ``python -m gan.train --model dcgan --data PATH --out RUNS_DIR``.

Every model runs in the same loop (:mod:`gan.loop`). A run folder gets the resolved ``config.json``
before step one, ``stats.jsonl``, fixed-noise grids, ``checkpoint.pt`` and, at the end,
``generator.pt``. ``--resume RUN_DIR`` continues exactly where the checkpoint stopped. ``--metrics``
scores G_ema during training with the hooks that the eval package provides (:mod:`gan.hooks`: ``gan``
imports no ``eval`` module).

Several GPUs (or CPU processes): ``torchrun --nproc_per_node=N -m gan.train ...`` trains with DDP;
the batch is the global batch, split over the N processes (docs/distributed.md).

Importing this module loads no torch: every function imports what it needs, so that Ctrl-C in the
first seconds (torch loading) is one line and exit code 130 (:func:`gan.cli.entry_point`).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from gan.cli import entry_point, prog

if TYPE_CHECKING:
    from gan.config import RunConfig
    from gan.data.dataset import DataConfig

# CLI flags that map onto model-config fields, when the model has that field.
_MODEL_FLAGS = {"size": "resolution", "batch": "batch", "lr": "lr"}
_TRAIN_FLAGS = ["kimg", "seed", "ema_kimg", "log_kimg", "snapshot_kimg", "grid_kimg", "device",
                "channels_last", "threads", "sync_bn", "precision", "balance", "diffaug", "ada", "ada_target",
                "ada_kimg", "ada_ops", "metrics", "metrics_kimg", "metrics_n", "metrics_ref", "keep_best",
                "keep_kimg"]
_DATA_FLAGS = ["data", "layout", "split", "labels", "subset", "augment", "cond"]
# Flags that --resume may change: how long and how the run executes, not what it trains (and
# --data, when the same images moved to another folder).
# Metrics during training only watch the run, so they may be switched on, off or changed on resume.
_RESUME_FLAGS = ("kimg", "threads", "device", "sync_bn", "data", "metrics", "metrics_kimg", "metrics_n",
                 "metrics_ref", "keep_best", "keep_kimg")


def build_parser() -> argparse.ArgumentParser:
    from gan.models import model_names

    p = argparse.ArgumentParser(prog=prog("gan.train", "lesiongan-train"), description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Defaults are None so that we can tell which flags the user gave (resume refuses changes).
    p.add_argument("--model", choices=model_names(), help="model to train (default dcgan)")
    p.add_argument("--preset", metavar="NAME", help="start from the model's named configuration (stylegan2: cpu64, "
                                                    "the default, or gpu256) instead of its defaults; flags "
                                                    "given change it")
    p.add_argument("--recipe", metavar="RUN", help="start from the config of this run folder, config.json or "
                                                   "generator.pt (e.g. checkpoints/dcgan: the shipped recipe) "
                                                   "instead of the defaults; flags given change it; the data "
                                                   "comes from --data")
    p.add_argument("--data", help="image folder: ISIC 2017 layout, ISIC archive, HAM10000 or any folder")
    p.add_argument("--layout", help="force the data layout (isic2017, isic-archive, ham10000, folder)")
    p.add_argument("--split", help="ISIC 2017 split: train (default), validation or test")
    p.add_argument("--labels", metavar="CSV", help="labels for any folder: a CSV with image,label columns")
    p.add_argument("--subset", metavar="LIST", help="train on these images only: a text file of image names "
                                                    "(one per line, as the reader names them, e.g. ISIC_0000000)")
    p.add_argument("--out", default="runs", help="folder that receives numbered run folders (default runs/)")
    p.add_argument("--size", type=int, help="image side in px: 64 (default), 128 or 256")
    p.add_argument("--kimg", type=float, help="train for this many thousand images (default 150)")
    p.add_argument("--batch", type=int, help="batch size (DCGAN default 64); under torchrun the global batch, "
                                             "each of the N processes takes batch / N")
    p.add_argument("--lr", type=float, help="learning rate (model default)")
    p.add_argument("--seed", type=int, help="one seed drives everything (default 0)")
    p.add_argument("--set", dest="model_set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other field of the model config, VALUE in JSON (repeatable), "
                        "e.g. --set phase_kimg=[20,20] --set fade_kimg=10")
    p.add_argument("--ema-kimg", type=float, help="G_ema half-life in thousand images (default 10)")
    p.add_argument("--log-kimg", type=float, help="stats.jsonl interval in kimg (default 1)")
    p.add_argument("--snapshot-kimg", type=float, help="checkpoint interval in kimg (default 10)")
    p.add_argument("--grid-kimg", type=float, help="fixed-noise grid interval in kimg (default 10)")
    p.add_argument("--cond", action="store_true", default=None,
                   help="class-conditional: the classes come from the data's labels (ISIC 2017: melanoma, nevus, "
                        "seborrheic keratosis; HAM10000: its 7 dx); refused for data without labels")
    p.add_argument("--balance", action="store_true", default=None,
                   help="draw real images class-balanced (each class equally often) instead of in shuffled "
                        "epochs; needs labels")
    p.add_argument("--augment", action="store_true", default=None,
                   help="random flips and 90-degree rotations of the real images (data.augment)")
    p.add_argument("--diffaug", type=_policy, metavar="OPS",
                   help="DiffAugment for D (Zhao et al. 2020): comma-separated ops of color, translation, cutout, "
                        "applied to real and generated images alike, e.g. --diffaug color,translation,cutout")
    p.add_argument("--ada", action=argparse.BooleanOptionalAction, default=None,
                   help="adaptive discriminator augmentation (Karras et al. 2020): p steered by r_t = E[sign(D_real)] "
                        "to --ada-target; p is logged (aug_p) and checkpointed (default off; on for stylegan2, "
                        "which --no-ada switches off)")
    p.add_argument("--ada-target", type=float, help="ADA's target r_t (default 0.6)")
    p.add_argument("--ada-kimg", type=float, help="kimg over which ADA's p can go from 0 to 1 (default 100)")
    p.add_argument("--ada-ops", metavar="GROUPS", help="ADA's pipeline: bgc (blit, geometry, colour; default) or a "
                                                       "subset, e.g. bg to leave colours alone")
    p.add_argument("--metrics", type=_metric_list, metavar="NAMES",
                   help="score G_ema during training, e.g. fd_derm,precision_derm,recall_derm (the metrics of "
                        "the eval package, which gan.hooks loads); rows go to metrics.jsonl")
    p.add_argument("--metrics-kimg", type=float, help="score every this many kimg (default 10; at the next snapshot)")
    p.add_argument("--metrics-n", type=int, help="samples per scoring (default 1000)")
    p.add_argument("--metrics-ref", metavar="NPZ", help="reference fingerprint (default: the run folder's "
                                                         "fingerprint.npz, made from the training images)")
    p.add_argument("--keep-best", metavar="METRIC", help="keep the best snapshot by this metric (one of --metrics) "
                                                         "as generator-best.pt")
    p.add_argument("--keep-kimg", type=float, help="also keep the training checkpoint (G, D, G_ema) at every "
                                                   "multiple of this many kimg in snapshots/ (default 0: only the "
                                                   "latest)")
    p.add_argument("--device", help="auto (default: CUDA when available), cpu, cuda, cuda:N")
    p.add_argument("--channels-last", action="store_true", default=None, help="channels-last memory format")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"),
                   help="fp32 (default); bf16 autocast for the forward/backward passes (refused where bf16 is not "
                        "native: it would be emulated and slower); or auto: bf16 only where it is native and a "
                        "one-off measurement of this model's step finds it faster, else fp32, decided when the run "
                        "starts and written into config.json")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice), per process")
    p.add_argument("--sync-bn", action="store_true", default=None,
                   help="under torchrun on GPUs: BatchNorm statistics over the global batch (SyncBatchNorm)")
    p.add_argument("--cache-dir", help="where preprocessed image tensors are cached")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR (or from a checkpoint.pt)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config, parameter counts and "
                                                          "schedule, then exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _policy(text: str) -> tuple[str, ...]:
    from gan.daug import parse_policy

    try:
        return parse_policy(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--diffaug: ")) from None


def _metric_list(text: str) -> tuple[str, ...]:
    from gan import hooks

    try:
        known = list(hooks.provider(hooks.METRICS, "--metrics").metric_names())
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--metrics: ")) from None
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; known: "
                                         f"{', '.join(known)}")
    return names


def resolve_config(args: argparse.Namespace) -> RunConfig:
    """Fill the typed configs from the CLI, checking each flag against the chosen model."""
    from gan.config import RunConfig, TrainConfig, to_dict
    from gan.data.dataset import DataConfig
    from gan.models import get_model

    recipe = read_recipe(args.recipe) if args.recipe else None
    if recipe is not None and args.model and args.model != recipe.model:
        raise ValueError(f"--model {args.model}: --recipe {args.recipe} trains {recipe.model}")
    spec = get_model(args.model or (recipe.model if recipe else "dcgan"))
    if args.preset is not None:
        if recipe is not None:
            raise ValueError(f"--preset {args.preset}: --recipe {args.recipe} already gives the config")
        if args.preset not in spec.presets:
            raise ValueError(f"--preset {args.preset}: model {spec.name} has "
                             f"{'the presets ' + ', '.join(sorted(spec.presets)) if spec.presets else 'no presets'}")
    fields = {f.name for f in dataclasses.fields(spec.Config)}
    overrides = {}
    for flag, field in _MODEL_FLAGS.items():
        value = getattr(args, flag)
        if value is None:
            continue
        if field not in fields:
            raise ValueError(f"--{flag} does not apply to model {spec.name}")
        overrides[field] = value
    for item in args.model_set:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ValueError(f"--set {item}: expected KEY=VALUE with KEY one of {sorted(fields)}")
        if key in overrides:
            raise ValueError(f"--set {key} repeats a flag given elsewhere")
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value  # a bare string
    try:
        if recipe is not None:
            base = to_dict(recipe.model_cfg)
        else:
            base = to_dict(spec.presets[args.preset] if args.preset is not None else spec.Config())
        if recipe is not None and "class_names" in base:
            args.cond = args.cond or bool(base["class_names"])  # a conditional recipe stays conditional
            base["class_names"] = ()  # ...with the classes of the data it now trains on
        mcfg = spec.config_from_dict({**base, **overrides})
    except ValueError as e:  # name the flags that set the model config
        given = [f"--{flag} {getattr(args, flag)}" for flag in _MODEL_FLAGS if getattr(args, flag) is not None]
        given += [f"--set {item}" for item in args.model_set]
        raise ValueError(f"{e}{' (from ' + ', '.join(given) + ')' if given else ''}") from None
    train = {k: getattr(args, k) for k in _TRAIN_FLAGS if getattr(args, k) is not None}
    if "metrics_ref" in train:
        train["metrics_ref"] = str(Path(train["metrics_ref"]).resolve())
    if "keep_best" in train and "metrics" not in train:
        raise ValueError(f"--keep-best {train['keep_best']} needs --metrics naming it")
    if recipe is not None:
        # The recipe's metrics reference belongs to its data: the default is this run's own fingerprint.
        train = {**to_dict(recipe.train), "metrics_ref": "", **train}
    else:  # what the model trains with unless told otherwise (stylegan2: ADA)
        train = {**spec.train_defaults(mcfg, bool(args.cond)), **train}
    tcfg = TrainConfig(**train)
    augment = bool(args.augment) or (recipe is not None and recipe.data.augment)
    data = DataConfig(path=str(Path(args.data).resolve()) if args.data else None, size=mcfg.resolution,
                      layout=args.layout or "auto", split=args.split, augment=augment,
                      labels=str(Path(args.labels).resolve()) if args.labels else None,
                      subset=str(Path(args.subset).resolve()) if args.subset else None,
                      cache_dir=args.cache_dir)
    return RunConfig(model=spec.name, model_cfg=mcfg, train=tcfg, data=data)


def resume_config(saved: RunConfig, args: argparse.Namespace) -> RunConfig:
    """The saved config with the changes ``--resume`` allows (length, execution, data location);
    any other flag is refused, named."""
    given = [f for f in [*_MODEL_FLAGS, *_TRAIN_FLAGS, *_DATA_FLAGS, "model"]
             if getattr(args, f) is not None and f not in _RESUME_FLAGS]
    given += ["set"] if args.model_set else []
    given += ["preset"] if args.preset is not None else []
    if given:
        raise ValueError(f"--resume continues the saved config; these flags cannot change it: "
                         f"{', '.join('--' + g.replace('_', '-') for g in given)}")
    train = {f: getattr(args, f) for f in _RESUME_FLAGS if f != "data" and getattr(args, f) is not None}
    if "metrics_ref" in train:
        train["metrics_ref"] = str(Path(train["metrics_ref"]).resolve())
    data = {}
    if args.data:  # the data moved: same images expected, another path
        data["path"] = str(Path(args.data).resolve())
    if args.cache_dir:
        data["cache_dir"] = args.cache_dir
    return saved.replace(train=dataclasses.replace(saved.train, **train),
                         data=dataclasses.replace(saved.data, **data))


def read_recipe(path: str) -> RunConfig:
    """The config of a run folder, its ``config.json`` or a weights file (``--recipe``)."""
    from gan import checkpoint as ckpt_io
    from gan.config import RunConfig
    from gan.rundir import RunDir

    p = Path(path)
    if p.is_dir():
        cfg = RunDir(p).read_config()
        if cfg is None:
            raise ValueError(f"--recipe {path}: no config.json in that folder")
        return cfg
    if p.suffix == ".json":
        try:
            return RunConfig.from_json(p.read_text())
        except OSError as e:
            raise ValueError(f"--recipe {path}: unreadable ({e.__class__.__name__})") from None
        except ValueError as e:
            raise ValueError(f"--recipe {path}: {e}") from None
    return ckpt_io.load(p)["config"]


def check_execution(cfg: RunConfig) -> None:
    """What can be checked before anything is written: the device exists, bf16 runs natively on it
    (the loop's own check, :func:`gan.loop.check_execution`)."""
    from gan.loop import check_execution as check

    check(cfg.train)


def decide_precision(cfg: RunConfig) -> RunConfig:
    """``cfg`` with ``--precision auto`` resolved to fp32 or bf16 (:func:`gan.loop.training_precision`):
    process 0 decides for every process and says on stderr what it chose and why."""
    from gan import dist
    from gan.loop import training_precision

    if cfg.train.precision != "auto":
        return cfg
    choice = dist.broadcast(training_precision(cfg) if dist.is_main() else None)
    if dist.is_main():
        print(f"--precision auto: {choice}", file=sys.stderr)
    return cfg.replace(train=dataclasses.replace(cfg.train, precision=choice.precision))


def class_labels(ds, cfg: RunConfig, cond: bool, report: bool = True):
    """(images, labels, config) to train on: for a conditional run (``--cond``, or a resumed
    conditional config) or ``--balance``, the labelled images, their class indices and the config
    with the class names; otherwise all images and no labels. Refuses data without the labels needed,
    naming the folder."""
    import torch

    from gan.data.labels import class_order

    classes = tuple(getattr(cfg.model_cfg, "class_names", ()))
    if not (cond or classes or cfg.train.balance):
        return ds.images, None, cfg
    if cond and not hasattr(cfg.model_cfg, "class_names"):
        raise ValueError(f"--cond: model {cfg.model} has no conditional form")
    found = class_order(ds.labels)
    what = "--cond" if cond or classes else "--balance"
    if len(found) < 2:
        raise ValueError(f"{what}: {ds.source} has {'no labels' if not found else 'one class only: ' + found[0]} "
                         f"(layout {ds.layout}); a labelled layout (isic2017, ham10000, isic-archive, imagefolder) "
                         f"is needed")
    if classes:  # a resumed run numbers its classes as it did
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise ValueError(f"{ds.source} has classes the run was not trained on: {', '.join(unknown)}")
    else:
        classes = tuple(found)
    keep = [i for i, c in enumerate(ds.labels) if c is not None]
    if report and len(keep) < len(ds):
        print(f"{what}: {len(ds) - len(keep)} unlabelled images left out", file=sys.stderr)
    index = {c: i for i, c in enumerate(classes)}
    labels = torch.tensor([index[ds.labels[i]] for i in keep], dtype=torch.long)
    images = ds.images if len(keep) == len(ds) else ds.images[keep]
    if cond and not cfg.model_cfg.class_names:
        cfg = cfg.replace(model_cfg=dataclasses.replace(cfg.model_cfg, class_names=classes))
    counts = torch.bincount(labels, minlength=len(classes)).tolist()
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, num_images=len(keep),
                                               class_counts=dict(zip(classes, counts))))
    if report:
        print("classes: " + ", ".join(f"{c} {n}" for c, n in zip(classes, counts)), file=sys.stderr)
    return images, labels, cfg


def forward_flops(spec, mcfg, G, D) -> tuple[int, int]:
    """FLOPs of one image through ``G`` and through ``D`` (``spec.build(mcfg)``) at the model's final
    resolution (fade-ins done), as ``torch.utils.flop_counter`` counts them (convolutions and matrix
    products): on networks built on torch's meta device, where nothing is computed, or, for networks
    that cannot run there, on ``G`` and ``D`` on the CPU."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    res = mcfg.resolution
    kw = {"resolution": res, "alpha": 1.0}

    def count(device: str, nets) -> tuple[int, int]:
        flops = []
        extra = {"labels": torch.zeros(1, dtype=torch.long, device=device)} if getattr(mcfg, "class_names", ()) else {}
        inputs = (torch.zeros(1, mcfg.z_dim, device=device), torch.zeros(1, 3, res, res, device=device))
        for net, x in zip(nets, inputs):
            with FlopCounterMode(display=False) as counter:
                net.eval()(x, **kw, **extra)
            flops.append(counter.get_total_flops())
        return flops[0], flops[1]

    try:
        with torch.device("meta"):
            nets = spec.build(mcfg)
        return count("meta", nets)
    except (RuntimeError, NotImplementedError, ValueError, AssertionError):  # an op without a meta kernel
        return count("cpu", (G, D))


def print_dry_run(cfg: RunConfig) -> None:
    import dataclasses as dc

    from gan.models import get_model
    from gan.models.base import count_params

    spec, mcfg = cfg.spec, cfg.model_cfg
    G, D = spec.build(mcfg)
    print(cfg.to_json(indent=2))
    print(f"G parameters: {count_params(G):,}")
    print(f"D parameters: {count_params(D):,}")
    g_flops, d_flops = forward_flops(spec, mcfg, G, D)
    line = (f"forward FLOPs per image (convolutions and matrix products): G {g_flops / 1e9:.3f} GFLOP, "
            f"D {d_flops / 1e9:.3f} GFLOP")
    dcgan = get_model("dcgan")
    if cfg.model != dcgan.name and mcfg.resolution in (32, 64, 128, 256):
        ref_cfg = dc.replace(dcgan.Config(), resolution=mcfg.resolution)
        ref = sum(forward_flops(dcgan, ref_cfg, *dcgan.build(ref_cfg)))
        line += f"; G + D {(g_flops + d_flops) / ref:.2f}x dcgan's at {mcfg.resolution} px"
    print(line)
    for note in spec.dry_run_notes(mcfg):
        print(note)
    rows = spec.describe_schedule(mcfg, int(cfg.train.kimg * 1000))
    print("\nschedule:")
    print(f"{'phase':>5} {'res':>5} {'start kimg':>11} {'end kimg':>9} {'fade kimg':>10} {'batch':>6} "
          f"{'lr G':>9} {'lr D':>9}")
    for r in rows:
        print(f"{r['phase']:>5} {r['resolution']:>5} {r['start_kimg']:>11.1f} {r['end_kimg']:>9.1f} "
              f"{r['fade_kimg']:>10.1f} {r['batch']:>6} {r['lr_g']:>9.2e} {r['lr_d']:>9.2e}")


def _load_data(data: DataConfig, progress: bool, report: bool = True):
    from gan.data import load_dataset  # deferred: --dry-run must not touch data
    if not data.path:
        if data.name:  # a run resumed from a config that names its data set by name and hash only
            raise ValueError(f"--resume: the run's config names its data set ({data.name}) but no folder: give "
                             f"--data FOLDER with the same images")
        raise ValueError("--data is required (a folder of images)")
    ds = load_dataset(data, progress=progress and report)
    if report:
        print(ds.summary(), file=sys.stderr)
    return ds


def record_data(data: DataConfig, ds, report: bool = True) -> DataConfig:
    """``data`` with what was read (layout, count, the data set's name and content hash,
    :func:`gan.data.dataset.content_sha256`); a resumed run whose images are not those it started on is
    told so on stderr (the same images from another folder hash the same)."""
    from gan.data.dataset import content_sha256, dataset_name

    sha = content_sha256(ds)
    if report and data.sha256 and data.sha256 != sha:
        print(f"warning: {ds.source}: not the images the run trained on so far (content sha256 {sha[:12]}, "
              f"was {data.sha256[:12]})", file=sys.stderr)
    return dataclasses.replace(data, layout=ds.layout, num_images=len(ds), name=dataset_name(ds), sha256=sha)


def resumed_data(cfg: RunConfig, run) -> RunConfig:
    """A resumed run's data folder: the checkpoint's, else the one ``config.json`` keeps relative to the run
    folder (a run folder moved together with its data)."""
    if cfg.data.path and Path(cfg.data.path).is_dir():
        return cfg
    try:
        saved = run.read_config()
    except ValueError:  # an unreadable config.json: the checkpoint's config decides, as before
        return cfg
    moved = saved.data.path if saved is not None else None
    if moved and Path(moved).is_dir():
        return cfg.replace(data=dataclasses.replace(cfg.data, path=moved))
    return cfg


@entry_point
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # deferred: keep --help fast, and torch's import inside entry_point's Ctrl-C handling
    from gan import checkpoint as ckpt_io
    from gan import dist
    from gan.fileio import prepare_output
    from gan.loop import check_processes, training_loop
    from gan.rundir import RunDir

    created_group = False
    main_process = True
    try:
        # Everything that can be checked is checked before any data is decoded or folder made.
        if args.resume:
            resume_path = Path(args.resume)
            run = RunDir(resume_path if resume_path.is_dir() else resume_path.parent)
            resume_file = run.file("checkpoint.pt") if resume_path.is_dir() else resume_path
            resume = ckpt_io.load(resume_file, kinds=(ckpt_io.KIND_TRAIN,))
            cfg = resume_config(resume["config"], args)
            if not args.data:
                cfg = resumed_data(cfg, run)
        else:
            resume = None
            cfg = resolve_config(args)
        check_execution(cfg)
        if args.dry_run:
            print_dry_run(decide_precision(cfg))
            if args.cond:
                print("\n--cond: the class names (and the class embedding's size in G, the projection in D) "
                      "come from the data's labels when the run starts")
            return 0
        if resume is not None:
            ckpt_io.check_resumable(resume, resume_file)
            if dist.launched_as_main():  # process 0 writes for all
                prepare_output(run.path, "--resume")
                # One writer from here on: of two --resume started together, the second is refused, naming
                # the first, before it decodes the data or rewrites config.json.
                run.lock()
        else:
            prepare_output(args.out, "--out")
        created_group = dist.init(cfg.train.device)  # under torchrun; else nothing
        main_process = dist.is_main()
        check_processes(cfg, int(resume["nimg"]) if resume is not None else 0)
        # Process 0 decodes and caches the data first; the others then read the cache.
        if not main_process:
            dist.barrier()
        ds = _load_data(cfg.data, not args.no_progress, report=main_process)
        if main_process:
            dist.barrier()
        cfg = cfg.replace(data=record_data(cfg.data, ds, report=main_process))
        images, labels, cfg = class_labels(ds, cfg, bool(args.cond), report=main_process)
        if resume is None:
            cfg = decide_precision(cfg)  # once, before config.json: a resume reads the decision back
            # Process 0 alone makes the numbered folder; the others learn its name.
            if main_process:
                run = RunDir.create(args.out, cfg.model, cfg.data.name, cfg.data.size)
                run.write_config(cfg)
            run = RunDir(dist.broadcast(str(run.path) if main_process else None))
        elif main_process:
            run.write_config(cfg)  # config.json follows what the run now trains (e.g. a longer --kimg)
        if main_process:
            print(f"run folder: {run.path}" + (f" ({dist.world_size()} processes)" if dist.world_size() > 1 else ""),
                  file=sys.stderr)
        hooks = []
        if cfg.train.metrics and main_process:  # scored by the provider the eval package declares (gan.hooks)
            from gan.hooks import METRICS, provider

            hooks = provider(METRICS, "--metrics").training_hooks(cfg, run, images, progress=not args.no_progress)
        result = training_loop(run, cfg, images, resume=resume, progress=not args.no_progress, labels=labels,
                               hooks=hooks)
    except (ValueError, OSError) as e:  # OSError: gan.fileio.WriteError (a full disk...) names its file
        print(f"error{'' if dist.is_main() else f' (process {dist.rank()})'}: {e}", file=sys.stderr)
        return 2
    finally:
        if created_group:
            dist.cleanup()
    if main_process:
        print(f"{result.status}: {result.nimg} images in {result.time_s / 60:.1f} min; run folder {result.run_dir}")
    return 0 if result.status == "done" else 130


if __name__ == "__main__":
    sys.exit(main())
