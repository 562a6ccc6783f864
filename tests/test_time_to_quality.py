"""bench/time_to_quality.py: the first scored snapshot at or below each target within the cap, read
from a run's metrics; the table's cells by hand; where the run trained, from its checkpoint; bad
input is one line and exit code 2; the two commands it prints are the two recipes it compares."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from gan.checkpoint import export_generator
from gan.config import DataConfig, RunConfig, TrainConfig
from gan.models import get_model
from gan.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "time_to_quality.py"
_spec = importlib.util.spec_from_file_location("time_to_quality", SCRIPT)
T = importlib.util.module_from_spec(_spec)
sys.modules["time_to_quality"] = T
_spec.loader.exec_module(T)

# FD derm every 10 k images, time_s 60 s per 10 k; ``scoring``: the seconds each snapshot took to score
CURVE = [(10, 48.0), (20, 9.0), (30, 3.4), (40, 3.6), (50, 1.6), (60, 1.49), (70, 1.2)]


def rows(curve=CURVE, scoring: float = 0.0):
    return [{"nimg": k * 1000, "time_s": 6.0 * k, "fd_derm": v, "seconds": scoring} for k, v in curve]


def make_run(path: Path, curve=CURVE, precision: str = "bf16", threads: int = 1) -> Path:
    cfg = RunConfig(model="dcgan", model_cfg=get_model("dcgan").Config(),
                    train=TrainConfig(kimg=480, precision=precision, threads=threads), data=DataConfig(size=64))
    run = RunDir(path)
    run.write_config(cfg)
    for r in rows(curve):
        run.append_metrics(r)
    return path


def test_first_reach_is_the_first_snapshot_at_or_below_the_target_within_the_cap():
    r = rows()
    assert T.first_reach(r, 3.5, 480_000)["nimg"] == 30_000  # 3.4; the later 3.6 does not undo it
    assert T.first_reach(r, 3.4, 480_000)["nimg"] == 30_000  # "at or below"
    assert T.first_reach(r, 1.5, 480_000)["nimg"] == 60_000
    assert T.first_reach(r, 1.5, 59_999) is None  # capped: "not reached"
    assert T.first_reach(list(reversed(r)), 3.5, 480_000)["nimg"] == 30_000  # order of the file does not matter
    assert T.first_reach([{"nimg": 10_000, "fd_derm": None}], 3.5, 480_000) is None


def test_the_table_gives_time_and_images_to_each_target_and_the_best_within_the_cap(tmp_path):
    make_run(tmp_path / "project")
    make_run(tmp_path / "example", curve=[(10, 60.0), (20, 5.0), (30, 3.0)], precision="fp32", threads=2)
    text = T.table([tmp_path / "project", tmp_path / "example"], [3.5, 1.5], cap_kimg=480)
    lines = text.splitlines()
    assert len(lines) == 4
    assert lines[2] == ("| project | unknown | bf16 | 1 | 3 min, 30 k img | 6 min, 60 k img | 1.20 (70) |")
    assert lines[3] == ("| example | unknown | fp32 | 2 | 3 min, 30 k img | not reached | 3.00 (30) |")
    capped = T.table([tmp_path / "project"], [1.5], cap_kimg=50).splitlines()[2]
    assert capped == "| project | unknown | bf16 | 1 | not reached | 1.60 (50) |"  # best within the cap only


def test_training_time_leaves_out_the_scoring_before_the_snapshot(tmp_path):
    r = rows(scoring=24.0)  # time_s holds every earlier snapshot's 24 s of scoring, not its own
    assert T.training_seconds(r, r[2]) == 180 - 2 * 24
    assert T.training_seconds(r, r[0]) == 60
    run = make_run(tmp_path / "scored")
    RunDir(run).write_metrics(rows(scoring=24.0))
    line = T.table([run], [3.5, 1.5], cap_kimg=480).splitlines()[2]
    assert line == "| scored | unknown | bf16 | 1 | 2 min, 30 k img | 4 min, 60 k img | 1.20 (70) |"  # 132 s, 240 s


def test_where_the_run_trained_comes_from_its_checkpoint(tmp_path):
    run = RunDir(make_run(tmp_path / "r"))
    run.file("checkpoint.pt").write_bytes(b"not a checkpoint")
    assert T.trained_on(run) == "unknown"  # unreadable weights: no guess
    cfg = run.read_config()
    G = get_model("dcgan").build_generator(cfg.model_cfg)
    export_generator({"model": "dcgan", "config": cfg, "G_ema": G.state_dict(),
                      "info": {"hardware": "Some CPU, 2 threads (CPU)", "nimg": 70_000}}, run.file("generator.pt"))
    assert T.trained_on(run) == "Some CPU, 2 threads (CPU)"


def test_a_folder_that_is_not_a_run_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(sys, "argv", ["time_to_quality.py", str(tmp_path / "empty")])
    assert T.main() == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "empty: not a run folder" in err


def test_bad_targets_name_the_flag(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["time_to_quality.py", str(make_run(tmp_path / "r")), "--targets", "3.5,x"])
    with pytest.raises(SystemExit) as e:
        T.main()
    assert e.value.code == 2 and "--targets" in capsys.readouterr().err


def test_the_commands_are_the_project_recipe_and_the_example_scored_alike():
    project, example = T.commands("DATA", "OUT", 480, threads=2)
    for c in (project, example):
        assert c.startswith("python -m gan.train ") and "--data DATA --kimg 480 --metrics fd_derm --metrics-kimg 10" in c
        assert c.count("--threads 2") == 1  # the same threads for both, not the recipe's own
    assert "--recipe checkpoints/dcgan" in project and "--precision auto" in project and "--out OUT/project" in project
    assert "--model dcgan" in example and "--precision fp32" in example and "--out OUT/example" in example


def test_the_machine_line_says_whether_bf16_is_native(monkeypatch):
    import gan.nets

    monkeypatch.setattr(gan.nets, "native_bf16", lambda device="cpu": None)
    assert "native bf16 no;" in T.machine_line(480)
    monkeypatch.setattr(gan.nets, "native_bf16", lambda device="cpu": "AVX512-BF16")
    assert "native bf16 AVX512-BF16; cap 480 k images" in T.machine_line(480)

