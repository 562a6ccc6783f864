"""The fast paths of bench/ keep the maths: rewritten layers equal the layers they replace,
bf16 sampling stays within a few grey levels of fp32, the DCGAN G phase computes no D weight
gradients yet gives G the same ones, and bf16 training runs, records itself and is refused where
the hardware would emulate it."""
import numpy as np
import pytest
import torch
from torch import nn

from gan import load_generator
from gan import nets
from gan.config import RunConfig, TrainConfig, to_dict
from gan.rundir import RunDir
from gan.loop import training_loop
from gan.models import get_model
from gan.models.base import Stage
from gan.models.dcgan import DCGANConfig
from gan.nets import LatentConvTranspose2d, SubpixelConvTranspose2d, bf16_supported, fuse_for_inference

needs_bf16 = pytest.mark.skipif(not bf16_supported("cpu"), reason="this CPU has no native bf16")


def _pair(make, seed=0):
    torch.manual_seed(seed)
    conv = make()
    with torch.no_grad():
        for p in conv.parameters():
            p.normal_(0, 0.1)
    return conv.eval()


@pytest.mark.parametrize("bias", [False, True])
def test_latent_layer_equals_the_transposed_convolution_on_1x1_inputs(bias):
    conv = _pair(lambda: nn.ConvTranspose2d(20, 12, 4, 1, 0, bias=bias))
    fast = LatentConvTranspose2d(conv)
    z = torch.randn(5, 20, 1, 1)
    with torch.no_grad():
        want, got = conv(z), fast(z)
    assert got.shape == want.shape == (5, 12, 4, 4)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    # Another input size is not a matrix product: it falls back to the convolution itself.
    x = torch.randn(2, 20, 3, 3)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), conv(x))


def test_layers_that_do_not_fit_are_refused():
    assert not LatentConvTranspose2d.fits(nn.ConvTranspose2d(8, 8, 4, 1, 1))  # padding crops the kernel
    assert not SubpixelConvTranspose2d.fits(nn.ConvTranspose2d(8, 64, 4, 2, 1))  # too many output channels
    assert not SubpixelConvTranspose2d.fits(nn.ConvTranspose2d(8, 3, 3, 2, 1))  # another kernel
    assert not SubpixelConvTranspose2d.fits(nn.Conv2d(8, 3, 3))
    with pytest.raises(ValueError, match="cannot stand in"):
        LatentConvTranspose2d(nn.ConvTranspose2d(8, 8, 4, 1, 1))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("channels_last", [False, True])
def test_subpixel_head_equals_the_transposed_convolution(bias, channels_last):
    conv = _pair(lambda: nn.ConvTranspose2d(16, 3, 4, 2, 1, bias=bias))
    fast = SubpixelConvTranspose2d(conv)
    x = torch.randn(3, 16, 7, 9)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        want, got = conv(x), fast(x)
    assert got.shape == want.shape == (3, 3, 14, 18)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_fused_dcgan_uses_the_fast_layers_and_matches_the_network():
    G = get_model("dcgan").build_generator(DCGANConfig(resolution=32, ngf=16)).eval()
    with torch.no_grad():  # BatchNorm statistics that are not the identity, to fold something real
        for m in G.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    fast = fuse_for_inference(G)
    kinds = [type(m) for m in fast.main]
    assert kinds[0] is LatentConvTranspose2d and SubpixelConvTranspose2d in kinds
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    z = torch.randn(8, 100)
    with torch.no_grad():
        torch.testing.assert_close(fast(z), G(z), rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def gen_file(tmp_path_factory):
    from conftest import disc_images
    d = tmp_path_factory.mktemp("gen")
    cfg = {"format": 1, "model": "dcgan", "model_cfg": to_dict(DCGANConfig(resolution=32, batch=16, ngf=32, ndf=16)),
           "train": to_dict(TrainConfig(kimg=0.32, log_kimg=0.16, grid_size=4)), "data": {}}
    RunDir(d).write_config(RunConfig.from_dict(cfg))
    training_loop(d, cfg, disc_images(64, 32), progress=False)
    return d / "generator.pt"


@needs_bf16
def test_bf16_sampling_is_within_a_few_grey_levels_of_fp32_and_deterministic(gen_file):
    exact = load_generator(gen_file, fuse=False)
    fast = load_generator(gen_file, precision="bf16")
    assert fast.precision == "bf16" and next(fast.fast_net.parameters()).dtype == torch.bfloat16
    assert type(fast.fast_net.main[0]) is LatentConvTranspose2d
    z = exact.latents(64, seed=3)
    a, b = exact.synthesize(z).astype(int), fast.synthesize(z).astype(int)
    diff = np.abs(a - b)
    assert diff.max() <= 4 and diff.mean() < 0.5
    assert np.array_equal(fast.generate(16, seed=9), fast.generate(16, seed=9))


def test_precision_choices(gen_file, monkeypatch, tmp_path):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path))
    assert load_generator(gen_file).precision == "fp32"  # the default: what eval.run scores
    auto = load_generator(gen_file, precision="auto")  # measured where bf16 is native: tests/test_precision.py
    assert auto.precision in ("fp32", "bf16") and auto.precision_reason.startswith(auto.precision + ": ")
    if not bf16_supported("cpu"):
        assert auto.precision == "fp32"
    exact = load_generator(gen_file, precision="auto", fuse=False)
    assert exact.precision == "fp32" and "fuse=False" in exact.precision_reason
    with pytest.raises(ValueError, match="precision must be one of"):
        load_generator(gen_file, precision="fp16")
    with pytest.raises(ValueError, match="fuse=False"):
        load_generator(gen_file, precision="bf16", fuse=False)


