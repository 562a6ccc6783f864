"""Hardening of the commands that write data sets, ship models and hold run folders: nothing a command
did not write is ever deleted, nothing is written outside its output folder, caps come before any
allocation, an interrupted command can be rerun, and two writers never share a run folder.

Each case runs the command as a user does (``main([...])`` in process, or a subprocess where the
process itself is what is tested) and checks the exit code, the one stderr line naming the flag or
file, that nothing saved before changed and that no temp file is left.
"""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import warnings
from contextlib import contextmanager

import pytest
import torch
from PIL import Image

from eval.fingerprint import main as fingerprint_main
from gan.data.cache import open_folder as open_cache_folder
from gan.export import main as export_main
from gan.data.cli import main as data_main
from gan.rundir import RunDir
from gan.sample import main as sample_main
from gan.synthesize import main as synth_main
from gan.train import main as train_main
from test_conditional import conditional_file  # noqa: F401 - a tiny conditional generator file, a fixture
from test_faults import TINY, dead_pid, one_line, run, run_copy, snapshot, temp_files  # noqa: F401 - fixtures
from test_cli import data  # noqa: F401 - the made image folder, a fixture


def synth(ckpt, out, *flags: str) -> int:
    return synth_main(["--checkpoint", str(ckpt), "--out", str(out), "--quiet", *flags])


MEL2 = ("--per-class", "melanoma=2,nevus=1")


# -- gan.synthesize --overwrite deletes only what it can prove it wrote ----------------------------


def test_overwrite_refuses_a_folder_with_a_foreign_manifest(tmp_path, conditional_file, capsys):
    app = tmp_path / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text(json.dumps({"name": "My app", "start_url": "/", "icons": []}))
    (app / "src" / "index.js").write_text("console.log('hi')")
    saved = snapshot(tmp_path)
    assert synth(conditional_file, app, *MEL2, "--layout", "imagefolder", "--overwrite") == 2
    one_line(capsys.readouterr().err, "--out", "manifest.json", "not a set written by gan.synthesize")
    assert snapshot(tmp_path) == saved and temp_files(tmp_path) == []
    # A manifest in the set's format but without a run id (hand-made, or an older writer's) is no proof either.
    (app / "manifest.json").write_text(json.dumps({"format": "lesiongan-synthetic-set", "version": 1,
                                                   "files": [{"file": "src/index.js"}]}))
    saved = snapshot(tmp_path)
    assert synth(conditional_file, app, *MEL2, "--overwrite") == 2
    one_line(capsys.readouterr().err, "--out", "run id")
    assert snapshot(tmp_path) == saved


def test_overwrite_deletes_only_the_files_its_manifest_lists(tmp_path, conditional_file, capsys):
    out = tmp_path / "syn"
    assert synth(conditional_file, out, *MEL2, "--layout", "imagefolder") == 0
    first = json.loads((out / "manifest.json").read_text())
    assert first["format"] == "lesiongan-synthetic-set" and first["complete"] is True
    assert len(first["run_id"]) == 32
    (out / "notes.txt").write_text("mine")  # a user's file beside the set
    (out / "melanoma" / "my-crop.png").write_bytes(b"mine too")
    assert synth(conditional_file, out, "--per-class", "nevus=2", "--layout", "imagefolder", "--overwrite") == 0
    capsys.readouterr()
    assert (out / "notes.txt").read_text() == "mine" and (out / "melanoma" / "my-crop.png").read_bytes() == b"mine too"
    assert sorted(p.name for p in (out / "melanoma").iterdir()) == ["my-crop.png"]
    second = json.loads((out / "manifest.json").read_text())
    assert second["run_id"] != first["run_id"] and [f["file"] for f in second["files"]] == \
        ["nevus/SYN_0000001.png", "nevus/SYN_0000002.png"]
    # A file the new set would replace, that the old manifest does not list: refused, nothing deleted.
    (out / "nevus" / "SYN_0000003.png").write_bytes(b"a user's file under a set's name")
    saved = snapshot(tmp_path)
    assert synth(conditional_file, out, "--per-class", "nevus=3", "--layout", "imagefolder", "--overwrite") == 2
    one_line(capsys.readouterr().err, "--out", "SYN_0000003.png")
    assert snapshot(tmp_path) == saved


