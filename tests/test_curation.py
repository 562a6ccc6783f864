"""gan.synthesize --keep-if-classifier: candidates in latent order, the accepted ones kept until each class
has its count, byte-identical reruns, a threshold of 0 that writes the uncurated set, the manifest's
counts, the provider found by its entry point (or one line when there is none), and eval.curation's
real-only classifier judging a tiny generator's samples, its set read back by eval.utility."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from eval.testing import lesion_images
from gan import hooks, load_generator
from gan.synthesize import CHUNK, FILTER_GROUP, FILTER_PROVIDER, main

CLASSES = ("melanoma", "nevus")


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    """A tiny conditional DCGAN (32 px) whose samples differ from latent to latent: untrained weights scaled
    up (an untrained one draws flat grey), BatchNorm's running variance 1. Torch runs on one thread while
    the module's tests use it: tiny networks run fastest so, and do not fight a busy CPU."""
    from gan.checkpoint import export_generator
    from gan.config import RunConfig
    from gan.data import DataConfig
    from gan.models import get_model

    spec = get_model("dcgan")
    cfg = spec.Config(class_names=CLASSES, resolution=32, ngf=4, ndf=4, z_dim=8)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = spec.build_generator(cfg)
    state = {k: v * 30 if v.dim() == 4 else torch.ones_like(v) if k.endswith("running_var") else v
             for k, v in net.state_dict().items()}
    run = RunConfig(model="dcgan", model_cfg=cfg, data=dataclasses.replace(DataConfig(size=32), class_counts=None))
    path = export_generator({"model": "dcgan", "config": run, "G_ema": state, "info": {"nimg": 0}},
                            tmp_path_factory.mktemp("gen") / "cond.pt")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield path
    torch.set_num_threads(threads)


class Stub:
    """A sample-filter provider whose p(label | image) is a fixed function of the pixels (spread over 0..0.99)."""

    info = {"stub": True}
    summary = "a stub"

    @staticmethod
    def sample_filter(real, classes, size, **kw):
        return Stub()

    @staticmethod
    def proba(images: np.ndarray, label: str) -> np.ndarray:
        return ((images.astype(np.int64).sum((1, 2, 3)) + 37 * CLASSES.index(label)) % 100) / 100


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setattr(hooks, "_REGISTERED", {})
    hooks.register(FILTER_PROVIDER, Stub, group=FILTER_GROUP)


def synth(gen, out, per_class: str, *extra: str) -> int:
    return main(["--checkpoint", str(gen), "--out", str(out), "--per-class", per_class, "--quiet", *extra])


def candidates(gen, label: str, n: int, seed: int = 0) -> np.ndarray:
    """The first ``n`` candidates of a class, drawn as gan.synthesize draws them (passes of CHUNK)."""
    G = load_generator(gen)
    return G.synthesize(G.latents(n, seed * 1000 + G.class_index(label)), batch_size=CHUNK, labels=label)


def files(out) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("manifest.json", "README.md")}


def test_curation_keeps_the_first_accepted_candidates_exactly_the_quota_and_counts_them(tmp_path, gen, stub):
    assert synth(gen, tmp_path / "a", "melanoma=20,nevus=3", "--keep-if-classifier", "REAL",
                 "--keep-threshold", "0.95", "--layout", "imagefolder") == 0
    m = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert m["complete"] and m["class_counts"] == {"melanoma": 20, "nevus": 3}
    cur = m["curation"]
    assert cur["threshold"] == 0.95 and cur["filter"] == {"stub": True} and cur["max_candidates_per_image"] == 50
    for c, quota in (("melanoma", 20), ("nevus", 3)):
        cand = candidates(gen, c, 3 * CHUNK)
        want = np.flatnonzero(Stub.proba(cand, c) >= 0.95)[:quota]
        assert len(want) == quota and (c != "melanoma" or want[-1] >= CHUNK)  # melanoma needs a second pass
        rows = [f for f in m["files"] if f["class"] == c]
        assert [f["latent_index"] for f in rows] == want.tolist()
        for f, j in zip(rows, want):
            assert np.array_equal(np.asarray(Image.open(tmp_path / "a" / f["file"])), cand[j])
        s = cur["per_class"][c]
        assert s == {"quota": quota, "drawn": int(want[-1]) + 1, "kept": quota, "acceptance": quota / (want[-1] + 1)}
        assert s["acceptance"] < 0.5
    readme = (tmp_path / "a" / "README.md").read_text()
    assert f"- **Curated**: a sample was kept only when a stub gave its class a probability >= 0.95; candidates " \
           f"kept per class: melanoma 20 of {m['curation']['per_class']['melanoma']['drawn']} (" in readme
    # the same command: byte-identical images, the same latents and counts
    assert synth(gen, tmp_path / "b", "melanoma=20,nevus=3", "--keep-if-classifier", "REAL",
                 "--keep-threshold", "0.95", "--layout", "imagefolder") == 0
    m2 = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert files(tmp_path / "a") == files(tmp_path / "b") and len(files(tmp_path / "a")) == 23
    assert (m2["files"], m2["curation"]) == (m["files"], m["curation"])


