"""The one training loop on tiny generated data: it learns, it is deterministic, it resumes exactly,
it stops cleanly on a signal and safely on a NaN."""
import json
import os
import signal

import pytest
import torch

from gan import checkpoint as ckpt_io
from gan import load_generator
from gan.config import TrainConfig, to_dict
from gan.loop import TrainingDiverged, training_loop, write_config
from gan.models.dcgan import BCELoss, DCGANConfig


def run_config(kimg, seed=0, batch=16, width=16, **train):
    """A tiny DCGAN (32 px, ``width`` feature maps) so that the loop's behaviour is cheap to test."""
    train = {"log_kimg": 0.16, "snapshot_kimg": 0.32, "grid_kimg": 0.32, "grid_size": 16, **train}
    mcfg = DCGANConfig(resolution=32, batch=batch, ngf=width, ndf=width)
    return {"format": 1, "model": "dcgan", "model_cfg": to_dict(mcfg),
            "train": to_dict(TrainConfig(kimg=kimg, seed=seed, **train)), "data": {"size": 32}}


def train(tmp_path, name, cfg, images, **kw):
    run_dir = tmp_path / name
    run_dir.mkdir()
    write_config(run_dir, cfg)
    return training_loop(run_dir, cfg, images, progress=False, **kw)


def read_stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_short_run_learns_the_data(tmp_path, discs):
    images = discs(256, 32)
    cfg = run_config(1.6, batch=32, width=64, log_kimg=0.32)
    res = train(tmp_path, "run", cfg, images)
    assert res.status == "done" and res.nimg == 1600
    rows = read_stats(res.run_dir)
    assert [r["nimg"] for r in rows] == [320, 640, 960, 1280, 1600]
    for key in ("loss_D", "loss_G", "D_real", "D_fake", "time_s", "resolution", "alpha", "phase", "batch", "lr"):
        assert key in rows[-1]
    # D tells real from fake far better than chance...
    assert rows[-1]["D_real"] - rows[-1]["D_fake"] > 0.3
    assert rows[-1]["loss_D"] < rows[0]["loss_D"]
    # ...and G's colours moved toward the data's (an untrained G gives mid-grey, 128).
    data_mean = images.float().mean((0, 2, 3))
    gen = torch.from_numpy(load_generator(res.run_dir).generate(256, seed=1)).float().mean((0, 1, 2))
    assert (gen - data_mean).norm() < 0.6 * (torch.full((3,), 128.0) - data_mean).norm()
    # The run folder holds what the contract says.
    names = {p.name for p in res.run_dir.iterdir()}
    assert {"config.json", "stats.jsonl", "checkpoint.pt", "generator.pt", "grids"} <= names
    grids = sorted(p.name for p in (res.run_dir / "grids").iterdir())
    assert grids[0] == "grid-000000000.png" and grids[-1] == "grid-000001600.png"
    ckpt = ckpt_io.load(res.run_dir / "checkpoint.pt")
    assert ckpt["nimg"] == 1600 and ckpt["config"] == cfg
    assert {"G", "D", "G_ema", "opt", "rng", "data_epoch", "data_pos"} <= set(ckpt)
    assert set(ckpt["opt"]) == {"G", "D"}


def test_same_seed_same_weights_other_seed_other_weights(tmp_path, discs):
    images = discs(64, 32)
    a = train(tmp_path, "a", run_config(0.32), images)
    b = train(tmp_path, "b", run_config(0.32), images)
    c = train(tmp_path, "c", run_config(0.32, seed=1), images)
    ga, gb, gc = (ckpt_io.load(r.run_dir / "checkpoint.pt")["G"] for r in (a, b, c))
    assert_same_state(ga, gb)
    assert not torch.equal(ga["main.0.weight"], gc["main.0.weight"])


@pytest.mark.parametrize("augment", [False, True])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, discs, augment):
    from gan.data import augment as augment_fn
    images = discs(40, 32)  # 40 is not a multiple of the batch: the resume lands mid-epoch
    full = train(tmp_path, "full", run_config(0.64, augment=augment), images, augment_fn=augment_fn)
    half = train(tmp_path, "half", run_config(0.32, augment=augment), images, augment_fn=augment_fn)
    resume = ckpt_io.load(half.run_dir / "checkpoint.pt")
    cfg = resume["config"]
    cfg["train"]["kimg"] = 0.64
    res = training_loop(half.run_dir, cfg, images, augment_fn=augment_fn, resume=resume, progress=False)
    assert res.nimg == 640
    a, b = (ckpt_io.load(r / "checkpoint.pt") for r in (full.run_dir, half.run_dir))
    for key in ("G", "D", "G_ema"):
        assert_same_state(a[key], b[key])
    assert (a["data_epoch"], a["data_pos"]) == (b["data_epoch"], b["data_pos"])
    assert torch.equal(a["opt"]["G"]["state"][0]["exp_avg"], b["opt"]["G"]["state"][0]["exp_avg"])
    # stats continue where they stopped: no gap, no repeat
    assert [r["nimg"] for r in read_stats(half.run_dir)] == [r["nimg"] for r in read_stats(full.run_dir)]


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, discs):
    calls = {"n": 0}

    def send_sigterm_on_third_step(x, rng):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return x

    res = train(tmp_path, "run", run_config(10, augment=True), discs(64, 32), augment_fn=send_sigterm_on_third_step)
    assert res.status == "interrupted" and res.nimg == 3 * 16
    assert ckpt_io.load(res.run_dir / "checkpoint.pt")["nimg"] == 48
    assert not (res.run_dir / "generator.pt").exists()  # only a finished run exports
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, discs, monkeypatch):
    original = BCELoss.accumulate_gradients
    calls = {"n": 0}

    def poisoned(self, phase, real, stage, rng):
        stats = original(self, phase, real, stage, rng)
        calls["n"] += 1
        if calls["n"] > 2 * 30:  # step 31 (480 images) goes wrong; the snapshot at 320 is good
            stats["loss_D"] = torch.tensor(float("nan"))
        return stats

    monkeypatch.setattr(BCELoss, "accumulate_gradients", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite loss at 480 images"):
        train(tmp_path, "run", run_config(1.0), discs(64, 32))
    ckpt = ckpt_io.load(tmp_path / "run" / "checkpoint.pt")
    assert ckpt["nimg"] == 320
    assert all(torch.isfinite(v).all() for v in ckpt["G"].values())


def test_data_of_the_wrong_size_is_refused(tmp_path, discs):
    with pytest.raises(ValueError, match="data are 16 px but the model trains at 32 px"):
        train(tmp_path, "run", run_config(0.1), discs(8, 16))