# -- temp-file clean-up removes only this project's temp files of dead writers on this host -----------


def test_clean_up_never_removes_files_that_only_look_like_temp_files(tmp_path, conditional_file, capsys):
    dead = dead_pid()
    names = [".x.123.y.tmp", ".budget.2024.xlsx.tmp", f".x.{dead}.y.tmp", f".budget.{dead}.xlsx.tmp",
             f".thesis.{dead}.backup.tmp",
             # a writer in another PID namespace or on another host (a container sharing the volume):
             # its PID says nothing about processes here
             f".checkpoint.pt.lesiongan-tmp-0123456789ab-{dead}-k1ll3d00.tmp"]
    folders = [tmp_path / name for name in ("samples", "fingerprint", "export", "cache", "run")]
    for folder in folders:
        folder.mkdir()
        for name in names:
            (folder / name).write_text(f"a user's {name}")
    assert sample_main(["--checkpoint", str(conditional_file), "--n", "1", "--out", str(folders[0])]) == 0
    assert fingerprint_main(["--data", str(tmp_path / "none"), "--out", str(folders[1] / "ref.npz")]) == 2
    assert export_main([str(conditional_file), "--out", str(folders[2] / "g.pt")]) == 2  # a generator: refused
    capsys.readouterr()
    open_cache_folder(folders[3])
    RunDir(folders[4]).open_for_writing()
    for folder in folders:
        for name in names:
            assert (folder / name).read_text() == f"a user's {name}", folder / name


# -- class names never lead outside the output folder -----------------------------------------------


def generator_with_classes(path, classes) -> "os.PathLike":
    """An untrained conditional DCGAN file (32 px, tiny) whose config names ``classes``."""
    from gan.checkpoint import export_generator
    from gan.config import RunConfig
    from gan.data import DataConfig
    from gan.models import get_model

    spec = get_model("dcgan")
    c = spec.Config(class_names=tuple(classes), resolution=32, ngf=4, ndf=4, z_dim=8)
    torch.manual_seed(0)
    cfg = RunConfig(model="dcgan", model_cfg=c, data=dataclasses.replace(DataConfig(size=32), class_counts=None))
    return export_generator({"model": "dcgan", "config": cfg, "G_ema": spec.build_generator(c).state_dict(),
                             "info": {"nimg": 0}}, path)


@pytest.mark.parametrize("evil", ["../../../evil/escaped", "ABSOLUTE", "mel/anoma", "mel\0anoma"],
                         ids=["dotdot", "absolute", "slash", "nul"])
def test_a_generator_whose_class_names_leave_the_folder_is_refused_at_load(tmp_path, capsys, evil):
    evil = str(tmp_path / "abs" / "escaped") if evil == "ABSOLUTE" else evil.replace("\\0", "\0")
    gen = generator_with_classes(tmp_path / "work" / "gen.pt", [evil, "nevus"])
    out = tmp_path / "work" / "a" / "b" / "syn"
    saved = snapshot(tmp_path)
    assert synth(gen, out, "--layout", "imagefolder", "--per-class", f"{evil}=1,nevus=1") == 2
    one_line(capsys.readouterr().err, str(gen), "class name")
    assert sample_main(["--checkpoint", str(gen), "--out", str(out), "--class", evil]) == 2
    one_line(capsys.readouterr().err, str(gen), "class name")
    assert snapshot(tmp_path) == saved and not out.exists() and not (tmp_path / "abs").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_labels_and_class_folders_that_cannot_be_folder_names_are_refused(tmp_path, capsys):
    root = tmp_path / "data"
    for name in ("a.png", "b.png"):
        (root / "x").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), "red").save(root / "x" / name)
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\nx/a.png,../../../evil/escaped\nx/b.png,nevus\n")
    args = ["--cache-dir", str(tmp_path / "cache"), "--no-progress", "--size", "16"]
    assert data_main([str(root), "--labels", str(labels), *args]) == 2
    one_line(capsys.readouterr().err, str(labels), "line 2", "class name")
    (root / "mel\nanoma").mkdir()  # a class folder whose name holds a line break
    Image.new("RGB", (32, 32), "red").save(root / "mel\nanoma" / "c.png")
    assert data_main([str(root), *args]) == 2
    one_line(capsys.readouterr().err, "class name")