def test_threshold_zero_writes_exactly_the_uncurated_set(tmp_path, gen, stub):
    # 5 x z_dim (8) = 40 numbers, not whole blocks of torch's sampler: still the stream's first 5 latents
    assert synth(gen, tmp_path / "plain", "melanoma=6,nevus=5") == 0
    assert synth(gen, tmp_path / "zero", "melanoma=6,nevus=5", "--keep-if-classifier", "REAL",
                 "--keep-threshold", "0") == 0
    plain, zero = files(tmp_path / "plain"), files(tmp_path / "zero")
    assert plain == zero and len(plain) == 12  # 11 PNGs and the ground-truth CSV, bit for bit
    m = json.loads((tmp_path / "zero" / "manifest.json").read_text())
    assert [f["latent_index"] for f in m["files"]] == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4]
    assert m["curation"]["per_class"]["nevus"] == {"quota": 5, "drawn": 5, "kept": 5, "acceptance": 1.0}
    assert "curation" not in json.loads((tmp_path / "plain" / "manifest.json").read_text())


def test_a_class_that_keeps_too_few_within_the_cap_is_one_line_with_its_rate(tmp_path, gen, stub, capsys):
    assert synth(gen, tmp_path / "o", "melanoma=2", "--keep-if-classifier", "REAL", "--keep-threshold", "0.999") == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert err == ["error: --keep-if-classifier: class melanoma: 0 of 100 candidates have p(class) >= 0.999 "
                   "(acceptance 0.0%), fewer than the 2 asked for within 50 candidates per image; lower "
                   "--keep-threshold or ask for fewer"]
    assert json.loads((tmp_path / "o" / "manifest.json").read_text())["complete"] is False


def test_no_provider_and_bad_options_are_one_line_before_any_work(tmp_path, gen, monkeypatch, capsys):
    import importlib.metadata

    monkeypatch.setattr(hooks, "_REGISTERED", {})
    monkeypatch.setattr(importlib.metadata, "distributions", lambda: [])
    cases = [(["--keep-if-classifier", "REAL"], "--keep-if-classifier: no installed package provides 'classifier' "
                                                "(entry-point group lesiongan.sample_filters; "),
             (["--keep-threshold", "0.5"], "--keep-threshold goes with --keep-if-classifier REAL"),
             (["--keep-if-classifier", "REAL", "--keep-threshold", "1.5"], "--keep-threshold must be in 0..1, got 1.5"),
             (["--keep-if-classifier", "REAL", "--keep-seeds", "0"], "--keep-seeds must be at least 1, got 0")]
    for extra, why in cases:
        assert synth(tmp_path / "no-such.pt", tmp_path / "o", "melanoma=2", *extra) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith(f"error: {why}"), err
    assert not (tmp_path / "o").exists()


