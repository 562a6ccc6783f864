"""StyleGAN2 at tiny sizes: shapes, the modulated convolution against a hand computation, seeds,
lazy R1 at the right steps, bit-exact resume through the loop, a short conditional run that learns,
loading with no flags, and the dry run's counts."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eval.testing import lesion_images
from gan import checkpoint as ckpt_io
from gan import load_generator
from gan.config import RunConfig, TrainConfig
from gan.data import DataConfig
from gan.loop import train_step, training_loop
from gan.models import get_model
from gan.models.stylegan2 import StyleGAN2Config, fir_filter, modulated_conv2d, upsample2d
from gan.rng import BatchRNG
from gan.rundir import RunDir

SPEC = get_model("stylegan2")
# 16 px: maps 16 at 4-8 px, 8 at 16 px.
TINY = StyleGAN2Config(resolution=16, z_dim=16, w_dim=16, mapping_layers=2, channel_base=128, channel_max=16,
                       batch=8, embed_dim=8)
COND = dataclasses.replace(TINY, class_names=("red", "blue"))


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("cfg", [TINY, COND, dataclasses.replace(TINY, resolution=32)], ids=["16", "cond", "32"])
def test_shapes_of_g_and_d(cfg):
    torch.manual_seed(0)
    G, D = SPEC.build(cfg)
    labels = torch.tensor([0, 1, 1]) if cfg.class_names else None
    z = torch.randn(3, cfg.z_dim)
    img = G(z, labels=labels)
    assert img.shape == (3, 3, cfg.resolution, cfg.resolution)
    assert G.num_ws == 2 * int(np.log2(cfg.resolution)) - 2
    assert D(img, labels=labels).shape == (3,)
    img, ws = G(z, labels=labels, return_ws=True)
    assert ws.shape == (3, G.num_ws, cfg.w_dim)
    with pytest.raises(ValueError, match="generates 16 px only" if cfg.resolution == 16 else "32 px only"):
        G(z, resolution=64, labels=labels)
    if cfg.class_names:
        # D scores one image differently per class (the cmap projection), and G draws per class.
        scores = D(img[:1].expand(2, -1, -1, -1), labels=torch.tensor([0, 1]))
        assert scores[0] != scores[1]
        assert (G(z, labels=torch.zeros(3, dtype=torch.long)) - G(z, labels=torch.ones(3, dtype=torch.long))
                ).abs().mean() > 1e-4
        with pytest.raises(ValueError, match="conditional"):
            G(z)
    else:
        with pytest.raises(ValueError, match="unconditional"):
            D(img, labels=torch.zeros(3, dtype=torch.long))


def test_modulated_convolution_equals_a_hand_computation():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, generator=g)
    weight = torch.randn(4, 3, 3, 3, generator=g)
    styles = torch.rand(2, 3, generator=g) + 0.5
    f = fir_filter()
    for up in (False, True):
        want = []
        for n in range(2):
            w = weight * styles[n].view(1, 3, 1, 1)                  # modulate the input channels
            w = w / w.square().sum(dim=(1, 2, 3), keepdim=True).sqrt()  # demodulate each output channel
            torch.testing.assert_close(w.square().sum(dim=(1, 2, 3)), torch.ones(4))  # unit norm
            if up:  # transposed stride-2 conv, then the [1, 3, 3, 1] filter, padded by 1
                y = F.conv_transpose2d(x[n:n + 1], w.transpose(0, 1), stride=2)
                y = F.conv2d(F.pad(y, [1] * 4), f.expand(4, 1, 4, 4), groups=4)
            else:
                y = F.conv2d(x[n:n + 1], w, padding=1)
            want.append(y)
        want = torch.cat(want)
        assert want.shape == (2, 4, 10 if up else 5, 10 if up else 5)
        for fused in (False, True):
            got = modulated_conv2d(x, weight, styles, up=up, f=f, fused=fused)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # Without demodulation: the plain per-sample convolution of the modulated weight.
    got = modulated_conv2d(x, weight, styles, demodulate=False)
    want = torch.cat([F.conv2d(x[n:n + 1], weight * styles[n].view(1, 3, 1, 1), padding=1) for n in range(2)])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    # The filter sums to 1; upsampling keeps a constant image constant away from the border.
    assert float(f.sum()) == pytest.approx(1.0)
    up = upsample2d(torch.full((1, 1, 6, 6), 2.0), f)
    assert up.shape == (1, 1, 12, 12) and torch.allclose(up[..., 1:-1, 1:-1], torch.tensor(2.0))


def test_same_seed_same_networks_and_images_other_seed_other():
    def build(seed):
        torch.manual_seed(seed)
        return SPEC.build(COND)

    (Ga, Da), (Gb, Db), (Gc, _) = build(0), build(0), build(1)
    assert_same_state(Ga.state_dict(), Gb.state_dict())
    assert_same_state(Da.state_dict(), Db.state_dict())
    z, labels = torch.randn(4, COND.z_dim), torch.tensor([0, 1, 0, 1])
    with torch.no_grad():
        assert torch.equal(Ga(z, labels=labels), Gb(z, labels=labels))  # fixed noise: a function of z
        assert not torch.equal(Ga(z, labels=labels), Gc(z, labels=labels))
        Ga.blocks["16"].conv1.noise_strength.fill_(1.0)  # random noise: a function of the generator's state
        a = Ga(z, labels=labels, noise_rng=BatchRNG(torch.Generator().manual_seed(5)))
        b = Ga(z, labels=labels, noise_rng=BatchRNG(torch.Generator().manual_seed(5)))
        c = Ga(z, labels=labels, noise_rng=BatchRNG(torch.Generator().manual_seed(6)))
        assert torch.equal(a, b) and not torch.equal(a, c)
        # Fused (grouped) and unfused modulated convolutions draw the same images.
        torch.testing.assert_close(Ga(z, labels=labels, fused_modconv=True), Ga(z, labels=labels),
                                   rtol=1e-4, atol=1e-5)


def test_lazy_r1_and_path_length_run_on_their_steps_with_the_paper_s_scaling():
    cfg = dataclasses.replace(TINY, r1_interval=4, pl_weight=2.0, pl_interval=3, r1_gamma=0.5)
    torch.manual_seed(0)
    G, D = SPEC.build(cfg)
    stage0 = SPEC.schedule(cfg, 0)
    opts = SPEC.prepare_phase(G, D, cfg, stage0)
    assert opts["Dreg"] is opts["D"] and opts["Greg"] is opts["G"]  # shared Adam state
    assert stage0.lr_d == pytest.approx(cfg.lr * 4 / 5) and stage0.lr_g == pytest.approx(cfg.lr * 3 / 4)
    assert opts["D"].param_groups[0]["betas"] == pytest.approx((0.0, 0.99 ** 0.8))
    loss = SPEC.make_loss(G, D, cfg)
    assert loss.phases == ("D", "Dreg", "G", "Greg")
    real = torch.rand(8, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    rng = torch.Generator().manual_seed(2)
    r1_steps, pl_steps = [], []
    for step in range(9):
        stage = SPEC.schedule(cfg, step * cfg.batch)  # the step index comes from images seen
        assert stage.step == step
        before = [p.clone() for p in D.parameters()]
        stats = train_step(loss, opts, real, stage, rng)
        if "r1_penalty" in stats:
            r1_steps.append(step)
        if "pl_penalty" in stats:
            pl_steps.append(step)
        assert any(not torch.equal(a, b) for a, b in zip(before, D.parameters()))
    assert r1_steps == [0, 4, 8] and pl_steps == [0, 3, 6]
    assert float(G.pl_mean) > 0  # the running path length, a buffer that checkpoints hold

    # The R1 phase's gradient: interval * gamma / 2 * mean ||dD(real)/dreal||^2, by hand.
    D.zero_grad(set_to_none=True)
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    (4 * 0.5 / 2 * grad.square().sum(dim=(1, 2, 3)).mean()).backward()
    want = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in D.parameters()]
    D.zero_grad(set_to_none=True)
    out = loss.accumulate_gradients("Dreg", real, SPEC.schedule(cfg, 8 * cfg.batch), rng)
    assert float(out["r1_penalty"]) == pytest.approx(float(grad.detach().square().sum(dim=(1, 2, 3)).mean()),
                                                    rel=1e-5)
    for p, w in zip(D.parameters(), want):
        torch.testing.assert_close(p.grad, w, rtol=1e-4, atol=1e-7)
    D.zero_grad(set_to_none=True)
    assert loss.accumulate_gradients("Dreg", real, SPEC.schedule(cfg, 9 * cfg.batch), rng) == {}
    assert all(p.grad is None for p in D.parameters())  # not due: nothing computed, the Adam step is a no-op


def _colour_classes(n: int = 32, size: int = 16):
    a = torch.from_numpy(lesion_images(n, size, seed=1)).permute(0, 3, 1, 2).contiguous()
    return torch.cat([a, a.flip(1).contiguous()]), torch.tensor([0] * n + [1] * n)  # reddish, bluish


def _run_config(kimg: float, cfg: StyleGAN2Config = COND, **train) -> RunConfig:
    train = {"log_kimg": 0.032, "snapshot_kimg": 0.032, "grid_kimg": 1.0, "grid_size": 4, "ada": True,
             "ada_ops": "bg", **train}
    return RunConfig(model="stylegan2", model_cfg=cfg, train=TrainConfig(kimg=kimg, **train),
                     data=DataConfig(size=cfg.resolution, class_counts={"red": 32, "blue": 32}))


def _train(path, cfg: RunConfig, images, labels, resume=None):
    run = RunDir(path).open_for_writing()
    run.write_config(cfg)
    return training_loop(run, cfg, images, labels=labels, progress=False, resume=resume)


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path):
    # R1 every 3 steps and path length every 2: both fall before and after the resume at step 4;
    # ADA moves p quickly (ada_kimg), so its state matters too.
    cfg = dataclasses.replace(COND, r1_interval=3, pl_weight=1.0, pl_interval=2)
    images, labels = _colour_classes()
    kw = {"ada_kimg": 0.1, "ada_interval": 1, "ada_target": 0.1}
    full = _train(tmp_path / "full", _run_config(0.064, cfg, **kw), images, labels)
    half = _train(tmp_path / "half", _run_config(0.032, cfg, **kw), images, labels)
    resume = ckpt_io.load(half.run_dir / "checkpoint.pt")
    training_loop(half.run_dir, _run_config(0.064, cfg, **kw), images, labels=labels, resume=resume,
                  progress=False)
    a, b = (ckpt_io.load(r / "checkpoint.pt") for r in (full.run_dir, half.run_dir))
    assert a["nimg"] == b["nimg"] == 64
    for key in ("G", "D", "G_ema"):
        assert_same_state(a[key], b[key])
    assert set(a["opt"]) == {"G", "D", "Dreg", "Greg"}
    for name in ("G", "D"):
        assert_same_state(a["opt"][name]["state"][0], b["opt"][name]["state"][0])
    assert a["ada"] == b["ada"] and a["ada"]["p"] > 0


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A tiny conditional StyleGAN2 trained for a few seconds on reddish and bluish lesions."""
    images, labels = _colour_classes()
    cfg = _run_config(0.8, dataclasses.replace(COND, lr=0.005, batch=16, style_mixing=0.0), log_kimg=0.16,
                      snapshot_kimg=0.8, ema_kimg=0.05)
    res = _train(tmp_path_factory.mktemp("sg2") / "run", cfg, images, labels)
    return res, images