def test_dcgan_g_phase_skips_d_weight_gradients_and_gives_g_the_same_ones():
    spec, cfg = get_model("dcgan"), DCGANConfig(resolution=32, ngf=16, ndf=16)
    torch.manual_seed(0)
    G, D = spec.build(cfg)
    loss = spec.make_loss(G, D, cfg)
    stage = Stage(phase=0, resolution=32, alpha=1.0, batch=8, lr_g=2e-4, lr_d=2e-4)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    loss.accumulate_gradients("D", real, stage, torch.Generator().manual_seed(1))
    fake = loss._fake
    for p in D.parameters():
        p.grad = None
    loss.accumulate_gradients("G", real, stage, torch.Generator())
    assert all(p.grad is None for p in D.parameters())
    assert all(p.requires_grad for p in D.parameters())  # flags restored
    got = [p.grad.clone() for p in G.parameters()]
    # What the PyTorch example computes (D's weight gradients included) gives G the same gradients.
    G.zero_grad(set_to_none=True)
    fake2 = G(torch.randn(8, cfg.z_dim, generator=torch.Generator().manual_seed(1)))
    torch.testing.assert_close(fake2, fake)
    d = D(fake2)
    nn.BCELoss()(d, torch.ones_like(d)).backward()
    for g, p in zip(got, G.parameters()):
        torch.testing.assert_close(g, p.grad)


def _tiny(kimg=0.32, **train):
    mcfg = DCGANConfig(resolution=32, batch=16, ngf=16, ndf=16)
    return {"format": 1, "model": "dcgan", "model_cfg": to_dict(mcfg),
            "train": to_dict(TrainConfig(kimg=kimg, log_kimg=0.16, grid_size=4, **train)), "data": {"size": 32}}


@needs_bf16
def test_bf16_training_runs_and_keeps_float32_weights(tmp_path, discs):
    cfg = _tiny(precision="bf16")
    RunDir(tmp_path).write_config(RunConfig.from_dict(cfg))
    res = training_loop(tmp_path, cfg, discs(64, 32), progress=False)
    assert res.status == "done"
    from gan import checkpoint as ckpt_io
    ckpt = ckpt_io.load(tmp_path / "checkpoint.pt")
    assert ckpt["config"].train.precision == "bf16"
    assert all(v.dtype == torch.float32 for v in ckpt["G"].values() if v.is_floating_point())
    assert all(torch.isfinite(v).all() for v in ckpt["G"].values() if v.is_floating_point())


def test_bf16_training_is_refused_without_native_bf16(tmp_path, discs, monkeypatch):
    # An AVX-512 CPU without AVX512-BF16: oneDNN would emulate bf16 there, slower than fp32.
    monkeypatch.setattr(nets, "cpu_info", lambda: ("Intel Xeon", frozenset({"avx512f", "avx512_vnni"})))
    cfg = _tiny(precision="bf16")
    RunDir(tmp_path).write_config(RunConfig.from_dict(cfg))
    with pytest.raises(ValueError, match=r"--precision bf16: this CPU \(Intel Xeon\) has no native bfloat16"):
        training_loop(tmp_path, cfg, discs(16, 32), progress=False)
    with pytest.raises(ValueError, match="--precision must be fp32, bf16 or auto"):
        TrainConfig(precision="fp16")
