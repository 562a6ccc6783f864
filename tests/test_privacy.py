"""eval.privacy on made data: the distance attack sees a copying generator and nothing in an honest one,
the bootstrap interval covers the known AUC, the discriminator file round-trips code-free, the CLI
runs end to end."""
from __future__ import annotations

import dataclasses
import json
import pickle
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from eval import privacy as P
from eval.testing import lesion_images, write_tiny_generator


class Images:
    """The ImageSet fields ``audit`` reads."""

    def __init__(self, x: np.ndarray, prefix: str):
        self.images = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        self.names = [f"{prefix}{i:04d}" for i in range(len(x))]
        self.labels = [None] * len(x)


class ReplayGenerator:
    """A 'generator' whose samples are its training images (cycled), or independent images when given others."""

    class_names: list[str] = []
    resolution = 16

    def __init__(self, pool: np.ndarray):
        self.pool = pool

    def generate(self, n: int, seed: int = 0, batch_size: int = 256) -> np.ndarray:
        idx = np.random.default_rng(seed).permutation(np.resize(np.arange(len(self.pool)), n))
        return self.pool[idx]


@pytest.fixture(scope="module")
def sets():
    members = lesion_images(80, 16, seed=1)
    nonmembers = lesion_images(80, 16, seed=2)
    return Images(members, "m"), Images(nonmembers, "h"), members


def test_distance_attack_catches_a_copying_generator(sets):
    mem, non, raw = sets
    rep, extras = P.audit(ReplayGenerator(raw), mem, non, n=400, bootstrap=200, pairs=3, progress=False)
    a = rep["attacks"]["distance_pixel"]
    assert a["auc"] > 0.99 and a["ci95"][0] > 0.95
    assert a["verdict"].startswith("strong membership leak")
    assert rep["closest_pairs"][0]["distance"] == pytest.approx(0, abs=1e-3)
    assert np.array_equal(extras["members"][0], extras["samples"][0])  # the pair shown is the copy
    assert rep["attacks"]["discriminator"]["unavailable"] == "no discriminator"


def test_distance_attack_sees_nothing_in_independent_samples(sets):
    mem, non, _ = sets
    honest = ReplayGenerator(lesion_images(1000, 16, seed=3))  # same distribution, no member among them
    rep, _ = P.audit(honest, mem, non, n=1000, bootstrap=300, pairs=2, progress=False)
    a = rep["attacks"]["distance_pixel"]
    assert abs(a["auc"] - 0.5) < 0.12
    assert a["ci95"][0] < 0.5 < a["ci95"][1]
    assert a["verdict"].startswith("no measurable membership leak")
    assert "not a formal privacy guarantee" in rep["disclaimer"]


def test_nearest_distances_match_brute_force():
    rng = np.random.default_rng(0)
    q, b = rng.random((30, 12)), rng.random((500, 12))
    d, i = P.nearest_distances(q, b, chunk=64)
    full = np.linalg.norm(q[:, None] - b[None], axis=2)
    assert np.allclose(d, full.min(1), atol=1e-4) and np.array_equal(i, full.argmin(1))


def test_bootstrap_interval_covers_known_auc():
    """Member scores N(0.5, 1), non-members N(0, 1): AUC = Phi(0.5 / sqrt 2) = 0.638. The interval covers it
    in most of 40 made audits, and is about as wide as the normal theory says."""
    from scipy.stats import norm

    true = norm.cdf(0.5 / np.sqrt(2))
    covered, widths = 0, []
    for k in range(40):
        rng = np.random.default_rng(k)
        r = P.attack_auc(rng.normal(0.5, 1, 300), rng.normal(0, 1, 150), B=300, seed=10_000 + k)
        covered += r["ci95"][0] <= true <= r["ci95"][1]
        widths.append(r["ci95"][1] - r["ci95"][0])
    # The percentile interval runs a little narrow at these sizes (about 90% measured over 100 audits);
    # a broken one (half as wide, or off-centre) covers far less often.
    assert covered >= 32, covered
    assert 0.08 < np.mean(widths) < 0.16  # Hanley-McNeil: 2 * 1.96 * ~0.028


def test_verdict_thresholds():
    def v(lo, hi):
        return P.verdict({"auc": (lo + hi) / 2, "ci95": [lo, hi]})

    assert v(0.45, 0.55).startswith("no measurable membership leak at this sample size")
    assert v(0.52, 0.58).startswith("weak but measurable")
    assert v(0.65, 0.75).startswith("measurable membership leak")
    assert v(0.85, 0.95).startswith("strong membership leak")
    assert v(0.40, 0.48).startswith("no membership leak of this kind")


def tiny_training_checkpoint(path, **model_cfg):
    """A training checkpoint of a tiny DCGAN (the fields gan.checkpoint.load checks), with a random D;
    ``model_cfg`` changes its model config (``class_names=[...]``: a conditional one)."""
    from gan import checkpoint as ckpt_io
    from gan.config import FORMAT_VERSION, RunConfig

    cfg = RunConfig.from_dict({"model": "dcgan", "model_cfg": {"resolution": 32, "z_dim": 8, "ngf": 4, "ndf": 4,
                                                               **model_cfg}})
    torch.manual_seed(0)
    G, D = cfg.spec.build(cfg.model_cfg)[:2]
    ckpt = {"kind": ckpt_io.KIND_TRAIN, "version": FORMAT_VERSION, "model": "dcgan", "config": cfg.to_json(),
            "G": G.state_dict(), "D": D.state_dict(), "G_ema": G.state_dict(), "opt": {}, "nimg": 1234, "phase": 0,
            "time_s": 0.0, "data_epoch": 0, "data_pos": 0,
            "rng": {k: torch.zeros(1, dtype=torch.uint8) for k in ("noise", "aug", "torch")}, "info": "{}"}
    ckpt_io.save(ckpt, path)
    return D


