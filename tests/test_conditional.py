"""Class-conditional models: shapes and parameter counts, labels that change the output and reproduce
it, a projection D that scores classes differently, a tiny run that learns to follow the label, the
loader's class API, and synthetic data sets written and read back."""
import csv
import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from eval.testing import lesion_images
from gan import load_generator
from gan.config import RunConfig, TrainConfig
from gan.data import DataConfig, load_dataset
from gan.loop import training_loop
from gan.models import get_model
from gan.models.base import count_params
from gan.models.conditioning import ConditionalConfig
from gan.rundir import RunDir
from gan.synthesize import main as synth_main
from gan.train import main as train_main

CLASSES = ("melanoma", "nevus", "seborrheic_keratosis")
MODELS = ["dcgan", "pggan", "pggan-seed"]


def cond(model: str, classes=CLASSES, **kw):
    spec = get_model(model)
    return spec, spec.Config(class_names=tuple(classes), **kw)


def stage_kw(spec, cfg):
    st = spec.schedule(cfg, 10 ** 7)  # the final stage
    return {"resolution": st.resolution, "alpha": st.alpha}


@pytest.mark.parametrize("model", MODELS)
def test_conditional_networks_add_exactly_the_embedding_and_the_projection(model):
    spec = get_model(model)
    base, c = spec.Config(), cond(model)[1]
    G0, D0 = spec.build(base)
    G1, D1 = spec.build(c)
    first = {"dcgan": lambda cfg: 512 * 16, "pggan-seed": lambda cfg: 512 * 16,
             "pggan": lambda cfg: cfg.channels(4) * 16}[model](base)  # weights per z input of G's first layer
    d_feat = base.channels(4) if model == "pggan" else 512
    assert count_params(G1) - count_params(G0) == 3 * c.embed_dim + c.embed_dim * first
    assert count_params(D1) - count_params(D0) == 3 * d_feat
    if model == "dcgan":  # the report's networks are untouched when unconditional
        assert (count_params(G0), count_params(D0)) == (3_576_704, 2_765_568)


