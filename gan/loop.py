"""The one training loop. It steps through the phases a model's loss names, keeps G_ema, logs,
snapshots, and resumes exactly; everything model-specific comes through :mod:`gan.models.base`,
every file it writes goes through :mod:`gan.rundir`, and periodic evaluation plugs in as a
:class:`TrainingHook`. Under torchrun the same loop runs on every process (see :mod:`gan.dist`)."""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from gan import checkpoint as ckpt_io
from gan import dist
from gan.config import RunConfig, to_dict
from gan.daug import AdaState, AugmentedD
from gan.fileio import clean_stale_temps
from gan.data.augmentation import augment
from gan.imageutil import image_grid, to_uint8_hwc
from gan.models.base import Loss, Stage, count_params
from gan.nets import check_bf16, cpu_info, ema_beta, ema_update, recalibrate_bn
from gan.precision import PrecisionChoice, asked, choose
from gan.rng import BatchRNG
from gan.rundir import RunDir


class TrainingDiverged(ValueError):
    """A loss became NaN or infinite; the last good checkpoint is left in place. A ValueError, so
    the command line reports it in one line like any other bad setting."""


class TrainingHook:
    """Code the loop calls while it trains, without the loop importing it (e.g. metrics during
    training from :mod:`eval`). Subclass and override what you need; both default to nothing.

    Only process 0 calls hooks under torchrun. A hook must not change the generators it is given
    or draw from torch's global random generator (the loop forks it, but resume exactness holds
    only when hooks leave the training state alone).
    """

    def on_step(self, nimg: int, stage: Stage, stats: dict[str, float]) -> None:
        """After every optimizer step: images seen so far, the stage, the step's statistics."""

    def on_snapshot(self, G_ema: nn.Module, run: RunDir, nimg: int, stage: Stage) -> None:
        """After each checkpoint is written (every ``snapshot_kimg`` and at the end): the EMA
        generator (eval mode, BatchNorm statistics re-estimated), the run folder, images seen and
        the stage (``G_ema(z, resolution=stage.resolution, alpha=stage.alpha)`` samples it)."""


def train_step(loss: Loss, opts: dict[str, torch.optim.Optimizer], real: torch.Tensor, stage: Stage,
               rng: torch.Generator | BatchRNG, precision: str = "fp32", labels: torch.Tensor | None = None
               ) -> dict[str, torch.Tensor]:
    """One training step: for each phase the loss names, zero that optimizer's gradients, let the
    loss accumulate them on ``real`` (under bfloat16 autocast when ``precision == "bf16"``) and step.
    ``labels`` (conditional models only): the class of each real image.

    Returns:
        The step's detached statistics, merged over phases (``loss_D``, ``loss_G``, ``D_real``...).
    """
    stats: dict[str, torch.Tensor] = {}
    for phase in loss.phases:
        opt = opts[phase]
        opt.zero_grad(set_to_none=True)
        # Mixed precision: the passes in bf16, the weights, gradients and optimizer state in float32.
        with torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            if labels is None:
                stats.update(loss.accumulate_gradients(phase, real, stage, rng))
            else:
                stats.update(loss.accumulate_gradients(phase, real, stage, rng, labels=labels))
        opt.step()
    return stats


