"""The typed run config: one JSON round trip for every model, files of earlier versions migrated on
load, bad configs refused with the part at fault named."""
import json
from pathlib import Path

import pytest
import torch

from gan import checkpoint as ckpt_io
from gan import load_generator
from gan.config import RunConfig, TrainConfig, config_from_dict
from gan.data import DataConfig
from gan.models import get_model, model_names

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("model", model_names())
def test_every_model_config_round_trips_through_json(model):
    spec = get_model(model)
    cfg = RunConfig(model=model, model_cfg=spec.Config(),
                    train=TrainConfig(kimg=12.5, seed=7, precision="bf16", ema_rampup=None),
                    data=DataConfig("/data/isic", size=spec.Config().resolution, augment=True, rot90=False,
                                    num_images=2000))
    text = cfg.to_json(indent=2)
    back = RunConfig.from_json(text)
    assert back == cfg and back.to_json(indent=2) == text
    assert isinstance(back.model_cfg, spec.Config) and isinstance(back.train, TrainConfig)
    assert json.loads(text)["data"]["augment"] is True


def test_a_config_of_the_previous_layout_is_migrated():
    old = {"format": 1, "model": "dcgan", "model_cfg": {"resolution": 32, "ngf": 8, "ndf": 8},
           "train": {"kimg": 3.0, "augment": True, "channels_last": True},
           "data": {"path": "/d", "layout": "isic2017", "split": None, "size": 32, "num_images": 10}}
    cfg = RunConfig.from_dict(old)
    assert cfg.data.augment is True and cfg.data.num_images == 10 and cfg.train.channels_last
    assert "augment" not in cfg.to_dict()["train"]
    # A generator file made without loop or data settings gets the defaults.
    bare = RunConfig.from_dict({"model": "dcgan", "model_cfg": {"resolution": 32}})
    assert bare.train == TrainConfig() and bare.data == DataConfig(size=32)


@pytest.mark.parametrize("bad, match", [
    ({"model": "dcgan", "model_cfg": {"nope": 1}}, r"unknown dcgan config keys: \['nope'\]"),
    ({"model": "dcgan", "train": {"kimgs": 1}}, r"unknown train config keys: \['kimgs'\]"),
    ({"model": "dcgan", "data": {"folder": "x"}}, r"unknown data config keys: \['folder'\]"),
    ({"model": "stylegan9"}, "unknown model 'stylegan9'"),
    ({"model": "dcgan", "format": 7}, "format 7 is not supported"),
    ({"model": "dcgan", "model_cfg": {"resolution": 32}, "data": {"size": 64}}, "differs from the model's"),
    ({"model": "dcgan", "train": {"kimg": float("inf")}}, "--kimg must be a positive number"),
    ({"model_cfg": {}}, "'model' field"),
])
def test_bad_configs_are_refused_naming_the_part(bad, match):
    with pytest.raises(ValueError, match=match):
        RunConfig.from_dict(bad)


def test_config_from_dict_rebuilds_nested_tuples():
    cfg = get_model("pggan").Config()
    back = config_from_dict(type(cfg), json.loads(json.dumps(cfg.__dict__)))
    assert back == cfg


@pytest.mark.parametrize("name", ["dcgan", "pggan", "pggan-seed"])
def test_shipped_generators_and_their_folders_carry_a_typed_config(name):
    G = load_generator(ROOT / "checkpoints" / name / "generator.pt")
    assert isinstance(G.config, RunConfig) and G.config.model == name
    assert G.config.data.augment is True  # trained with flips and rotations (train.augment in their files)


def test_a_file_whose_config_is_not_json_is_refused_naming_it(tmp_path):
    ckpt = torch.load(ROOT / "checkpoints" / "dcgan" / "generator.pt", weights_only=True)
    ckpt["config"] = "{not json"
    torch.save(ckpt, tmp_path / "g.pt")
    with pytest.raises(ValueError, match=r"g\.pt: its run config is unusable: run config is not valid JSON"):
        ckpt_io.load(tmp_path / "g.pt")


