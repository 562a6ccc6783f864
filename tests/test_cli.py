"""The training command line end to end on a tiny made folder: the run folder it makes, the config it
writes, --resume and what it may change, flags refused before anything is written, and the
installed console script."""
import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from eval.testing import lesion_images
from gan.rundir import RunDir
from gan.train import main

TINY = ["--model", "dcgan", "--size", "32", "--batch", "16", "--set", "ngf=8", "--set", "ndf=8", "--set", "z_dim=8",
        "--log-kimg", "0.016", "--snapshot-kimg", "0.032", "--grid-kimg", "0.032", "--no-progress"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("lesions")
    for i, img in enumerate(lesion_images(24, 48, seed=3)):
        Image.fromarray(img).save(d / f"img{i:02d}.png")
    return d


def test_train_then_resume_through_the_cli(tmp_path, data, capsys):
    out = tmp_path / "runs"
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main([*TINY, "--data", str(data), "--out", str(out), "--kimg", "0.032", "--augment", *cache]) == 0
    (run_path,) = out.iterdir()
    assert run_path.name == f"00000-dcgan-{data.name}-32"
    run = RunDir(run_path)
    cfg = run.read_config()
    assert cfg.data.augment is True and cfg.data.num_images == 24 and cfg.data.layout == "folder"
    assert cfg.model_cfg.ngf == 8 and cfg.train.kimg == 0.032
    assert [r["nimg"] for r in run.read_stats()] == [16, 32]

    # Only the length, how it runs and where the data lie may change on resume.
    assert main(["--resume", str(run_path), "--lr", "0.1", "--augment"]) == 2
    assert "these flags cannot change it: --lr, --augment" in capsys.readouterr().err
    assert main(["--resume", str(run_path), "--kimg", "0.064", "--threads", "1", "--no-progress", *cache]) == 0
    assert [r["nimg"] for r in run.read_stats()] == [16, 32, 48, 64]
    resumed = run.load_checkpoint()
    assert resumed["nimg"] == 64 and resumed["config"].train.threads == 1
    assert run.read_config() == resumed["config"]  # config.json follows the resumed run (kimg 0.064)
    assert resumed["config"].data == cfg.data.__class__(**{**cfg.data.__dict__, "cache_dir": str(tmp_path / "cache")})


@pytest.mark.parametrize("flags, message", [
    (["--kimg", "nan"], "--kimg must be a positive number, got nan"),
    (["--kimg", "inf"], "--kimg must be a positive number, got inf"),
    (["--device", "tpu"], "--device tpu"),
    (["--batch", "16", "--model", "pggan"], "--batch does not apply to model pggan"),
    (["--set", "width=3"], "--set width=3: expected KEY=VALUE"),
])
def test_bad_flags_end_in_one_line_before_any_folder_exists(tmp_path, data, capsys, flags, message):
    out = tmp_path / "runs"
    assert main([*TINY[:2], "--data", str(data), "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


def test_the_console_script_is_installed_and_needs_no_data():
    exe = shutil.which("lesiongan-train")
    assert exe is not None, "pip install -e . installs the console scripts"
    res = subprocess.run([exe, "--model", "pggan", "--dry-run"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    cfg = json.loads(res.stdout[:res.stdout.index("\nG parameters")])
    assert cfg["model"] == "pggan" and cfg["data"]["path"] is None
    assert "usage: lesiongan-train" in subprocess.run([exe, "--help"], capture_output=True, text=True).stdout


def test_dry_run_prints_the_config_that_would_be_written(capsys):
    assert main(["--model", "dcgan", "--size", "32", "--augment", "--dry-run"]) == 0
    out = capsys.readouterr().out
    cfg = json.loads(out[:out.index("\nG parameters")])
    assert cfg["data"]["augment"] is True and cfg["data"]["size"] == 32 and "augment" not in cfg["train"]
    assert np.isclose(cfg["train"]["kimg"], 150.0)