def test_an_unconditional_model_is_refused(tmp_path, stub, capsys):
    from eval.testing import write_tiny_generator

    g = write_tiny_generator(tmp_path / "g.pt", resolution=32)
    assert main(["--checkpoint", str(g), "--out", str(tmp_path / "o"), "--n", "3", "--quiet",
                 "--keep-if-classifier", "REAL"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --keep-if-classifier needs a conditional model: an "
                                               "unconditional sample has no label to agree with")


# -- eval.curation: the real-only classifier, found by its entry point ----------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """Labelled real images at 32 px: melanoma dark discs on skin, nevus the same images inverted."""
    root = tmp_path_factory.mktemp("real")
    for ci, c in enumerate(CLASSES):
        (root / "real" / c).mkdir(parents=True)
        for i, img in enumerate(lesion_images(12, 32, seed=ci)):
            Image.fromarray(img if ci == 0 else 255 - img).save(root / "real" / c / f"r{i:02d}.png")
    return root


def test_the_real_only_classifier_judges_the_samples_and_eval_utility_reads_the_set(tmp_path, gen, real, monkeypatch):
    from eval.curation import sample_filter
    from eval.utility import SyntheticSource
    from gan.data import load_dataset
    from gan.data.dataset import content_sha256

    monkeypatch.setattr(hooks, "_REGISTERED", {})  # the provider comes from the package's entry point
    monkeypatch.setenv("LESIONGAN_CACHE", str(real / "cache"))
    flt = sample_filter(str(real / "real"), list(CLASSES), 32, steps=2, progress=False)  # trained, cached
    assert list((real / "cache" / "classifiers").glob("real-classifier-s0-*.pt"))
    cand = {c: candidates(gen, c, CHUNK) for c in CLASSES}
    p = {c: flt.proba(cand[c], c) for c in CLASSES}
    t = float(min(np.median(p[c]) for c in CLASSES))  # half or more of each class passes, not all of one
    assert synth(gen, tmp_path / "o", "melanoma=5,nevus=3", "--keep-if-classifier", str(real / "real"),
                 "--keep-steps", "2", "--keep-threshold", repr(t), "--layout", "imagefolder") == 0
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    for c, quota in (("melanoma", 5), ("nevus", 3)):
        want = np.flatnonzero(p[c] >= t)[:quota]
        assert [f["latent_index"] for f in m["files"] if f["class"] == c] == want.tolist()
        assert m["curation"]["per_class"][c]["kept"] == quota
    assert min(s["acceptance"] for s in m["curation"]["per_class"].values()) < 1
    info = m["curation"]["filter"]
    ds = load_dataset(real / "real", size=32, progress=False)
    assert info["real"]["sha256"] == content_sha256(ds) and info["real"]["name"] == "real"
    assert info["real"]["trained_on"] == 24 and info["seeds"] == [0] and info["recipe"]["steps"] == 2
    assert "a classifier trained on real images alone (`real`, 24 images" in (tmp_path / "o" / "README.md").read_text()
    # eval.utility --synthetic takes the curated folder as a labelled synthetic set
    src = SyntheticSource(str(tmp_path / "o"), list(CLASSES), size=32)
    assert src.kind == "folder" and src.info["counts"] == {"melanoma": 5, "nevus": 3}
    x, y = src.images({"melanoma": 5, "nevus": 3}, seed=0)
    assert x.shape == (8, 3, 32, 32) and sorted(y.tolist()) == [0] * 5 + [1] * 3


def test_filter_averages_the_seeds_and_refuses_a_class_the_real_set_lacks(tmp_path, real):
    from eval.classifier import make_network, predict_proba
    from eval.curation import ClassifierFilter, sample_filter
    from eval.utility import RECIPE_V2

    torch.manual_seed(0)
    nets = (make_network(RECIPE_V2, 2).eval(), make_network(RECIPE_V2, 2).eval())
    x = lesion_images(6, 32, seed=5)
    got = ClassifierFilter(nets, CLASSES, {}).proba(x, "nevus")
    t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    assert np.allclose(got, (predict_proba(nets[0], t)[:, 1] + predict_proba(nets[1], t)[:, 1]) / 2, atol=0, rtol=1e-6)
    with pytest.raises(ValueError, match=r"^--keep-if-classifier .*real: no real images of class "
                                         r"seborrheic_keratosis \(it has melanoma, nevus\)"):
        sample_filter(str(real / "real"), [*CLASSES, "seborrheic_keratosis"], 32, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=r"^--keep-if-classifier .*nowhere: no such data set$"):
        sample_filter(str(real / "nowhere"), list(CLASSES), 32, cache_dir=tmp_path)