# -- configs that travel: no path of the training machine --------------------------------------------

def test_a_portable_config_names_its_data_and_keeps_only_near_paths(tmp_path):
    run = tmp_path / "project" / "runs" / "00001-dcgan-isic2017-64"
    data = DataConfig(path=str(tmp_path / "project" / "data" / "isic2017"), labels=str(tmp_path / "far" / "l.csv"),
                      cache_dir=str(tmp_path / "cache"), name="isic2017", sha256="ab" * 32)
    cfg = RunConfig(model="dcgan", model_cfg=get_model("dcgan").Config(), data=data,
                    train=TrainConfig(metrics_ref=str(tmp_path / "project" / "runs" / "fp.npz")))
    near = cfg.portable(run)
    assert near.data.path == "../../data/isic2017" and near.data.labels is None and near.data.cache_dir is None
    assert (near.data.name, near.data.sha256) == ("isic2017", "ab" * 32) and near.train.metrics_ref == "../fp.npz"
    assert str(tmp_path) not in near.to_json()
    assert cfg.portable(run / "deeper" / "still").data.path is None  # three levels up: the machine's layout
    assert cfg.portable().data.path is None and cfg.portable().train.metrics_ref == "fp.npz"
    run.mkdir(parents=True)
    (tmp_path / "project" / "runs" / "fp.npz").write_bytes(b"")
    back = near.located(run)
    assert back.data.path == data.path and back.train.metrics_ref == cfg.train.metrics_ref
    assert cfg.portable().located(run).train.metrics_ref == "fp.npz"  # not there: kept as the name it is


def test_a_generator_file_carries_its_config_without_the_machines_paths(tmp_path):
    ckpt = ckpt_io.load(ROOT / "checkpoints" / "dcgan" / "generator.pt")
    far = ckpt["config"].replace(data=DataConfig(path="/data/far/away/isic2017", name="isic2017", size=64))
    out = ckpt_io.export_generator({**ckpt, "config": far.to_json()}, tmp_path / "g.pt")
    raw = json.loads(torch.load(out, weights_only=True)["config"])
    assert raw["data"]["path"] is None and raw["data"]["name"] == "isic2017"
    assert ckpt_io.load(out)["config"].data.path is None


def test_portable_names_of_files_and_folders(tmp_path, monkeypatch):
    from gan.assets import checkpoints_dir, portable_name

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "00001").mkdir(parents=True)
    (tmp_path / "runs" / "00001" / "generator.pt").write_bytes(b"")
    elsewhere = tmp_path.parent
    assert portable_name(tmp_path / "runs" / "00001" / "generator.pt") == "runs/00001/generator.pt"
    assert portable_name(checkpoints_dir() / "dcgan" / "generator.pt") == "checkpoints/dcgan/generator.pt"
    assert portable_name(str(elsewhere / "data" / "isic2017")) == "isic2017"
    assert portable_name(tmp_path / "runs" / "00001" / "generator.pt", base=elsewhere / "x") == "00001/generator.pt"
    assert portable_name("<array>") == "<array>" and portable_name("runs/x") == "runs/x"
    assert portable_name(str(elsewhere / "gone" / "00000" / "checkpoint.pt")) == "00000/checkpoint.pt"


def test_portable_command_lines(tmp_path, monkeypatch):
    from gan.assets import portable_command

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs" / "a@b").mkdir(parents=True)
    data = tmp_path.parent / "data" / "isic2017"
    words = ["python -m eval.privacy", "--real", f"{data}@train", f"--out={tmp_path / 'runs' / 'x'}", "--n", "5",
             str(tmp_path / "runs" / "a@b"), "rel/dir", "-q"]
    assert portable_command(words) == "python -m eval.privacy --real isic2017@train --out=runs/x --n 5 runs/a@b rel/dir -q"