def test_a_class_folder_linked_outside_the_set_is_neither_deleted_through_nor_written(tmp_path, conditional_file,
                                                                                      capsys):
    out, elsewhere = tmp_path / "syn", tmp_path / "elsewhere"
    assert synth(conditional_file, out, *MEL2, "--layout", "imagefolder") == 0
    elsewhere.mkdir()
    for p in (out / "melanoma").iterdir():
        p.rename(elsewhere / p.name)
    (out / "melanoma").rmdir()
    os.symlink(elsewhere, out / "melanoma")  # the old set's melanoma files now lie outside --out
    saved = snapshot(tmp_path)
    assert synth(conditional_file, out, *MEL2, "--layout", "imagefolder", "--overwrite") == 2
    one_line(capsys.readouterr().err, "--out", "outside the folder")
    assert snapshot(tmp_path) == saved


# -- caps are checked before anything is allocated ------------------------------------------------------


def test_huge_counts_are_refused_before_any_allocation(tmp_path, conditional_file, monkeypatch, capsys):
    import gan.generator
    import gan.synthesize

    built = []

    def item(*args):  # the plan's list growing: the cap came too late
        built.append(args)
        assert len(built) < 1000, "the image list was built before the cap was checked"
        return real_item(*args)

    def latents(self, n, seed=0):
        assert n <= 10 ** 7, f"{n} latents drawn before the cap was checked"
        return real_latents(self, n, seed)

    real_item, real_latents = gan.synthesize.Item, gan.generator.LoadedGenerator.latents
    monkeypatch.setattr(gan.synthesize, "Item", item)
    monkeypatch.setattr(gan.generator.LoadedGenerator, "latents", latents)
    out = tmp_path / "out"
    assert synth(conditional_file, out, "--per-class", "melanoma=99999999999999999999") == 2
    one_line(capsys.readouterr().err, "--per-class", "200,000")
    assert synth(conditional_file, out, "--per-class", "melanoma=150000,nevus=150000") == 2
    one_line(capsys.readouterr().err, "--per-class", "300,000", "200,000")
    assert sample_main(["--checkpoint", str(conditional_file), "--out", str(out), "--n", "99999999999", "--yes"]) == 2
    one_line(capsys.readouterr().err, "--n 99999999999")
    assert not out.exists() and built == []


# -- an interrupted gan.synthesize can be rerun, and its half-written set is recognised -------------------


