"""Training on several processes: ``torchrun --nproc_per_node=N -m gan.train ...``.

torchrun starts N copies of ``gan.train`` and tells each who it is through environment variables
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``). :func:`init` joins them
into one process group (NCCL for GPUs, gloo for CPUs); everything else here asks that group, so the
training loop reads the same whether a group exists or not. Without torchrun (or with one process)
every function is the single-process answer and nothing is communicated.

What the loop does with it (see :mod:`gan.loop`): the stage's batch is the *global* batch; every
process walks the same global data order, draws the same global latents and noise, and keeps its own
rows (:func:`shard`, :class:`gan.models.base.BatchRNG`); DDP averages the gradients of what each phase
trains (:func:`wrap`); process 0 alone writes files. Checkpoints then hold only global state and
resume under any number of processes that divides the batch.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as tdist
from torch import nn


def is_initialized() -> bool:
    """Whether this process belongs to a process group."""
    return tdist.is_available() and tdist.is_initialized()


def world_size() -> int:
    """Processes training together (1 without a process group)."""
    return tdist.get_world_size() if is_initialized() else 1


def rank() -> int:
    """This process's index among them, 0..world_size-1 (0 without a process group)."""
    return tdist.get_rank() if is_initialized() else 0


def is_main() -> bool:
    """Whether this is process 0, the one that writes logs, grids and checkpoints."""
    return rank() == 0


def launched_as_main() -> bool:
    """Whether this is process 0 as torchrun launched it (``RANK``), also before :func:`init`: the one
    that takes a run folder's lock for all."""
    return is_main() if is_initialized() else int(os.environ.get("RANK", "0")) == 0


def _launched_world_size() -> int:
    """The number of processes torchrun started (before or after :func:`init`)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def local_rank() -> int:
    """This process's index on its own machine (torchrun's ``LOCAL_RANK``): the GPU it uses."""
    return int(os.environ.get("LOCAL_RANK", "0")) if max(world_size(), _launched_world_size()) > 1 else 0


def device(name: str) -> torch.device:
    """The device ``--device name`` means for this process.

    "auto" is CUDA when available, else the CPU. With several processes, "auto" and "cuda" are this
    process's own GPU, ``cuda:LOCAL_RANK``, and naming one GPU (``cuda:1``) is refused.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
    if dev.type == "cuda" and max(world_size(), _launched_world_size()) > 1:
        if dev.index is not None:
            raise ValueError(f"--device {name}: under torchrun every process takes its own GPU "
                             f"(cuda:LOCAL_RANK); use --device cuda or auto")
        dev = torch.device("cuda", local_rank())
    return dev


def init(device_name: str = "auto") -> bool:
    """Join the process group torchrun's environment describes.

    Args:
        device_name: the run's ``--device``: CUDA devices communicate over NCCL, the CPU over gloo.

    Returns:
        True when this call created the group (the caller then ends it with :func:`cleanup`); False
        when there is nothing to join (no torchrun, or one process) or a group already exists.
    """
    if is_initialized() or _launched_world_size() <= 1:
        return False
    dev = device(device_name)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        tdist.init_process_group(backend="nccl", device_id=dev)
    else:
        tdist.init_process_group(backend="gloo")
    return True


def cleanup() -> None:
    """Leave the process group."""
    if is_initialized():
        tdist.destroy_process_group()


def barrier() -> None:
    """Wait for every process (nothing without a group)."""
    if world_size() > 1:
        tdist.barrier()


def broadcast(obj):
    """Process 0's ``obj`` (any picklable value) on every process."""
    if world_size() == 1:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=0)
    return box[0]


def shard(batch: torch.Tensor) -> torch.Tensor:
    """This process's rows of a global batch: process r of W takes rows ``[r * n / W, (r + 1) * n / W)``,
    so the processes' batches put together are the global one."""
    n = batch.shape[0] // world_size()
    return batch[rank() * n:(rank() + 1) * n]


def mean_and_any(values: torch.Tensor, flag: bool) -> tuple[torch.Tensor, bool]:
    """``values`` averaged over processes, and whether ``flag`` is set on any of them, in one
    all-reduce (each process's own when alone). The loop uses it once per step so that every process
    logs the same statistics and stops, or fails, at the same step."""
    if world_size() == 1:
        return values, flag
    both = torch.cat([values.float(), values.new_tensor([float(flag)], dtype=torch.float32)])
    tdist.all_reduce(both)
    both /= world_size()
    return both[:-1], bool(both[-1] > 0)


def rank_seed(seed: int, nimg: int) -> int:
    """Seed of this process's global torch generator, derived from the run's seed (and the images
    seen, so that a resumed run does not replay it). Process 0 keeps the single-process stream."""
    return seed * 1_000_003 + 7_919 * rank() + nimg


def sync_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm computing its statistics over the global batch (``--sync-bn``);
    the parameters, buffers and state-dict keys stay the same."""
    if world_size() == 1:
        return module
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


def wrap(module: nn.Module, params) -> nn.Module:
    """What the loss calls during training: ``module`` itself with one process, else ``module`` in
    DistributedDataParallel averaging the gradients of ``params`` (the ones this phase's optimizer
    steps).

    Layers outside ``params`` (frozen ones, not yet grown ones) are left out, so that every synced
    parameter receives a gradient whenever the module takes part in a backward pass. DDP syncs the
    parameters that require gradients when it is built; the others' flags are lowered for that
    moment and restored. Call again whenever the set of trained parameters changes.
    """
    if world_size() == 1:
        return module
    keep = {id(p) for p in params}
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in keep)
        dev = next(module.parameters()).device
        # Buffers (BatchNorm running statistics) are not broadcast from process 0 before each forward:
        # training never reads them (D and G normalise with batch statistics; G_ema's are re-estimated
        # before sampling), and process 0's, the ones checkpoints hold, evolve the same either way.
        return nn.parallel.DistributedDataParallel(
            module, device_ids=[dev.index] if dev.type == "cuda" else None, forward_sync_buffers=False)
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