def test_a_short_conditional_run_learns_colours_per_class(colour_run):
    res, images = colour_run
    assert res.status == "done" and res.nimg == 800
    G = load_generator(res.run_dir)  # no flags: the file holds its config
    assert G.model_name == "stylegan2" and G.class_names == ["red", "blue"]
    red = G.generate(64, seed=5, labels="red").astype(float).mean((0, 1, 2))
    blue = G.generate(64, seed=5, labels="blue").astype(float).mean((0, 1, 2))
    real_red = images[:32].float().mean((0, 2, 3)).numpy()
    real_blue = images[32:].float().mean((0, 2, 3)).numpy()
    assert np.linalg.norm(red - real_red) < np.linalg.norm(red - real_blue)
    assert np.linalg.norm(blue - real_blue) < np.linalg.norm(blue - real_red)
    assert red[0] - red[2] > 5 and blue[2] - blue[0] > 5


def test_sample_and_synthesize_load_the_generator_with_no_flags(colour_run, tmp_path):
    from PIL import Image

    from gan.sample import main as sample_main
    from gan.synthesize import main as synth_main

    res, _ = colour_run
    assert sample_main(["--checkpoint", str(res.run_dir / "generator.pt"), "--n", "2", "--class", "blue",
                        "--out", str(tmp_path / "s")]) == 0
    want = load_generator(res.run_dir).generate(2, seed=0, labels="blue")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "s" / "blue-seed0000-00001.png")), want[1])
    assert synth_main(["--checkpoint", str(res.run_dir), "--out", str(tmp_path / "y"), "--per-class",
                       "red=2,blue=1", "--layout", "imagefolder", "--quiet"]) == 0
    assert len([p for p in (tmp_path / "y").rglob("*.png")]) == 3