def test_an_interrupted_set_is_rerun_with_overwrite_and_warned_about_when_read(tmp_path, conditional_file,
                                                                              monkeypatch, capsys):
    import gan.synthesize
    from gan.data import DataWarning, load_dataset
    from gan.fileio import temp_name

    out = tmp_path / "syn"
    args = ("--per-class", "melanoma=3,nevus=2", "--layout", "imagefolder")
    real_png, written = gan.synthesize.png_bytes, []

    def ctrl_c_after_two(*a):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(1)
        return real_png(*a)

    monkeypatch.setattr(gan.synthesize, "png_bytes", ctrl_c_after_two)
    assert synth(conditional_file, out, *args) == 130
    assert "--overwrite" in one_line(capsys.readouterr().err, "interrupted")
    monkeypatch.setattr(gan.synthesize, "png_bytes", real_png)
    half = json.loads((out / "manifest.json").read_text())
    assert half["complete"] is False and len(half["run_id"]) == 32
    assert sorted(p.name for p in (out / "melanoma").iterdir()) == ["SYN_0000001.png", "SYN_0000002.png"]
    killed = temp_name(out / "melanoma" / "SYN_0000003.png", dead_pid(), "k1ll3d00")  # what kill -9 leaves
    killed.write_bytes(b"half a png")
    kw = dict(size=32, cache_dir=tmp_path / "cache", progress=False)
    with pytest.warns(DataWarning, match="manifest.json.*incomplete"):
        assert load_dataset(out, **kw).class_counts() == {"melanoma": 2}
    (out / "manifest.json").unlink()  # an older writer's interrupted set: images but no manifest
    with pytest.warns(DataWarning, match="no manifest.json"):
        load_dataset(out, **kw)
    (out / "manifest.json").write_text(json.dumps(half))

    assert synth(conditional_file, out, *args, "--overwrite") == 0  # what the message advised
    capsys.readouterr()
    full = json.loads((out / "manifest.json").read_text())
    assert full["complete"] is True and full["run_id"] != half["run_id"] and temp_files(out) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        assert load_dataset(out, **kw).class_counts() == {"melanoma": 3, "nevus": 2}


# -- one writer per run folder ------------------------------------------------------------------------

# Another process holding a run folder's lock as a training run does (fcntl.flock on run.lock, its
# record as JSON), in plain Python so that it starts in milliseconds.
HOLDER = """
import fcntl, json, os, socket, sys, time
f = open(sys.argv[1], "a+")
fcntl.flock(f, fcntl.LOCK_EX)
f.seek(0); f.truncate()
f.write(json.dumps({"format": "lesiongan-lock", "pid": os.getpid(), "host": socket.gethostname(),
                    "started": "2024-05-01T10:00:00+00:00", "heartbeat": "2024-05-01T10:05:00+00:00"}))
f.flush()
print("locked", flush=True)
time.sleep(120)
"""