@pytest.mark.parametrize("model", MODELS)
def test_labels_change_the_output_and_the_same_seed_and_label_reproduce_it(model):
    spec, c = cond(model)
    torch.manual_seed(0)
    G, D = spec.build(c)
    G.eval()
    kw = stage_kw(spec, c)
    z = torch.randn(4, c.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a = G(z, labels=torch.zeros(4, dtype=torch.long), **kw)
        b = G(z, labels=torch.ones(4, dtype=torch.long), **kw)
        a2 = G(z, labels=torch.zeros(4, dtype=torch.long), **kw)
        assert a.shape == (4, 3, c.resolution, c.resolution)
        assert torch.equal(a, a2) and (a - b).abs().mean() > 1e-4
        # D scores one image differently for different classes (the projection term)...
        x = a[:1].repeat(3, 1, 1, 1)
        scores = D.eval()(x, labels=torch.arange(3), **kw)
        assert scores.shape == (3,) and len(set(scores.tolist())) == 3
    with pytest.raises(ValueError, match="conditional .*pass labels"):
        G(z, **kw)
    with pytest.raises(ValueError, match="labels must lie in 0..2"):
        G(z, labels=torch.full((4,), 3), **kw)
    with pytest.raises(ValueError, match="at least two classes"):
        spec.Config(class_names=("melanoma",))
    # one conditioning config for every model: its fields and checks, the model named in the message
    assert issubclass(spec.Config, ConditionalConfig) and spec.Config().num_classes == 0
    with pytest.raises(ValueError, match=f"^{spec.name} embed_dim must be positive, got 0$"):
        spec.Config(embed_dim=0)
    with pytest.raises(ValueError, match=f"^{spec.name}: class_names must be distinct"):
        spec.Config(class_names=("a", "a"))


def _two_colour_classes(n=64, size=32):
    a = torch.from_numpy(lesion_images(n, size, seed=1)).permute(0, 3, 1, 2).contiguous()
    b = a.flip(1).contiguous()  # the same lesions with red and blue swapped: bluish
    return torch.cat([a, b]), torch.tensor([0] * n + [1] * n)


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A tiny conditional DCGAN trained on reddish (class "red") and bluish ("blue") images."""
    images, labels = _two_colour_classes()
    cfg = RunConfig(model="dcgan", model_cfg=get_model("dcgan").Config(
        resolution=32, batch=16, ngf=32, ndf=32, z_dim=16, class_names=("red", "blue")),
        train=TrainConfig(kimg=1.6, log_kimg=0.32, snapshot_kimg=1.6, grid_kimg=1.6, grid_size=4),
        data=DataConfig(size=32, class_counts={"red": 64, "blue": 64}))
    run = RunDir(tmp_path_factory.mktemp("cond") / "run").open_for_writing()
    run.write_config(cfg)
    training_loop(run, cfg, images, labels=labels, progress=False)
    return run, images


def test_a_tiny_conditional_run_learns_to_follow_the_label(colour_run):
    run, images = colour_run
    G = load_generator(run.path)
    assert G.class_names == ["red", "blue"]
    red = G.generate(128, seed=5, labels="red").astype(float).mean((0, 1, 2))
    blue = G.generate(128, seed=5, labels="blue").astype(float).mean((0, 1, 2))
    real_red = images[:64].float().mean((0, 2, 3)).numpy()
    real_blue = images[64:].float().mean((0, 2, 3)).numpy()
    assert np.linalg.norm(red - real_red) < np.linalg.norm(red - real_blue)
    assert np.linalg.norm(blue - real_blue) < np.linalg.norm(blue - real_red)
    assert red[0] - red[2] > 5 and blue[2] - blue[0] > 5  # more red than blue, and the reverse


def test_the_loader_takes_names_indices_or_one_label_per_image(colour_run):
    run, _ = colour_run
    G = load_generator(run.path)
    a = G.generate(6, seed=3, labels="blue")
    assert np.array_equal(a, G.generate(6, seed=3, labels=1))
    mixed = G.generate(6, seed=3, labels=["red", "blue", 0, 1, "red", "blue"])
    assert np.array_equal(mixed[1::2], a[1::2])
    with pytest.raises(ValueError, match="unknown class 'green'; this model knows red, blue"):
        G.generate(2, labels="green")
    # No labels: classes drawn in the training shares (here 1:1), reproducible per seed.
    drawn = G.labels_for(1000, None, seed=4)
    assert torch.equal(drawn, G.labels_for(1000, None, seed=4)) and 400 < int(drawn.sum()) < 600
    assert torch.equal(G.labels_for(10, None, seed=4), drawn[:10])
    uncond = load_generator(_tiny_unconditional(run.path.parent))
    with pytest.raises(ValueError, match="unconditional"):
        uncond.generate(2, labels="red")


def _tiny_unconditional(folder):
    from eval.testing import write_tiny_generator
    return write_tiny_generator(folder / "uncond.pt")


@pytest.mark.usefixtures("quick_bn")
def test_balanced_sampling_resumes_exactly(tmp_path):
    images, labels = _two_colour_classes(n=24)
    labels[:40] = 0  # 40 red, 8 blue
    mcfg = get_model("dcgan").Config(resolution=32, batch=16, ngf=8, ndf=8, z_dim=8, class_names=("red", "blue"))

    def cfg(kimg):
        return RunConfig(model="dcgan", model_cfg=mcfg, data=DataConfig(size=32),
                         train=TrainConfig(kimg=kimg, log_kimg=0.016, snapshot_kimg=0.064, grid_kimg=1, grid_size=4,
                                           balance=True))

    full = training_loop(RunDir(tmp_path / "full").open_for_writing(), cfg(0.128), images, labels=labels,
                         progress=False)
    half = RunDir(tmp_path / "half").open_for_writing()
    training_loop(half, cfg(0.064), images, labels=labels, progress=False)
    resume = half.load_checkpoint()
    training_loop(half, cfg(0.128), images, labels=labels, resume=resume, progress=False)
    a, b = RunDir(full.run_dir).load_checkpoint(), half.load_checkpoint()
    for k in a["G"]:
        assert torch.equal(a["G"][k], b["G"][k]), k


def test_cond_on_unlabelled_data_is_refused_naming_the_folder(tmp_path, capsys):
    d = tmp_path / "plain"
    d.mkdir()
    for i, img in enumerate(lesion_images(4, 48)):
        Image.fromarray(img).save(d / f"{i}.png")
    assert train_main(["--model", "dcgan", "--size", "32", "--cond", "--data", str(d), "--out", str(tmp_path / "r"),
                       "--cache-dir", str(tmp_path / "c"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"--cond: {d} has no labels" in err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("layout", ["isic2017", "imagefolder"])
def test_synthesize_writes_a_set_that_reads_back_with_exact_counts(tmp_path, layout, conditional_file):
    out = tmp_path / "syn"
    per = {"melanoma": 5, "seborrheic_keratosis": 3, "nevus": 4}
    args = ["--checkpoint", str(conditional_file), "--out", str(out), "--per-class",
            ",".join(f"{k}={v}" for k, v in per.items()), "--layout", layout, "--seed", "7", "--quiet"]
    assert synth_main(args) == 0
    ds = load_dataset(out, size=32, cache_dir=tmp_path / "cache", progress=False)
    assert ds.class_counts() == {"melanoma": 5, "nevus": 4, "seborrheic_keratosis": 3}
    m = json.loads((out / "manifest.json").read_text())
    assert m["count"] == 12 and m["synthetic"] and len(m["generator"]["sha256"]) == 64
    assert [f["class"] for f in m["files"]] == ["melanoma"] * 5 + ["seborrheic_keratosis"] * 3 + ["nevus"] * 4
    assert "synthetic" in (out / "README.md").read_text()
    if layout == "isic2017":
        rows = list(csv.DictReader(open(out / "ISIC-2017_Training_Part3_GroundTruth.csv")))
        assert [r["image_id"] for r in rows] == [f"SYN_{i:07d}" for i in range(1, 13)]
        assert [(r["melanoma"], r["seborrheic_keratosis"]) for r in rows] == \
            [("1.0", "0.0")] * 5 + [("0.0", "1.0")] * 3 + [("0.0", "0.0")] * 4
    else:
        from torchvision.datasets import ImageFolder
        tv = ImageFolder(str(out / "images")) if (out / "images").is_dir() else None
        assert tv is None
        folders = sorted(p.name for p in out.iterdir() if p.is_dir())
        assert folders == ["melanoma", "nevus", "seborrheic_keratosis"]


def test_synthesize_is_deterministic_and_refuses_what_it_must(tmp_path, conditional_file, capsys):
    args = ["--checkpoint", str(conditional_file), "--per-class", "melanoma=3,nevus=2", "--quiet"]
    assert synth_main([*args, "--out", str(tmp_path / "a")]) == 0
    assert synth_main([*args, "--out", str(tmp_path / "b")]) == 0
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    for f in files:
        if f.name != "manifest.json" and f.name != "README.md":
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    capsys.readouterr()
    assert synth_main([*args, "--out", str(tmp_path / "a")]) == 2  # not empty
    assert "not empty" in capsys.readouterr().err
    assert synth_main([*args, "--out", str(tmp_path / "a"), "--overwrite"]) == 0
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    assert synth_main([*args, "--out", str(tmp_path / "mine"), "--overwrite"]) == 2
    assert (tmp_path / "mine" / "thesis.tex").exists()
    for bad, why in ((["--per-class", "psoriasis=2"], "unknown class 'psoriasis'"),
                     (["--per-class", "melanoma=300000"], "over the 200,000"),
                     (["--n", "5"], "conditional: say how many of each class with --per-class")):
        assert synth_main(["--checkpoint", str(conditional_file), "--out", str(tmp_path / "x"), "--quiet",
                           *bad]) == 2
        assert why in capsys.readouterr().err
    assert not list(tmp_path.glob("**/.*.tmp"))


def test_sample_draws_the_class_asked_for(tmp_path, conditional_file):
    from gan.sample import main as sample_main

    assert sample_main(["--checkpoint", str(conditional_file), "--n", "3", "--out", str(tmp_path / "s"),
                        "--class", "nevus", "--seed", "2"]) == 0
    G = load_generator(conditional_file)
    want = G.generate(3, seed=2, labels="nevus")
    for i in range(3):
        got = np.asarray(Image.open(tmp_path / "s" / f"nevus-seed0002-{i:05d}.png"))
        assert np.array_equal(got, want[i])
    # Without --class, batches do not restart the class draw: the same images as one big batch.
    assert sample_main(["--checkpoint", str(conditional_file), "--n", "5", "--batch", "2",
                        "--out", str(tmp_path / "m")]) == 0
    mix = G.generate(5, seed=0)
    assert all(np.array_equal(np.asarray(Image.open(tmp_path / "m" / f"seed0000-{i:05d}.png")), mix[i])
               for i in range(5))


@pytest.fixture(scope="module")
def conditional_file(tmp_path_factory):
    """An untrained conditional DCGAN file with the ISIC 2017 classes (32 px, tiny)."""
    from gan.checkpoint import export_generator

    spec, c = cond("dcgan", resolution=32, ngf=4, ndf=4, z_dim=8)
    torch.manual_seed(0)
    G = spec.build_generator(c)
    cfg = RunConfig(model="dcgan", model_cfg=c, data=dataclasses.replace(DataConfig(size=32), class_counts=None))
    return export_generator({"model": "dcgan", "config": cfg, "G_ema": G.state_dict(), "info": {"nimg": 0}},
                            tmp_path_factory.mktemp("gen") / "cond.pt")


def test_eval_scores_one_class_against_that_class_s_real_images(tmp_path, conditional_file):
    from eval import evaluate
    from eval.run import main as eval_main

    data = tmp_path / "labelled"
    for c, n, seed in (("melanoma", 7, 1), ("nevus", 5, 2)):
        (data / c).mkdir(parents=True)
        for i, img in enumerate(lesion_images(n, 32, seed=seed)):
            Image.fromarray(img).save(data / c / f"{c}{i}.png")
    kw = dict(metrics=["hist_js"], n=16, size=32)
    r = evaluate(data, conditional_file, label="melanoma", **kw)
    assert r["n_real"] == 7 and r["n_fake"] == 16 and r["class"] == "melanoma"
    assert r["real"]["class"] == r["fake"]["class"] == "melanoma"
    # The same number as scoring the class's images against samples drawn for that class by hand.
    fake = load_generator(conditional_file).generate(16, seed=0, labels="melanoma")
    real = np.stack([np.asarray(Image.open(p)) for p in sorted((data / "melanoma").iterdir())])
    assert r["js_rgb_hist64"] == pytest.approx(evaluate(real, fake, **kw)["js_rgb_hist64"], abs=1e-12)
    with pytest.raises(ValueError, match="no real images of that class"):
        evaluate(data, conditional_file, label="seborrheic_keratosis", **kw)
    with pytest.raises(ValueError, match="unconditional"):
        evaluate(data, _tiny_unconditional(tmp_path), label="melanoma", **kw)
    assert eval_main(["--real", str(data), "--fake", str(conditional_file), "--class", "nevus", "--n", "8", "--size", "32",
                      "--metrics", "hist_js", "--json", "--quiet"]) == 0


class ColourEncoder:
    """A stand-in for the dermoscopy encoder: its logit for "red" is an image's mean red, for "blue"
    its mean blue (and "green" its mean green), so a red image is classified red."""

    class_names = ["blue", "green", "red"]
    metric_version, sha256 = "stand-in", None

    def logits(self, images):
        return np.asarray(images, dtype=float).mean(axis=(1, 2))[:, ::-1]  # columns B, G, R


def test_class_consistency_of_a_model_that_follows_its_labels(colour_run):
    from types import SimpleNamespace

    from eval.consistency import class_consistency, encoder_columns, markdown

    run, images = colour_run
    G = load_generator(run.path)
    real = SimpleNamespace(images=images, labels=["red"] * 64 + ["blue"] * 64, source="made")
    res = class_consistency(ColourEncoder(), G, n=64, seed=1, real=real)
    assert res["classes"] == ["red", "blue"] and res["real"] == {"red": 1.0, "blue": 1.0}
    assert res["fake"]["red"] > 0.8 and res["fake"]["blue"] > 0.8
    assert np.allclose(np.sum(res["fake_confusion"], axis=1), 1.0)
    assert "| red | " in markdown(res)
    # ISIC 2017's seborrheic keratosis is judged by HAM10000's broader benign keratosis column.
    enc = SimpleNamespace(class_names=["nevus", "benign_keratosis", "melanoma"])
    assert encoder_columns(enc, ["melanoma", "nevus", "seborrheic_keratosis"]) == [2, 0, 1]
    with pytest.raises(ValueError, match="no class for 'dermatofibroma'"):
        encoder_columns(enc, ["dermatofibroma"])
    with pytest.raises(ValueError, match="unconditional"):
        class_consistency(ColourEncoder(), load_generator(_tiny_unconditional(run.path.parent)))
