"""Faults a user's machine produces, run as a user runs the commands: each ends in exit code 2 (or
0 with a report, or 130 for Ctrl-C), one line on stderr naming the file or flag, no traceback,
nothing saved before changed and no temp file left.

The entry points run as subprocesses where that is what is being tested (temp files of a killed
writer, a real Ctrl-C, the installed modules end to end); the other cases call ``main([...])`` in
process, which is the same code without the ~2 s of importing torch. CI runs as root, which
ignores file permissions: unwritable paths are paths under a regular file, or an injected error.
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from eval.fingerprint import main as fingerprint_main
from eval.run import main as eval_main
from gan.export import main as export_main
from gan.fileio import temp_name
from gan.sample import main as sample_main
from gan.train import main as train_main
from test_cli import TINY as CLI_TINY
from test_cli import data  # noqa: F401 - the made image folder, a fixture

TINY = [*CLI_TINY, "--threads", "1"]


# -- helpers ---------------------------------------------------------------------------------


def dead_pid() -> int:
    """The PID of a process that has finished (a killed writer's, as far as its temp files go)."""
    res = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(res.stdout)


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under ``folders`` with a hash of its bytes."""
    return {str(p): hashlib.sha1(p.read_bytes()).hexdigest()
            for f in folders for p in sorted(Path(f).rglob("*")) if p.is_file()}


def temp_files(*folders: Path) -> list[Path]:
    return [p for f in folders for p in Path(f).rglob(".*.tmp")]


def one_line(err: str, *names: str) -> str:
    """The single stderr line, checked to name each of ``names`` and carry no traceback."""
    assert "Traceback" not in err and "weights_only" not in err, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


def run_cli(module: str, *args: str, code: str | None = None) -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` (or ``python -c CODE``) with one torch thread."""
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", module, *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


def save_variant(run: Path, dest: Path, name: str, change) -> Path:
    """A copy of ``run``'s file ``name`` in ``dest`` after ``change(ckpt_dict)``; returns its path."""
    dest.mkdir(parents=True, exist_ok=True)
    ckpt = torch.load(run / name, weights_only=True)
    change(ckpt)
    torch.save(ckpt, dest / name)
    return dest / name


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory, data):
    """A finished tiny run folder (checkpoint.pt at 32 images, generator.pt); read-only for tests."""
    root = tmp_path_factory.mktemp("runs")
    cache = tmp_path_factory.mktemp("cache")
    assert train_main([*TINY, "--data", str(data), "--out", str(root), "--kimg", "0.032",
                       "--cache-dir", str(cache)]) == 0
    (path,) = root.iterdir()
    return path


@pytest.fixture
def run_copy(run, tmp_path):
    dest = tmp_path / run.name
    shutil.copytree(run, dest)
    return dest


# -- run folders: temp files of a killed writer, a full disk ---------------------------------------


def test_resume_removes_a_killed_writers_temp_files_and_keeps_a_live_ones(run_copy, data, tmp_path):
    pid = dead_pid()
    stale = [temp_name(run_copy / "checkpoint.pt", pid, "k1ll3d00"),
             temp_name(run_copy / "grids" / "grid-000000032.png", pid)]
    live = temp_name(run_copy / "checkpoint.pt", token="alive000")  # this test process: a writer still at work
    for p in (*stale, live):
        p.write_bytes(b"\0" * 1000)
    res = run_cli("gan.train", "--resume", str(run_copy), "--kimg", "0.048", "--no-progress", "--threads", "1",
                  "--cache-dir", str(tmp_path / "cache"))
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr and res.stdout.startswith("done: 48 images")
    assert not any(p.exists() for p in stale) and live.exists()
    live.unlink()
    assert temp_files(run_copy) == []
    assert torch.load(run_copy / "checkpoint.pt", weights_only=True)["nimg"] == 48


