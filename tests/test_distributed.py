"""Training on several processes (torchrun, DDP, gloo on the CPU).

Two processes train like one with the same global batch, only process 0 writes, a run resumes under
another number of processes, replicas stay in step through BatchNorm and frozen phases, a signal to
one process stops all at the same step, and bad options fail on every process before training.

One torchrun launch (two processes) runs every distributed job of this file: each process is this
file run as a script (the bottom of the file), which records what its process wrote, its final
weights and its exit code. Tiny networks on 24 generated images keep the compute to seconds; starting
the three torch processes is most of the time.

The equivalence runs use pggan with ``mbstd_group=1``: with no sample coupled to another, a loss that
is a mean over the batch has the same gradient whether one process computes it or two compute halves
that DDP averages. Karras's minibatch-stddev groups (of 4) are formed within each process's share, as
in the reference code per GPU, and DCGAN's BatchNorm normalises each process's share; both change the
maths with the number of processes, which SyncBatchNorm (``--sync-bn``, GPUs only) undoes for
BatchNorm. Those models are checked here for replicas in step, not for equality with one process.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

TINY_PGGAN = ["--model", "pggan", "--size", "16", "--seed", "3", "--augment",
              "--set", "start_resolution=4", "--set", "fade_kimg=0.128", "--set", "stable_kimg=0.128",
              "--set", "batch_per_res=[[4,16],[8,16],[16,8]]", "--set", "z_dim=8", "--set", "fmap_base=64",
              "--set", "fmap_max=8", "--set", "fmap_min=4", "--set", "mbstd_group=1"]
TINY_DCGAN = ["--model", "dcgan", "--size", "32", "--batch", "16", "--set", "ngf=8", "--set", "ndf=8"]
TINY_SEED = ["--model", "pggan-seed", "--size", "32", "--batch", "16", "--set", "start_resolution=8",
             "--set", "phase_kimg=[0.032,0.032]", "--set", "z_dim=8", "--set", "ngf=4", "--set", "ndf=4"]
QUIET = ["--device", "cpu", "--threads", "1", "--no-progress", "--log-kimg", "0.032", "--grid-kimg", "10",
         "--snapshot-kimg", "10"]
# 0.32 kimg: 4 px, the 8 px fade-in and 8 px (two phase changes); 0.448 adds half the 16 px fade-in,
# where the global batch drops to 8.
KIMG, KIMG_MORE = "0.32", "0.448"
# Largest differences measured: 3.3e-7 (G) and 1.6e-6 (D) after the 20 steps to 0.32 kimg, 2.5e-6 (G)
# after the 1-process run resumed on 2 processes; latents sliced wrongly give 1.4e-2.
TOL = {"rtol": 1e-4, "atol": 1e-5}


def the_run(out: Path) -> Path:
    (run,) = out.iterdir()
    return run


def ckpt(run: Path) -> dict:
    from gan import checkpoint as ckpt_io
    return ckpt_io.load(run / "checkpoint.pt")


def stats(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]


def files(run: Path) -> set[str]:
    return {str(p.relative_to(run)) for p in run.rglob("*")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Single-process references in this process, and every two-process job in one torchrun launch."""
    from conftest import disc_images
    from PIL import Image

    from gan.train import main

    root = tmp_path_factory.mktemp("dist")
    data = root / "data"
    data.mkdir()
    for i, img in enumerate(disc_images(24, 32)):
        Image.fromarray(img.permute(1, 2, 0).numpy()).save(data / f"disc{i:02d}.png")
    common = ["--data", str(data), "--cache-dir", str(root / "cache"), *QUIET]
    resume_flags = [*QUIET[:5], "--cache-dir", str(root / "cache")]  # what --resume may still set
    runs_dir = root / "runs"

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert main([*TINY_PGGAN, *common, "--kimg", KIMG, "--out", str(runs_dir / "one")]) == 0
        one = the_run(runs_dir / "one")
        shutil.copytree(one, runs_dir / "one-to-two")

        jobs = [("pggan", [*TINY_PGGAN, *common, "--kimg", KIMG, "--out", str(runs_dir / "two")]),
                ("resume-one-to-two", ["--resume", str(runs_dir / "one-to-two"), "--kimg", KIMG_MORE, *resume_flags]),
                ("dcgan", [*TINY_DCGAN, *common, "--kimg", "0.096", "--out", str(runs_dir / "dcgan")]),
                ("pggan-seed", [*TINY_SEED, *common, "--kimg", "0.096", "--out", str(runs_dir / "seed")]),
                ("sigterm", [*TINY_DCGAN, *common, "--augment", "--kimg", "1", "--out", str(runs_dir / "sigterm")]),
                ("sync-bn", [*TINY_DCGAN, *common, "--sync-bn", "--kimg", "0.1", "--out", str(runs_dir / "sync-bn")]),
                ("odd-batch", [*TINY_DCGAN[:4], "--batch", "15", *TINY_DCGAN[6:], *common, "--kimg", "0.1",
                               "--out", str(runs_dir / "odd-batch")])]
        (root / "jobs.json").write_text(json.dumps({"watch": str(runs_dir), "jobs": jobs}))
        env = {**os.environ, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                               __file__, str(root / "jobs.json")], env=env, cwd=REPO, capture_output=True,
                              text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
        records = {(name, r): torch.load(root / f"{name}-rank{r}.pt", weights_only=True)
                   for name, _ in jobs for r in (0, 1)}

        # Back to one process: the two-process run resumed, and the reference continued.
        two = the_run(runs_dir / "two")
        for src, dst in ((two, "two-to-one"), (one, "one-more")):
            shutil.copytree(src, runs_dir / dst)
            assert main(["--resume", str(runs_dir / dst), "--kimg", KIMG_MORE, *resume_flags]) == 0
    finally:
        torch.set_num_threads(before)
    return {"one": one, "two": two, "dir": runs_dir, "records": records}


