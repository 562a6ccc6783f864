"""Network utilities shared by every model: EMA of G, BatchNorm recalibration, the sampling fast path."""
from __future__ import annotations

import copy
import functools
import platform
import subprocess

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
                   seed: int = 123456789, class_probs: torch.Tensor | None = None) -> None:
    """Re-estimate BatchNorm running statistics of ``G`` for its own (EMA) weights.

    EMA averages weights but not the activation statistics that go with them; sampling in eval mode
    with G's running stats then gives washed-out images. This runs ``batches`` fixed, seeded batches
    through G in train mode with cumulative averaging. No-op for networks without BatchNorm. A
    conditional G gets classes drawn with ``class_probs`` (the training data's class shares).
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
        z = torch.randn(batch, z_dim, generator=gen, device=device)
        if class_probs is None:
            G(z, **stage_kwargs)
        else:
            labels = torch.multinomial(class_probs.to(device), batch, replacement=True, generator=gen)
            G(z, labels=labels, **stage_kwargs)
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


class SubpixelConvTranspose2d(nn.Module):
    """DCGAN's RGB head, ``ConvTranspose2d(Cin, Cout, 4, stride=2, padding=1)``, as a 3x3 convolution
    to ``4 * Cout`` channels followed by ``pixel_shuffle(2)`` (the sub-pixel form of a stride-2
    transposed convolution: output pixel ``(2i + a, 2j + b)`` reads a 2x2 window of the input, which
    sits inside the 3x3 one around ``(i, j)``). oneDNN runs a transposed convolution with 3 output
    channels far below peak; the convolution does 2.25x the multiply-adds yet takes about half the
    time (bench/README.md). Same sums, other order: equal up to float rounding."""

    # Kernel row (or column) of the 4x4 transposed kernel that output phase ``a`` reads at input
    # offset ``d`` (-1, 0 or +1); pairs that are absent read nothing.
    _TAP = {(0, 0): 1, (0, -1): 3, (1, 0): 2, (1, 1): 0}

    def __init__(self, conv: nn.ConvTranspose2d):
        super().__init__()
        if not self.fits(conv):
            raise ValueError(f"SubpixelConvTranspose2d cannot stand in for {conv}")
        w = conv.weight.detach()  # (Cin, Cout, 4, 4)
        cin, cout = w.shape[:2]
        k = w.new_zeros(cout, 2, 2, cin, 3, 3)
        for (a, dy), ky in self._TAP.items():
            for (b, dx), kx in self._TAP.items():
                k[:, a, b, :, dy + 1, dx + 1] = w[:, :, ky, kx].t()
        # Channel order (Cout, a, b): what pixel_shuffle(2) maps to output pixel (2i + a, 2j + b).
        self.weight = nn.Parameter(k.reshape(cout * 4, cin, 3, 3).contiguous(memory_format=torch.channels_last),
                                   requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().repeat_interleave(4),
                                                                requires_grad=False)

    @staticmethod
    def fits(conv: nn.Module) -> bool:
        return (type(conv) is nn.ConvTranspose2d and conv.groups == 1 and conv.kernel_size == (4, 4)
                and conv.stride == (2, 2) and conv.padding == (1, 1) and conv.output_padding == (0, 0)
                and conv.dilation == (1, 1) and conv.out_channels <= 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(F.conv2d(x, self.weight, self.bias, padding=1), 2)


# CPU feature flags (Linux /proc/cpuinfo: x86 ``flags``, Arm ``Features``) that mean bfloat16
# arithmetic in hardware, with their usual names. oneDNN's own ``_is_mkldnn_bf16_supported()`` is not
# enough: it is True on any AVX-512 CPU, where bf16 is emulated and 2-3.5x slower than fp32.
NATIVE_BF16_FLAGS = {"amx_bf16": "AMX-BF16", "avx512_bf16": "AVX512-BF16", "bf16": "Arm BF16"}


@functools.lru_cache(maxsize=1)
def cpu_info() -> tuple[str, frozenset[str]]:
    """(model name, feature flags) of this machine's CPU: ``/proc/cpuinfo`` on Linux; on macOS the
    brand string and ``bf16`` where ``sysctl`` reports FEAT_BF16; elsewhere no flags."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            model, flags = parse_cpuinfo(f)
    except OSError:
        model, flags = "", frozenset()
        if platform.system() == "Darwin":
            model = _sysctl("machdep.cpu.brand_string")
            flags = frozenset({"bf16"} if _sysctl("hw.optional.arm.FEAT_BF16") == "1" else ())
    return model or platform.processor() or platform.machine(), flags


