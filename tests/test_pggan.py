"""Progressive models: ``pggan`` (Karras et al. 2018) and ``pggan-seed`` (the report's recipe).

Tiny networks (4 -> 8 -> 16 px, a few feature maps) and generated images (discs, from conftest) keep the
whole file fast on a 2-core CPU; the training runs go through the one loop, :func:`gan.loop.training_loop`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import disc_images

from gan import checkpoint as ckpt_io
from gan import load_generator
from gan.config import TrainConfig
from gan.loop import training_loop
from gan.models import count_params, get_model
from gan.models.base import Stage
from gan.models.pggan import (
    EqualizedConv2d,
    EqualizedLinear,
    PGGANConfig,
    WGANGPLoss,
    blend_reals,
    gradient_penalty,
    minibatch_stddev,
    upsample2,
)
from gan.models.pggan_seed import PGGANSeedConfig

PGGAN = get_model("pggan")
SEED = get_model("pggan-seed")

# Karras, tiny: 4 px stable [0, 128), 8 px fade [128, 256), stable [256, 384), 16 px fade [384, 512),
# stable from 512 on. Batches 16 / 16 / 8 so that the batch size changes with the resolution.
TINY = PGGANConfig(resolution=16, start_resolution=4, fade_kimg=0.128, stable_kimg=0.128,
                   batch_per_res=((4, 16), (8, 16), (16, 8)), z_dim=8, fmap_base=64, fmap_max=8, fmap_min=4)
# The report's recipe, tiny: 8 px [0, 96), 16 px [96, 192), 32 px from 192 on.
TINY_SEED = PGGANSeedConfig(resolution=32, start_resolution=8, phase_kimg=(0.096, 0.096), z_dim=8, ngf=4, ndf=4,
                            batch=16)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread (and much faster than two on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_config(model: str, cfg, kimg: float) -> dict:
    train = TrainConfig(kimg=kimg, seed=3, ema_kimg=0.05, log_kimg=0.016, snapshot_kimg=10.0, grid_kimg=10.0,
                        grid_size=4, device="cpu")
    return {"format": ckpt_io.FORMAT_VERSION, "model": model, "model_cfg": dataclasses.asdict(cfg),
            "train": dataclasses.asdict(train), "data": {}}


def read_stats(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def train_in_pieces(model: str, cfg, stops: list[float], run_dir: Path, images: torch.Tensor) -> list[dict]:
    """Train to ``stops[0]`` kimg, then resume from the checkpoint to each later stop. Returns the
    checkpoint dict at each stop (a copy is kept as ``ckpt-<nimg>.pt``)."""
    run_dir.mkdir(parents=True)
    ckpts, resume = [], None
    for kimg in stops:
        result = training_loop(run_dir, run_config(model, cfg, kimg), images, resume=resume, progress=False)
        assert result.status == "done" and result.nimg == round(kimg * 1000)
        resume = ckpt_io.load(run_dir / "checkpoint.pt")
        (run_dir / f"ckpt-{result.nimg:06d}.pt").write_bytes((run_dir / "checkpoint.pt").read_bytes())
        ckpts.append(resume)
    return ckpts


# --------------------------------------------------------------------------- schedules

@pytest.mark.parametrize("nimg, phase, res, alpha, batch", [
    (0, 0, 4, 1.0, 16), (127, 0, 4, 1.0, 16),
    (128, 1, 8, 0.0, 16), (129, 1, 8, 1 / 128, 16), (192, 1, 8, 0.5, 16), (255, 1, 8, 127 / 128, 16),
    (256, 2, 8, 1.0, 16), (383, 2, 8, 1.0, 16),
    (384, 3, 16, 0.0, 8), (385, 3, 16, 1 / 128, 8), (511, 3, 16, 127 / 128, 8),
    (512, 4, 16, 1.0, 8), (10 ** 9, 4, 16, 1.0, 8),
])
def test_pggan_schedule_at_and_around_boundaries(nimg, phase, res, alpha, batch):
    s = PGGAN.schedule(TINY, nimg)
    assert (s.phase, s.resolution, s.batch, s.lr_g, s.lr_d) == (phase, res, batch, 1e-3, 1e-3)
    assert s.alpha == pytest.approx(alpha, abs=1e-12)
    assert PGGAN.schedule(TINY, nimg) == s  # a pure function of images seen


def test_pggan_default_schedule_reaches_64px_at_60_percent_of_150_kimg():
    cfg = PGGANConfig()
    assert PGGAN.schedule(cfg, 74_999).resolution == 32
    assert (PGGAN.schedule(cfg, 75_000).resolution, PGGAN.schedule(cfg, 75_000).alpha) == (64, 0.0)
    assert PGGAN.schedule(cfg, 89_999).alpha < 1.0
    assert PGGAN.schedule(cfg, 90_000).alpha == 1.0 and 90_000 / 150_000 == 0.6
    rows = PGGAN.describe_schedule(cfg, 150_000)
    assert [(r["resolution"], r["start_kimg"], r["end_kimg"], r["fade_kimg"]) for r in rows] == [
        (8, 0, 15, 0), (16, 15, 30, 15), (16, 30, 45, 0), (32, 45, 60, 15), (32, 60, 75, 0),
        (64, 75, 90, 15), (64, 90, 150, 0)]
    assert [r["batch"] for r in rows] == [64, 64, 64, 32, 32, 32, 32]
    assert len(PGGAN.describe_schedule(cfg, 50_000)) == 4  # a short run stops in phase 3


@pytest.mark.parametrize("nimg, phase, res", [(0, 0, 8), (95, 0, 8), (96, 1, 16), (191, 1, 16), (192, 2, 32),
                                              (10 ** 9, 2, 32)])
def test_seed_schedule_at_and_around_boundaries(nimg, phase, res):
    s = SEED.schedule(TINY_SEED, nimg)
    assert (s.phase, s.resolution, s.alpha, s.batch, s.lr_g) == (phase, res, 1.0, 16, 2e-4)


def test_seed_default_schedule_is_40_40_70_for_150_kimg():
    rows = SEED.describe_schedule(PGGANSeedConfig(), 150_000)
    assert [(r["resolution"], r["start_kimg"], r["end_kimg"]) for r in rows] == [(16, 0, 40), (32, 40, 80), (64, 80, 150)]
    assert PGGANSeedConfig().phase_kimg == (40.0, 40.0)
    assert PGGANSeedConfig(resolution=128).phase_kimg == (40.0, 40.0, 40.0)


def test_configs_survive_json_and_refuse_bad_values():
    for spec, cfg in ((PGGAN, TINY), (SEED, TINY_SEED), (PGGAN, PGGANConfig()), (SEED, PGGANSeedConfig())):
        assert spec.config_from_dict(json.loads(json.dumps(dataclasses.asdict(cfg)))) == cfg
    with pytest.raises(ValueError, match="batch_per_res"):
        PGGANConfig(batch_per_res=((8, 64), (16, 64)))  # no batch for 32 and 64 px
    with pytest.raises(ValueError, match="start_resolution"):
        PGGANConfig(start_resolution=128)
    with pytest.raises(ValueError, match="phase_kimg"):
        PGGANSeedConfig(phase_kimg=(40.0, 40.0, 70.0))
    with pytest.raises(ValueError, match="unknown pggan config keys"):
        PGGAN.config_from_dict({**dataclasses.asdict(TINY), "lod": 1})


def test_dry_run_prints_every_phase(capsys):
    from gan.train import main
    for model, n_rows in (("pggan", 7), ("pggan-seed", 3)):
        assert main(["--model", model, "--dry-run"]) == 0
        table = capsys.readouterr().out.split("schedule:")[1].strip().splitlines()
        assert len(table) == 1 + n_rows
        assert table[-1].split()[:4] == [str(n_rows - 1), "64", "90.0" if model == "pggan" else "80.0", "150.0"]


# --------------------------------------------------------------------------- layers

def test_equalized_layers_scale_weights_at_runtime_by_the_he_constant():
    torch.manual_seed(0)
    conv = EqualizedConv2d(64, 32, 3)
    assert conv.weight.std().item() == pytest.approx(1.0, abs=0.05) and not conv.bias.any()
    x = torch.randn(2, 64, 5, 5)
    he = math.sqrt(2) / math.sqrt(64 * 9)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1))
    with torch.no_grad():  # the scale is applied at run time, not baked into the stored weights
        conv.weight.mul_(2)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1))
    lin = EqualizedLinear(50, 7, gain=1.0)
    v = torch.randn(3, 50)
    torch.testing.assert_close(lin(v), v @ (lin.weight / math.sqrt(50)).T)
    G, D = PGGAN.build(TINY)
    assert G.to_rgb["16"].scale == pytest.approx(1 / math.sqrt(4))          # toRGB: gain 1, fan_in 4x1x1
    assert G.dense.scale == pytest.approx(math.sqrt(2) / 4 / math.sqrt(8))   # latent dense: gain sqrt(2)/4
    assert G.blocks["8"].conv0.scale == pytest.approx(math.sqrt(2) / math.sqrt(8 * 9))
    assert D.out.scale == pytest.approx(1 / math.sqrt(8))                   # D's last layer: gain 1
    assert D.conv4.scale == pytest.approx(math.sqrt(2) / math.sqrt(9 * 9))  # 8 maps + the stddev map


def hand_stddev(x: torch.Tensor, groups: list[list[int]], eps: float = 1e-8) -> list[float]:
    """Per-sample value of the minibatch-stddev map, by the definition, one element at a time."""
    n, c, h, w = x.shape
    out = [0.0] * n
    for members in groups:
        stds = [statistics.pstdev([float(x[i, ci, hi, wi]) for i in members]) for ci in range(c)
                for hi in range(h) for wi in range(w)]
        value = statistics.fmean(math.sqrt(s * s + eps) for s in stds)
        for i in members:
            out[i] = value
    return out


@pytest.mark.parametrize("n, groups", [
    (8, [[0, 2, 4, 6], [1, 3, 5, 7]]),       # the paper's layout: sample i in group i % (N / 4)
    (4, [[0, 1, 2, 3]]),
    (6, [[0, 2, 4], [1, 3, 5]]),             # 4 does not divide 6: two groups of 3
    (7, [[0, 2, 4, 6], [1, 3, 5]]),          # nor 7: groups of 4 and 3
    (2, [[0, 1]]),
    (1, [[0]]),
])
def test_minibatch_stddev_adds_one_channel_with_the_group_std(n, groups):
    base = torch.tensor([0.0, 10.0, 1.0, 10.0, 3.0, 10.0, 7.0, 10.0])[:n]
    pattern = torch.arange(1.0, 1 + 2 * 3 * 3).view(1, 2, 3, 3)   # varies over channels and pixels
    x = base.view(n, 1, 1, 1) * pattern + 0.1 * torch.arange(n * 18.0).view(n, 2, 3, 3) ** 1.5
    y = minibatch_stddev(x, group_size=4)
    assert y.shape == (n, 3, 3, 3)
    assert torch.equal(y[:, :2], x)
    expected = torch.tensor(hand_stddev(x, groups))
    torch.testing.assert_close(y[:, 2], expected.view(n, 1, 1).expand(n, 3, 3), rtol=1e-5, atol=1e-6)


def quadratic_critic(a: torch.Tensor):
    """D(x) = sum(a * x^2) per sample, whose input gradient is 2 a x."""
    return lambda x, **kw: (a * x ** 2).flatten(1).sum(1)


def test_gradient_penalty_matches_hand_computation_on_a_tiny_critic():
    a = torch.tensor([[[0.5, -1.0], [2.0, 0.25]]])
    real = torch.tensor([[[[1.0, 2.0], [0.0, -1.0]]], [[[0.5, 0.5], [3.0, 1.0]]]])
    fake = torch.tensor([[[[0.0, 1.0], [1.0, 1.0]]], [[[-2.0, 0.0], [0.0, 0.5]]]])
    eps = torch.tensor([0.25, 0.8]).view(2, 1, 1, 1)
    expected = 0.0
    for i in range(2):
        x_hat = fake[i] + eps[i] * (real[i] - fake[i])
        norm = math.sqrt(sum(float(v) ** 2 for v in (2 * a * x_hat).flatten()))
        expected += (norm - 1) ** 2 / 2
    assert gradient_penalty(quadratic_critic(a), real, fake, eps).item() == pytest.approx(expected, rel=1e-6)


def test_wgan_gp_d_loss_with_drift_and_blended_reals_matches_hand_computation():
    critic = quadratic_critic(torch.linspace(-1, 1, 16).view(1, 4, 4))
    real = torch.arange(2 * 16.0).view(2, 1, 4, 4) / 10
    fake = torch.full((2, 1, 4, 4), 0.5)

    class FixedG(torch.nn.Module):
        def forward(self, z, resolution=None, alpha=1.0):
            return fake + 0 * z.sum()

    loss = WGANGPLoss(FixedG(), critic, dataclasses.replace(TINY, z_dim=3))
    stage = Stage(phase=1, resolution=4, alpha=0.3, batch=2, lr_g=1e-3, lr_d=1e-3)
    replay = torch.Generator().manual_seed(5)
    torch.randn(2, 3, generator=replay)                       # the latents come first, then the mixing weights
    eps = torch.rand(2, 1, 1, 1, generator=replay)
    blended = 0.7 * upsample2(F.avg_pool2d(real, 2)) + 0.3 * real   # reals fade like G's output
    d_real, d_fake = critic(blended), critic(fake)
    want = (d_fake.mean() - d_real.mean() + 10 * gradient_penalty(critic, blended, fake, eps)
            + 0.001 * (d_real ** 2).mean())
    stats = loss.accumulate_gradients("D", real, stage, torch.Generator().manual_seed(5))
    assert stats["loss_D"].item() == pytest.approx(want.item(), rel=1e-6)
    assert stats["D_real"].item() == pytest.approx(d_real.mean().item(), rel=1e-6)
    assert stats["D_fake"].item() == pytest.approx(d_fake.mean().item(), rel=1e-6)
    torch.testing.assert_close(blend_reals(real, 0.3), blended)


# --------------------------------------------------------------------------- fade-in

def test_fade_in_endpoints_of_generator_and_discriminator():
    torch.manual_seed(1)
    G, D = PGGAN.build(TINY)
    z = torch.randn(5, TINY.z_dim)
    with torch.no_grad():
        for r in (8, 16):
            prev = G(z, resolution=r // 2)
            assert torch.equal(G(z, resolution=r, alpha=0.0), upsample2(prev))
            _, x = G.features(z, r)
            new = G.to_rgb[str(r)](x)
            assert torch.equal(G(z, resolution=r, alpha=1.0), new)
            torch.testing.assert_close(G(z, resolution=r, alpha=0.25), 0.75 * upsample2(prev) + 0.25 * new)
            assert not torch.allclose(new, upsample2(prev))           # the endpoints really differ
            img = torch.randn(8, 3, r, r)
            torch.testing.assert_close(D(img, alpha=0.0), D(F.avg_pool2d(img, 2)), rtol=1e-5, atol=1e-6)
            assert not torch.allclose(D(img, alpha=1.0), D(F.avg_pool2d(img, 2)))
    with pytest.raises(ValueError, match="alpha"):
        G(z, resolution=4, alpha=0.5)
    with pytest.raises(ValueError, match="32"):
        G(z, resolution=32)


# --------------------------------------------------------------------------- pggan-seed

def test_seed_networks_at_64px_are_the_reports_dcgan():
    G, D = SEED.build(PGGANSeedConfig())
    dG, dD = get_model("dcgan").build(get_model("dcgan").Config())
    used_G = [G.proj, *G.ups.values(), G.to_rgb["64"]]
    used_D = [D.from_rgb["64"], *D.downs.values(), D.final]
    assert sum(count_params(m) for m in used_G) == count_params(dG) == 3_576_704
    assert sum(count_params(m) for m in used_D) == count_params(dD) == 2_765_568
    assert G(torch.randn(2, 100), resolution=16).shape == (2, 3, 16, 16)


def test_seed_prepare_phase_freezes_earlier_layers_and_leaves_them_out_of_the_optimizer():
    G, D = SEED.build(TINY_SEED)
    opts = SEED.prepare_phase(G, D, TINY_SEED, SEED.schedule(TINY_SEED, 200))   # phase 2: 32 px
    for net, opt, new in ((G, opts["G"], ["ups.16.", "to_rgb.32."]), (D, opts["D"], ["from_rgb.32.", "downs.16."])):
        trainable = {n for n, p in net.named_parameters() if p.requires_grad}
        assert trainable == {n for n, _ in net.named_parameters() if any(n.startswith(k) for k in new)}
        in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
        assert in_opt == {id(p) for p in net.parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory):
    images = disc_images(48, 32, seed=1)
    root = tmp_path_factory.mktemp("seed")
    (root / "whole").mkdir()
    training_loop(root / "whole", run_config("pggan-seed", TINY_SEED, 0.288), images, progress=False)
    # Stopping exactly on the phase boundaries: each resume starts a new phase with fresh optimizers.
    ckpts = train_in_pieces("pggan-seed", TINY_SEED, [0.096, 0.192, 0.288], root / "pieces", images)
    return root, ckpts


def test_seed_frozen_parameters_are_bit_identical_after_later_phases(seed_runs):
    root, ckpts = seed_runs
    end0, end1, end2 = ckpts
    assert [c["info"]["resolution"] for c in ckpts] == [8, 16, 32]
    phase0 = ("proj.", "to_rgb.8.", "from_rgb.8.", "final.")
    phase1 = ("ups.8.", "to_rgb.16.", "from_rgb.16.", "downs.8.")
    G, D = SEED.build(TINY_SEED)
    for net, key in ((G, "G"), (D, "D")):
        for name, _ in net.named_parameters():
            if name.startswith(phase0):
                assert torch.equal(end0[key][name], end1[key][name]) and torch.equal(end0[key][name], end2[key][name]), name
            elif name.startswith(phase1):
                assert torch.equal(end1[key][name], end2[key][name]), name
                assert not torch.equal(end0[key][name], end1[key][name]), name   # trained in phase 1
            else:
                assert not torch.equal(end1[key][name], end2[key][name]), name   # trained in phase 2
    # Every phase's checkpoint samples at its own resolution.
    for nimg, res in ((96, 8), (192, 16), (288, 32)):
        Gl = load_generator(root / "pieces" / f"ckpt-{nimg:06d}.pt")
        assert (Gl.resolution, Gl.alpha, Gl.model_name) == (res, 1.0, "pggan-seed")
        assert Gl.generate(3, seed=0).shape == (3, res, res, 3)


def test_seed_resume_on_phase_boundaries_matches_an_uninterrupted_run(seed_runs):
    root, ckpts = seed_runs
    whole = ckpt_io.load(root / "whole" / "checkpoint.pt")
    assert without_time(read_stats(root / "pieces")) == without_time(read_stats(root / "whole"))
    for key in ("G", "D", "G_ema"):
        for name, value in whole[key].items():
            assert torch.equal(value, ckpts[-1][key][name]), f"{key}.{name}"


# --------------------------------------------------------------------------- pggan: growing run and resume

STOPS = [0.064, 0.192, 0.32, 0.448, 0.576]   # mid 4 px, mid 8 px fade-in, 8 px, mid 16 px fade-in, 16 px


@pytest.fixture(scope="module")
def pggan_runs(tmp_path_factory):
    images = disc_images(40, 16, seed=0)
    root = tmp_path_factory.mktemp("pggan")
    (root / "whole").mkdir()
    training_loop(root / "whole", run_config("pggan", TINY, STOPS[-1]), images, progress=False)
    ckpts = train_in_pieces("pggan", TINY, STOPS, root / "pieces", images)
    return root, ckpts


def test_growing_run_passes_every_resolution_and_leaves_loadable_checkpoints(pggan_runs, tmp_path):
    root, ckpts = pggan_runs
    rows = read_stats(root / "whole")
    assert [r["nimg"] for r in rows] == sorted({r["nimg"] for r in rows})
    assert {r["resolution"] for r in rows} == {4, 8, 16}
    assert sorted({r["phase"] for r in rows}) == [0, 1, 2, 3, 4]
    assert {r["batch"] for r in rows if r["resolution"] == 16} == {8}
    fading = [r for r in rows if r["phase"] in (1, 3)]
    assert fading and all(0.0 <= r["alpha"] < 1.0 for r in fading)
    assert all(r["alpha"] == 1.0 for r in rows if r["phase"] not in (1, 3))
    assert all(math.isfinite(r[k]) for r in rows for k in ("loss_D", "loss_G", "D_real", "D_fake"))
    expected = [(4, 1.0), (8, 0.5), (8, 1.0), (16, 0.5), (16, 1.0)]  # stage of each stop's last step
    for kimg, ckpt, (res, alpha) in zip(STOPS, ckpts, expected):
        nimg = round(kimg * 1000)
        assert ckpt["info"]["resolution"] == res
        assert ckpt["info"]["alpha"] == pytest.approx(PGGAN.schedule(TINY, nimg - TINY.batch(res)).alpha)
        for path in (root / "pieces" / f"ckpt-{nimg:06d}.pt",):
            Gl = load_generator(path)
            assert (Gl.resolution, Gl.model_name, Gl.info["nimg"]) == (res, "pggan", nimg)
            assert Gl.alpha == pytest.approx(ckpt["info"]["alpha"])
            assert 0.0 < Gl.alpha < 1.0 if alpha == 0.5 else Gl.alpha == 1.0
            assert Gl.generate(3, seed=1).shape == (3, res, res, 3)
    # The exported generator and the sampling CLI, saved in the middle of the 16 px fade-in.
    from gan.sample import main as sample_main
    mid = root / "pieces" / f"ckpt-{round(STOPS[3] * 1000):06d}.pt"
    assert sample_main(["--checkpoint", str(mid), "--n", "2", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("seed0000-*.png"))) == 2
    Gexp = load_generator(root / "whole" / "generator.pt")
    assert (Gexp.resolution, Gexp.alpha) == (16, 1.0)


def test_resume_mid_fade_continues_like_an_uninterrupted_run(pggan_runs):
    root, ckpts = pggan_runs
    mid_fade = ckpts[1]
    assert mid_fade["info"]["resolution"] == 8 and 0.0 < mid_fade["info"]["alpha"] < 1.0
    whole = ckpt_io.load(root / "whole" / "checkpoint.pt")
    # Same stages, losses and scores at every logging step after each resume...
    assert without_time(read_stats(root / "pieces")) == without_time(read_stats(root / "whole"))
    # ...and the same weights at the end.
    for key in ("G", "D", "G_ema"):
        assert whole[key].keys() == ckpts[-1][key].keys()
        for name, value in whole[key].items():
            assert torch.equal(value, ckpts[-1][key][name]), f"{key}.{name}"
    assert whole["opt"]["D"]["state"].keys() == ckpts[-1]["opt"]["D"]["state"].keys()


def test_registry_finds_every_model_after_a_direct_model_import():
    import subprocess
    import sys
    code = ("from gan.models.dcgan import DCGANConfig\n"
            "from gan.models import get_model, model_names\n"
            "assert get_model('pggan').name == 'pggan', model_names()\n"
            "assert model_names() == ['dcgan', 'pggan', 'pggan-seed', 'stylegan2'], model_names()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr


def test_a_bf16_step_trains_in_float32_weights_with_the_gradient_penalty_of_fp32():
    # Under bf16 autocast G's fakes are bfloat16 and the reals float32: the penalty mixes them in the
    # reals' dtype, and its value stays within bf16's rounding of the float32 one.
    from gan.loop import train_step
    from gan.models.pggan import gradient_penalty

    torch.manual_seed(0)
    G, D = PGGAN.build(TINY)
    stage = PGGAN.schedule(TINY, 10_000)  # the last stage: 16 px, stable
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    kw = {"resolution": stage.resolution, "alpha": stage.alpha}
    with torch.no_grad():
        fake = G(torch.randn(8, TINY.z_dim), **kw)
    eps = torch.rand(8, 1, 1, 1)
    gp32 = float(gradient_penalty(D, real, fake, eps, **kw).detach())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp16 = float(gradient_penalty(D, real, fake.bfloat16(), eps, **kw).detach())  # G's output dtype under autocast
    assert gp16 == pytest.approx(gp32, rel=0.05)
    opts = PGGAN.prepare_phase(G, D, TINY, stage)
    stats = train_step(PGGAN.make_loss(G, D, TINY), opts, real, stage, torch.Generator().manual_seed(1), "bf16")
    assert {"loss_D", "loss_G", "grad_penalty"} <= stats.keys()
    assert all(torch.isfinite(v).all() for v in stats.values())
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in [*G.parameters(), *D.parameters()])