@contextmanager
def held_by_another_process(folder):
    """The PID of a live process holding ``folder``'s run lock (until the ``with`` ends)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder / "run.lock")], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def without_lock(files: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in files.items() if not k.endswith("run.lock")}


def test_a_second_resume_of_a_run_folder_is_refused_naming_the_holder(run_copy, tmp_path, capsys):
    saved = snapshot(run_copy)
    with held_by_another_process(run_copy) as pid:
        assert RunDir(run_copy).writer_alive() and RunDir(run_copy).holder()["pid"] == pid
        assert train_main(["--resume", str(run_copy), "--kimg", "0.048", "--no-progress", "--threads", "1",
                           "--cache-dir", str(tmp_path / "cache")]) == 2
        one_line(capsys.readouterr().err, str(run_copy), f"PID {pid}", socket.gethostname(), "since 2024-05-01")
        assert without_lock(snapshot(run_copy)) == saved
    assert not RunDir(run_copy).writer_alive() and RunDir(run_copy).holder() is None


def test_a_run_that_fails_before_its_first_checkpoint_leaves_no_run_folder(data, tmp_path, capsys):
    bad = tmp_path / "ref.npz"
    bad.write_bytes(os.urandom(512))
    out = tmp_path / "runs"
    assert train_main([*TINY, "--data", str(data), "--out", str(out), "--kimg", "0.032", "--metrics", "hist_js",
                       "--metrics-ref", str(bad), "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert list(out.iterdir()) == []
    # kill -9 before the first checkpoint: the bare folder is not a run (no writer holds it, no stats, no weights)
    bare = out / "00000-dcgan-x-32"
    bare.mkdir()
    (bare / "config.json").write_text("{}")
    assert not RunDir(bare).is_run()


# -- --batch does not change the images ------------------------------------------------------------------


def test_synthesize_writes_the_same_bytes_for_every_batch(tmp_path):
    from pathlib import Path

    # The shipped DCGAN: at its width, the CPU kernels round differently for some batch sizes (a tiny
    # untrained model does not show it).
    gen = Path(__file__).resolve().parents[1] / "checkpoints" / "dcgan" / "generator.pt"
    sets = {}
    for batch in (1, 256):
        out = tmp_path / f"b{batch}"
        assert synth(gen, out, "--n", "16", "--batch", str(batch)) == 0
        sets[batch] = {p.name: p.read_bytes() for p in sorted((out / "images").iterdir())}
    assert len(sets[256]) == 16 and sets[1] == sets[256]


# -- the last tracebacks and leaked advice -------------------------------------------------------------


def test_a_model_setting_of_the_wrong_type_is_one_line(data, tmp_path, capsys):
    out = tmp_path / "runs"
    assert train_main(["--model", "dcgan", "--data", str(data), "--out", str(out), "--set", "ngf=abc", "--dry-run"]) == 2
    one_line(capsys.readouterr().err, "--set ngf=abc", "ngf", "integer")
    assert not out.exists()


def test_isic_metadata_nested_too_deep_skips_that_image(tmp_path, capsys):
    root = tmp_path / "archive"
    root.mkdir()
    for name in ("ISIC_0000000", "ISIC_0000001"):
        Image.new("RGB", (32, 32), "brown").save(root / f"{name}.jpg")
    (root / "ISIC_0000000.json").write_text(json.dumps({"meta": {"clinical": {"diagnosis": "nevus"}}}))
    (root / "ISIC_0000001.json").write_text("[" * 100_000 + "]" * 100_000)
    assert data_main([str(root), "--json", "--no-progress", "--size", "16", "--cache-dir", str(tmp_path / "c")]) == 0
    res = capsys.readouterr()
    assert "Traceback" not in res.err
    skipped = json.loads(res.out)["skipped"]
    assert [s["name"] for s in skipped] == ["ISIC_0000001"] and "nested" in skipped[0]["reason"]


def test_a_pickle_calling_a_blocked_module_is_refused_with_its_name(tmp_path, capsys):
    import pickle

    class Shell:
        def __reduce__(self):
            return (os.system, ("touch ran",))

    path = tmp_path / "shell.pt"
    torch.save({"kind": "lesiongan-generator", "payload": Shell()}, path, pickle_module=pickle)
    assert sample_main(["--checkpoint", str(path), "--out", str(tmp_path / "o")]) == 2
    line = one_line(capsys.readouterr().err, str(path), "refused to load, for safety", "system")
    assert not line.rstrip().endswith(":") and not (tmp_path / "o").exists()


def test_a_pickled_metrics_reference_is_refused_without_numpys_advice(data, tmp_path, capsys):
    import numpy as np

    bad = tmp_path / "ref.npz"
    np.savez(bad, meta=np.array([{"a": 1}], dtype=object))
    out = tmp_path / "runs"
    assert train_main([*TINY, "--data", str(data), "--out", str(out), "--kimg", "0.032", "--metrics", "hist_js",
                       "--metrics-ref", str(bad), "--cache-dir", str(tmp_path / "cache")]) == 2
    err = capsys.readouterr().err
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error")]
    assert str(bad) in line and "allow_pickle" not in line and "Traceback" not in err
    assert list(out.iterdir()) == []


# -- scores say which snapshot they belong to ---------------------------------------------------------


def test_results_rows_name_the_snapshot_they_scored(tmp_path, capsys):
    import hashlib

    from eval import make_fingerprint, save_fingerprint
    from eval.run import main as eval_main
    from eval.testing import lesion_images, write_tiny_generator

    ck = tmp_path / "checkpoints"
    (ck / "m").mkdir(parents=True)
    gen = write_tiny_generator(ck / "m" / "generator.pt", resolution=32)
    save_fingerprint(make_fingerprint(lesion_images(24, 16, 0), size=16, bank_size=8), ck / "m" / "fingerprint.npz")
    assert eval_main(["--checkpoints", str(ck), "--n", "8", "--metrics", "hist_js", "--quiet"]) == 0
    capsys.readouterr()
    want = {"file": "generator.pt", "sha256": hashlib.sha256(gen.read_bytes()).hexdigest(), "nimg": 0}
    (row,) = json.loads((ck / "results.json").read_text())["rows"]
    assert row["snapshot"] == want
    assert json.loads((ck / "m" / "results.json").read_text())["results"]["train"]["snapshot"] == want
    assert f"sha256: {want['sha256']}" in (ck / "results.csv").read_text()


# -- eval.privacy: outputs checked before the work and written whole, sets an attack cannot score refused --

PRIVACY_MIN = 10  # members and non-members each: eval.privacy.MIN_IMAGES


def lesion_folder(folder, n: int, seed: int):
    """A folder of ``n`` made lesion images (32 px PNGs)."""
    from eval.testing import lesion_images

    folder.mkdir(parents=True)
    for i, img in enumerate(lesion_images(n, 32, seed=seed)):
        Image.fromarray(img).save(folder / f"{folder.name}{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def audit_inputs(tmp_path_factory):
    """Unlabelled members and non-members (12 each), a set of 3, a tiny generator and a tiny conditional
    training checkpoint (G and D, classes melanoma and nevus)."""
    from eval.testing import write_tiny_generator
    from test_privacy import tiny_training_checkpoint

    root = tmp_path_factory.mktemp("privacy")
    (root / "cond").mkdir()
    tiny_training_checkpoint(root / "cond" / "checkpoint.pt", class_names=["melanoma", "nevus"])
    return {"members": lesion_folder(root / "members", 12, 1), "held": lesion_folder(root / "held", 12, 2),
            "few": lesion_folder(root / "few", 3, 3), "gen": write_tiny_generator(root / "run" / "generator.pt"),
            "cond": root / "cond" / "checkpoint.pt"}


def privacy(inputs, *flags: str, checkpoint="gen", real="members", heldout="held", encoder="none") -> int:
    """eval.privacy on the made sets, small enough to take a second (``encoder=None``: the default encoder)."""
    from eval.privacy import main as privacy_main

    return privacy_main(["--checkpoint", str(inputs[checkpoint]), "--real", str(inputs[real]),
                         "--heldout", str(inputs[heldout]), "--n", "40", "--bootstrap", "20", "--pairs", "2",
                         "--no-save", *(["--derm-encoder", encoder] if encoder else []), *flags])


def no_work(*args, **kwargs):
    raise AssertionError("the work started before the command line was checked")


@pytest.fixture
def privacy_env(tmp_path, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LESIONGAN_DERM_ENCODER", raising=False)


def test_privacy_refuses_an_unusable_out_before_any_work(audit_inputs, tmp_path, privacy_env, monkeypatch, capsys):
    import gan
    import eval.privacy

    monkeypatch.setattr(gan, "load_generator", no_work)
    monkeypatch.setattr(eval.privacy, "audit", no_work)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert privacy(audit_inputs, "--out", str(a_file)) == 2
    one_line(capsys.readouterr().err, "--out", str(a_file), "not a folder")
    assert privacy(audit_inputs, "--out", str(a_file / "report")) == 2
    one_line(capsys.readouterr().err, "--out", str(a_file), "regular file")
    assert a_file.read_text() == "keep me" and temp_files(tmp_path) == []


def test_privacy_writes_its_report_whole_or_not_at_all(audit_inputs, tmp_path, privacy_env, monkeypatch, capsys):
    """The disk fills up as the report is written: a file-size limit makes the kernel refuse the
    writes the way a full disk does, from the moment the report is ready."""
    import resource
    import signal

    import eval.privacy

    real_markdown, (soft, hard) = eval.privacy.markdown, resource.getrlimit(resource.RLIMIT_FSIZE)

    def disk_full_from_here(doc):
        text = real_markdown(doc)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64, hard))  # every file ends at 64 bytes
        return text

    monkeypatch.setattr(eval.privacy, "markdown", disk_full_from_here)
    out = tmp_path / "out"
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error, not death by signal
    try:
        code = privacy(audit_inputs, "--out", str(out))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert code == 2
    err = capsys.readouterr().err  # the progress bar, then the error
    (line,) = [ln for ln in err.splitlines() if ln.startswith("error")]
    assert str(out / "privacy.json") in line and "no file was left" in line and "Traceback" not in err
    assert [p for p in out.rglob("*")] == []  # no 0-byte, half or temp file


@pytest.mark.parametrize("sets, names", [
    ({"real": "few"}, ["--real", "few", "3 images", f"at least {PRIVACY_MIN}"]),
    ({"heldout": "few"}, ["--heldout", "few", "3 images", f"at least {PRIVACY_MIN}"]),
    ({"heldout": "members"}, ["--heldout", "members", "the members"]),
], ids=["few-members", "few-nonmembers", "nonmembers-are-members"])
def test_privacy_refuses_sets_an_attack_cannot_score_before_the_work(audit_inputs, tmp_path, privacy_env,
                                                                    monkeypatch, capsys, sets, names):
    import eval.privacy

    monkeypatch.setattr(eval.privacy, "audit", no_work)
    out = tmp_path / "out"
    assert privacy(audit_inputs, "--out", str(out), **sets) == 2
    one_line(capsys.readouterr().err, *names)
    assert not out.exists()


def test_privacy_with_a_conditional_d_and_unlabelled_images_says_why_d_is_skipped(audit_inputs, privacy_env,
                                                                                  capsys):
    assert privacy(audit_inputs, "--json", checkpoint="cond") == 0
    res = capsys.readouterr()
    assert "Traceback" not in res.err
    doc = json.loads(res.out)
    assert 0 <= doc["attacks"]["distance_pixel"]["auc"] <= 1
    why = doc["attacks"]["discriminator"]["unavailable"]
    assert "class" in why and "0 of 12 members" in why and "0 of 12 non-members" in why


def test_the_shipped_encoder_is_found_from_any_folder(audit_inputs, conditional_file, tmp_path, privacy_env,
                                                      monkeypatch, capsys):
    from eval.consistency import main as consistency_main

    monkeypatch.chdir(tmp_path)  # not the repository root
    assert privacy(audit_inputs, "--json", encoder=None) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["attacks"]["distance_derm"]["auc"] <= 1
    assert consistency_main(["--checkpoint", str(conditional_file), "--n", "2", "--json"]) == 0
    capsys.readouterr()
    missing = tmp_path / "nowhere"
    assert privacy(audit_inputs, encoder=str(missing)) == 2
    one_line(capsys.readouterr().err, "--derm-encoder", str(missing), "'none'")


# -- an imagefolder's class folders each read their own images ------------------------------------------


@pytest.mark.parametrize("link, target, names", [
    ("all", ".", ["'all'", "the data root"]),
    ("copy", "melanoma", ["'copy'", "'melanoma'"]),
    ("melanoma/more", "../nevus", ["'melanoma/more'", "'nevus'"]),
    ("melanoma/up", "..", ["'melanoma/up'", "the data root"]),
], ids=["class-to-root", "class-to-class", "inside-class-to-class", "inside-class-to-root"])
def test_a_class_folder_that_leads_to_the_root_or_another_class_is_refused(tmp_path, capsys, link, target, names):
    root = tmp_path / "data"
    for c in ("melanoma", "nevus"):
        (root / c).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (16, 16), (40 * i, 90, 60)).save(root / c / f"{c}{i}.png")
    os.symlink(target, root / link)
    assert data_main([str(root), "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--size", "16"]) == 2
    one_line(capsys.readouterr().err, str(root), *names, "two classes")


# -- Ctrl-C while the command is still importing torch ---------------------------------------------------

# A child that gets Ctrl-C the moment something imports torch (the first seconds of any command), then
# runs gan.train the way `python -m gan.train` (runpy) or the `lesiongan-train` script (an import of
# main) does. Python's own SIGINT handler is put back first, as in test_faults' Ctrl-C test: a test run
# started in the background inherits SIGINT ignored.
CTRL_C_AT_TORCH = """
import runpy, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)


