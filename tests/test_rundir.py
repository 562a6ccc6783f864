"""The run folder's one owner: numbering, names, stats read back one row per step, grids, weights
preference, discovery, results, and the clean-up of temp files that killed writers left."""
import json
import os
import subprocess
import sys

import pytest

from gan.config import RunConfig
from gan.fileio import atomic_write_text, clean_stale_temps, temp_name, temp_owner
from gan.rundir import (FILES, RunDir, discover, find_weights, read_collection_results,
                        write_collection_results)


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_create_numbers_runs_after_the_highest_existing_one(tmp_path):
    (tmp_path / "00003-old").mkdir()
    (tmp_path / "notes").mkdir()
    a = RunDir.create(tmp_path, "dcgan", "isic2017", 64)
    b = RunDir.create(tmp_path, "pggan", "folder", 32)
    assert (a.name, b.name) == ("00004-dcgan-isic2017-64", "00005-pggan-folder-32")
    assert a.path.is_dir() and b.path.is_dir()


def test_create_refuses_an_out_path_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="--out .*f: is a file"):
        RunDir.create(tmp_path / "f", "dcgan", "x", 64)


def test_stats_are_read_back_one_row_per_step_the_last_write_winning(tmp_path):
    run = RunDir(tmp_path)
    for row in ({"nimg": 100, "loss_D": 1.0}, {"nimg": 200, "loss_D": 2.0}, {"nimg": 300, "loss_D": 3.0},
                {"nimg": 200, "loss_D": 2.5}, {"kimg": 0.4, "loss_D": 4.0}):
        run.append_stats(row)
    with open(run.file("stats.jsonl"), "a") as f:
        f.write('{"nimg": 500, "loss')  # a line still being written
    rows = run.read_stats()
    assert [(r["nimg"], r["loss_D"]) for r in rows] == [(100, 1.0), (200, 2.5), (300, 3.0), (400, 4.0)]


def test_truncate_stats_drops_the_lines_after_the_checkpoint(tmp_path):
    run = RunDir(tmp_path)
    for n in (100, 200, 300):
        run.append_stats({"nimg": n})
    with open(run.file("stats.jsonl"), "a") as f:
        f.write('{"nimg": 40')
    assert run.truncate_stats(200) == 2
    assert [json.loads(line)["nimg"] for line in run.file("stats.jsonl").read_text().splitlines()] == [100, 200]
    assert run.truncate_stats(200) == 0


def test_grids_weights_and_config_are_found_by_their_names(tmp_path):
    import numpy as np

    run = RunDir(tmp_path)
    assert run.weights() is None and run.list_grids() == [] and run.read_config() is None
    img = np.zeros((8, 8, 3), np.uint8)
    for n in (1000, 0, 250):
        run.write_grid(n, img)
    (tmp_path / "grids" / "notes.png").write_bytes(b"")
    assert [n for n, _ in run.list_grids()] == [0, 250, 1000]
    assert run.grid_path(250).name == "grid-000000250.png"
    run.file("checkpoint.pt").write_bytes(b"x")
    assert run.weights() == run.file("checkpoint.pt")
    run.file("generator.pt").write_bytes(b"x")
    assert run.weights() == run.file("generator.pt")  # the exported G_ema is preferred
    assert find_weights(tmp_path) == run.file("generator.pt")
    cfg = RunConfig.from_dict({"model": "dcgan", "model_cfg": {"resolution": 32}})
    run.write_config(cfg)
    assert run.read_config() == cfg


def test_a_legacy_shipped_folder_shows_its_config(tmp_path):
    (tmp_path / "training_options.json").write_text(json.dumps(
        {"model": "dcgan", "model_cfg": {"resolution": 32}, "train": {"augment": True}, "data": {"size": 32}}))
    cfg = RunDir(tmp_path).read_config()
    assert cfg.model == "dcgan" and cfg.data.augment is True
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="config.json: run config is not valid JSON"):
        RunDir(tmp_path).read_config()


