"""The one training loop on tiny generated data: it learns, it is deterministic, it resumes exactly,
it stops cleanly on a signal and safely on a NaN."""
import dataclasses
import json
import os
import signal

import pytest
import torch

from gan import checkpoint as ckpt_io
from gan import load_generator
from gan.config import RunConfig, TrainConfig
from gan.data import DataConfig
from gan.fileio import temp_name
from gan.loop import TrainingDiverged, TrainingHook, training_loop
from gan.models import get_model
from gan.models.dcgan import DCGANConfig
from gan.rundir import FILES, RunDir


def run_config(kimg, seed=0, batch=16, width=16, data=None, **train):
    """A tiny DCGAN (32 px, ``width`` feature maps) so that the loop's behaviour is cheap to test."""
    train = {"log_kimg": 0.16, "snapshot_kimg": 0.32, "grid_kimg": 0.32, "grid_size": 16, **train}
    mcfg = DCGANConfig(resolution=32, batch=batch, ngf=width, ndf=width)
    return RunConfig(model="dcgan", model_cfg=mcfg, train=TrainConfig(kimg=kimg, seed=seed, **train),
                     data=DataConfig(size=32, **(data or {})))


def train(tmp_path, name, cfg, images, **kw):
    run = RunDir(tmp_path / name).open_for_writing()
    run.write_config(cfg)
    return training_loop(run, cfg, images, progress=False, **kw)


def read_stats(run_dir):
    return [json.loads(line) for line in (run_dir / "stats.jsonl").read_text().splitlines()]


def with_kimg(cfg: RunConfig, kimg: float) -> RunConfig:
    return cfg.replace(train=dataclasses.replace(cfg.train, kimg=kimg))


def assert_same_state(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_short_run_learns_the_data(tmp_path, discs):
    # G_ema's BatchNorm statistics re-estimated as in a real run (gan.loop.BN_RECALIBRATION), at 0, 800, 1600
    images = discs(256, 32)
    cfg = run_config(1.6, batch=32, width=64, log_kimg=0.32, snapshot_kimg=0.8, grid_kimg=0.8)
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
    # The run folder holds what the contract says, and gan.rundir names every file in it.
    names = {p.name for p in res.run_dir.iterdir()}
    assert {"config.json", "stats.jsonl", "checkpoint.pt", "generator.pt", "grids"} <= names
    assert names <= set(FILES)
    assert RunDir(res.run_dir).read_config() == cfg
    grids = sorted(p.name for p in (res.run_dir / "grids").iterdir())
    assert grids[0] == "grid-000000000.png" and grids[-1] == "grid-000001600.png"
    ckpt = ckpt_io.load(res.run_dir / "checkpoint.pt")
    assert ckpt["nimg"] == 1600 and ckpt["config"] == cfg
    assert {"G", "D", "G_ema", "opt", "rng", "data_epoch", "data_pos"} <= set(ckpt)
    assert set(ckpt["opt"]) == {"G", "D"}


@pytest.mark.usefixtures("quick_bn")
def test_same_seed_same_weights_other_seed_other_weights(tmp_path, discs):
    images = discs(64, 32)
    a = train(tmp_path, "a", run_config(0.32), images)
    b = train(tmp_path, "b", run_config(0.32), images)
    c = train(tmp_path, "c", run_config(0.32, seed=1), images)
    ga, gb, gc = (ckpt_io.load(r.run_dir / "checkpoint.pt")["G"] for r in (a, b, c))
    assert_same_state(ga, gb)
    assert not torch.equal(ga["main.0.weight"], gc["main.0.weight"])


@pytest.mark.usefixtures("quick_bn")
@pytest.mark.parametrize("augment", [False, True])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, discs, augment):
    images = discs(40, 32)  # 40 is not a multiple of the batch: the resume lands mid-epoch
    full = train(tmp_path, "full", run_config(0.64, data={"augment": augment}), images)
    half = train(tmp_path, "half", run_config(0.32, data={"augment": augment}), images)
    # A run killed after its checkpoint logged lines it will log again, and left a temp file.
    with open(half.run_dir / "stats.jsonl", "a") as f:
        f.write(json.dumps({"nimg": 480, "loss_D": 99.0}) + "\n" + '{"nimg": 64')
    dead = _dead_pid()
    stale = temp_name(half.run_dir / "checkpoint.pt", dead, "abcd1234")
    stale.write_bytes(b"half a checkpoint")
    resume = ckpt_io.load(half.run_dir / "checkpoint.pt")
    res = training_loop(half.run_dir, with_kimg(resume["config"], 0.64), images, resume=resume, progress=False)
    assert not stale.exists()
    assert res.nimg == 640
    a, b = (ckpt_io.load(r / "checkpoint.pt") for r in (full.run_dir, half.run_dir))
    for key in ("G", "D", "G_ema"):
        assert_same_state(a[key], b[key])
    assert (a["data_epoch"], a["data_pos"]) == (b["data_epoch"], b["data_pos"])
    assert torch.equal(a["opt"]["G"]["state"][0]["exp_avg"], b["opt"]["G"]["state"][0]["exp_avg"])
    # stats continue where they stopped: no gap, no repeat
    assert [r["nimg"] for r in read_stats(half.run_dir)] == [r["nimg"] for r in read_stats(full.run_dir)]