class CtrlCWhileTorchLoads:
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            sys.meta_path.remove(self)
            signal.raise_signal(signal.SIGINT)
        return None


sys.meta_path.insert(0, CtrlCWhileTorchLoads())
if sys.argv[1] == "module":
    sys.argv[1:2] = []
    runpy.run_module("gan.train", run_name="__main__", alter_sys=True)
else:
    from gan.train import main
    sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("how", ["module", "script"])
def test_ctrl_c_while_torch_loads_is_one_line_and_exit_130(data, tmp_path, how):
    out = tmp_path / "runs"
    res = subprocess.run([sys.executable, "-c", CTRL_C_AT_TORCH, how, *TINY, "--data", str(data), "--out", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 130, res.stderr
    one_line(res.stderr, "interrupted")
    assert list(tmp_path.iterdir()) == [] and res.stdout == ""


# -- the run lock covers all of a --resume, and a library caller's training only --------------------------

# Another process trying the run lock, in plain Python so that it answers in milliseconds.
FLOCK_PROBE = """
import fcntl, sys
f = open(sys.argv[1], "a+")
try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("free")
except BlockingIOError:
    print("held")
"""


def test_resume_holds_the_run_lock_before_it_reads_data_or_rewrites_the_config(run_copy, tmp_path, monkeypatch,
                                                                              capsys):
    """Two --resume started in the same second: whichever takes the lock first keeps the other out
    before either decodes the data or rewrites config.json."""
    import gan.train
    from gan.fileio import held_lock

    seen, real_load, real_write = [], gan.train._load_data, RunDir.write_config

    def load_data(*args, **kwargs):
        probe = subprocess.run([sys.executable, "-c", FLOCK_PROBE, str(run_copy / "run.lock")], capture_output=True,
                               text=True, timeout=60)
        seen.append(("data", probe.stdout.strip()))
        return real_load(*args, **kwargs)

    def write_config(self, cfg):
        seen.append(("config", "held" if held_lock(self.path) else "free"))
        return real_write(self, cfg)

    monkeypatch.setattr(gan.train, "_load_data", load_data)
    monkeypatch.setattr(RunDir, "write_config", write_config)
    assert train_main(["--resume", str(run_copy), "--kimg", "0.048", "--no-progress", "--threads", "1",
                       "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert seen == [("data", "held"), ("config", "held")]
    assert not RunDir(run_copy).writer_alive()


def test_training_loop_holds_the_run_lock_while_it_trains_and_only_then(tmp_path):
    from gan.loop import TrainingHook, training_loop
    from test_train import run_config

    cfg = run_config(0.032, width=4)
    run = RunDir(tmp_path / "run")
    run.write_config(cfg)
    holders = []

    class Watch(TrainingHook):
        def on_step(self, nimg, stage, stats):
            holders.append(run.holder())

    images = torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    assert training_loop(run, cfg, images, progress=False, hooks=[Watch()]).status == "done"
    assert holders and all(h["pid"] == os.getpid() for h in holders)
    assert run.holder() is None and not (run.path / "run.lock").exists()
