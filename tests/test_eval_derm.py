"""The ``*_derm`` metrics: the shipped dermoscopy encoder as a torch-fidelity feature extractor, each
metric against a hand computation or its reference implementation, what the metrics see through the
encoder on made lesions, memorization in feature space, fingerprints holding the features."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image, ImageFilter

from eval import evaluate, load_fingerprint, make_fingerprint, save_fingerprint, sources
from eval.keys import (KEY_COPY_RATE_DERM, KEY_COVERAGE_DERM, KEY_DENSITY_DERM, KEY_FD_DERM, KEY_KID_DERM,
                       KEY_KID_DERM_STD, KEY_PRECISION_DERM, KEY_RECALL_DERM)
from eval.metrics import derm
from eval.metrics.fid import fid_from_features
from eval.metrics.kid import kid_from_features
from eval.run import main as run_main
from eval.testing import lesion_images

DERM = ["fd_derm", "kid_derm", "precision_derm", "recall_derm", "density_derm", "coverage_derm"]
KEYS = [KEY_FD_DERM, KEY_KID_DERM, KEY_PRECISION_DERM, KEY_RECALL_DERM, KEY_DENSITY_DERM, KEY_COVERAGE_DERM]
SIZE = 32  # made images; the encoder sees them resized to 64 px


@pytest.fixture(scope="module")
def enc():
    return derm.load(derm.encoder_file())


def _gaussians(n=400, d=6, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, (n, d)) @ rng.normal(0, 0.6, (d, d))
    b = rng.normal(0.3, 1, (n, d)) @ rng.normal(0, 0.6, (d, d))
    return a.astype(np.float32), b.astype(np.float32)


# -- the metric functions against hand computations ----------------------------------------------

def test_frechet_distance_is_the_formula():
    a, b = _gaussians()
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    m1, m2, s1, s2 = a64.mean(0), b64.mean(0), np.cov(a64, rowvar=False), np.cov(b64, rowvar=False)
    hand = ((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert fid_from_features(a, b) == pytest.approx(hand, rel=1e-5)
    assert abs(fid_from_features(a, a)) < 1e-6


def test_kid_is_the_unbiased_mmd_of_a_cubic_kernel():
    a, b = _gaussians(60, 5)
    k = lambda x, y: (x.astype(np.float64) @ y.T.astype(np.float64) / x.shape[1] + 1) ** 3  # noqa: E731
    m = len(a)
    kxx, kyy, kxy = k(a, a), k(b, b), k(a, b)
    hand = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    mean, std = kid_from_features(a, b, subset_size=m, subsets=1)  # one subset of all: a permutation
    assert mean == pytest.approx(hand, rel=1e-5) and std == 0.0


def test_precision_recall_are_kynkaanniemi_by_brute_force():
    real, fake = _gaussians(80, 4, seed=1)
    k = derm.PRC_K

    def covered(query, bank):  # is each query inside some bank point's k-NN ball (k-th neighbour, not itself)?
        radius = np.sort(np.linalg.norm(bank[:, None] - bank[None], axis=2), axis=1)[:, k]
        return (np.linalg.norm(query[:, None] - bank[None], axis=2) <= radius[None]).any(1)

    p, r = derm.prc_from_features(real, fake)
    assert p == pytest.approx(covered(fake, real).mean(), abs=1e-6)
    assert r == pytest.approx(covered(real, fake).mean(), abs=1e-6)
    assert 0 < p < 1 and 0 < r < 1


def test_density_coverage_are_prdcs(capsys):
    from prdc import compute_prdc

    real, fake = _gaussians(120, 5, seed=2)
    d, c = derm.density_coverage_from_features(real, fake)
    assert capsys.readouterr().out == ""  # prdc's print is kept off stdout (it carries --json)
    ref = compute_prdc(real, fake, nearest_k=derm.DC_K)
    assert (d, c) == (pytest.approx(ref["density"]), pytest.approx(ref["coverage"]))
    d0, c0 = derm.density_coverage_from_features(real, real)
    assert c0 == 1.0 and d0 > 0.9


# -- the encoder through torch-fidelity ----------------------------------------------------------

def test_the_encoder_is_a_registered_torch_fidelity_extractor(enc):
    import torch_fidelity
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    from eval.metrics.derm_extractor import EXTRACTOR_NAME, FeatureExtractorDerm, _Images

    assert FEATURE_EXTRACTORS_REGISTRY[EXTRACTOR_NAME] is FeatureExtractorDerm
    x, y = lesion_images(24, SIZE, 0), lesion_images(24, SIZE, 1)
    f = derm.features_of(x, enc, batch_size=7)
    np.testing.assert_allclose(f, enc.features(x), rtol=1e-4, atol=1e-4)  # the same network, resized alike
    np.testing.assert_allclose(f, derm.features_of(x, enc, batch_size=64), rtol=1e-4, atol=1e-4)
    assert f.shape == (24, 128) and f.dtype == np.float32
    # torch-fidelity's own calculate_metrics on the registered extractor gives fd_derm's number.
    out = torch_fidelity.calculate_metrics(input1=_Images(y), input2=_Images(x), fid=True, cuda=False,
                                           feature_extractor=EXTRACTOR_NAME, feature_extractor_weights_path=str(enc.path),
                                           save_cpu_ram=True, verbose=False, cache=False)
    assert out["frechet_inception_distance"] == pytest.approx(evaluate(x, y, ["fd_derm"])[KEY_FD_DERM], rel=1e-3)


# -- what the metrics see, through the shipped encoder ------------------------------------------

def _blur(x, radius):
    return np.stack([np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius))) for im in x])


@pytest.fixture(scope="module")
def real():
    return sources.resolve(lesion_images(120, SIZE, 0), "real", size=SIZE)


@pytest.fixture(scope="module")
def cache():
    return sources.FeatureCache()


def test_blur_ranks_worse_and_collapse_loses_recall_and_coverage(real, cache):
    clean = lesion_images(120, SIZE, 1)
    res = {name: evaluate(real, x, DERM, cache=cache) for name, x in
           (("clean", clean), ("blur1", _blur(clean, 1)), ("blur2", _blur(clean, 2)),
            ("collapsed", np.repeat(clean[:6], 20, axis=0)))}
    for r in res.values():
        assert r["unavailable"] == {} and set(KEYS) <= set(r) and np.isfinite(r[KEY_KID_DERM_STD])
        cfg = r["config"]["fd_derm"]
        assert (cfg["metric_version"], cfg["encoder_sha256"], cfg["n_real"], cfg["n_fake"]) == \
            ("derm1", derm.load(derm.encoder_file()).sha256, 120, 120)
        assert cfg["resize"].startswith("pil-lanczos from 32 to 64 px")
    fd = {k: r[KEY_FD_DERM] for k, r in res.items()}
    assert fd["clean"] < fd["blur1"] < fd["blur2"]
    assert res["clean"][KEY_KID_DERM] < res["blur2"][KEY_KID_DERM]
    assert res["clean"][KEY_PRECISION_DERM] > res["blur2"][KEY_PRECISION_DERM]
    for key in (KEY_RECALL_DERM, KEY_COVERAGE_DERM):
        assert res["collapsed"][key] < 0.5 * res["clean"][key], key
    assert res["clean"][KEY_COVERAGE_DERM] > 0.8 and res["clean"][KEY_RECALL_DERM] > 0.8


def _discs(n, seed, radius, lesion):
    """Lesion-like discs of one made class: radius range (share of the side) and lesion colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    out = np.empty((n, SIZE, SIZE, 3), np.uint8)
    for i in range(n):
        skin = np.array([225, 170, 150]) + rng.integers(-20, 21, 3)
        les = np.array(lesion) + rng.integers(-25, 26, 3)
        cy, cx = rng.uniform(0.35, 0.65, 2) * SIZE
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2 < (rng.uniform(*radius) * SIZE) ** 2)[..., None]
        out[i] = np.clip(np.where(inside, les, skin) + rng.normal(0, 4, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    return out


def _centroid_accuracy(fa, fb):
    """Leave-one-out nearest-centroid accuracy in the raw feature space (the geometry the metrics use)."""
    x = np.concatenate([fa, fb]).astype(np.float64)
    y = np.r_[np.zeros(len(fa), bool), np.ones(len(fb), bool)]
    sums, counts = [x[~y].sum(0), x[y].sum(0)], [len(fa), len(fb)]
    hits = 0
    for xi, yi in zip(x, y):
        c = [(sums[j] - (xi if yi == j else 0)) / (counts[j] - (yi == j)) for j in (0, 1)]
        hits += (np.linalg.norm(xi - c[1]) < np.linalg.norm(xi - c[0])) == yi
    return hits / len(x)


def test_the_shipped_encoder_separates_lesion_classes_a_random_network_does_not(enc):
    from eval.encoder import DermEncoder, EncoderNet

    small_dark = _discs(80, 10, (0.12, 0.2), [90, 50, 35])
    large_light = _discs(80, 11, (0.3, 0.4), [170, 120, 100])
    trained = _centroid_accuracy(enc.features(small_dark), enc.features(large_light))
    randoms = []
    for seed in range(3):
        torch.manual_seed(seed)
        net = DermEncoder(EncoderNet(enc.config), enc.config)  # same architecture, untrained
        randoms.append(_centroid_accuracy(net.features(small_dark), net.features(large_light)))
    assert trained >= 0.9 and trained > max(randoms) + 0.03, (trained, randoms)


# -- memorization in feature space ---------------------------------------------------------------

@pytest.fixture(scope="module")
def mem_sets():
    return {"train": lesion_images(80, SIZE, 20), "heldout": lesion_images(100, SIZE, 21)}


def test_copies_have_copy_rate_near_one_and_fresh_images_near_zero(mem_sets, cache):
    train = sources.resolve(mem_sets["train"], "real", size=SIZE)
    held = mem_sets["heldout"]
    copies = mem_sets["train"][[3, 7, 11, 20, 41, 60]].copy()
    r = evaluate(train, copies, ["memorization_derm"], heldout=held, cache=cache)
    assert r[KEY_COPY_RATE_DERM] == 1.0 and r["memorization_derm_nn_fake_median"] < 1e-4
    closest = r["details"]["memorization_derm"]["closest"]
    assert sorted(c["train_index"] for c in closest) == [3, 7, 11, 20, 41, 60]
    assert all(c["distance"] < 1e-4 and c["train_name"] == str(c["train_index"]) for c in closest)
    ex = r.extras["memorization_derm"]
    assert ex["closest_fake"].shape == ex["closest_train"].shape == (6, SIZE, SIZE, 3)
    np.testing.assert_array_equal(ex["closest_fake"], ex["closest_train"])
    assert ex["nn_heldout"].shape == (100,) and ex["copy_flags"].all() and ex["nn_index"].shape == (6,)
    assert r["config"]["memorization_derm"]["distance"] == "euclidean"
    fresh = evaluate(train, lesion_images(100, SIZE, 22), ["memorization_derm"], heldout=held, cache=cache)
    assert fresh[KEY_COPY_RATE_DERM] <= 0.05
    assert fresh["memorization_derm_nn_threshold_p1"] > 0
    json.dumps({k: v for k, v in fresh.items()})  # the result itself stays JSON


def test_without_a_heldout_set_or_with_too_few(mem_sets):
    r = evaluate(mem_sets["train"], mem_sets["train"][:12], ["memorization_derm", "fd_derm"])
    assert "held-out" in r["unavailable"]["memorization_derm"] and KEY_FD_DERM in r
    r = evaluate(mem_sets["train"], mem_sets["train"][:12], ["memorization_derm"], heldout=mem_sets["heldout"][:50])
    assert "needs at least 100" in r["unavailable"]["memorization_derm"]


# -- fingerprints ---------------------------------------------------------------------------------

def test_fingerprint_round_trip_with_features_scores_the_same(tmp_path, mem_sets, enc):
    fp = make_fingerprint(mem_sets["train"], size=SIZE, bank_size=16, n_thumbs=4)
    assert fp.meta["derm"]["metric_version"] == "derm1" and fp.meta["derm"]["encoder_sha256"] == enc.sha256
    save_fingerprint(fp, tmp_path / "t.npz")
    save_fingerprint(make_fingerprint(mem_sets["heldout"], size=SIZE, bank_size=16, n_thumbs=4), tmp_path / "v.npz")
    back = load_fingerprint(tmp_path / "t.npz")
    assert back.derm_features.dtype == np.float32 and back.derm_features.shape == (80, 128)
    np.testing.assert_array_equal(back.derm_features, fp.derm_features)
    np.testing.assert_array_equal(back.derm_sigma, fp.derm_sigma)
    np.testing.assert_allclose(back.derm_mu, back.derm_features.mean(0), rtol=1e-5, atol=1e-6)
    fake = lesion_images(40, SIZE, 30)
    metrics = DERM + ["memorization_derm"]
    a = evaluate(mem_sets["train"], fake, metrics, heldout=mem_sets["heldout"])
    b = evaluate(str(tmp_path / "t.npz"), fake, metrics, heldout=str(tmp_path / "v.npz"))
    assert b["unavailable"] == {} and b["config"]["fd_derm"]["real_features"] == "fingerprint"
    for k in KEYS + [KEY_COPY_RATE_DERM]:
        assert a[k] == pytest.approx(b[k], rel=1e-6, abs=1e-9), k
    # The closest pairs show the fingerprint's image bank for the training side.
    assert b.extras["memorization_derm"]["closest_train"].shape[1:] == (16, 16, 3)


def test_another_encoders_fingerprint_is_refused(tmp_path, mem_sets, enc):
    fp = make_fingerprint(mem_sets["train"], size=SIZE)
    fp.meta["derm"] = {**fp.meta["derm"], "metric_version": "derm0", "encoder_sha256": "0" * 64}
    save_fingerprint(fp, tmp_path / "old.npz")
    save_fingerprint(make_fingerprint(mem_sets["train"], size=SIZE, derm_encoder=False), tmp_path / "none.npz")
    fake = lesion_images(20, SIZE, 31)
    r = evaluate(str(tmp_path / "old.npz"), fake, ["hist_js", *DERM])
    assert set(r["unavailable"]) == set(DERM) and "js_rgb_hist64" in r
    assert all("encoder derm0" in why and "derm1" in why for why in r["unavailable"].values())
    r = evaluate(str(tmp_path / "none.npz"), fake, ["fd_derm"])
    assert "has no derm features" in r["unavailable"]["fd_derm"]


def test_no_encoder_means_unavailable_and_the_run_goes_on(tmp_path, monkeypatch):
    x = lesion_images(12, 16, 0)
    monkeypatch.setenv(derm.ENV_ENCODER, str(tmp_path / "nowhere"))
    r = evaluate(x, x[::-1].copy(), ["hist_js", *DERM])
    assert set(r["unavailable"]) == set(DERM) and r["js_rgb_hist64"] == 0.0
    assert r["unavailable"]["fd_derm"] == f"no dermoscopy encoder file where ${derm.ENV_ENCODER} points"
    assert make_fingerprint(x, size=16).derm_features is None  # and fingerprints are made without features
    with pytest.raises(ValueError, match="--derm-encoder"):
        evaluate(x, x, ["fd_derm"], derm_encoder=tmp_path / "nowhere")


def test_no_shipped_encoder_names_lesiongan_home(tmp_path, monkeypatch):
    x = lesion_images(12, 16, 0)
    monkeypatch.delenv(derm.ENV_ENCODER, raising=False)
    monkeypatch.setenv("LESIONGAN_HOME", str(tmp_path))
    r = evaluate(x, x[::-1].copy(), ["fd_derm"])
    assert r["unavailable"]["fd_derm"] == ("no dermoscopy encoder: $LESIONGAN_HOME holds no checkpoints/ folder: "
                                           "set LESIONGAN_HOME to a folder holding the shipped checkpoints/")
    with pytest.raises(ValueError, match=r"^--derm-encoder: no dermoscopy encoder: .* LESIONGAN_HOME .*"
                                         r"\(or pass --derm-encoder PATH\)$"):
        derm.encoder_for_flag(None, "--derm-encoder")
    (tmp_path / "checkpoints" / "dcgan").mkdir(parents=True)  # checkpoints, but no encoder among them
    why = evaluate(x, x, ["fd_derm"])["unavailable"]["fd_derm"]
    assert why == ("no dermoscopy encoder in the shipped checkpoints (derm-encoder/encoder.pt): set LESIONGAN_HOME "
                   "to a folder holding the shipped checkpoints/")


def test_too_few_images_says_so():
    r = evaluate(lesion_images(5, 16), lesion_images(30, 16, 1), DERM)
    assert all("at least 10" in why for why in r["unavailable"].values()) and set(r["unavailable"]) == set(DERM)


# -- eval.run -------------------------------------------------------------------------------------

def _isic2017(root, n_train, n_val):
    """A tiny ISIC 2017 folder: both splits' images and ground-truth CSVs."""
    for part, n, seed in (("Training", n_train, 40), ("Validation", n_val, 41)):
        (root / f"ISIC-2017_{part}_Data").mkdir(parents=True)
        rows = ["image_id,melanoma,seborrheic_keratosis"]
        for i, im in enumerate(lesion_images(n, 16, seed)):
            name = f"ISIC_{part[0]}{i:06d}"
            Image.fromarray(im).save(root / f"ISIC-2017_{part}_Data" / f"{name}.png")
            rows.append(f"{name},{float(i % 3 == 0)},0.0")
        (root / f"ISIC-2017_{part}_Part3_GroundTruth.csv").write_text("\n".join(rows) + "\n")
    return root


def test_eval_run_computes_them_by_default_and_takes_the_validation_split_as_heldout(tmp_path, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: pytest.fail("downloaded offline"))
    data = _isic2017(tmp_path / "isic2017", 40, 100)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        rc = run_main(["--real", str(data), "--fake", str(data / "ISIC-2017_Training_Data"), "--size", "16",
                       "--offline", "--quiet", "--json"])
    r = json.loads(out.getvalue())  # stdout holds the JSON alone, prdc's print included
    assert rc == 0
    assert set(KEYS + [KEY_COPY_RATE_DERM, KEY_KID_DERM_STD]) <= set(r)
    assert set(r["unavailable"]) == {"fid", "kid"}  # offline, no weights: everything else goes on
    assert r["heldout"]["split"] == "validation" and r["heldout"]["count"] == 100 and r["heldout"]["chosen"]
    assert r[KEY_COPY_RATE_DERM] == 1.0 and r["memorization_copy_rate"] == 1.0  # the training images themselves
    assert set(DERM) <= set(r["timing"]) and r["config"]["kid_derm"]["subset_size"] == 40
