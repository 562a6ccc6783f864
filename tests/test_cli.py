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

pytestmark = pytest.mark.usefixtures("quick_bn")  # the command line, not the images: see conftest

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
    # config.json follows the resumed run (kimg 0.064), without this machine's paths
    assert run.read_config() == resumed["config"].portable(run_path).located(run_path)
    assert resumed["config"].data == cfg.data.__class__(**{**cfg.data.__dict__, "cache_dir": str(tmp_path / "cache"),
                                                           "path": str(data)})
    assert cfg.data.path is None and cfg.data.name == data.name and len(cfg.data.sha256) == 64
    assert str(tmp_path) not in run.file("config.json").read_text()


def test_a_run_folder_moved_with_its_data_resumes_and_other_images_are_named(tmp_path, data, capsys):
    project = tmp_path / "project"
    shutil.copytree(data, project / "data" / "lesions")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert main([*TINY, "--data", str(project / "data" / "lesions"), "--out", str(project / "runs"), "--kimg", "0.032",
                 *cache]) == 0
    (run_path,) = (project / "runs").iterdir()
    saved = json.loads((run_path / "config.json").read_text())["data"]
    assert saved["path"] == "../../data/lesions" and saved["name"] == "lesions" and saved["cache_dir"] is None
    moved = tmp_path / "moved"
    project.rename(moved)  # the checkpoint's absolute data path is gone; config.json's relative one holds
    run = RunDir(moved / "runs" / run_path.name)
    assert run.read_config().data.path == str(moved / "data" / "lesions")
    assert main(["--resume", str(run.path), "--kimg", "0.048", "--no-progress", *cache]) == 0
    assert run.load_checkpoint()["config"].data.path == str(moved / "data" / "lesions")
    capsys.readouterr()
    other = tmp_path / "other"  # --data relocates; other images are named, not refused
    other.mkdir()
    for i, img in enumerate(lesion_images(24, 48, seed=4)):
        Image.fromarray(img).save(other / f"img{i:02d}.png")
    assert main(["--resume", str(run.path), "--kimg", "0.064", "--data", str(other), "--no-progress", *cache]) == 0
    assert f"warning: {other}: not the images the run trained on so far (content sha256 " in capsys.readouterr().err
    assert run.read_config().data.sha256 == run.load_checkpoint()["config"].data.sha256 != saved["sha256"]


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
