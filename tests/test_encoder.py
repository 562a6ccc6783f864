"""The dermoscopy encoder (eval.encoder, eval.encoder_train) on small made data: a tiny encoder
learns two made lesion classes, its file round-trips code-free, features are (N, 128) and
deterministic, the lesion_id split never splits a lesion, resume repeats the uninterrupted run,
the scores match hand computations, and unsafe or foreign files are refused unread."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from eval.encoder import (CHECKPOINT, CONFIG, ENCODER, MODEL_CARD, SPLIT, STATS, DermEncoder, EncoderConfig,
                          load_encoder, save_encoder)
from eval.encoder_train import (EncoderTrainConfig, balanced_accuracy, load_checkpoint, main, per_class_recall,
                                read_ham_lesions, read_stats, roc_auc, score_isic2017_3class, split_by_lesion,
                                split_record, train)
from eval.testing import lesion_images

SIZE = 32
TINY = EncoderConfig(arch="tiny", widths=(8, 16), blocks=(1, 1), stem_stride=1, dropout=0.0,
                     class_names=("brown", "blue"), size=SIZE)


def two_classes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC made lesions, alternately class 0 (brown discs) and class 1 (the same discs with
    the channels reversed: blue discs on bluish skin)."""
    x = lesion_images(n, SIZE, seed)
    y = np.arange(n) % 2
    x[y == 1] = x[y == 1][..., ::-1]
    return x, y


def nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny encoder trained 4 epochs on 96 made images (48 held-out made images beside them)."""
    run = tmp_path_factory.mktemp("run")
    x, y = two_classes(144, seed=1)
    train_idx, held_idx = np.arange(96), np.arange(96, 144)
    tcfg = EncoderTrainConfig(epochs=4, batch_size=16, lr=3e-3, seed=0, precision="fp32")
    net = train(run, nchw(x), torch.from_numpy(y), train_idx, held_idx, TINY, tcfg, progress=False,
                info={"command": "made"})
    return run, net, tcfg, (x, y, train_idx, held_idx)


def test_tiny_encoder_separates_made_classes(trained):
    run, net, _, _ = trained
    x, y = two_classes(60, seed=7)  # images it never saw
    enc = load_encoder(run / ENCODER)
    pred = enc.predict_proba(x).argmax(1)
    assert np.mean(pred == y) >= 0.9
    rows = read_stats(run)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["heldout_balanced_accuracy"] >= 0.9 and rows[-1]["heldout_n"] == 48
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_save_load_round_trip_gives_identical_features(trained, tmp_path):
    run, net, _, _ = trained
    x = lesion_images(10, SIZE, seed=3)
    in_memory = DermEncoder(net, TINY).features(x)
    loaded = load_encoder(run)  # the folder works as well as the file
    assert loaded.class_names == ["brown", "blue"] and loaded.metric_version == "derm1"
    assert np.array_equal(loaded.features(x), in_memory)
    again = load_encoder(save_encoder(loaded.net, loaded.config, tmp_path / "copy.pt"))
    assert np.array_equal(again.features(x), in_memory)
    assert len(loaded.sha256) == 64


def test_features_shape_determinism_and_input_forms(trained):
    enc = load_encoder(trained[0])
    x = lesion_images(12, SIZE, seed=4)
    f = enc.features(x)
    assert f.shape == (12, 128) and f.dtype == np.float32 and np.isfinite(f).all()
    assert np.array_equal(enc.features(x), f)
    np.testing.assert_allclose(enc.features(x, batch_size=5), f, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(enc.features(nchw(x)), f, rtol=1e-5, atol=1e-5)  # NCHW torch input
    assert enc.features(x[0]).shape == (1, 128)
    big = lesion_images(3, 2 * SIZE, seed=5)  # resized to the encoder's size (LANCZOS)
    assert enc.features(big).shape == (3, 128)
    p = enc.predict_proba(x)
    assert p.shape == (12, 2) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_resume_repeats_the_uninterrupted_run(trained, tmp_path):
    run, net, tcfg, (x, y, train_idx, held_idx) = trained
    images, labels = nchw(x), torch.from_numpy(y)
    train(tmp_path, images, labels, train_idx, held_idx, TINY, tcfg, progress=False, stop_after=2)
    assert not (tmp_path / ENCODER).exists()
    ckpt = load_checkpoint(tmp_path / CHECKPOINT)
    assert ckpt["epoch"] == 2 and ckpt["train"] == tcfg and ckpt["config"] == TINY
    resumed = train(tmp_path, images, labels, train_idx, held_idx, TINY, tcfg, resume=ckpt, progress=False)
    for (k, a), b in zip(net.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert [r["epoch"] for r in read_stats(tmp_path)] == [1, 2, 3, 4]


def test_split_never_puts_a_lesion_on_both_sides():
    rng = np.random.default_rng(0)
    lesion_ids, labels = [], []
    for i in range(300):  # 300 lesions of 1-4 images, three classes of unequal size
        label = ["nevus", "nevus", "nevus", "melanoma", "dermatofibroma"][i % 5]
        for _ in range(rng.integers(1, 5)):
            lesion_ids.append(f"HAM_{i:07d}")
            labels.append(label)
    order = rng.permutation(len(lesion_ids))  # images of a lesion need not be adjacent
    lesion_ids, labels = [lesion_ids[i] for i in order], [labels[i] for i in order]
    tr, held = split_by_lesion(lesion_ids, labels, holdout=0.15, seed=0)
    assert sorted(np.concatenate([tr, held]).tolist()) == list(range(len(lesion_ids)))
    train_lesions, held_lesions = {lesion_ids[i] for i in tr}, {lesion_ids[i] for i in held}
    assert not train_lesions & held_lesions
    assert len(held_lesions) == round(0.15 * 180) + round(0.15 * 60) * 2  # stratified: 15% of each class
    again = split_by_lesion(lesion_ids, labels, holdout=0.15, seed=0)
    assert np.array_equal(again[1], held)
    assert not np.array_equal(split_by_lesion(lesion_ids, labels, holdout=0.15, seed=1)[1], held)
    rec = split_record([f"ISIC_{i}" for i in range(len(labels))], lesion_ids, labels, tr, held,
                       EncoderTrainConfig(holdout=0.15))
    assert rec["counts"]["heldout_lesions"] == len(held_lesions) and len(rec["heldout_images"]) == len(held)


def test_read_ham_lesions(tmp_path):
    (tmp_path / "HAM10000_metadata.csv").write_text(
        "lesion_id,image_id,dx,dx_type,age,sex,localization\nHAM_1,ISIC_1,nv,histo,40,male,back\n"
        "HAM_1,ISIC_2,nv,histo,40,male,back\nHAM_2,ISIC_3,mel,histo,60,female,face\n")
    assert read_ham_lesions(tmp_path) == {"ISIC_1": "HAM_1", "ISIC_2": "HAM_1", "ISIC_3": "HAM_2"}
    with pytest.raises(ValueError, match="HAM10000_metadata.csv"):
        read_ham_lesions(tmp_path / "missing")


def test_scores_against_hand_computation():
    # Positives 0.9, 0.4, 0.6 against negatives 0.3, 0.6, 0.2, 0.5: 4 + 2 + 3.5 wins of 12 pairs.
    pos = np.array([1, 0, 1, 0, 1, 0, 0], bool)
    s = np.array([0.9, 0.3, 0.4, 0.6, 0.6, 0.2, 0.5])
    assert roc_auc(pos, s) == pytest.approx(9.5 / 12)
    assert roc_auc(pos, -s) == pytest.approx(2.5 / 12)
    assert np.isnan(roc_auc(np.ones(3, bool), np.arange(3.0)))
    y, pred = np.array([0, 0, 0, 0, 1, 1, 2]), np.array([0, 0, 0, 1, 1, 0, 1])
    assert per_class_recall(y, pred, 4) == [0.75, 0.5, 0.0, None]
    assert balanced_accuracy(y, pred, 4) == pytest.approx((0.75 + 0.5 + 0.0) / 3)


def test_isic2017_three_classes_use_the_argmax_over_their_logits():
    names = ["melanoma", "nevus", "basal_cell_carcinoma", "actinic_keratosis", "benign_keratosis",
             "dermatofibroma", "vascular_lesion"]
    logits = np.full((3, 7), -5.0)
    logits[:, 2] = 10.0  # a class outside the three never decides
    logits[0, 0], logits[1, 1], logits[2, 4] = 1.0, 1.0, 1.0
    r = score_isic2017_3class(logits, ["melanoma", "nevus", "seborrheic_keratosis"], names)
    assert r["balanced_accuracy"] == 1.0 and r["melanoma_auc"] == 1.0 and r["n"] == 3
    assert list(r["recall"]) == ["melanoma", "nevus", "seborrheic_keratosis"]
    assert r["ci95"]["balanced_accuracy"] == [1.0, 1.0]


class _RunsCode:
    def __reduce__(self):
        return (Path.touch, (Path("/tmp/lesiongan-encoder-test-was-run"),))


def test_unsafe_and_foreign_files_are_refused(trained, tmp_path):
    marker = Path("/tmp/lesiongan-encoder-test-was-run")
    marker.unlink(missing_ok=True)
    code = tmp_path / "code.pt"
    torch.save({"kind": "lesiongan-encoder", "version": 1, "payload": _RunsCode()}, code)
    with pytest.raises(ValueError, match="refused to load, for safety"):
        load_encoder(code)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"kind": "lesiongan-encoder"}))
    with pytest.raises(ValueError, match="refused unread"):
        load_encoder(raw)
    foreign = tmp_path / "generator.pt"
    torch.save({"kind": "lesiongan-generator", "version": 1}, foreign)
    with pytest.raises(ValueError, match="not a lesiongan-encoder file"):
        load_encoder(foreign)
    with pytest.raises(ValueError, match="not a lesiongan-encoder file"):
        load_encoder(trained[0] / CHECKPOINT)  # a training checkpoint is not the shipped file
    with pytest.raises(ValueError, match="no such encoder file"):
        load_encoder(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    d = torch.load(trained[0] / ENCODER, weights_only=True)
    d["state"] = {k: v for k, v in d["state"].items() if not k.startswith("head")}
    torch.save(d, bad)
    with pytest.raises(ValueError, match="do not fit its own encoder config"):
        load_encoder(bad)


def test_ship_writes_card_with_sha_and_licence(trained, tmp_path, capsys):
    run = trained[0]
    (run / CONFIG).write_text(json.dumps({"format": 1, "model": TINY.to_dict(),
                                          "train": {"data": str(tmp_path / "data" / "ham10000")}}))
    split = split_record([f"ISIC_{i}" for i in range(144)], [str(i) for i in range(144)], ["brown", "blue"] * 72,
                         trained[3][2], trained[3][3], EncoderTrainConfig())
    (run / SPLIT).write_text(json.dumps(split))
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"tiny": {"params": 5000, "images_per_s": 900.0, "epoch_s_8500": 9.4}}))
    assert main(["ship", str(run), "--to", str(tmp_path / "ship"), "--bench", str(bench)]) == 0
    sha = json.loads(capsys.readouterr().out)["sha256"]
    ship = tmp_path / "ship"
    assert sorted(p.name for p in ship.iterdir()) == sorted([ENCODER, CONFIG, STATS, SPLIT, MODEL_CARD])
    card = (ship / MODEL_CARD).read_text()
    assert sha in card and "non-commercial research" in card and "derm1" in card and "| `tiny` | 0.01 M | 900 |" in card
    assert json.loads((ship / CONFIG).read_text())["sha256"] == sha == load_encoder(ship).sha256
    assert json.loads((ship / CONFIG).read_text())["train"]["data"] == "ham10000"  # by name, not this machine's path


def test_cli_refuses_flags_that_resume_ignores(trained, capsys):
    assert main(["train", "--resume", str(trained[0]), "--seed", "3"]) == 2
    assert "--seed" in capsys.readouterr().err
    assert main(["train", "--out", "x"]) == 2
    assert "--data" in capsys.readouterr().err
