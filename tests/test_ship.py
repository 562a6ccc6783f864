"""tools/ship.py: the best snapshot is what ships (and results.json says which and why), the metrics
scored during training come along, and the version a model replaces is kept in previous/."""
from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import pytest
import torch

from gan import checkpoint as ckpt_io
from gan.config import RunConfig, TrainConfig
from gan.data.dataset import DataConfig
from gan.loop import training_loop
from gan.models import get_model
from gan.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def ship(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("ship_tool", REPO / "tools" / "ship.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ckpts = tmp_path / "checkpoints"
    (ckpts / "fingerprints").mkdir(parents=True)
    for target in mod.FINGERPRINTS.values():
        os.symlink(REPO / "checkpoints" / target, ckpts / target)
    monkeypatch.setattr(mod, "CKPTS", ckpts)
    return mod


def _run(path: Path, seed: int) -> RunDir:
    from eval.testing import lesion_images

    images = torch.from_numpy(lesion_images(32, 32, seed=0)).permute(0, 3, 1, 2).contiguous()
    cfg = RunConfig(model="dcgan", model_cfg=get_model("dcgan").Config(resolution=32, ngf=8, ndf=8, batch=16),
                    train=TrainConfig(kimg=0.128, log_kimg=0.032, snapshot_kimg=0.064, grid_kimg=0.064, grid_size=4,
                                      seed=seed, threads=1),
                    data=DataConfig(size=32))
    run = RunDir(path)
    run.path.mkdir(parents=True)
    run.write_config(cfg)
    training_loop(run, cfg, images, progress=False)
    return run


def _keep_best(run: RunDir, nimg: int, value: float) -> None:
    """What --keep-best leaves: generator-best.pt (an earlier snapshot: here perturbed weights) and rows."""
    ckpt = run.load_checkpoint()
    g = {k: v + 0.01 if v.is_floating_point() else v for k, v in ckpt["G_ema"].items()}
    ckpt_io.export_generator({**ckpt, "G_ema": g, "info": {"nimg": nimg, "best_metric": "fd_derm",
                                                          "best_value": value, "selected_on": "fp, 1000, seed 0"}},
                             run.file("generator-best.pt"))
    run.append_metrics({"nimg": nimg, "fd_derm": value, "best": True})
    run.append_metrics({"nimg": 128, "fd_derm": value + 1.5})


def test_the_best_snapshot_ships_and_results_say_which(tmp_path, ship):
    run = _run(tmp_path / "run", seed=0)
    _keep_best(run, 64, 3.25)
    ship.ship(run.path, "m", 2)
    out = RunDir(ship.CKPTS / "m")
    shipped = ckpt_io.load(out.file("generator.pt"), kinds=(ckpt_io.KIND_GENERATOR,))
    best = ckpt_io.load(run.file("generator-best.pt"), kinds=(ckpt_io.KIND_GENERATOR,))
    assert all(torch.equal(shipped["G_ema"][k], best["G_ema"][k]) for k in best["G_ema"])
    assert out.read_results()["best_snapshot"] == {"shipped": "best", "nimg": 64, "final_nimg": 128,
                                                   "metric": "fd_derm", "value": 3.25,
                                                   "selected_on": "fp, 1000, seed 0", "final_value": 4.75}
    assert [r["nimg"] for r in out.read_metrics()] == [64, 128]
    assert len(out.list_grids()) == 2 and out.fingerprint("train").resolve() == \
        (REPO / "checkpoints" / ship.FINGERPRINTS["train"]).resolve()
    # --snapshot final ships the last weights whatever was kept
    ship.ship(run.path, "m", 2, snapshot="final")
    final = ckpt_io.load(out.file("generator.pt"), kinds=(ckpt_io.KIND_GENERATOR,))
    assert all(torch.equal(final["G_ema"][k], run.load_checkpoint()["G_ema"][k]) for k in final["G_ema"])
    assert out.read_results()["best_snapshot"] == {"shipped": "final", "nimg": 128, "final_nimg": 128}


def test_the_replaced_version_is_kept_once_in_previous(tmp_path, ship):
    old, new = _run(tmp_path / "old", seed=0), _run(tmp_path / "new", seed=1)
    ship.ship(old.path, "m", 2)
    out = RunDir(ship.CKPTS / "m")
    out.update_results("per_class", {"x": 1})
    assert out.previous() is None
    ship.ship(old.path, "m", 2)  # the same run again: nothing to keep
    assert out.previous() is None
    ship.ship(new.path, "m", 2)
    prev = out.previous()
    assert prev is not None and prev.read_config().train.seed == 0 and out.read_config().train.seed == 1
    assert prev.read_stats() == old.read_stats() and prev.read_results()["per_class"] == {"x": 1}
    assert len(prev.list_grids()) == 2 and prev.weights() is None
    assert set(out.read_results()) - {"format", "version", "model", "results"} == {"best_snapshot"}  # no stale scores
    ship.ship(_run(tmp_path / "newer", seed=2).path, "m", 2)  # the first replaced version stays
    assert out.previous().read_config().train.seed == 0
    assert dataclasses.asdict(out.read_config().train)["seed"] == 2


def test_the_card_compares_with_the_previous_version_and_names_the_augmentation(tmp_path, ship):
    old, new = _run(tmp_path / "old", seed=0), _run(tmp_path / "new", seed=1)
    ship.ship(old.path, "m", 2)
    out = RunDir(ship.CKPTS / "m")

    def scores(fd, p, r):
        return {"train": {"fd_derm": fd, "precision_derm": p, "recall_derm": r,
                          "spread": {"fd_derm": {"mean": fd, "sd": 0.1}}}}

    out.write_results(scores(4.0, 0.90, 0.70), {})
    ship.ship(new.path, "m", 2)
    out.write_results(scores(3.0, 0.91, 0.72), {})
    text = "\n".join(ship.previous_lines(out, out.read_results()))
    assert "| previous | 4.00 ± 0.1000 | 0.9000 | 0.7000 |" in text and "**met**: FD derm 4.00 -> 3.00" in text
    out.write_results(scores(3.0, 0.91, 0.60), {})
    text = "\n".join(ship.previous_lines(out, out.read_results()))
    assert "**not met**: FD derm 4.00 -> 3.00; recall fell (0.700 -> 0.600)." in text and "precision fell" not in text
    assert "Why this version ships" not in text
    # the release decision, kept in results.json through a rescore, printed beside the table; "" removes it
    ship.set_note("m", "  colours   closer.\n")
    out.write_results(scores(3.0, 0.91, 0.60), {})
    assert out.read_results()["ship_note"] == "colours closer."
    assert "Why this version ships: colours closer." in "\n".join(ship.previous_lines(out, out.read_results()))
    ship.set_note("m", "")
    assert "ship_note" not in out.read_results()
    cfg = out.read_config()
    assert "none" in ship.augmentation_line(cfg, [])
    ada = cfg.replace(train=dataclasses.replace(cfg.train, ada=True, diffaug=("translation",)))
    line = ship.augmentation_line(ada, [{"aug_p": 0.25}, {"aug_p": None}])
    assert "DiffAugment (translation" in line and "p = 0.250 at the end" in line
    cmd = ship.retrain_command(ada, 150)
    assert "--diffaug translation --ada" in cmd and "--kimg 150" in cmd


def test_a_note_needs_a_shipped_model_that_replaced_one(tmp_path, ship):
    with pytest.raises(SystemExit, match="--note nope: no shipped model"):
        ship.set_note("nope", "x")
    ship.ship(_run(tmp_path / "old", seed=0).path, "m", 2)
    with pytest.raises(SystemExit, match="--note m: it replaced no previous version"):
        ship.set_note("m", "x")
    assert "ship_note" not in RunDir(ship.CKPTS / "m").read_results()


def test_card_line_tells_a_best_snapshot_from_a_run_stopped_early(ship):
    best = {"shipped": "best", "nimg": 100032, "final_nimg": 150016}
    line = ship.images_seen_line(100.032, 150, best)
    assert "best snapshot of a run trained to 150.0 k" in line and "stopped early" not in line
    assert "stopped early" in ship.images_seen_line(100.032, 150, None)
    assert "stopped early" in ship.images_seen_line(100.032, 150, {"shipped": "final", "nimg": 100032,
                                                                   "final_nimg": 100032})
    assert ship.images_seen_line(150.016, 150, {"shipped": "best", "nimg": 150016, "final_nimg": 150016}) \
        == "- Images seen: **150.0 k** of the 150 k planned."


def _broken_successor(old: RunDir, dest: Path, checkpoint: bytes | None = None) -> RunDir:
    """A copy of ``old`` as a different run (another seed) whose checkpoint.pt is ``checkpoint``."""
    import shutil

    shutil.copytree(old.path, dest)
    run = RunDir(dest)
    cfg = run.read_config()
    run.write_config(cfg.replace(train=dataclasses.replace(cfg.train, seed=cfg.train.seed + 1)))
    run.file("checkpoint.pt").write_bytes(checkpoint if checkpoint is not None else os.urandom(4096))
    return run


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_unreadable_checkpoint_is_refused_before_the_shipped_model_is_touched(tmp_path, ship, capsys, monkeypatch):
    import pickle
    import sys

    def ship_main(*argv: str) -> int:
        monkeypatch.setattr(sys, "argv", ["tools/ship.py", *argv])
        return ship.main()

    monkeypatch.chdir(tmp_path)  # where the pickled code would create its file
    old = _run(tmp_path / "old", seed=0)
    assert ship_main(str(old.path), "--name", "m", "--grids", "2") == 0
    out = RunDir(ship.CKPTS / "m")
    out.update_results("utility", {"auc": 0.7})  # the scores a failed ship must not lose
    saved = _tree(ship.CKPTS)
    capsys.readouterr()

    class Code:
        def __reduce__(self):
            return (exec, ("open('ran', 'w')",))

    torch.save({"kind": "lesiongan-training-checkpoint", "x": Code()}, tmp_path / "code.pt", pickle_module=pickle)
    for name, damage, words in (("damaged", None, ["not a readable PyTorch checkpoint"]),
                                ("code", (tmp_path / "code.pt").read_bytes(), ["refused to load, for safety"])):
        bad = _broken_successor(old, tmp_path / name, damage)
        code = ship_main(str(bad.path), "--name", "m", "--snapshot", "final")
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and str(bad.file("checkpoint.pt")) in lines[0], err
        assert all(w in lines[0] for w in words), lines[0]
        assert _tree(ship.CKPTS) == saved and out.previous() is None
    assert not Path("ran").exists()


def test_previous_replaced_keeps_the_version_replaced_now_and_nests_the_older(tmp_path, ship):
    runs = [_run(tmp_path / f"r{seed}", seed=seed) for seed in range(3)]
    ship.ship(runs[0].path, "m", 2)
    out = RunDir(ship.CKPTS / "m")
    out.update_results("utility", {"seed": 0})
    ship.ship(runs[1].path, "m", 2, previous="replaced")
    assert out.previous().read_config().train.seed == 0 and out.previous().read_results()["utility"] == {"seed": 0}
    out.update_results("utility", {"seed": 1})
    ship.ship(runs[2].path, "m", 2, previous="replaced")
    prev = out.previous()
    assert prev.read_config().train.seed == 1 and prev.read_results()["utility"] == {"seed": 1}
    older = RunDir(prev.path / "previous")
    assert older.read_config().train.seed == 0 and older.read_results()["utility"] == {"seed": 0}
    assert len(older.list_grids()) == 2 and older.weights() is None
    assert sorted(p.name for p in out.path.iterdir() if p.name.startswith("previous")) == ["previous"]
    assert out.read_config().train.seed == 2 and "utility" not in out.read_results()
    with pytest.raises(ValueError, match="--previous newest"):
        ship.keep_previous(out, runs[0], "newest")


def test_the_card_names_the_last_scored_snapshot_when_the_run_stopped_between_scorings(ship):
    rec = {"shipped": "best", "nimg": 220032, "final_nimg": 246080, "metric": "fd_derm", "value": 0.684,
           "selected_on": "fp, 1000, seed 0"}
    metrics = [{"nimg": 220032, "fd_derm": 0.684}, {"nimg": 240000, "fd_derm": 1.09}]
    text = "\n".join(ship.snapshot_lines({"best_snapshot": rec}, metrics))
    assert "at 220.0 k images (fd_derm 0.684 on fp, 1000, seed 0); the run stopped at 246.1 k, after its last " \
           "scored snapshot, at 240.0 k, which scored 1.090." in text and "nan" not in text
    text = "\n".join(ship.snapshot_lines({"best_snapshot": {**rec, "final_value": 1.5}}, metrics))
    assert "; the last snapshot, at 246.1 k, scored 1.500." in text
    text = "\n".join(ship.snapshot_lines({"best_snapshot": rec}, []))
    assert "; the run stopped at 246.1 k. The selection" in text
