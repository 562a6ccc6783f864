"""Network utilities shared by every model: EMA of G and BatchNorm recalibration."""
from __future__ import annotations

import copy

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


def fuse_for_inference(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` with every Conv/ConvTranspose followed by a BatchNorm inside an
    ``nn.Sequential`` folded into one layer (the BN's running statistics become the conv's scale and
    bias), in channels-last memory format. Same outputs up to float rounding, fewer passes over
    memory: the dashboard's and sampling's fast path."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    net = copy.deepcopy(net).eval()
    for module in list(net.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        layers = list(module)
        fused: list[nn.Module] = []
        i = 0
        while i < len(layers):
            a, b = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            if isinstance(a, (nn.Conv2d, nn.ConvTranspose2d)) and isinstance(b, nn.BatchNorm2d) \
                    and b.track_running_stats:
                fused.append(fuse_conv_bn_eval(a, b, transpose=isinstance(a, nn.ConvTranspose2d)))
                i += 2
            else:
                fused.append(a)
                i += 1
        if len(fused) != len(layers):
            for name in list(module._modules):
                del module._modules[name]
            for j, layer in enumerate(fused):
                module.add_module(str(j), layer)
    return net.to(memory_format=torch.channels_last)