def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    a, b = ckpt(runs["one"]), ckpt(runs["two"])
    assert (a["info"]["world_size"], b["info"]["world_size"]) == (1, 2)
    for key in ("G", "D", "G_ema"):
        assert a[key].keys() == b[key].keys()  # DDP's "module." prefix stays out of checkpoints
        for name in a[key]:
            torch.testing.assert_close(b[key][name], a[key][name], **TOL, msg=f"{key}.{name}")
    # The same global state: images seen, place in the data order, shared random streams.
    for key in ("nimg", "phase", "data_epoch", "data_pos"):
        assert a[key] == b[key], key
    for key in ("noise", "aug", "torch"):
        assert torch.equal(a["rng"][key], b["rng"][key]), key
    assert a["config"] == b["config"]
    # Statistics of the global batch, averaged over the two processes.
    rows_a, rows_b = stats(runs["one"]), stats(runs["two"])
    assert [r["nimg"] for r in rows_a] == [r["nimg"] for r in rows_b] == list(range(32, 321, 32))
    for ra, rb in zip(rows_a, rows_b):
        assert ra.keys() == rb.keys() and ra["batch"] == rb["batch"]
        for k in ("loss_D", "loss_G", "D_real", "D_fake", "grad_penalty"):
            assert rb[k] == pytest.approx(ra[k], rel=1e-4, abs=1e-5), (ra["nimg"], k)


def test_only_process_zero_writes(runs):
    assert [p.name for p in (runs["dir"] / "two").iterdir()] == [runs["two"].name]  # one numbered folder
    assert files(runs["two"]) == files(runs["one"])
    for (name, rank), rec in runs["records"].items():
        if rank == 1:
            assert rec["writes"] == [], name
        elif rec["rc"] == 0:
            assert any(p.endswith("checkpoint.pt") for _, p in rec["writes"]), name  # the recording works


def test_a_two_process_run_resumes_as_one_and_a_one_process_run_as_two(runs):
    ref = ckpt(runs["dir"] / "one-more")
    two_to_one, one_to_two = ckpt(runs["dir"] / "two-to-one"), ckpt(runs["dir"] / "one-to-two")
    assert ref["nimg"] == two_to_one["nimg"] == one_to_two["nimg"] == 448
    assert (two_to_one["info"]["world_size"], one_to_two["info"]["world_size"]) == (1, 2)
    for resumed in (two_to_one, one_to_two):
        for key in ("G", "D", "G_ema"):
            for name in ref[key]:
                torch.testing.assert_close(resumed[key][name], ref[key][name], **TOL, msg=f"{key}.{name}")
        assert (resumed["data_epoch"], resumed["data_pos"]) == (ref["data_epoch"], ref["data_pos"])
    assert [r["nimg"] for r in stats(runs["dir"] / "two-to-one")] == [r["nimg"] for r in stats(runs["dir"] / "one-more")]


