"""The report's DCGAN, layer by layer, and its loss."""
import pytest
import torch
from torch import nn

from gan.models import get_model, model_names
from gan.models.base import count_params
from gan.models.dcgan import DCGANConfig, Discriminator, Generator


def layer_params(module: nn.Module) -> list[int]:
    """Parameters per conv / BN layer (BN weight + bias together), in order."""
    return [sum(p.numel() for p in m.parameters(recurse=False))
            for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d))]


def test_generator_matches_the_report_layer_by_layer():
    G = Generator(DCGANConfig())
    assert layer_params(G) == [819_200, 1_024, 2_097_152, 512, 524_288, 256, 131_072, 128, 3_072]
    assert count_params(G) == 3_576_704
    assert not any(getattr(m, "bias", None) is not None for m in G.modules() if isinstance(m, nn.ConvTranspose2d))


def test_discriminator_matches_the_report():
    D = Discriminator(DCGANConfig())
    assert count_params(D) == 2_765_568
    assert layer_params(D) == [3_072, 131_072, 256, 524_288, 512, 2_097_152, 1_024, 8_192]
    kinds = [type(m).__name__ for m in D.main]
    assert kinds[:2] == ["Conv2d", "LeakyReLU"] and kinds[-1] == "Sigmoid"
    assert all(m.negative_slope == 0.2 for m in D.modules() if isinstance(m, nn.LeakyReLU))


@pytest.mark.parametrize("res", [32, 64, 128, 256])
def test_shapes_at_every_resolution(res):
    torch.manual_seed(0)
    cfg = DCGANConfig(resolution=res)
    G, D = get_model("dcgan").build(cfg)
    x = G(torch.randn(2, 100))
    assert x.shape == (2, 3, res, res)
    assert x.min() >= -1 and x.max() <= 1
    p = D(x)
    assert p.shape == (2,) and ((p > 0) & (p < 1)).all()


def test_init_is_the_dcgan_papers():
    torch.manual_seed(0)
    G = Generator(DCGANConfig())
    conv = G.main[3].weight
    bn = G.main[1].weight
    assert abs(conv.mean().item()) < 1e-3 and abs(conv.std().item() - 0.02) < 1e-3
    assert abs(bn.mean().item() - 1.0) < 0.01 and abs(bn.std().item() - 0.02) < 0.01
    assert torch.count_nonzero(G.main[1].bias) == 0


def test_recipe_defaults_and_optimizers():
    spec = get_model("dcgan")
    cfg = spec.Config()
    assert (cfg.z_dim, cfg.ngf, cfg.ndf, cfg.batch, cfg.lr) == (100, 64, 64, 64, 2e-4)
    G, D = spec.build(cfg)
    opts = spec.prepare_phase(G, D, cfg, spec.schedule(cfg, 0))
    for opt in opts.values():
        assert isinstance(opt, torch.optim.Adam)
        assert opt.param_groups[0]["betas"] == (0.5, 0.999) and opt.param_groups[0]["lr"] == 2e-4
    assert "dcgan" in model_names()


def test_bce_loss_matches_a_hand_computation():
    spec = get_model("dcgan")
    cfg = DCGANConfig(resolution=32)
    torch.manual_seed(0)
    G, D = spec.build(cfg)
    loss = spec.make_loss(G, D, cfg)
    real = torch.rand(4, 3, 32, 32) * 2 - 1
    rng = torch.Generator().manual_seed(5)
    stats = loss.accumulate_gradients("D", real, spec.schedule(cfg, 0), rng)
    z = torch.randn(4, 100, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        dr, df = D(real), D(G(z))
        want = -(torch.log(dr).mean() + torch.log(1 - df).mean())
    assert torch.allclose(stats["loss_D"], want, atol=1e-5)
    assert all(p.grad is None for p in G.parameters())  # the D phase does not touch G
    stats = loss.accumulate_gradients("G", real, spec.schedule(cfg, 0), rng)
    assert torch.allclose(stats["loss_G"], -torch.log(df).mean(), atol=1e-5)
    assert all(p.grad is not None for p in G.parameters())


def test_bad_configs_name_the_field():
    with pytest.raises(ValueError, match="resolution"):
        DCGANConfig(resolution=48)
    with pytest.raises(ValueError, match="batch"):
        DCGANConfig(batch=0)
    with pytest.raises(ValueError, match="unknown model"):
        get_model("stylegan9")


def nyquist_share(x: torch.Tensor) -> float:
    """The share of the images' spectral energy (mean removed) at the highest frequency in both axes,
    the checkerboard (-1)^(i+j)."""
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x.double()).abs() ** 2
    n = x.shape[-1] // 2
    return float(power[..., n, n].sum() / power.sum())


def test_upsampling_variants_keep_the_reports_network_by_default_and_blur_removes_the_checkerboard():
    assert DCGANConfig().upsample == "transposed"
    with pytest.raises(ValueError, match="upsample must be one of transposed, resize, blur"):
        DCGANConfig(upsample="bilinear")
    torch.manual_seed(0)
    plain, blur, resize = (Generator(DCGANConfig(upsample=u)) for u in ("transposed", "blur", "resize"))
    # blur: the report's parameters and state-dict keys exactly (its kernel is not saved); resize: 3x3
    # convolutions instead of the 4x4 transposed ones of the four stride-2 layers (9/16 of their weights).
    assert count_params(blur) == 3_576_704 and list(blur.state_dict()) == list(plain.state_dict())
    assert count_params(resize) == 3_576_704 - (2_097_152 + 524_288 + 131_072 + 3_072) * 7 // 16
    small = dict(resolution=32, ngf=16, z_dim=16)
    plain, blur = Generator(DCGANConfig(**small)), Generator(DCGANConfig(upsample="blur", **small))
    blur.load_state_dict(plain.state_dict())  # the same weights: only the low-pass differs
    assert Generator(DCGANConfig(upsample="resize", **small))(torch.randn(2, 16)).shape == (2, 3, 32, 32)
    plain.eval(), blur.eval()
    z = torch.randn(16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        share_plain, share_blur = nyquist_share(plain(z)), nyquist_share(blur(z))
    # The transposed convolutions put a measurable share of the energy at the checkerboard frequency;
    # the low-pass removes almost all of it.
    assert share_plain > 1e-3 and share_plain > 20 * share_blur, (share_plain, share_blur)


def test_a_variant_is_chosen_from_the_command_line(capsys):
    from gan.train import main

    small = ["--model", "dcgan", "--dry-run", "--size", "32", "--set", "ngf=8", "--set", "ndf=8"]
    assert main([*small, "--set", "upsample=blur"]) == 0
    assert '"upsample": "blur"' in capsys.readouterr().out
    assert main([*small, "--set", "upsample=cubic"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "upsample must be one of transposed, resize, blur" in err[0]