def parse_cpuinfo(lines) -> tuple[str, frozenset[str]]:
    """(model name, flags) from the lines of a Linux ``/proc/cpuinfo`` (x86 ``flags``, Arm
    ``Features``); the first core's are enough, as every core lists the same."""
    model, flags = "", frozenset()
    for line in lines:
        key, _, value = (part.strip() for part in line.partition(":"))
        if key == "model name" and not model:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
        if model and flags:
            break
    return model, flags


def _sysctl(name: str) -> str:
    try:
        return subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def native_bf16(device: torch.device | str = "cpu") -> str | None:
    """The hardware feature that runs bfloat16 natively on ``device`` (``"AVX512-BF16"``,
    ``"AMX-BF16"``, ``"Arm BF16"``, ``"CUDA compute capability 8.0"``...), or None where bf16 would be
    emulated and slower than float32 (a CPU without those flags, a GPU before Ampere, MPS)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability(device)
        return f"CUDA compute capability {major}.{minor}" if major >= 8 else None
    if device.type == "cpu" and torch.backends.mkldnn.is_available():
        flags = cpu_info()[1]
        return next((name for flag, name in NATIVE_BF16_FLAGS.items() if flag in flags), None)
    return None


def bf16_supported(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 natively (:func:`native_bf16`): CPU flags ``avx512_bf16`` or
    ``amx_bf16`` (Arm: ``bf16``), CUDA compute capability 8.0+. Elsewhere bf16 is emulated and slower."""
    return native_bf16(device) is not None


def check_bf16(device: torch.device | str, flag: str = "--precision bf16", instead: str = "fp32 or auto") -> None:
    """Refuse bf16 where it would be emulated: a ValueError of one line naming ``flag``, why, and what to
    use ``instead``."""
    if bf16_supported(device):
        return
    device = torch.device(device)
    if device.type == "cpu":
        where = f"this CPU ({cpu_info()[0]}) has no native bfloat16 (no AVX512-BF16 or AMX-BF16 flag)"
    elif device.type == "cuda":
        where = f"{device} has no native bfloat16 (compute capability below 8.0)"
    else:
        where = f"{device} has no native bfloat16"
    raise ValueError(f"{flag}: {where}, so bf16 would be emulated and slower than fp32; use {instead}")


def fuse_for_inference(net: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """An eval-mode copy of ``net`` for sampling: the dashboard's and ``gan.sample``'s fast path.

    * every Conv/ConvTranspose followed by a BatchNorm inside an ``nn.Sequential`` is folded into
      one layer (the BN's running statistics become the conv's scale and bias);
    * a transposed convolution on a 1x1 input becomes one matrix product
      (:class:`LatentConvTranspose2d`), a 4x4 stride-2 one with at most 8 output channels (the RGB
      head) a sub-pixel convolution (:class:`SubpixelConvTranspose2d`);
    * channels-last memory format, and the weights cast to ``dtype`` (``torch.bfloat16`` halves
      the time on CPUs with native bf16).

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
    # Swap the slow layers before the cast: their weights are rearranged from the folded float32 ones.
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            if LatentConvTranspose2d.fits(child):
                setattr(parent, name, LatentConvTranspose2d(child))
            elif SubpixelConvTranspose2d.fits(child):
                setattr(parent, name, SubpixelConvTranspose2d(child))
    if dtype != torch.float32:
        net = net.to(dtype)
    return net.requires_grad_(False)