def test_find_weights_names_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match="holds no generator.pt or checkpoint.pt"):
        find_weights(tmp_path)
    with pytest.raises(ValueError, match="no such file or folder"):
        find_weights(tmp_path / "nope.pt")


def test_discover_finds_a_run_folder_or_the_run_folders_in_a_folder(tmp_path):
    for name, f in (("b", "stats.jsonl"), ("a", "generator.pt"), ("c", "config.json")):
        (tmp_path / name).mkdir()
        (tmp_path / name / f).write_text("")
    (tmp_path / "empty").mkdir()
    assert [r.name for r in discover(tmp_path)] == ["a", "b"]  # a config alone: a start that came to nothing
    with RunDir(tmp_path / "c").lock():  # ...unless a writer is training from it now
        assert [r.name for r in discover(tmp_path)] == ["a", "b", "c"]
    assert discover(tmp_path / "a") == [RunDir(tmp_path / "a")]
    assert discover(tmp_path / "missing") == []


def test_results_round_trip_with_structured_unavailable_reasons(tmp_path):
    rows = [{"model": "m", "reference": "train", "unavailable": {"fid": "no weights"}}]
    write_collection_results(tmp_path, rows, {"n": 10}, "model\nm\n")
    doc = read_collection_results(tmp_path)
    assert doc["rows"] == rows and doc["n"] == 10 and doc["version"] == 2
    assert (tmp_path / "results.csv").read_text() == "model\nm\n"
    run = RunDir(tmp_path / "m")
    run.write_results({"train": {"x": 1}}, {"n": 10})
    assert run.read_results()["results"] == {"train": {"x": 1}}
    (tmp_path / "results.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="results.json: expected a JSON object"):
        read_collection_results(tmp_path)


def test_temp_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = dead_pid()
    stale = temp_name(tmp_path / "checkpoint.pt", dead, "k2j3k2j3")
    live = temp_name(tmp_path / "stats.jsonl", token="a1b2a1b2")
    nested = temp_name(tmp_path / "grids" / "grid-000000010.png", dead, "zzzzzzzz")
    foreign = [tmp_path / ".something.tmp", tmp_path / f".checkpoint.pt.{dead}.k2j3.tmp",  # not atomic_write names
               temp_name(tmp_path / "checkpoint.pt", dead, "k2j3k2j3", host="0123456789ab")]  # another namespace's
    nested.parent.mkdir()
    for p in (stale, live, nested, *foreign):
        p.write_bytes(b"x")
    assert temp_owner(stale) == dead and [temp_owner(p) for p in foreign] == [None] * 3
    run = RunDir(tmp_path).open_for_writing()
    assert not stale.exists() and not nested.exists() and live.exists() and all(p.exists() for p in foreign)
    assert clean_stale_temps(run.path) == []


def test_atomic_writes_name_their_temp_file_after_the_writer(tmp_path, monkeypatch):
    seen = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(os.path.basename(src))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    atomic_write_text(tmp_path / "a.json", "{}")
    assert temp_owner(seen[0]) == os.getpid() and seen[0].startswith(".a.json.")


def test_every_name_is_documented():
    assert set(FILES) == {"config.json", "stats.jsonl", "grids", "checkpoint.pt", "generator.pt",
                          "fingerprint.npz", "fingerprint-val.npz", "results.json", "MODEL_CARD.md",
                          "metrics.jsonl", "generator-best.pt", "discriminator.pt", "previous", "run.lock", "snapshots"}
    assert all(f.what and f.writer for f in FILES.values())
    documented = (RunDir.__module__ and __import__("gan.rundir").rundir.__doc__)
    assert all(f"``{name}" in documented for name in FILES)


def test_metrics_rows_dedupe_and_truncate_like_stats(tmp_path):
    run = RunDir(tmp_path)
    for nimg, fd in ((10_000, 9.0), (20_000, 7.0), (30_000, 6.0)):
        run.append_metrics({"nimg": nimg, "fd_derm": fd})
    assert run.truncate_metrics(20_000) == 1
    run.append_metrics({"nimg": 30_000, "fd_derm": 5.5})
    run.append_metrics({"nimg": 20_000, "fd_derm": 6.5})  # re-scored after a resume: the last write wins
    assert [(r["nimg"], r["fd_derm"]) for r in run.read_metrics()] == [(10_000, 9.0), (20_000, 6.5), (30_000, 5.5)]
    assert RunDir(tmp_path / "none").read_metrics() == []


def test_another_kinds_log_is_keyed_by_its_own_step(tmp_path):
    run = RunDir(tmp_path)  # the dermoscopy encoder's per-epoch stats
    for epoch, loss in ((1, 2.0), (2, 1.5), (3, 1.2)):
        run.append_log("encoder-stats.jsonl", {"epoch": epoch, "loss": loss})
    assert run.truncate_log("encoder-stats.jsonl", 2, key="epoch") == 1
    run.append_log("encoder-stats.jsonl", {"epoch": 2, "loss": 1.4})  # repeated after a kill: the last write wins
    assert [(r["epoch"], r["loss"]) for r in run.read_log("encoder-stats.jsonl", key="epoch")] == [(1, 2.0), (2, 1.4)]
    assert run.read_log("missing.jsonl", key="epoch") == [] and run.truncate_log("missing.jsonl", 1, key="epoch") == 0


def test_results_sections_survive_a_rescore(tmp_path):
    run = RunDir(tmp_path)
    run.update_results("per_class", {"train/melanoma": {"x": 1}})
    run.write_results({"train": {"y": 2}}, {"n": 5, "old_setting": 1})
    run.update_results("class_consistency", {"fake": {"melanoma": 0.7}})
    run.update_results("a_new_tool", [1])  # a section no other module knows of is kept all the same
    doc = run.read_results()
    assert doc["results"] == {"train": {"y": 2}} and doc["per_class"] == {"train/melanoma": {"x": 1}}
    assert doc["class_consistency"]["fake"]["melanoma"] == 0.7 and doc["n"] == 5
    run.write_results({"train": {"y": 3}}, {"n": 6}, owns=("old_setting",))
    doc = run.read_results()
    # the envelope, the writer's settings and scores, then every section in the order it was first set
    assert list(doc) == ["format", "version", "n", "model", "results", "per_class", "class_consistency", "a_new_tool"]
    assert doc["results"] == {"train": {"y": 3}} and doc["a_new_tool"] == [1]
    run.update_results("a_new_tool", None)
    assert "a_new_tool" not in run.read_results()
    for name in ("results", "model", "format", "version", "Utility", "", "per class"):
        with pytest.raises(KeyError, match="not a results.json section"):
            run.update_results(name, {})


def test_the_run_lock_records_its_holder_and_keeps_other_processes_out(tmp_path):
    import socket

    run = RunDir(tmp_path / "run")
    try_lock = ("import fcntl, sys\nf = open(sys.argv[1], 'a+')\n"
                "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(3)\n")
    assert run.holder() is None and not run.writer_alive()
    with run.lock() as lock:
        rec = run.holder()
        assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname() and run.writer_alive()
        assert rec["started"] == rec["heartbeat"] and json.loads(run.file("run.lock").read_text())["pid"] == os.getpid()
        with run.lock():  # the same process again: re-entrant
            pass
        assert run.writer_alive()
        assert subprocess.run([sys.executable, "-c", try_lock, str(run.file("run.lock"))]).returncode == 3
        lock.record["heartbeat"] = "2000-01-01T00:00:00+00:00"
        run.append_stats({"nimg": 16})  # a writer's line refreshes the heartbeat
        assert json.loads(run.file("run.lock").read_text())["heartbeat"] > "2000"
    assert not run.writer_alive() and not run.file("run.lock").exists()  # the lock file goes with its holder