def test_sample_and_fingerprint_outputs_lose_dead_writers_temp_files(run, tmp_path, capsys):
    out = tmp_path / "samples"
    out.mkdir()
    stale = temp_name(out / "seed0000-00000.png", dead_pid())
    stale.write_bytes(b"half a png")
    assert sample_main(["--checkpoint", str(run), "--n", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["seed0000-00000.png", "seed0000-00001.png"]
    capsys.readouterr()

    fp_dir = tmp_path / "fp"
    fp_dir.mkdir()
    stale = temp_name(fp_dir / "ref.npz", dead_pid())
    stale.write_bytes(b"half an npz")
    # The output is prepared before the data are read: missing data still clean up the folder.
    assert fingerprint_main(["--data", str(tmp_path / "no-such-data"), "--out", str(fp_dir / "ref.npz")]) == 2
    one_line(capsys.readouterr().err, "no-such-data")
    assert not stale.exists()


@pytest.mark.parametrize("fault", ["torch", "enospc"])
def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_checkpoint(run_copy, tmp_path, monkeypatch,
                                                                             capsys, fault):
    before = (run_copy / "checkpoint.pt").read_bytes()
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        f.write(b"\0" * 4096)  # part of the file made it to disk
        if fault == "torch":  # what torch's zip writer says when the disk fills up
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 4096 vs 4032")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    code = train_main(["--resume", str(run_copy), "--kimg", "0.064", "--no-progress", "--threads", "1",
                       "--cache-dir", str(tmp_path / "cache")])
    monkeypatch.setattr(torch, "save", real_save)
    assert code == 2
    err = capsys.readouterr().err  # the data summary and the run folder, then the error
    assert "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error")]
    assert str(run_copy / "checkpoint.pt") in line and "intact" in line
    assert ("disk" in line) if fault == "torch" else ("No space left" in line)
    assert (run_copy / "checkpoint.pt").read_bytes() == before
    assert temp_files(run_copy) == []


# -- output paths that cannot be written: one line, before any work -------------------------------


