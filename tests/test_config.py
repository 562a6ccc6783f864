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
