"""Checkpoint files: atomic writes, exact round trips, and refusal of anything unsafe or foreign."""
import pickle

import numpy as np
import pytest
import torch

from gan import checkpoint as ckpt_io
from gan import load_generator
from gan.config import RunConfig, TrainConfig, to_dict
from gan.rundir import RunDir
from gan.export import main as export_main
from gan.loop import training_loop
from gan.models.dcgan import DCGANConfig
from gan.sample import main as sample_main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, discs_module):
    d = tmp_path_factory.mktemp("run")
    cfg = {"format": 1, "model": "dcgan", "model_cfg": to_dict(DCGANConfig(resolution=32, batch=16)),
           "train": to_dict(TrainConfig(kimg=0.16, log_kimg=0.08, grid_size=4)), "data": {}}
    RunDir(d).write_config(RunConfig.from_dict(cfg))
    from conftest import quick_bn_recalibration

    with quick_bn_recalibration():
        training_loop(d, cfg, discs_module(32, 32), progress=False)
    return d


@pytest.fixture(scope="module")
def discs_module():
    from conftest import disc_images
    return disc_images


def test_export_round_trip_gives_bit_identical_samples(run_dir, tmp_path):
    assert export_main([str(run_dir), "--out", str(tmp_path / "g.pt")]) == 0
    a = load_generator(run_dir / "checkpoint.pt").generate(16, seed=7)
    b = load_generator(tmp_path / "g.pt").generate(16, seed=7)
    c = load_generator(run_dir).generate(16, seed=7)  # a folder resolves to its generator.pt
    assert a.dtype == np.uint8 and a.shape == (16, 32, 32, 3)
    assert np.array_equal(a, b) and np.array_equal(a, c)
    # the exported file is generator-only: far smaller than the training checkpoint
    assert (tmp_path / "g.pt").stat().st_size < 0.5 * (run_dir / "checkpoint.pt").stat().st_size


def test_generation_is_deterministic_and_independent_of_count_and_batch(run_dir):
    G = load_generator(run_dir)
    assert G.model_name == "dcgan" and G.resolution == 32 and G.z_dim == 100 and G.info["nimg"] == 160
    a = G.generate(10, seed=3)
    assert np.array_equal(a, G.generate(10, seed=3))
    assert np.array_equal(a[:4], G.generate(4, seed=3))
    z = G.latents(10, seed=3)  # 3 x 100 numbers, 7 x 100...: not all whole blocks of torch's sampler
    assert all(torch.equal(z[:n], G.latents(n, seed=3)) for n in range(10))
    assert np.array_equal(a, G.generate(10, seed=3, batch_size=3))
    assert not np.array_equal(a, G.generate(10, seed=4))
    assert len(np.unique(a.reshape(10, -1), axis=0)) == 10  # ten different images


def test_sample_cli_names_files_by_seed_and_writes_a_grid(run_dir, tmp_path):
    out = tmp_path / "samples"
    assert sample_main(["--checkpoint", str(run_dir / "generator.pt"), "--n", "5", "--out", str(out),
                        "--seed", "12", "--grid"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png"] + [f"seed0012-{i:05d}.png" for i in range(5)]
    from PIL import Image
    again = load_generator(run_dir).generate(5, seed=12)
    assert np.array_equal(np.asarray(Image.open(out / "seed0012-00003.png")), again[3])


def test_truncated_empty_missing_and_foreign_files_are_refused(run_dir, tmp_path):
    data = (run_dir / "generator.pt").read_bytes()
    (tmp_path / "half.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    cases = {"half.pt": "truncated", "empty.pt": "empty", "text.pt": "not a readable", "nope.pt": "no such",
             "other.pt": "not a LesionGAN checkpoint"}
    for name, msg in cases.items():
        with pytest.raises(ValueError, match=msg) as e:
            load_generator(tmp_path / name)
        assert name in str(e.value)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create a file when unpickled


def test_a_pickle_carrying_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"kind": ckpt_io.KIND_GENERATOR, "payload": _Evil(str(marker))}, path, pickle_module=pickle)
    with pytest.raises(ValueError, match="refused to load"):
        load_generator(path)
    assert not marker.exists()


def test_a_training_checkpoint_is_required_where_one_is_needed(run_dir, tmp_path):
    assert export_main([str(run_dir / "generator.pt"), "--out", str(tmp_path / "x.pt")]) == 2
    assert not (tmp_path / "x.pt").exists()


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    from gan.fileio import atomic_write, atomic_write_text

    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(path, boom)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temp file left behind


def test_a_newer_format_version_is_refused(run_dir, tmp_path):
    ckpt = torch.load(run_dir / "generator.pt", weights_only=True)
    ckpt["version"] = 99
    torch.save(ckpt, tmp_path / "future.pt")
    with pytest.raises(ValueError, match="format version 99"):
        load_generator(tmp_path / "future.pt")


def test_the_fused_fast_path_matches_the_network_as_trained(run_dir):
    fast, exact = load_generator(run_dir), load_generator(run_dir, fuse=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.fast_net.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in exact.fast_net.modules())
    z = fast.latents(32, seed=5)
    with torch.inference_mode():
        a = fast.fast_net(z, resolution=32)
        b = exact.net(z, resolution=32)
    assert torch.allclose(a, b, atol=1e-5)
    diff = np.abs(fast.synthesize(z).astype(int) - exact.synthesize(z).astype(int))
    assert diff.max() <= 1  # at most one grey level of rounding, anywhere