def test_discriminator_file_round_trip_and_refusal(tmp_path):
    D = tiny_training_checkpoint(tmp_path / "checkpoint.pt")
    out = P.save_discriminator(tmp_path / "checkpoint.pt", tmp_path / "discriminator.pt")
    doc = torch.load(out, weights_only=True)  # code-free by construction
    assert doc["kind"] == P.KIND_DISCRIMINATOR and json.loads(doc["info"])["nimg"] == 1234
    D2, cfg, info = P.load_discriminator(out)
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    assert torch.allclose(D.eval()(x), D2(x)) and info["nimg"] == 1234
    # A file carrying a pickled callable is refused, and nothing in it runs.
    evil = tmp_path / "evil.pt"
    torch.save({"kind": P.KIND_DISCRIMINATOR, "hook": pickle.loads(pickle.dumps(print))}, evil)
    assert zipfile.is_zipfile(evil)
    with pytest.raises(ValueError, match="refused"):
        P.load_discriminator(evil)
    with pytest.raises(ValueError, match="not a discriminator file"):
        P.load_discriminator(tmp_path / "missing.pt")


def test_discriminator_file_names_its_data_but_no_folder_of_the_machine(tmp_path):
    from gan import checkpoint as ckpt_io
    from gan.config import RunConfig

    tiny_training_checkpoint(tmp_path / "checkpoint.pt")
    ckpt = ckpt_io.load(tmp_path / "checkpoint.pt", kinds=(ckpt_io.KIND_TRAIN,))
    data = tmp_path / "private" / "isic2017"
    cfg = ckpt["config"]
    ckpt["config"] = cfg.replace(data=dataclasses.replace(cfg.data, path=str(data), cache_dir=str(tmp_path / "cache"),
                                                          name="isic2017", sha256="ab" * 32))
    out = P.save_discriminator(ckpt, tmp_path / "discriminator.pt")
    text = torch.load(out, weights_only=True)["config"]
    assert str(tmp_path) not in text
    saved = RunConfig.from_json(text).data
    assert (saved.path, saved.cache_dir, saved.name, saved.sha256) == (None, None, "isic2017", "ab" * 32)


def test_white_box_attack_runs_with_a_discriminator():
    from gan.config import RunConfig

    raw = lesion_images(80, 32, seed=1)
    mem, non = Images(raw, "m"), Images(lesion_images(80, 32, seed=2), "h")
    cfg = RunConfig.from_dict({"model": "dcgan", "model_cfg": {"resolution": 32, "z_dim": 8, "ngf": 4, "ndf": 4}})
    torch.manual_seed(0)
    D = cfg.spec.build(cfg.model_cfg)[1].eval()
    rep, _ = P.audit(ReplayGenerator(raw), mem, non, n=100, D=D, d_info={"discriminator": "made"}, bootstrap=50,
                     pairs=1, progress=False)
    a = rep["attacks"]["discriminator"]
    assert 0 <= a["auc"] <= 1 and a["n_members"] == 80 and a["discriminator"] == "made"


def test_cli_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    gen = write_tiny_generator(tmp_path / "run" / "generator.pt", resolution=32)
    for name, seed in (("train", 1), ("held", 2)):
        (tmp_path / name).mkdir()
        for i, img in enumerate(lesion_images(12, 32, seed=seed)):
            Image.fromarray(img).save(tmp_path / name / f"{name}{i:03d}.png")
    rc = P.main(["--checkpoint", str(gen), "--real", str(tmp_path / "train"), "--heldout", str(tmp_path / "held"),
                 "--n", "50", "--bootstrap", "20", "--pairs", "2", "--derm-encoder", "none", "--out",
                 str(tmp_path / "out"), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == P.FORMAT and doc["n_samples"] == 50 and doc["n_members"] == 12
    assert "auc" in doc["attacks"]["distance_pixel"] and "unavailable" in doc["attacks"]["discriminator"]
    assert (tmp_path / "out" / "closest-pairs.png").is_file()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["privacy"]["attacks"]["distance_pixel"]["auc"] == doc["attacks"]["distance_pixel"]["auc"]
    # Sets and files by name and content hash, never by this machine's path (the command line too).
    from gan.data import load_dataset
    from gan.data.dataset import content_sha256

    assert str(tmp_path) not in json.dumps(saved["privacy"])
    for key, folder in (("members", "train"), ("nonmembers", "held")):
        want = content_sha256(load_dataset(tmp_path / folder, size=32, progress=False))
        assert doc[key] == {"source": folder, "name": folder, "sha256": want, "split": None, "count": 12}
    assert doc["generator"]["path"] == "run/generator.pt"
    assert doc["command"].startswith("python -m eval.privacy --checkpoint run/generator.pt --real train --heldout held")