def test_unusable_output_paths_are_refused_before_any_work(run, data, tmp_path):
    """As subprocesses: --out a file, under a file, a folder where a file is wanted."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    saved = snapshot(run, tmp_path)
    cases = [
        ("gan.train", [*TINY, "--data", str(data), "--out", str(a_file)], [str(a_file), "--out", "not a folder"]),
        ("gan.sample", ["--checkpoint", str(run), "--out", str(a_file / "samples")], ["--out", "regular file"]),
        ("eval.fingerprint", ["--data", str(data), "--out", str(a_file / "ref.npz")], ["--out", "regular file"]),
        ("gan.export", [str(run), "--out", str(tmp_path)], ["--out", "is a folder"]),
    ]
    for module, args, names in cases:
        res = run_cli(module, *args)
        assert res.returncode == 2, (module, res.stderr)
        one_line(res.stderr, *names)
    assert snapshot(run, tmp_path) == saved and temp_files(run, tmp_path) == []


def test_out_under_a_file_and_read_only_folders_in_process(run, data, tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert train_main([*TINY, "--data", str(data), "--out", str(a_file / "runs")]) == 2
    one_line(capsys.readouterr().err, "--out", str(a_file), "regular file")
    assert export_main([str(run), "--out", str(a_file / "g.pt")]) == 2
    one_line(capsys.readouterr().err, "--out", "regular file")

    # A read-only mount or a folder of another user (root ignores permissions: inject the answer).
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: Path(p) != locked and real_access(p, mode, **kw))
    assert sample_main(["--checkpoint", str(run), "--out", str(locked / "samples")]) == 2
    one_line(capsys.readouterr().err, "--out", str(locked), "not writable")
    assert fingerprint_main(["--data", str(data), "--out", str(locked / "ref.npz")]) == 2
    one_line(capsys.readouterr().err, "--out", str(locked))
    assert train_main([*TINY, "--data", str(data), "--out", str(locked)]) == 2
    one_line(capsys.readouterr().err, "--out", str(locked))
    assert list(locked.iterdir()) == [] and a_file.read_text() == "keep me"


# -- --resume from checkpoints that do not fit themselves ------------------------------------------


def _swap_opts(c):
    c["opt"]["G"], c["opt"]["D"] = c["opt"]["D"], c["opt"]["G"]


def _wider_config(c):
    cfg = json.loads(c["config"])
    cfg["model_cfg"]["ngf"] = 16
    c["config"] = json.dumps(cfg)


@pytest.mark.parametrize("change, names", [
    (_wider_config, ["G_ema", "does not fit", "dcgan"]),
    (lambda c: c.pop("nimg"), ["missing", "nimg"]),
    (lambda c: c.pop("opt"), ["missing", "opt"]),
    (lambda c: c["rng"].pop("aug"), ["missing", "rng.aug"]),
    (lambda c: c.pop("G"), ["missing", "G"]),
    (_swap_opts, ["optimizer G", "does not fit"]),
    (lambda c: c["rng"].__setitem__("torch", torch.zeros(3, dtype=torch.uint8)), ["rng.torch"]),
], ids=["config-vs-weights", "no-nimg", "no-opt", "no-rng-aug", "no-G", "optimizers-swapped", "bad-rng"])
def test_resume_from_a_checkpoint_that_does_not_fit_itself(run, tmp_path, capsys, change, names):
    bad = tmp_path / "bad-run"
    path = save_variant(run, bad, "checkpoint.pt", change)
    shutil.copy(run / "config.json", bad / "config.json")
    saved = snapshot(bad)
    # No --data needed: the checkpoint is checked before any image is decoded.
    assert train_main(["--resume", str(bad), "--no-progress", "--kimg", "1"]) == 2
    one_line(capsys.readouterr().err, str(path), *names)
    assert snapshot(bad) == saved


# -- generator files checked for internal consistency ----------------------------------------------


def _info(**changes):
    def change(c):
        c["info"] = json.dumps({**json.loads(c["info"]), **changes})
    return change


def _nan(c):
    name = next(k for k, v in c["G_ema"].items() if v.is_floating_point())
    c["G_ema"][name] = torch.full_like(c["G_ema"][name], float("nan"))


@pytest.mark.parametrize("change, names", [
    (_info(resolution=64), ["64 px", "inconsistent"]),
    (_info(alpha=3.0), ["alpha 3"]),
    (_nan, ["NaN or infinite", "refused"]),
    (lambda c: c.__setitem__("config", "{not json"), ["run config is unusable"]),
    (_wider_config, ["does not match its model config", "size mismatch"]),
], ids=["resolution", "alpha", "nan", "config-not-json", "config-vs-weights"])
def test_inconsistent_generator_files_are_refused_before_any_output(run, tmp_path, capsys, change, names):
    path = save_variant(run, tmp_path / "gen", "generator.pt", change)
    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(path), "--out", str(out)]) == 2
    one_line(capsys.readouterr().err, str(path), *names)
    assert not out.exists()


def test_inconsistent_and_nan_generators_as_a_user_runs_them(run, tmp_path):
    path = save_variant(run, tmp_path / "gen", "generator.pt", _nan)
    out = tmp_path / "samples"
    res = run_cli("gan.sample", "--checkpoint", str(path), "--out", str(out))
    assert res.returncode == 2
    one_line(res.stderr, str(path), "NaN")
    assert not out.exists()


# -- load errors: what the file is not, refused for safety, never "load it unsafely" ----------------


class _Code:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create a file when unpickled


def test_code_random_bytes_and_raw_pickles_are_refused_without_torchs_advice(tmp_path, capsys):
    marker = tmp_path / "ran"
    files = {"code.pt": ["refused to load, for safety", "open"],
             "random.pt": ["not a readable PyTorch checkpoint", "for safety"],
             "raw.pkl": ["not a readable PyTorch checkpoint", "for safety"]}
    torch.save({"kind": "lesiongan-generator", "payload": _Code(str(marker))}, tmp_path / "code.pt",
               pickle_module=pickle)
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps({"G_ema": {}}, protocol=4))
    for name, names in files.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a raw pickle made torch warn about its protocol
            assert sample_main(["--checkpoint", str(tmp_path / name), "--out", str(tmp_path / "o")]) == 2
        one_line(capsys.readouterr().err, name, *names)
    res = run_cli("gan.export", str(tmp_path / "code.pt"), "--out", str(tmp_path / "g.pt"))
    assert res.returncode == 2
    one_line(res.stderr, "code.pt", "refused")
    assert not marker.exists() and not (tmp_path / "o").exists() and not (tmp_path / "g.pt").exists()


# -- flags checked before the run folder exists ------------------------------------------------------


@pytest.mark.parametrize("flags, names", [
    (["--lr", "-1"], ["lr=-1"]),
    (["--lr", "nan"], ["lr=nan"]),
    (["--device", "cuda:99"], ["--device cuda:99"]),
    (["--kimg", "inf", "--dry-run"], ["--kimg", "inf"]),
    (["--device", "tpu", "--dry-run"], ["--device tpu"]),
])
def test_train_flags_are_refused_before_the_run_folder_exists(data, tmp_path, capsys, flags, names):
    out = tmp_path / "runs"
    assert train_main([*TINY[:2], "--data", str(data), "--out", str(out), *flags]) == 2
    one_line(capsys.readouterr().err, *names)
    assert not out.exists()


@pytest.mark.parametrize("flags, names", [
    (["--batch", "0"], ["--batch"]),
    (["--n", "0"], ["--n"]),
    (["--device", "cuda:99"], ["--device cuda:99"]),
    (["--device", "tpu"], ["--device tpu"]),
    (["--n", "100000"], ["--n 100000", "MB", "--yes"]),
])
def test_sample_flags_are_refused_before_any_image(run, tmp_path, capsys, flags, names):
    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(run), "--out", str(out), *flags]) == 2
    one_line(capsys.readouterr().err, *names)
    assert not out.exists()


# -- Ctrl-C during start-up -------------------------------------------------------------------------


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(run, data, tmp_path):
    """A real SIGINT while gan.train decodes the data, as Ctrl-C in a terminal gives it. The child first
    puts back Python's own SIGINT handler: a test run started in the background by a non-interactive
    shell (``bash .ci/run &``) inherits SIGINT ignored, and the signal would then never arrive (this
    test hung that way). ``raise_signal`` delivers it in the main thread."""
    out = tmp_path / "runs"
    code = ("import signal, sys, time; import gan.train as t; "
            "signal.signal(signal.SIGINT, signal.default_int_handler); "
            "t._load_data = lambda *a, **k: signal.raise_signal(signal.SIGINT) or time.sleep(120); "
            f"sys.exit(t.main({[*TINY, '--data', str(data), '--out', str(out)]!r}))")
    res = run_cli("", code=code)
    assert res.returncode == 130, res.stderr
    one_line(res.stderr, "interrupted")
    assert not out.exists()


@pytest.mark.parametrize("main, target, argv", [
    (sample_main, "gan.sample.load_generator", ["--checkpoint", "x", "--out", "o"]),
    (export_main, "gan.checkpoint.load", ["x.pt", "--out", "g.pt"]),
    (fingerprint_main, "eval.fingerprint.make_fingerprint", ["--data", "d", "--out", "f.npz"]),
    (eval_main, "eval.run.evaluate", ["--real", "a", "--fake", "b"]),
    (train_main, "gan.train._load_data", ["--data", "d", "--out", "runs"]),
], ids=["sample", "export", "fingerprint", "eval", "train"])
def test_ctrl_c_in_every_entry_point(tmp_path, monkeypatch, capsys, main, target, argv):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(target, interrupt)
    assert main(argv) == 130
    one_line(capsys.readouterr().err, "interrupted")
    assert list(tmp_path.iterdir()) == []