def hardware_name(device: torch.device) -> str:
    """A short human description of the device that trained a model."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    return f"{cpu_info()[0]}, {torch.get_num_threads()} threads (CPU)"


TRAINING_BENCH_BATCH = 16  # images per timed step when --precision auto measures
# G_ema's BatchNorm statistics are re-estimated at every snapshot and grid on this many seeded batches
# of this size (gan.nets.recalibrate_bn): (batches, batch).
BN_RECALIBRATION = (16, 64)


def training_run(cfg: RunConfig, precision: str, device: torch.device):
    """A function that runs one training step of ``cfg``'s model in ``precision`` (:func:`train_step`
    on freshly built G and D at the run's final stage, a batch of :data:`TRAINING_BENCH_BATCH` random
    images): what ``--precision auto`` times. Draws from its own generators only."""
    spec, mcfg = cfg.spec, cfg.model_cfg
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(0)
        G, D = spec.build(mcfg)
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    G, D = (m.to(device=device, memory_format=fmt) for m in (G, D))
    stage = spec.schedule(mcfg, max(int(cfg.train.kimg * 1000) - 1, 0))
    stage = dataclasses.replace(stage, batch=min(stage.batch, TRAINING_BENCH_BATCH))
    opts, loss = spec.prepare_phase(G, D, mcfg, stage), spec.make_loss(G, D, mcfg)
    gen = torch.Generator().manual_seed(1)
    real = (torch.rand(stage.batch, 3, stage.resolution, stage.resolution, generator=gen) * 2 - 1).to(
        device, memory_format=fmt)
    classes = len(getattr(mcfg, "class_names", ()) or ())
    labels = torch.arange(stage.batch, device=device) % classes if classes else None
    rng = torch.Generator(device=device).manual_seed(2)
    return lambda: train_step(loss, opts, real, stage, rng, precision, labels=labels)


def training_precision(cfg: RunConfig) -> PrecisionChoice:
    """What ``train.precision`` "auto" means for ``cfg`` on this machine, and why: fp32 or bf16 by
    :func:`gan.precision.choose` on :func:`training_run`, under the run's ``train.threads``. ``gan.train``
    asks once when a new run starts and writes the answer into ``config.json``, so checkpoints hold it
    and a resume runs in exactly the same arithmetic. fp32 and bf16 come back as asked."""
    tcfg = cfg.train
    if tcfg.precision != "auto":
        return asked(tcfg.precision)
    device = dist.device(tcfg.device)
    model = hashlib.sha256(json.dumps(to_dict(cfg.model_cfg), sort_keys=True).encode()).hexdigest()[:12]
    what = (f"training {cfg.model} {cfg.model_cfg.resolution}px model config {model} batch {TRAINING_BENCH_BATCH}"
            f"{' channels-last' if tcfg.channels_last else ''}")
    threads = torch.get_num_threads()
    try:
        if tcfg.threads:
            torch.set_num_threads(tcfg.threads)
        choice = choose(device, what, lambda p: training_run(cfg, p, device))
    finally:
        torch.set_num_threads(threads)
    return choice


def stage_kwargs(stage: Stage) -> dict:
    """The keyword arguments every G and D take for a stage."""
    return {"resolution": stage.resolution, "alpha": stage.alpha}


class _Batches:
    """Seeded, resumable batches over an in-memory uint8 image tensor.

    Epoch ``e`` visits the images in a permutation seeded by ``(seed, e)``, so the position
    ``(epoch, pos)`` is all the state a resume needs. Batches may straddle epochs; sizes may change
    between calls (progressive models change batch size per phase).
    """

    def __init__(self, n: int, seed: int, epoch: int = 0, pos: int = 0):
        self.n, self.seed, self.epoch, self.pos = n, seed, epoch, pos
        self._perm = self._permutation(epoch)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=g)

    def next(self, batch: int) -> torch.Tensor:
        parts = []
        while batch > 0:
            take = min(batch, self.n - self.pos)
            parts.append(self._perm[self.pos:self.pos + take])
            self.pos += take
            batch -= take
            if self.pos == self.n:
                self.epoch, self.pos = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
        return torch.cat(parts)


class _BalancedBatches:
    """Class-balanced batches (``train.balance``): each image of a batch is a class drawn uniformly,
    then an image of that class drawn uniformly (with replacement), so rare classes are seen as often
    as common ones. Batch ``k`` is seeded by ``(seed, k)``: the count of batches drawn is all the state
    a resume needs (kept in ``epoch``; ``pos`` stays 0)."""

    def __init__(self, labels: torch.Tensor, seed: int, epoch: int = 0, pos: int = 0):  # noqa: ARG002
        self.seed, self.epoch, self.pos = seed, epoch, 0
        labels = labels.cpu().long()
        # The images of each class present, one class after another: class c's run starts at
        # self._starts[c] and holds self._counts[c] images.
        counts = torch.bincount(labels)
        self._counts = counts[counts > 0]
        self._order = torch.argsort(labels, stable=True)
        self._starts = torch.cumsum(self._counts, 0) - self._counts

    def next(self, batch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 500_009 + self.epoch)
        self.epoch += 1
        cls = torch.randint(len(self._counts), (batch,), generator=g)
        pick = torch.rand(batch, generator=g)
        return self._order[self._starts[cls] + (pick * self._counts[cls]).long()]


@dataclass
class RunResult:
    """What a call of :func:`training_loop` ended with."""

    run_dir: Path
    nimg: int
    status: str  # "done" | "interrupted"
    time_s: float


def _rng_state(g: torch.Generator) -> torch.Tensor:
    return g.get_state().clone()


def training_loop(run: RunDir | str | os.PathLike, config: RunConfig | dict, images: torch.Tensor,
                  resume: dict | None = None, progress: bool = True,
                  hooks: Sequence[TrainingHook] = (), labels: torch.Tensor | None = None) -> RunResult:
    """Train the model that ``config`` names on ``images`` and write everything to the run folder.

    Args:
        run: the run folder (``config.json`` should already be there: :meth:`RunDir.write_config`).
        config: the resolved :class:`~gan.config.RunConfig` (or its JSON dict).
        images: uint8 tensor (N, 3, S, S) of real images at the model's final resolution S;
            ``config.data`` says whether and how they are augmented.
        resume: a training checkpoint dict from :func:`gan.checkpoint.load` to continue from
            (saved under any number of processes).
        progress: show a tqdm bar on stderr.
        hooks: :class:`TrainingHook` objects called after each step and each snapshot.
        labels: long tensor (N,) of class indices into ``model_cfg.class_names``, one per image:
            required by a conditional model, refused otherwise.

    Under a process group (:mod:`gan.dist`, torchrun) every process calls this with the same
    arguments: the stage's batch is the global one and each process trains on its share with DDP;
    only process 0 writes to the run folder.

    The caller's torch state is left as it was: the global random generator (forked for the run)
    and the number of threads (``train.threads``, restored on return).

    Process 0 holds the run folder's lock (:meth:`RunDir.lock`) while it trains, and gives it up on return
    unless the caller holds it too (``gan.train`` does until its command ends).

    Returns:
        A :class:`RunResult`. Raises :class:`TrainingDiverged` on a NaN/inf loss, and
        :class:`gan.fileio.FolderInUse` (a ValueError naming the holder) when another process writes the run.
    """
    run = run if isinstance(run, RunDir) else RunDir(run)
    cfg = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    tcfg = cfg.train
    if tcfg.precision == "auto":
        raise ValueError("--precision auto is resolved before training starts (gan.loop.training_precision, "
                         "which gan.train asks), so that config.json holds fp32 or bf16")
    device = check_execution(tcfg)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"training images must be uint8 (N, 3, S, S), got {images.dtype} {tuple(images.shape)}")
    if images.shape[-1] != cfg.model_cfg.resolution:
        raise ValueError(f"data are {images.shape[-1]} px but the model trains at {cfg.model_cfg.resolution} px")
    labels = _check_labels(cfg, images, labels)
    check_processes(cfg, int(resume["nimg"]) if resume is not None else 0)
    threads = torch.get_num_threads()
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    # The loop owns the run folder while it trains: process 0 holds its lock (re-entrant: gan.train took
    # it already) and gives it up when training ends, for a library caller too.
    with run.lock() if dist.is_main() else contextlib.nullcontext():
        try:
            with torch.random.fork_rng(devices=rng_devices):
                if tcfg.threads:
                    torch.set_num_threads(tcfg.threads)
                return _train(run, cfg, device, images, labels, resume, progress, list(hooks))
        finally:
            torch.set_num_threads(threads)


def check_execution(tcfg) -> torch.device:
    """The device a run trains on (this process's, under torchrun), checked before anything is written:
    it exists on this machine, and runs the precision asked natively (bf16: :func:`gan.nets.check_bf16`).

    Args:
        tcfg: the run's :class:`gan.config.TrainConfig` (``device``, ``precision``).

    Raises:
        ValueError: one line naming ``--device`` or ``--precision``.
    """
    from gan.generator import check_device

    try:
        device = dist.device(tcfg.device)
    except RuntimeError as e:  # torch's own words for a device string it does not know
        raise ValueError(f"--device {tcfg.device}: {str(e).splitlines()[0]}") from None
    try:
        check_device(device)  # a GPU index this machine has, a backend it offers
    except ValueError as e:
        raise ValueError(f"--device {e}") from None
    if tcfg.precision == "bf16":
        check_bf16(device)
    return device


def _check_labels(cfg: RunConfig, images: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    classes = getattr(cfg.model_cfg, "class_names", ())
    if not classes:
        if labels is not None and cfg.train.balance:
            return labels.long()  # class-balanced sampling of an unconditional model's data
        if cfg.train.balance:
            raise ValueError("--balance needs the images' labels")
        return None
    if labels is None:
        raise ValueError(f"a conditional model ({len(classes)} classes) needs one label per image")
    if labels.shape != (len(images),):
        raise ValueError(f"{len(images)} images but labels of shape {tuple(labels.shape)}")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
        raise ValueError(f"labels must be class indices 0..{len(classes) - 1} ({', '.join(classes)})")
    return labels.long()


def _train(run: RunDir, cfg: RunConfig, device: torch.device, images: torch.Tensor,
           labels: torch.Tensor | None, resume: dict | None, progress: bool,
           hooks: list[TrainingHook]) -> RunResult:
    spec, mcfg, tcfg, dcfg = cfg.spec, cfg.model_cfg, cfg.train, cfg.data
    total_nimg = int(round(tcfg.kimg * 1000))
    memory_format = torch.channels_last if tcfg.channels_last else torch.contiguous_format
    main = dist.is_main()
    if main:  # under the lock training_loop holds: temp files of an earlier writer that was killed
        clean_stale_temps(run.path)

    # Weights from the seed; every later random draw from a generator whose state is checkpointed.
    # With several processes these generators are shared: each draws for the global batch and keeps
    # its rows, so checkpoints hold global state only.
    torch.manual_seed(tcfg.seed)
    G, D = spec.build(mcfg)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    if tcfg.sync_bn:
        G, D = dist.sync_batchnorm(G), dist.sync_batchnorm(D)
    G, D, G_ema = (m.to(device=device, memory_format=memory_format) for m in (G, D, G_ema))
    rng_noise = torch.Generator(device=device).manual_seed(tcfg.seed + 1)
    rng_aug = torch.Generator().manual_seed(tcfg.seed + 2)
    # D's differentiable augmentation (gan.daug): its own generator, so runs without it draw as before.
    rng_daug = torch.Generator().manual_seed(tcfg.seed + 3)
    daug = bool(tcfg.diffaug) or tcfg.ada
    ada = (AdaState(target=tcfg.ada_target, interval=tcfg.ada_interval, ada_kimg=tcfg.ada_kimg, ops=tcfg.ada_ops)
           if tcfg.ada else None)
    z_grid = torch.randn(tcfg.grid_size, mcfg.z_dim, generator=torch.Generator().manual_seed(tcfg.seed)).to(device)
    data = images.to(device)
    conditional = bool(getattr(mcfg, "class_names", ()))
    data_labels = labels.to(device) if labels is not None else None
    Batches = _BalancedBatches if tcfg.balance else _Batches
    batch_source = labels if tcfg.balance else len(data)
    batches = Batches(batch_source, tcfg.seed)
    nimg, time_prev = 0, 0.0

    if resume is not None:
        try:
            G.load_state_dict(resume["G"])
            D.load_state_dict(resume["D"])
            G_ema.load_state_dict(resume["G_ema"])
        except (KeyError, RuntimeError) as e:
            raise ValueError(f"the checkpoint's weights do not match its model config ({_first_line(e)})") from None
        nimg, time_prev = int(resume["nimg"]), float(resume["time_s"])
        rng_noise.set_state(resume["rng"]["noise"].to(rng_noise.get_state().device))
        rng_aug.set_state(resume["rng"]["aug"])
        if daug:
            if "daug" not in resume["rng"] or (ada is not None and "ada" not in resume):
                raise ValueError("the checkpoint was trained without --diffaug/--ada; resume cannot add them")
            rng_daug.set_state(resume["rng"]["daug"])
            if ada is not None:
                ada.load_state_dict(resume["ada"])
        torch.set_rng_state(resume["rng"]["torch"])
        batches = Batches(batch_source, tcfg.seed, int(resume["data_epoch"]), int(resume["data_pos"]))
        if main:
            # Lines logged after the checkpoint (by a run that was then killed) are retrained now.
            run.truncate_stats(nimg)
            run.truncate_metrics(nimg)
    if dist.rank() > 0:
        # Draws outside the shared generators (none today; dropout, say) differ between processes.
        torch.manual_seed(dist.rank_seed(tcfg.seed, nimg))
    noise = BatchRNG(rng_noise, dist.rank(), dist.world_size())
    daug_rng = BatchRNG(rng_daug, dist.rank(), dist.world_size())

    def start_phase(st: Stage):
        # The loss calls G and D through DDP wrappers that sync exactly what this phase's optimizers
        # step (one process: G and D themselves); they are rebuilt when that set changes.
        opts = spec.prepare_phase(G, D, mcfg, st)
        D_seen = dist.wrap(D, _params(opts["D"]))
        if daug:  # D sees every image, real or generated, through the same augmentation
            D_seen = AugmentedD(D_seen, daug_rng, tcfg.diffaug, ada)
        return opts, spec.make_loss(dist.wrap(G, _params(opts["G"])), D_seen, mcfg)

    stage = spec.schedule(mcfg, nimg)
    opts, loss = start_phase(stage)
    if resume is not None and int(resume["phase"]) == stage.phase:
        # A checkpoint saved exactly on a phase boundary holds the finished phase's optimizers; the
        # new phase starts with fresh ones, as it would have without the interruption.
        for name, opt in opts.items():
            opt.load_state_dict(resume["opt"][name])
    info_base = {"hardware": hardware_name(device), "device": str(device), "torch": torch.__version__,
                 "num_params_G": count_params(G), "num_params_D": count_params(D),
                 "world_size": dist.world_size()}

    recalibrated = {"nimg": -1}

    # A conditional model's grid shows one class per row (cycling through the classes), and its
    # BatchNorm statistics are re-estimated over the training data's class shares.
    class_probs = grid_kw = None
    if conditional:
        class_probs = torch.bincount(labels.cpu(), minlength=len(mcfg.class_names)).float()
        side = int(round(tcfg.grid_size ** 0.5))
        grid_kw = {"labels": (torch.arange(tcfg.grid_size) // side % len(mcfg.class_names)).to(device)}

    def snapshot_G_ema(st: Stage) -> None:
        # Once per step at most: a grid and a checkpoint often fall on the same step.
        if recalibrated["nimg"] != nimg:
            n_batches, size = BN_RECALIBRATION
            recalibrate_bn(G_ema, mcfg.z_dim, stage_kwargs(st), batches=n_batches, batch=size, class_probs=class_probs)
            recalibrated["nimg"] = nimg

    def make_checkpoint(st: Stage, elapsed: float) -> dict:
        return {"kind": ckpt_io.KIND_TRAIN, "version": ckpt_io.FORMAT_VERSION, "model": spec.name,
                "config": cfg.to_json(), "G": G.state_dict(), "D": D.state_dict(),
                "G_ema": G_ema.state_dict(), "opt": {k: o.state_dict() for k, o in opts.items()},
                "nimg": nimg, "phase": st.phase, "time_s": elapsed,
                "data_epoch": batches.epoch, "data_pos": batches.pos,
                "rng": {"noise": _rng_state(rng_noise), "aug": _rng_state(rng_aug), "torch": torch.get_rng_state(),
                        **({"daug": _rng_state(rng_daug)} if daug else {})},
                **({"ada": ada.state_dict()} if ada is not None else {}),
                "info": json.dumps({**info_base, "nimg": nimg, "resolution": st.resolution, "alpha": st.alpha,
                                    "phase": st.phase, "time_s": elapsed,
                                    "saved": datetime.now(timezone.utc).isoformat(timespec="seconds")})}

    @torch.no_grad()
    def write_grid(st: Stage) -> None:
        snapshot_G_ema(st)
        run.write_grid(nimg, image_grid(to_uint8_hwc(G_ema(z_grid, **stage_kwargs(st), **(grid_kw or {})))))

    # Ctrl-C / SIGTERM: finish the step, save, exit cleanly.
    stop = {"signal": None}

    def on_signal(signum, frame):  # noqa: ARG001
        stop["signal"] = signal.Signals(signum).name

    old_handlers = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} \
        if _in_main_thread() else {}

    acc: dict[str, list[torch.Tensor]] = {}
    t0 = time.perf_counter()
    next_log = _next_multiple(nimg, tcfg.log_kimg)
    next_snap = _next_multiple(nimg, tcfg.snapshot_kimg)
    next_keep = _next_multiple(nimg, tcfg.keep_kimg) if tcfg.keep_kimg else None
    next_grid = _next_multiple(nimg, tcfg.grid_kimg)
    if nimg == 0 and main:
        write_grid(stage)
    bar = tqdm(total=total_nimg, initial=nimg, unit="img", unit_scale=True, dynamic_ncols=True,
               disable=not (progress and main), file=sys.stderr, desc=f"{spec.name}")
    status = "done"
    try:
        while nimg < total_nimg:
            new_stage = spec.schedule(mcfg, nimg)
            if new_stage.phase != stage.phase:
                opts, loss = start_phase(new_stage)
            stage = new_stage
            for o, lr in ((opts["G"], stage.lr_g), (opts["D"], stage.lr_d)):
                for group in o.param_groups:
                    group["lr"] = lr

            # The global batch (the same on every process, so rng_aug stays shared), then this
            # process's rows of it.
            idx = batches.next(stage.batch)
            real = data[idx]
            if dcfg.augment:
                real = augment(real, rng_aug, xflip=dcfg.xflip, yflip=dcfg.yflip, rot90=dcfg.rot90)
            real = dist.shard(real)
            real_labels = dist.shard(data_labels[idx]) if conditional else None
            real = real.float().div_(127.5).sub_(1.0)
            if real.shape[-1] != stage.resolution:
                real = F.avg_pool2d(real, real.shape[-1] // stage.resolution)
            real = real.contiguous(memory_format=memory_format)

            step_stats = train_step(loss, opts, real, stage, noise, tcfg.precision, labels=real_labels)
            values = torch.stack([v.float() for v in step_stats.values()])
            # Statistics of the global batch, and a signal on any process stops all at this step.
            values, stopping = dist.mean_and_any(values, stop["signal"] is not None)
            if not bool(torch.isfinite(values).all()):
                bad = {k: float(v) for k, v in zip(step_stats, values)}
                raise TrainingDiverged(
                    f"non-finite loss at {nimg} images ({bad}); stopped. The last good checkpoint is "
                    f"{run.file('checkpoint.pt')}; resume from it with a lower learning rate or another seed.")
            for k, v in zip(step_stats, values):
                acc.setdefault(k, []).append(v)

            if ada is not None:
                ada.accumulate(float(values[list(step_stats).index("D_real_sign")]), stage.batch)
            ema_update(G_ema, G, ema_beta(stage.batch, nimg, tcfg.ema_kimg, tcfg.ema_rampup))
            nimg += stage.batch
            bar.update(stage.batch)
            if main and hooks:
                step_values = {k: float(v) for k, v in zip(step_stats, values)}
                for hook in hooks:
                    hook.on_step(nimg, stage, step_values)
            done = nimg >= total_nimg or stopping

            if nimg >= next_log or done:
                if main:
                    elapsed = time_prev + time.perf_counter() - t0
                    row = {"nimg": nimg, "kimg": nimg / 1000, "time_s": round(elapsed, 3)}
                    row.update({k: float(torch.stack(v).mean()) for k, v in acc.items()})
                    if ada is not None:
                        row.update({"aug_p": ada.p, "ada_rt": ada.rt})
                    row.update({"resolution": stage.resolution, "alpha": stage.alpha, "phase": stage.phase,
                                "batch": stage.batch, "lr": stage.lr_g})
                    run.append_stats(row)
                    bar.set_postfix({k: f"{row[k]:.3f}" for k in ("loss_D", "loss_G") if k in row})
                acc.clear()
                next_log = _next_multiple(nimg, tcfg.log_kimg)
            if main and (nimg >= next_grid or done):
                write_grid(stage)
                next_grid = _next_multiple(nimg, tcfg.grid_kimg)
            keep = next_keep is not None and nimg >= next_keep
            if main and (nimg >= next_snap or keep or done):
                snapshot_G_ema(stage)
                run.save_checkpoint(make_checkpoint(stage, time_prev + time.perf_counter() - t0))
                next_snap = _next_multiple(nimg, tcfg.snapshot_kimg)
                if keep:
                    run.keep_snapshot(nimg)
                    next_keep = _next_multiple(nimg, tcfg.keep_kimg)
                for hook in hooks:
                    hook.on_snapshot(G_ema, run, nimg, stage)
            if stopping:
                status = "interrupted"
                if main:
                    tqdm.write(f"{stop['signal'] or 'a signal to another process'}: saved "
                               f"{run.file('checkpoint.pt')} at {nimg} images; continue with --resume {run.path}",
                               file=sys.stderr)
                break
        if status == "done" and main:
            run.save_generator(make_checkpoint(stage, time_prev + time.perf_counter() - t0))
    finally:
        bar.close()
        for s, h in old_handlers.items():
            signal.signal(s, h)
    dist.barrier()  # every process returns once the run folder is complete
    return RunResult(run.path, nimg, status, time_prev + time.perf_counter() - t0)


def _first_line(e: BaseException) -> str:
    msg = str(e).strip()
    return msg.splitlines()[0] if msg else type(e).__name__


def _params(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in opt.param_groups for p in group["params"]]


def check_processes(config: RunConfig, nimg: int = 0) -> None:
    """Fail, naming the flag, when this process group cannot train ``config`` from ``nimg`` images
    on: a global batch of a phase still to train does not split evenly over the processes, or
    ``--sync-bn`` without GPUs. Nothing to check with one process."""
    world = dist.world_size()
    if world == 1:
        return
    spec, mcfg, tcfg = config.spec, config.model_cfg, config.train
    for row in spec.describe_schedule(mcfg, round(tcfg.kimg * 1000)):
        if row["end_kimg"] * 1000 > nimg and row["batch"] % world:
            raise ValueError(f"the global batch {row['batch']} ({row['resolution']} px) does not split over "
                             f"{world} processes: make the batch of every phase (see --dry-run's schedule: "
                             f"--batch, or the model's own batch fields through --set) a multiple of the "
                             f"number of processes (--nproc_per_node x --nnodes)")
    if tcfg.sync_bn and dist.device(tcfg.device).type != "cuda":
        raise ValueError("--sync-bn needs GPUs: torch's SyncBatchNorm does not run on the CPU")


def _next_multiple(nimg: int, kimg: float) -> int:
    step = max(int(round(kimg * 1000)), 1)
    return (nimg // step + 1) * step


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
