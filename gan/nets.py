"""Network utilities shared by every model: EMA of G and BatchNorm recalibration."""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def ema_update(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """``G_ema <- beta * G_ema + (1 - beta) * G`` for parameters; buffers are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.lerp_(p, 1.0 - beta)
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def ema_beta(batch: int, nimg: int, ema_kimg: float, rampup: float | None) -> float:
    """Per-step EMA decay for a half-life of ``ema_kimg`` thousand images (StyleGAN2-ADA's rule),
    with the half-life ramped up to ``rampup * nimg`` early in training."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, nimg * rampup)
    return 0.5 ** (batch / max(ema_nimg, 1e-8))


@torch.no_grad()
def recalibrate_bn(G: nn.Module, z_dim: int, stage_kwargs: dict, batches: int = 16, batch: int = 64,
                   seed: int = 123456789) -> None:
    """Re-estimate BatchNorm running statistics of ``G`` for its own (EMA) weights.

    EMA averages weights but not the activation statistics that go with them; sampling in eval mode
    with G's running stats then gives washed-out images. This runs ``batches`` fixed, seeded batches
    through G in train mode with cumulative averaging. No-op for networks without BatchNorm.
    """
    bns = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    device = next(G.parameters()).device
    saved = [(m.momentum) for m in bns]
    was_training = G.training
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches below
    G.train()
    gen = torch.Generator(device=device).manual_seed(seed)
    for _ in range(batches):
        G(torch.randn(batch, z_dim, generator=gen, device=device), **stage_kwargs)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    G.train(was_training)