@pytest.mark.parametrize("name, phase", [("dcgan", 0), ("pggan-seed", 2)])
def test_replicas_stay_in_step_through_batchnorm_and_frozen_phases(runs, name, phase):
    rec0, rec1 = runs["records"][name, 0], runs["records"][name, 1]
    assert rec0["rc"] == rec1["rc"] == 0
    assert rec0["params"].keys() == rec1["params"].keys() and rec0["params"]
    for k, v in rec0["params"].items():
        assert torch.equal(v, rec1["params"][k]), k  # DDP averaged every trained gradient
    saved = ckpt(the_run(runs["dir"] / ("seed" if name == "pggan-seed" else name)))
    assert saved["nimg"] == 96 and saved["phase"] == phase
    for k, v in rec0["params"].items():
        net, _, param = k.partition(".")
        assert torch.equal(saved[net][param], v), k


def test_a_signal_to_one_process_stops_every_process_at_the_same_step(runs):
    rec0, rec1 = runs["records"]["sigterm", 0], runs["records"]["sigterm", 1]
    assert rec0["rc"] == rec1["rc"] == 130
    run = the_run(runs["dir"] / "sigterm")
    assert ckpt(run)["nimg"] == 3 * 16  # process 1 got SIGTERM in step 3
    assert not (run / "generator.pt").exists()
    assert "saved" in rec0["stderr"] and "--resume" in rec0["stderr"]


@pytest.mark.parametrize("name, flag", [("sync-bn", "--sync-bn"), ("odd-batch", "--batch")])
def test_bad_options_fail_on_every_process_before_a_run_folder(runs, name, flag):
    for rank in (0, 1):
        rec = runs["records"][name, rank]
        assert rec["rc"] == 2 and flag in rec["stderr"], rec["stderr"]
    assert not (runs["dir"] / name).exists()


# --------------------------------------------------------------------------- one torchrun process

def _writes_under(root: str, log: list):
    """An audit hook that records every file this process opens for writing, creates or renames
    below ``root``."""
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & write_flags)
        elif event in ("os.mkdir", "os.rename"):
            path, writing = args[1] if event == "os.rename" else args[0], True
        else:
            return
        if writing and isinstance(path, (str, os.PathLike)) and os.fspath(path).startswith(root):
            log.append((event, os.fspath(path)))

    return hook


def _worker(jobs_file: Path) -> None:
    torch.set_num_threads(1)
    import signal

    import gan.loop
    from gan import dist
    from gan.models import get_model, model_names
    from gan.train import main

    plan = json.loads(jobs_file.read_text())
    dist.init("cpu")
    writes: list = []
    sys.addaudithook(_writes_under(plan["watch"], writes))
    nets: dict = {}

    def recording(make_loss):
        def make(G, D, cfg):
            nets.update(G=G, D=D)  # what the loss calls: DDP wrappers
            return make_loss(G, D, cfg)
        return make

    for model in model_names():
        spec = get_model(model)
        spec.make_loss = recording(spec.make_loss)
    augment, calls = gan.loop.augment, [0]

    def augment_then_sigterm_on_process_1(x, rng, **kw):
        calls[0] += 1
        if calls[0] == 3 and dist.rank() == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return augment(x, rng, **kw)

    for name, argv in plan["jobs"]:
        writes.clear()
        nets.clear()
        gan.loop.augment = augment_then_sigterm_on_process_1 if name == "sigterm" else augment
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            rc = main(argv)
        params = {f"{k}.{n}": p.detach().clone() for k, net in nets.items()
                  for n, p in getattr(net, "module", net).named_parameters()}
        torch.save({"rc": rc, "writes": list(writes), "params": params, "stderr": err.getvalue()},
                   jobs_file.parent / f"{name}-rank{dist.rank()}.pt")
    dist.cleanup()


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
