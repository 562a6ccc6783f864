"""The membership audit on known halves: the statistics (TPR at low FPR with exact intervals, the
permutation null, DOMIAS, copy shares) against hand computations and made generators that copy or do
not, and the split/train/score commands end to end on a tiny data set."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import pytest
from PIL import Image
from scipy.stats import binomtest

from eval import audit as A
from eval import membership as M
from eval.testing import lesion_images
from test_privacy import Images, ReplayGenerator  # the made members and the copying generator


def test_clopper_pearson_matches_scipy():
    for k, n in ((0, 50), (3, 50), (50, 50), (17, 2000)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert M.clopper_pearson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


def test_tpr_at_fpr_by_hand():
    non = np.arange(200, dtype=float)  # 0..199: at 1% FPR two non-members (198, 199) may lie above
    mem = np.array([197.5, 198.5, 250, 0, 1])
    t = M.tpr_at_fpr(mem, non, 0.01)
    assert t["threshold"] == 197 and t["false_positives"] == 2 and t["realised_fpr"] == 0.01
    assert t["true_positives"] == 3 and t["tpr"] == pytest.approx(3 / 5)
    assert t["ci95"] == pytest.approx(list(M.clopper_pearson(3, 5)))
    rare = M.tpr_at_fpr(mem, non, 0.001)
    assert not rare["estimable"] and rare["reason"] == "not estimable at n = 200 non-members (needs at least 1000)"
    # Ties at the threshold count against everyone: the realised FPR never exceeds the target.
    tied = M.tpr_at_fpr(np.ones(10), np.ones(100), 0.01)
    assert tied["false_positives"] == 0 and tied["tpr"] == 0.0


def test_roc_points_reach_both_corners_and_never_fall():
    rng = np.random.default_rng(0)
    roc = M.roc_points(rng.normal(1, 1, 500), rng.normal(0, 1, 500))
    assert roc["fpr"][-1] == 1.0 and roc["tpr"][-1] == 1.0 and roc["fpr"][0] <= 1 / 500
    assert all(np.diff(roc["tpr"]) >= 0) and all(np.diff(roc["fpr"]) >= 0)


def scores_of(G, members, nonmembers):
    out = A.half_scores(G, None, members, nonmembers, None, None, n=400, seed=0)
    return out, out["scores"]["distance_pixel"]


def test_copying_generator_is_caught_at_low_fpr_and_an_honest_one_is_not():
    mem = Images(lesion_images(200, 16, seed=1), "m")
    non = Images(lesion_images(200, 16, seed=2), "n")
    copier, s = scores_of(ReplayGenerator(mem.images.permute(0, 2, 3, 1).numpy()), mem, non)
    t = M.tpr_at_fpr(s["member"], s["nonmember"], 0.01)
    assert t["tpr"] > 0.95 and t["ci95"][0] > 0.9
    assert copier["copies"]["pixels"]["synthetic"] == 1.0  # every sample is a training image
    base = copier["copies"]["pixels"]["nonmember_base_rate"]
    assert base < 0.8  # an unseen image of the same distribution is often "close" too: hence the base rate
    honest, s = scores_of(ReplayGenerator(lesion_images(400, 16, seed=3)), mem, non)
    t = M.tpr_at_fpr(s["member"], s["nonmember"], 0.01)
    assert t["tpr"] < 0.06 and t["ci95"][0] <= 0.01 <= t["ci95"][1]
    assert abs(honest["copies"]["pixels"]["synthetic"] - base) < 0.15  # an honest model sits at the base rate
    null = M.permutation_null(s["member"], s["nonmember"], B=100, seed=0)
    assert abs(null["auc_mean"] - 0.5) < 0.02 and null["auc_range95"][0] < 0.5 < null["auc_range95"][1]


def test_domias_ranks_members_of_a_memorising_density_higher():
    rng = np.random.default_rng(0)
    members = rng.normal(size=(300, 4))
    nonmembers = rng.normal(size=(300, 4))
    # Samples crowd around the members: the synthetic density is high exactly there.
    synthetic = np.repeat(members, 5, axis=0) + 0.05 * rng.normal(size=(1500, 4))
    m, n = M.domias_scores(members, nonmembers, synthetic, k=5, seed=0)
    assert M.auc(m, n) > 0.95
    fresh = rng.normal(size=(1500, 4))
    m, n = M.domias_scores(members, nonmembers, fresh, k=5, seed=0)
    assert abs(M.auc(m, n) - 0.5) < 0.08


def make_isic(root, n_train=24, n_val=12):
    imgs = lesion_images(n_train + n_val, 64, seed=5)
    for part, rng_ in (("Training", range(n_train)), ("Validation", range(n_train, n_train + n_val))):
        folder = root / f"ISIC-2017_{part}_Data"
        folder.mkdir(parents=True)
        rows = []
        for i in rng_:
            Image.fromarray(imgs[i]).save(folder / f"ISIC_{i:07d}.jpg", quality=95)
            rows.append(f"ISIC_{i:07d},{float(i % 3 == 0)},0.0")
        (root / f"ISIC-2017_{part}_Part3_GroundTruth.csv").write_text(
            "image_id,melanoma,seborrheic_keratosis\n" + "\n".join(rows) + "\n")
    return root


def test_split_train_score_end_to_end(tmp_path, monkeypatch):
    from gan.config import RunConfig, TrainConfig
    from gan.data import DataConfig
    from gan.models.dcgan import DCGANConfig
    from gan.rundir import RunDir

    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    data = make_isic(tmp_path / "isic")
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    cfg = RunConfig(model="dcgan", model_cfg=DCGANConfig(resolution=32, batch=8, ngf=8, ndf=8),
                    train=TrainConfig(kimg=1, log_kimg=0.04, snapshot_kimg=0.04, grid_kimg=0.08, grid_size=4),
                    data=DataConfig(size=32, augment=True))
    (recipe / "config.json").write_text(cfg.to_json())
    audit = tmp_path / "audit"
    assert A.main(["split", "--data", str(data), "--out", str(audit), "--seed", "3"]) == 0
    split = json.loads((audit / "split.json").read_text())
    a, b = (A.half_names(audit, h) for h in "ab")
    assert len(a) == len(b) == 12 and not set(a) & set(b) and split["seed"] == 3
    # The same split again is accepted; another seed into the same folder is refused.
    assert A.main(["split", "--data", str(data), "--out", str(audit), "--seed", "3"]) == 0
    assert A.main(["split", "--data", str(data), "--out", str(audit), "--seed", "4"]) == 2
    for h in "ab":
        assert A.main(["train", str(audit), "--half", h, "--recipe", str(recipe), "--kimg", "0.08",
                       "--keep-kimg", "0.04", "--threads", "1", "--no-progress"]) == 0
    run = A.half_run(audit, "a")
    assert run.read_config().data.num_images == 12 and run.read_config().data.subset.endswith("half-a.txt")
    assert [n for n, _ in run.list_snapshots()] == [0]  # 40 and 80 images: both within kimg 0
    # Resuming to a longer run continues the same folder.
    assert A.main(["train", str(audit), "--half", "a", "--kimg", "0.12", "--threads", "1", "--no-progress"]) == 0
    assert A.half_run(audit, "a").path == run.path
    ship = A.half_run(audit, "b").path  # any run folder takes the section
    assert A.main(["length", str(audit), "--n", "64", "--derm-encoder", "none", "--threads", "1"]) == 0
    length = json.loads((audit / "length.json").read_text())
    assert [r["kimg"] for r in length["rows"]] == [0] and set(length["rows"][0]) >= {"distance_pixel", "fd_derm"}
    # Run again, a sweep keeps the rows it has for the same samples and runs (marked here), and redoes them
    # for other settings.
    length["rows"][0]["distance_pixel"]["auc"] = 0.123
    (audit / "length.json").write_text(json.dumps(length))
    assert A.main(["length", str(audit), "--n", "64", "--derm-encoder", "none", "--threads", "1"]) == 0
    assert json.loads((audit / "length.json").read_text())["rows"][0]["distance_pixel"]["auc"] == 0.123
    assert A.main(["length", str(audit), "--n", "48", "--derm-encoder", "none", "--threads", "1"]) == 0
    assert json.loads((audit / "length.json").read_text())["rows"][0]["distance_pixel"]["auc"] != 0.123
    assert A.main(["length", str(audit), "--n", "64", "--derm-encoder", "none", "--threads", "1"]) == 0
    assert A.main(["score", str(audit), "--kimg", "0", "--n", "64", "--bootstrap", "20", "--derm-encoder", "none",
                   "--threads", "1", "--ship", str(ship)]) == 0
    doc = json.loads((audit / "audit-000000.json").read_text())
    pix = doc["attacks"]["distance_pixel"]
    assert pix["n_members"] == pix["n_nonmembers"] == 24  # pooled: each image once a member, once not
    assert pix["tpr_at_fpr"]["0.01"]["reason"].startswith("not estimable at n = 24")
    assert pix["shift_control"]["n_heldout"] == 24 and 0 <= pix["shift_control"]["auc"] <= 1
    assert "auc" in doc["attacks"]["discriminator"] and doc["attacks"]["distance_derm"]["unavailable"]
    assert set(doc["copies"]["pixels"]) == {"a", "b"}
    section = RunDir(ship).read_results()["privacy_split"]
    assert section["kimg"] == 0 and section["length"]["rows"][0]["kimg"] == 0
    assert str(audit) not in json.dumps(section["command"])  # the shipped command names no local folder
    # What the dashboard draws from the section.
    from dashboard import privacy_split as view

    table = view.headline_table(section)
    assert list(table["attack"]) == [view.NAMES[k] for k in A.ATTACKS]
    assert table.iloc[0]["TPR at 1% FPR [exact CI]"] == "not estimable with 24 non-members"
    roc = view.roc_figure(section)
    assert len(roc.data) == 1 + 2  # chance, pixels, discriminator (no encoder: no derm attacks)
    assert view.length_figure(section["length"]["rows"]) is not None
    assert list(view.copies_table(section)["space"]) == ["pixels"]
    assert "| attack |" in (audit / "audit-000000.md").read_text()
    assert A.main(["score", str(audit), "--kimg", "40", "--derm-encoder", "none"]) == 2  # no such snapshot
    # The model card's account of the shipped section: the training seeds, pooled counts, both tables.
    card = "\n".join(A.card_lines(section))
    assert "not the shipped weights" in card and "12 and 12 images" in card and "24 members with 24 non-members" in card
    assert f"half A seed {run.read_config().train.seed}, half B seed" in card and "to 0 k images" in card
    assert "| images seen | pixel distance AUC | derm1 distance AUC | D score AUC | DOMIAS AUC | FD derm |" in card
    assert "| 0 k | " in card and "FD derm was not scored" in card and str(audit) not in card


def test_half_scores_encode_the_real_sets_once_across_snapshots():
    from types import SimpleNamespace

    rng = np.random.default_rng(0)

    def image_set(n, seed):
        return SimpleNamespace(images=torch.from_numpy(np.random.default_rng(seed).integers(0, 256, (n, 3, 8, 8),
                                                                                             dtype=np.uint8)))

    class Counting:  # a stand-in encoder: mean colour per image, counting the images it encodes
        encoded = 0

        def features(self, nhwc):
            Counting.encoded += len(nhwc)
            return nhwc.reshape(len(nhwc), -1, 3).mean(axis=1).astype(np.float64)

    G = SimpleNamespace(generate=lambda n, seed, batch_size: rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8),
                        class_names=[])
    members, nonmembers, heldout = image_set(30, 1), image_set(30, 2), image_set(20, 3)
    cache: dict = {}
    first = A.half_scores(G, None, members, nonmembers, heldout, Counting(), 40, 0, cache)
    assert Counting.encoded == 40 + 30 + 30 + 20
    second = A.half_scores(G, None, members, nonmembers, heldout, Counting(), 40, 0, cache)
    assert Counting.encoded == 2 * 40 + 30 + 30 + 20  # the second snapshot encodes its samples only
    assert set(first["scores"]) == set(second["scores"]) == {"distance_pixel", "distance_derm", "domias_derm"}
    assert len(second["scores"]["distance_derm"]["heldout"]) == 20


def test_a_model_card_puts_the_audit_on_known_halves_before_the_older_audit():
    from eval.utility_card import card_lines

    section = json.loads((Path(__file__).parent.parent / "checkpoints" / "dcgan" / "results.json").read_text())
    text = "\n".join(card_lines(section, "dcgan", conditional=False))
    assert "privacy_split" in section
    halves, older = text.index("Membership audit on known halves"), text.index("confounded by distribution shift")
    assert halves < older and text.count("| attack | AUC [95% CI] | TPR at 1% FPR") == 1
    assert f"to {section['privacy_split']['kimg']} k images" in text