class SigtermOnStep(TrainingHook):
    def __init__(self, step):
        self.step, self.calls = step, 0

    def on_step(self, nimg, stage, stats):
        self.calls += 1
        if self.calls == self.step - 1:  # seen at the end of the next step, which then finishes
            os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.usefixtures("quick_bn")
def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, discs):
    res = train(tmp_path, "run", run_config(10), discs(64, 32), hooks=[SigtermOnStep(3)])
    assert res.status == "interrupted" and res.nimg == 3 * 16
    assert ckpt_io.load(res.run_dir / "checkpoint.pt")["nimg"] == 48
    assert not (res.run_dir / "generator.pt").exists()  # only a finished run exports
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


@pytest.mark.usefixtures("quick_bn")
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, discs, monkeypatch):
    spec, mcfg = get_model("dcgan"), run_config(1.0).model_cfg
    BCELoss = type(spec.make_loss(*spec.build(mcfg), mcfg))
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


def _dead_pid() -> int:
    """The PID of a process that has exited (a stand-in for a writer killed mid-write)."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


class Recorder(TrainingHook):
    def __init__(self):
        self.snapshots, self.steps = [], []

    def on_step(self, nimg, stage, stats):
        self.steps.append((nimg, sorted(stats)))

    def on_snapshot(self, G_ema, run, nimg, stage):
        assert not G_ema.training and isinstance(run, RunDir)
        assert run.file("checkpoint.pt").is_file()  # the snapshot is on disk when the hook runs
        with torch.no_grad():
            x = G_ema(torch.randn(2, 100), resolution=stage.resolution, alpha=stage.alpha)
        self.snapshots.append((nimg, run.name, tuple(x.shape)))


@pytest.mark.usefixtures("quick_bn")
def test_hooks_see_every_step_and_every_snapshot(tmp_path, discs):
    hook = Recorder()
    res = train(tmp_path, "run", run_config(0.8, snapshot_kimg=0.32), discs(32, 32), hooks=[hook])
    assert [n for n, _, _ in hook.snapshots] == [320, 640, 800]  # every snapshot_kimg, and the end
    assert {s for _, _, s in hook.snapshots} == {(2, 3, 32, 32)} and hook.snapshots[0][1] == "run"
    assert [n for n, _ in hook.steps] == list(range(16, 801, 16))
    assert hook.steps[0][1] == ["D_fake", "D_fake_after", "D_real", "D_real_sign", "loss_D", "loss_G"]
    assert res.status == "done"


@pytest.mark.usefixtures("quick_bn")
def test_the_loop_leaves_threads_and_the_global_rng_as_it_found_them(tmp_path, discs):
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    threads = torch.get_num_threads()
    train(tmp_path, "run", run_config(0.16, threads=1 if threads > 1 else 2), discs(16, 32))
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.usefixtures("quick_bn")
def test_the_data_config_drives_augmentation(tmp_path, discs):
    images = discs(32, 32)
    plain = train(tmp_path, "plain", run_config(0.16), images)
    off = train(tmp_path, "off", run_config(0.16, data={"augment": True, "xflip": False, "yflip": False,
                                                         "rot90": False}), images)
    flips = train(tmp_path, "flips", run_config(0.16, data={"augment": True, "rot90": False}), images)
    g = [ckpt_io.load(r.run_dir / "checkpoint.pt")["G"] for r in (plain, off, flips)]
    assert_same_state(g[0], g[1])  # every orientation switched off: the identity
    assert not torch.equal(g[0]["main.0.weight"], g[2]["main.0.weight"])
    assert ckpt_io.load(flips.run_dir / "checkpoint.pt")["config"].data.rot90 is False
