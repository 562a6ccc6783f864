"""tools/portable_weights.py: machine paths inside weight files and fingerprints become portable names, every
tensor stays bit-identical (checked before anything is written), and the records that name the encoder by
its SHA-256 follow its new bytes."""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gan.config import RunConfig

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tool():
    spec = importlib.util.spec_from_file_location("portable_weights_tool", REPO / "tools" / "portable_weights.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A checkpoints folder as files were shipped before metadata became portable: a generator whose config
    names the data folder and fingerprint by absolute path, an encoder whose training command does, a
    fingerprint whose source does, and records that name the encoder by its SHA-256."""
    machine = tmp_path / "machine"  # the training machine's folders, far from the shipped ones
    (machine / "data" / "isic2017").mkdir(parents=True)
    ck = tmp_path / "repo" / "checkpoints"
    (ck / "m").mkdir(parents=True)
    (ck / "derm-encoder").mkdir()
    (ck / "fingerprints").mkdir()
    cfg = RunConfig.from_dict({"model": "dcgan", "model_cfg": {"resolution": 32, "z_dim": 8, "ngf": 4, "ndf": 4},
                               "train": {"metrics_ref": str(ck / "fingerprints" / "fp.npz")},
                               "data": {"path": str(machine / "data" / "isic2017"), "layout": "isic2017",
                                        "num_images": 10}})
    torch.manual_seed(0)
    G = cfg.spec.build_generator(cfg.model_cfg)
    state = {k: v.clone() for k, v in G.state_dict().items()}
    torch.save({"kind": "lesiongan-generator", "version": 1, "model": "dcgan", "config": cfg.to_json(), "G_ema": state,
                "info": json.dumps({"nimg": 64, "source": str(machine / "runs" / "00000" / "checkpoint.pt")})},
               ck / "m" / "generator.pt")
    named = json.loads(cfg.to_json())
    named["data"].update(path=None, name="isic2017", sha256="ab" * 32)
    named["train"]["metrics_ref"] = "../fingerprints/fp.npz"
    (ck / "m" / "config.json").write_text(json.dumps(named, indent=2) + "\n")
    enc_state = {"w": torch.randn(4, 3, dtype=torch.float32), "n": torch.tensor(7), "h": torch.randn(2, dtype=torch.bfloat16)}
    torch.save({"kind": "lesiongan-encoder", "version": 1, "config": json.dumps({"size": 64}), "state": enc_state,
                "info": json.dumps({"command": f"python -m eval.encoder train --data ../data --out {machine}/runs/enc "
                                              "--epochs 2"})}, ck / "derm-encoder" / "encoder.pt")
    old = _sha(ck / "derm-encoder" / "encoder.pt")
    (ck / "derm-encoder" / "encoder-config.json").write_text(json.dumps({"sha256": old, "encoder_bytes": 1}, indent=2))
    meta = {"format": "lesiongan-fingerprint", "source": str(machine / "data" / "isic2017"), "names": ["a", "b"],
            "derm": {"metric_version": "derm1", "encoder_sha256": old}}
    arrays = {"meta": np.array(json.dumps(meta)), "derm_features": np.random.default_rng(0).random((2, 4), dtype=np.float32),
              "nn_bank": np.arange(24, dtype=np.uint8).reshape(2, 3, 4)}
    np.savez_compressed(ck / "fingerprints" / "fp.npz", **arrays)
    (ck / "m" / "results.json").write_text(json.dumps({"config": {"encoder_sha256": old}}, indent=1))
    (ck / "m" / "MODEL_CARD.md").write_text(f"encoder (derm1, SHA-256 `{old[:16]}`), not `{old[:11]}`\n")
    monkeypatch.setenv("LESIONGAN_HOME", str(ck.parent))
    monkeypatch.chdir(ck.parent)
    return {"ck": ck, "machine": machine, "G": state, "enc": enc_state, "arrays": arrays, "old": old}


def test_paths_become_portable_and_every_tensor_stays(tool, shipped, capsys):
    ck, machine, old = shipped["ck"], shipped["machine"], shipped["old"]
    readme = ck.parent / "notes.md"
    readme.write_text(f"SHA-256 {old[:12]}...\n")
    assert tool.main(["--records", str(readme)]) == 0
    g = torch.load(ck / "m" / "generator.pt", weights_only=True)
    assert list(g["G_ema"]) == list(shipped["G"])
    assert all(torch.equal(g["G_ema"][k], v) and g["G_ema"][k].dtype == v.dtype for k, v in shipped["G"].items())
    data = json.loads(g["config"])["data"]
    assert data["path"] is None and (data["name"], data["sha256"]) == ("isic2017", "ab" * 32)  # from config.json
    assert json.loads(g["config"])["train"]["metrics_ref"] == "../fingerprints/fp.npz"
    assert json.loads(g["info"]) == {"nimg": 64, "source": "00000/checkpoint.pt"}
    assert RunConfig.from_json(g["config"]) == RunConfig.from_json((ck / "m" / "config.json").read_text())
    e = torch.load(ck / "derm-encoder" / "encoder.pt", weights_only=True)
    assert all(torch.equal(e["state"][k], v) and e["state"][k].dtype == v.dtype for k, v in shipped["enc"].items())
    assert json.loads(e["info"])["command"] == "python -m eval.encoder train --data ../data --out enc --epochs 2"
    new = _sha(ck / "derm-encoder" / "encoder.pt")
    assert json.loads((ck / "derm-encoder" / "encoder-config.json").read_text()) == {
        "sha256": new, "encoder_bytes": (ck / "derm-encoder" / "encoder.pt").stat().st_size}
    with np.load(ck / "fingerprints" / "fp.npz", allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert meta["source"] == "isic2017" and meta["derm"]["encoder_sha256"] == new and meta["names"] == ["a", "b"]
        for k in ("derm_features", "nn_bank"):
            assert z[k].dtype == shipped["arrays"][k].dtype and np.array_equal(z[k], shipped["arrays"][k])
    assert json.loads((ck / "m" / "results.json").read_text()) == {"config": {"encoder_sha256": new}}
    # a 16-digit prefix follows the new digest; fewer than 12 digits is not taken for one
    assert (ck / "m" / "MODEL_CARD.md").read_text() == f"encoder (derm1, SHA-256 `{new[:16]}`), not `{old[:11]}`\n"
    assert readme.read_text() == f"SHA-256 {new[:12]}...\n"
    for f in (ck / "m" / "generator.pt", ck / "derm-encoder" / "encoder.pt"):
        doc = torch.load(f, weights_only=True)
        assert not [s for s in _strings({k: v for k, v in doc.items() if isinstance(v, str)}) if str(machine) in s]
    out = capsys.readouterr().out
    assert f"encoder SHA-256 {old} -> {new}" in out and "every tensor bit-identical" in out
    # a second run finds nothing to do and changes no byte
    before = {p: p.read_bytes() for p in ck.rglob("*") if p.is_file()}
    assert tool.main([]) == 0
    assert {p: p.read_bytes() for p in ck.rglob("*") if p.is_file()} == before
    assert capsys.readouterr().out.count("already portable") == 3
    # a run under way when the encoder was rewritten: its fingerprint and results follow with --encoder-was
    run = ck.parent / "runs" / "r"
    run.mkdir(parents=True)
    meta = {"source": "isic2017", "derm": {"metric_version": "derm1", "encoder_sha256": old}}
    np.savez_compressed(run / "fingerprint.npz", meta=np.array(json.dumps(meta)), x=np.arange(3))
    (run / "results.json").write_text(json.dumps({"encoder_sha256": old}))
    assert tool.main([str(run / "fingerprint.npz"), "--records", str(run / "results.json"), "--encoder-was", old]) == 0
    with np.load(run / "fingerprint.npz") as z:
        assert json.loads(str(z["meta"]))["derm"]["encoder_sha256"] == new and np.array_equal(z["x"], np.arange(3))
    assert json.loads((run / "results.json").read_text()) == {"encoder_sha256": new}
    with pytest.raises(SystemExit):
        tool.main(["--encoder-was", old[:12]])


def test_a_file_that_fails_the_check_is_left_as_it_was(tool, shipped, monkeypatch, capsys):
    gen = shipped["ck"] / "m" / "generator.pt"
    before = gen.read_bytes()
    monkeypatch.setattr(tool, "same_apart_from_strings", lambda old, new, where="": ["tensor /G_ema/x differs"])
    assert tool.main([str(gen)]) == 1
    assert gen.read_bytes() == before
    assert "not rewritten, the check failed: tensor /G_ema/x differs" in capsys.readouterr().err
    assert tool.main(["--dry-run"]) == 1 and gen.read_bytes() == before


def test_the_check_sees_one_changed_bit_a_dtype_or_a_number_and_not_strings(tool):
    a = torch.tensor([1.0, 2.0])
    flipped = a.clone()
    flipped.view(torch.int32)[0] ^= 1  # the lowest bit of one float
    same = tool.same_apart_from_strings
    assert same({"w": a, "s": "x", "n": 1}, {"w": a.clone(), "s": "y", "n": 1}) == []
    assert same({"w": a}, {"w": flipped}) == ["tensor /w differs"]
    assert same({"w": a}, {"w": a.double()}) == ["tensor /w differs"]
    assert same({"n": 1}, {"n": 2}) == ["/n changed (1 -> 2)"]
    assert same({"a": 1, "b": 2}, {"b": 2, "a": 1}) == ["keys of . differ"]
    x = np.arange(4, dtype=np.uint8)
    assert same({"x": x}, {"x": x.astype(np.int64)}) == ["array /x differs"]
