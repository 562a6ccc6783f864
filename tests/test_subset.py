"""Training on a named subset of a data set (image lists) and keeping snapshots over training length:
what a membership audit on known halves needs."""
from __future__ import annotations

import pytest
import torch

from gan import checkpoint as ckpt_io
from gan.data import DataConfig, load_dataset
from gan.data.subset import list_sha256, read_image_list, split_names, write_image_list
from gan.rundir import FILES, RunDir
from test_data import make_isic2017  # the shared tiny-data builder
from test_train import run_config, train


def test_image_list_round_trip_and_refusals(tmp_path):
    p = write_image_list(tmp_path / "a.txt", ["ISIC_1", "ISIC_0", "dir/x.jpg"], comment="seed 3\nhalf A")
    assert p.read_text().splitlines()[:2] == ["# seed 3", "# half A"]
    assert read_image_list(p) == ["ISIC_1", "ISIC_0", "dir/x.jpg"]
    assert list_sha256(["b", "a"]) == list_sha256(["a", "b"]) != list_sha256(["a", "c"])
    with pytest.raises(ValueError, match="once"):
        write_image_list(tmp_path / "b.txt", ["a", "a"])
    (tmp_path / "twice.txt").write_text("a\nb\na\n")
    with pytest.raises(ValueError, match=r"twice\.txt: names a twice"):
        read_image_list(tmp_path / "twice.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="names no image"):
        read_image_list(tmp_path / "empty.txt")
    with pytest.raises(ValueError, match="no such image list"):
        read_image_list(tmp_path / "missing.txt")
    assert not list(tmp_path.glob("*.tmp"))


def test_split_names_is_a_seeded_partition():
    names = [f"ISIC_{i:07d}" for i in range(101)]
    a, b = split_names(names, seed=7)
    assert (len(a), len(b)) == (50, 51)
    assert sorted(a + b) == names and not set(a) & set(b)
    assert a == sorted(a) and b == sorted(b)  # each keeps the order of the names
    assert split_names(names, seed=7) == (a, b)
    assert split_names(names, seed=8)[0] != a


def test_subset_selects_those_images_in_data_order(tmp_path):
    root = make_isic2017(tmp_path / "isic")
    full = load_dataset(DataConfig(str(root), size=16, cache_dir=str(tmp_path / "cache")), progress=False)
    lst = write_image_list(tmp_path / "half.txt", ["ISIC_0000003", "ISIC_0000001"])
    sub = load_dataset(DataConfig(str(root), size=16, cache_dir=str(tmp_path / "cache"), subset=str(lst)),
                       progress=False)
    assert sub.names == ["ISIC_0000001", "ISIC_0000003"]
    assert sub.labels == [full.labels[1], full.labels[3]]
    assert torch.equal(sub.images, full.images[[1, 3]])
    assert sub.info["subset_sha256"] == list_sha256(["ISIC_0000001", "ISIC_0000003"])
    bad = write_image_list(tmp_path / "bad.txt", ["ISIC_0000001", "ISIC_9999999"])
    with pytest.raises(ValueError, match=r"bad\.txt: 1 of its 2 images are not in .*ISIC_9999999"):
        load_dataset(DataConfig(str(root), size=16, cache_dir=str(tmp_path / "cache"), subset=str(bad)),
                     progress=False)


@pytest.mark.usefixtures("quick_bn")
def test_keep_kimg_files_per_kimg(tmp_path, discs):
    images = discs(64, 32)
    cfg = run_config(2.1, batch=48, keep_kimg=1.0, log_kimg=1.0, snapshot_kimg=1.5, grid_kimg=2.1)
    res = train(tmp_path, "run", cfg, images)
    run = RunDir(res.run_dir)
    kept = run.list_snapshots()
    assert [n for n, _ in kept] == [1000, 2000]
    # Each holds D and G_ema of its own step (the first multiple of the batch at or after the kimg).
    nimgs = [ckpt_io.load(p)["nimg"] for _, p in kept]
    assert nimgs == [1008, 2016]
    first, last = (ckpt_io.load(p) for p in (kept[0][1], kept[-1][1]))
    assert not torch.equal(first["D"]["main.0.weight"], last["D"]["main.0.weight"])
    # checkpoint.pt was replaced after each keep (and at 1536), so the kept files did not change with it.
    assert ckpt_io.load(run.file("checkpoint.pt"))["nimg"] == 2112
    assert not list((res.run_dir / "snapshots").glob("*.tmp"))
