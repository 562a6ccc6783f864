"""Differentiable augmentation for D (DiffAugment, ADA) and metrics during training: the ops are
differentiable and seeded, ADA's p follows its heuristic and rises on a made over-fitting case, runs
with them resume bit-exactly, and the metrics hook scores, keeps the best snapshot and leaves training
as it was."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gan.config import RunConfig, TrainConfig
from gan.daug import (DIFFAUG_OPS, AdaState, AugmentedD, ada_augment, diff_augment, orient, parse_ada_ops,
                      parse_policy, translate_int)
from gan.data.dataset import DataConfig
from gan.loop import training_loop
from gan.models import get_model
from gan.rng import BatchRNG
from gan.rundir import RunDir


def _rng(seed: int = 0) -> BatchRNG:
    return BatchRNG(torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("op", DIFFAUG_OPS)
def test_each_diffaugment_op_is_differentiable_and_seeded(op):
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, (op,), _rng(1))
    assert y.shape == x.shape
    (y * torch.randn_like(y)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, (op,), _rng(1)), y)  # same generator state, same images
    assert not torch.equal(diff_augment(x, (op,), _rng(2)), y)


def test_translation_is_an_integer_shift_with_zero_fill_and_cutout_zeroes_a_square():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float).view(2, 1, 5, 5) + 1
    y = translate_int(x, torch.tensor([1, 0]), torch.tensor([0, -2]))
    assert torch.equal(y[0, 0, 1:], x[0, 0, :-1]) and (y[0, 0, 0] == 0).all()
    assert torch.equal(y[1, 0, :, :3], x[1, 0, :, 2:]) and (y[1, 0, :, 3:] == 0).all()
    z = diff_augment(torch.ones(200, 3, 16, 16), ("cutout",), _rng(0))
    zeros = (z[:, 0] == 0).sum(dim=(1, 2))
    assert int(zeros.max()) == 64  # at most an 8x8 square (half the side)...
    assert torch.all((z == 0).all(dim=1) == (z[:, :1] == 0).squeeze(1))  # ...in every channel alike
    assert 0.15 < float((z == 0).float().mean()) < 0.25  # 1/4 less what falls off the border


def test_ada_at_p0_is_the_identity_and_its_draws_do_not_depend_on_p():
    x = torch.randn(4, 3, 8, 8)
    g0, g1 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert ada_augment(x, 0.0, BatchRNG(g0)) is x
    ada_augment(x, 0.7, BatchRNG(g1))
    assert torch.equal(g0.get_state(), g1.get_state())  # the stream stays in step whatever p is


def test_ada_at_p1_changes_every_image_and_is_differentiable():
    x = torch.randn(16, 3, 16, 16, requires_grad=True)
    y = ada_augment(x, 1.0, _rng(0))
    assert all(not torch.allclose(y[i], x[i]) for i in range(16))
    y.square().sum().backward()
    assert x.grad.abs().sum() > 0


def test_ada_ops_pick_the_groups_and_keep_the_stream():
    # A flat-coloured image: blit and geometry (reflection padding, bilinear) leave it exactly as it
    # is; the colour ops (brightness first) change it.
    flat = torch.ones(32, 3, 16, 16) * torch.tensor([0.6, -0.2, 0.1]).view(1, 3, 1, 1)
    assert torch.allclose(ada_augment(flat, 1.0, _rng(0), "bg"), flat, atol=1e-6)
    assert not torch.allclose(ada_augment(flat, 1.0, _rng(0)), flat, atol=1e-2)
    # Colour ops alone are per-pixel maps: they commute with a flip. With geometry on they do not.
    x = torch.randn(8, 3, 16, 16)
    assert torch.allclose(ada_augment(x.flip(3), 1.0, _rng(1), "c"), ada_augment(x, 1.0, _rng(1), "c").flip(3),
                          atol=1e-6)
    assert not torch.allclose(ada_augment(x.flip(3), 1.0, _rng(1)), ada_augment(x, 1.0, _rng(1)).flip(3), atol=1e-3)
    # "bgc" through ops is the default pipeline, and the draws do not depend on ops.
    assert torch.equal(ada_augment(x, 0.5, _rng(2), "bgc"), ada_augment(x, 0.5, _rng(2)))
    g0, g1 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ada_augment(x, 0.5, BatchRNG(g0), "b"), ada_augment(x, 0.5, BatchRNG(g1))
    assert torch.equal(g0.get_state(), g1.get_state())
    assert parse_ada_ops("gb") == "bg" and TrainConfig(ada_ops="cb").ada_ops == "bc"
    for bad in ("", "bgx", "bb"):
        with pytest.raises(ValueError, match="--ada-ops"):
            parse_ada_ops(bad)


def test_orient_is_flip_then_quarter_turns():
    x = torch.randn(8, 3, 6, 6)
    flip, k = torch.tensor([0, 1] * 4), torch.arange(8) % 4
    ref = torch.stack([torch.rot90(x[i].flip(2) if flip[i] else x[i], int(k[i]), dims=(1, 2)) for i in range(8)])
    assert torch.equal(orient(x, flip, k), ref)


def test_ada_p_follows_the_heuristic():
    ada = AdaState(target=0.6, interval=4, ada_kimg=1.0)  # p moves 0 -> 1 over 1,000 images
    for _ in range(4):
        ada.accumulate(1.0, 50)  # D certain on every real image: r_t = 1 > 0.6
    assert ada.rt == 1.0 and ada.p == pytest.approx(0.2)  # 4 steps x 50 images / 1,000
    for _ in range(3):
        ada.accumulate(-1.0, 50)
    assert ada.p == pytest.approx(0.2)  # only every 4th step updates
    ada.accumulate(-1.0, 50)
    assert ada.rt == -1.0 and ada.p == pytest.approx(0.0)
    for _ in range(8):
        ada.accumulate(-1.0, 50)
    assert ada.p == 0.0  # clamped
    restored = AdaState(target=0.6, interval=4, ada_kimg=1.0)
    restored.load_state_dict(json.loads(json.dumps(ada.state_dict())))
    assert restored == ada


def test_augmented_d_has_ds_parameters_and_augments_what_it_sees():
    D = torch.nn.Conv2d(3, 1, 3)
    wrapped = AugmentedD(D, _rng(0), ("translation",))
    assert [id(p) for p in wrapped.parameters()] == [id(p) for p in D.parameters()]
    x = torch.randn(4, 3, 8, 8)
    assert torch.equal(wrapped(x), D(diff_augment(x, ("translation",), _rng(0))))


def test_policy_parsing_names_the_bad_op():
    assert parse_policy("color, cutout") == ("color", "cutout")
    with pytest.raises(ValueError, match="unknown op.*blur"):
        parse_policy("color,blur")
    with pytest.raises(ValueError, match="keep-best fd_derm: not among --metrics"):
        TrainConfig(metrics=("recall_derm",), keep_best="fd_derm")


# -- in the loop -----------------------------------------------------------------------------------

def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    from eval.testing import lesion_images

    return torch.from_numpy(lesion_images(n, size, seed=seed)).permute(0, 3, 1, 2).contiguous()


def _config(size: int = 32, **train) -> RunConfig:
    spec = get_model("dcgan")
    base = dict(kimg=0.256, log_kimg=0.032, snapshot_kimg=0.128, grid_kimg=1.0, grid_size=4, ema_kimg=0.05,
                threads=1)
    return RunConfig(model="dcgan", model_cfg=spec.Config(resolution=size, ngf=8, ndf=8, batch=16),
                     train=TrainConfig(**{**base, **train}), data=DataConfig(size=size))


def test_ada_p_rises_when_d_overfits_a_tiny_set(tmp_path):
    # 16 images, each seen every step: D soon tells them apart (r_t -> 1), and p must climb.
    cfg = _config(ada=True, ada_kimg=0.5, kimg=0.384)
    training_loop(tmp_path, cfg, _images(16, 32), progress=False)
    rows = RunDir(tmp_path).read_stats()
    assert rows[0]["aug_p"] < rows[-1]["aug_p"] and rows[-1]["aug_p"] > 0.2
    assert max(r["ada_rt"] for r in rows if r["ada_rt"] is not None) > 0.6
    assert all(-1 <= r["D_real_sign"] <= 1 for r in rows)


def test_a_run_with_diffaug_and_ada_resumes_bit_exactly(tmp_path):
    from gan import checkpoint as ckpt_io

    images = _images(16, 32)  # few images: D overfits, so ADA's p is moving at the resume point
    cfg = _config(ada=True, ada_kimg=0.2, ada_target=0.1, diffaug=("color", "translation", "cutout"))
    whole = training_loop(tmp_path / "whole", cfg, images, progress=False)
    half = RunDir(tmp_path / "half")
    training_loop(half, cfg.replace(train=cfg.train.__class__(**{**cfg.train.__dict__, "kimg": 0.128})), images,
                  progress=False)
    resume = ckpt_io.load(half.file("checkpoint.pt"), kinds=(ckpt_io.KIND_TRAIN,))
    assert resume["ada"]["p"] > 0 and "daug" in resume["rng"]
    training_loop(half, cfg, images, resume=resume, progress=False)
    a = ckpt_io.load(RunDir(whole.run_dir).file("checkpoint.pt"), kinds=(ckpt_io.KIND_TRAIN,))
    b = ckpt_io.load(half.file("checkpoint.pt"), kinds=(ckpt_io.KIND_TRAIN,))
    assert all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
    assert a["ada"] == b["ada"]
    assert [r["aug_p"] for r in RunDir(whole.run_dir).read_stats()] == [r["aug_p"] for r in half.read_stats()]


def test_diffaug_changes_training_and_a_run_without_it_is_unchanged(tmp_path):
    images = _images(32, 32)
    plain = training_loop(tmp_path / "a", _config(kimg=0.064), images, progress=False)
    again = training_loop(tmp_path / "b", _config(kimg=0.064), images, progress=False)
    aug = training_loop(tmp_path / "c", _config(kimg=0.064, diffaug=("color",)), images, progress=False)
    from gan import checkpoint as ckpt_io

    g = [ckpt_io.load(RunDir(r.run_dir).file("checkpoint.pt"))["G"] for r in (plain, again, aug)]
    assert all(torch.equal(g[0][k], g[1][k]) for k in g[0])
    assert not all(torch.equal(g[0][k], g[2][k]) for k in g[0])


# -- metrics during training --------------------------------------------------------------------

def test_metrics_hook_scores_keeps_the_best_and_leaves_training_alone(tmp_path):
    from gan import checkpoint as ckpt_io
    from gan.generator import load_generator
    from eval.training_metrics import MetricsHook, reference_fingerprint

    images = _images(64, 64)
    cfg = _config(64, kimg=0.384, metrics=("fd_derm", "recall_derm"), metrics_kimg=0.2, metrics_n=32,
                  keep_best="fd_derm")
    run = RunDir(tmp_path / "with")
    ref = reference_fingerprint(cfg, run, images, progress=False)
    assert run.fingerprint("train") is not None and ref.derm_features.shape == (64, 128)
    training_loop(run, cfg, images, progress=False, hooks=[MetricsHook(cfg, ref, progress=False)])
    rows = run.read_metrics()
    # Snapshots every 128 images; scored at the first one past each 200-image multiple, and the last.
    assert [r["nimg"] for r in rows] == [256, 384]
    assert all(r["reference"] == "fingerprint.npz" and r["n"] == 32 and r["fd_derm"] > 0 for r in rows)
    best = min(rows, key=lambda r: r["fd_derm"])
    G = load_generator(run.file("generator-best.pt"))
    assert G.info["nimg"] == best["nimg"] and G.info["best_value"] == pytest.approx(best["fd_derm"])
    # The hook samples from its own generator and never touches the networks: same weights without it.
    plain = RunDir(tmp_path / "without")
    training_loop(plain, cfg.replace(train=cfg.train.__class__(**{**cfg.train.__dict__, "metrics": (),
                                                                   "keep_best": ""})),
                  images, progress=False)
    a, b = (ckpt_io.load(r.file("checkpoint.pt"))["G_ema"] for r in (run, plain))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_train_cli_takes_the_flags_and_refuses_bad_ones(tmp_path, capsys):
    from gan.train import main

    assert main(["--model", "dcgan", "--diffaug", "color,translation", "--ada", "--metrics", "fd_derm,recall_derm",
                 "--keep-best", "fd_derm", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out.split("\nG parameters")[0])
    assert cfg["train"]["diffaug"] == ["color", "translation"] and cfg["train"]["ada"] is True
    assert cfg["train"]["metrics"] == ["fd_derm", "recall_derm"] and cfg["train"]["keep_best"] == "fd_derm"
    assert RunConfig.from_dict(cfg).train.diffaug == ("color", "translation")
    assert cfg["train"]["ada_ops"] == "bgc"
    assert main(["--model", "dcgan", "--ada", "--ada-ops", "gb", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out.split("\nG parameters")[0])["train"]["ada_ops"] == "bg"
    assert main(["--model", "dcgan", "--ada", "--ada-ops", "bgk", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--ada-ops" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        main(["--model", "dcgan", "--metrics", "fid_typo", "--dry-run"])
    assert "unknown metric(s) fid_typo" in capsys.readouterr().err
    assert main(["--model", "dcgan", "--keep-best", "fd_derm", "--dry-run"]) == 2
    assert "--keep-best fd_derm needs --metrics" in capsys.readouterr().err


def test_train_finds_the_metrics_provider_by_its_entry_point_and_says_when_there_is_none(monkeypatch, capsys):
    import importlib.metadata

    from gan import hooks
    from gan.train import main

    monkeypatch.setattr(hooks, "_REGISTERED", {})
    assert hooks.provider(hooks.METRICS, "--metrics").__name__ == "eval.training_metrics"  # from pyproject.toml
    monkeypatch.setattr(hooks, "_REGISTERED", {})
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [])
    with pytest.raises(SystemExit):
        main(["--model", "dcgan", "--metrics", "fd_derm", "--dry-run"])
    err = capsys.readouterr().err
    assert hooks.GROUP in err and "Traceback" not in err


def test_old_configs_and_checkpoints_without_the_fields_still_load():
    # A config written before these fields existed (the previous shipped dcgan's, kept in previous/).
    d = json.loads(_config(64).to_json())
    new = ("diffaug", "ada", "ada_target", "ada_kimg", "ada_interval", "ada_ops", "metrics", "metrics_kimg", "metrics_n",
           "metrics_ref", "keep_best")
    d["train"] = {k: v for k, v in d["train"].items() if k not in new}
    cfg = RunConfig.from_dict(d)
    assert cfg.train.diffaug == () and cfg.train.ada is False and cfg.train.metrics == ()
    assert np.isclose(cfg.train.ada_target, 0.6) and cfg.train.keep_best == "" and cfg.train.ada_ops == "bgc"
    prev = RunConfig.from_json(open("checkpoints/dcgan/previous/config.json").read())
    assert prev.train.ada is False and prev.train.diffaug == ()

