"""Network utilities shared by every model: EMA of G, BatchNorm recalibration, the sampling fast path."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F


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


class LatentConvTranspose2d(nn.Module):
    """A ``ConvTranspose2d`` applied to a 1x1 input (DCGAN's first layer, z -> 4x4) as one matrix
    product that writes channels-last output directly. oneDNN runs the transposed convolution of a
    1x1 input at a few GFLOP/s; the product is the same sum at GEMM speed. Other inputs fall back to
    the convolution, so the module is a drop-in replacement."""

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        if not self.fits(conv):
            raise ValueError(f"LatentConvTranspose2d cannot stand in for {conv}")
        self.conv = conv
        cin, cout, kh, kw = conv.weight.shape
        self.out_shape = (kh, kw, cout)
        # (Cin, Cout, kh, kw) -> (Cin, kh * kw * Cout): the product comes out NHWC.
        self.register_buffer("matrix", conv.weight.detach().permute(0, 2, 3, 1).reshape(cin, -1).clone())

    @staticmethod
    def fits(conv: nn.Module) -> bool:
        return (type(conv) is nn.ConvTranspose2d and conv.groups == 1 and conv.padding == (0, 0)
                and conv.output_padding == (0, 0) and conv.dilation == (1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (1, 1):
            return self.conv(x)
        y = (x.flatten(1) @ self.matrix).view(x.shape[0], *self.out_shape)
        if self.conv.bias is not None:
            y = y + self.conv.bias
        return y.permute(0, 3, 1, 2)  # NCHW view of NHWC memory: channels-last


class GemmConvTranspose2d(nn.Module):
    """A ``ConvTranspose2d`` with few output channels (an RGB head) as a batched GEMM over the input
    pixels followed by col2im (``F.fold``), in float32 whatever the input's dtype. oneDNN vectorizes
    over output channels, so a 3-channel transposed convolution runs far below peak; here the
    product is (Cout*kh*kw, Cin) x (Cin, H*W) per image, which runs at GEMM speed. ``weight`` and
    ``bias`` (float32) default to the convolution's own."""

    def __init__(self, conv: nn.ConvTranspose2d, weight: torch.Tensor | None = None,
                 bias: torch.Tensor | None = None):
        super().__init__()
        if not self.fits(conv):
            raise ValueError(f"GemmConvTranspose2d cannot stand in for {conv}")
        self.conv = conv
        weight = conv.weight if weight is None else weight
        bias = conv.bias if bias is None else bias
        # (Cin, Cout, kh, kw) -> (Cout*kh*kw, Cin): rows in the (C, kh, kw) order F.fold reads.
        self.register_buffer("matrix", weight.detach().float().reshape(weight.shape[0], -1).t().contiguous())
        self.register_buffer("bias", None if bias is None else bias.detach().float().view(1, -1, 1, 1).clone())

    @staticmethod
    def fits(conv: nn.Module, max_out_channels: int = 8) -> bool:
        return (type(conv) is nn.ConvTranspose2d and conv.groups == 1 and conv.output_padding == (0, 0)
                and conv.out_channels <= max_out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            return self.conv(x)
        n, c, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (self.conv.kernel_size, self.conv.stride,
                                                  self.conv.padding, self.conv.dilation)
        out = ((h - 1) * sh - 2 * ph + dh * (kh - 1) + 1, (w - 1) * sw - 2 * pw + dw * (kw - 1) + 1)
        # (N, Cin, H*W) as a view whatever the memory format (channels-last: a transposed operand).
        pixels = x.float().permute(0, 2, 3, 1).reshape(n, h * w, c).transpose(1, 2)
        y = F.fold(torch.matmul(self.matrix, pixels), out, (kh, kw), dilation=(dh, dw), padding=(ph, pw),
                   stride=(sh, sw))
        return y if self.bias is None else y + self.bias


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 natively (CPU: oneDNN with AVX512-BF16 or AMX; CUDA:
    compute capability 8.0+). Elsewhere bf16 is emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def fuse_for_inference(net: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An eval-mode copy of ``net`` for sampling: the dashboard's and ``gan.sample``'s fast path.

    * every Conv/ConvTranspose followed by a BatchNorm inside an ``nn.Sequential`` is folded into
      one layer (the BN's running statistics become the conv's scale and bias);
    * a transposed convolution on a 1x1 input becomes one matrix product
      (:class:`LatentConvTranspose2d`), one with at most 8 output channels a GEMM + col2im
      (:class:`GemmConvTranspose2d`);
    * channels-last memory format, and the weights cast to ``dtype`` (``torch.bfloat16`` halves
      the time on CPUs with native bf16; the RGB head still accumulates in float32).

    Same outputs as ``net`` up to float rounding (bf16: a few grey levels at most, tested).
    """
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
    net = net.to(memory_format=torch.channels_last)
    # The RGB heads keep float32 weights (they run in float32); read them before the cast.
    heads = {m: (m.weight.detach().clone(), None if m.bias is None else m.bias.detach().clone())
             for m in net.modules() if GemmConvTranspose2d.fits(m)}
    if dtype != torch.float32:
        net = net.to(dtype)
    # Swap the slow layers last so that their precomputed matrices carry the folded weights.
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if LatentConvTranspose2d.fits(child):
                setattr(parent, name, LatentConvTranspose2d(child))
            elif child in heads:
                setattr(parent, name, GemmConvTranspose2d(child, *heads[child]))
    return net.requires_grad_(False)