def test_dry_run_prints_parameter_counts_flops_and_the_training_defaults(capsys):
    from gan.train import main

    G, D = SPEC.build(StyleGAN2Config())
    n_g, n_d = (sum(p.numel() for p in m.parameters()) for m in (G, D))
    assert main(["--model", "stylegan2", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"G parameters: {n_g:,}" in out and f"D parameters: {n_d:,}" in out
    assert "forward FLOPs per image" in out and "x dcgan's at 64 px" in out
    assert '"ada": true' in out and '"ada_ops": "bgc"' in out
    assert main(["--model", "stylegan2", "--cond", "--dry-run"]) == 0
    assert '"ada_ops": "bg"' in capsys.readouterr().out  # conditional: ADA leaves colours alone
    assert main(["--model", "stylegan2", "--no-ada", "--preset", "gpu256", "--size", "128", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"ada": false' in out and '"resolution": 128' in out and '"channel_base": 32768' in out
    assert main(["--model", "stylegan2", "--preset", "huge", "--dry-run"]) == 2
    assert "--preset huge: model stylegan2 has the presets cpu64, gpu256" in capsys.readouterr().err


@pytest.mark.slow
def test_the_gpu_preset_takes_one_training_step_with_both_regularizers():
    # config f's widths at 128 px, batch 2: minutes on a 2-core CPU, about a second on a GPU.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = dataclasses.replace(SPEC.presets["gpu256"], resolution=128, batch=2)
    torch.manual_seed(0)
    G, D = (m.to(device) for m in SPEC.build(cfg))
    stage = SPEC.schedule(cfg, 0)  # step 0: R1 and path length both due
    opts, loss = SPEC.prepare_phase(G, D, cfg, stage), SPEC.make_loss(G, D, cfg)
    real = torch.rand(2, 3, 128, 128, device=device) * 2 - 1
    stats = train_step(loss, opts, real, stage, torch.Generator(device=device).manual_seed(1))
    assert {"loss_D", "loss_G", "r1_penalty", "pl_penalty"} <= set(stats)
    assert all(bool(torch.isfinite(v)) for v in stats.values())
