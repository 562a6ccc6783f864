"""The package outside its checkout: the shipped files are found through :mod:`gan.assets`
(``$LESIONGAN_HOME``, the user cache, the checkout), and a non-editable install finds them from any folder."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

from gan import assets

ROOT = Path(__file__).resolve().parents[1]
HINT = "set LESIONGAN_HOME to a folder holding the shipped checkpoints/"


def _checkpoints(folder: Path) -> Path:
    """A checkpoints folder with one (empty) model file and an encoder file in it."""
    (folder / "dcgan").mkdir(parents=True)
    (folder / "derm-encoder").mkdir()
    (folder / "derm-encoder" / "encoder.pt").write_bytes(b"")
    return folder


# -- the resolver, by its environment ---------------------------------------------------------------

def test_lesiongan_home_comes_first_and_decides(tmp_path):
    home = _checkpoints(tmp_path / "home" / "checkpoints").parent
    cache = _checkpoints(tmp_path / "xdg" / "lesiongan" / "checkpoints")
    env = {"LESIONGAN_HOME": str(home), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert assets.find_checkpoints(env) == (home / "checkpoints").resolve()
    assert assets.encoder_path(env) == (home / "checkpoints" / "derm-encoder" / "encoder.pt").resolve()
    # $LESIONGAN_HOME may name the checkpoints folder itself
    assert assets.find_checkpoints({"LESIONGAN_HOME": str(home / "checkpoints")}) == (home / "checkpoints").resolve()
    # set, but without checkpoints: nothing else is searched, and the reason names the variable
    empty = {"LESIONGAN_HOME": str(tmp_path / "empty"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert assets.find_checkpoints(empty) is None
    assert assets.checkpoints_dir(empty) == tmp_path / "empty" / "checkpoints"
    assert assets.missing_reason(empty) == f"$LESIONGAN_HOME holds no checkpoints/ folder: {HINT}"
    assert cache.is_dir()


def test_the_user_cache_then_the_checkout(tmp_path, monkeypatch):
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert assets.user_cache_dir(env) == tmp_path / "xdg" / "lesiongan"
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert assets.user_cache_dir({}) == tmp_path / "user" / ".cache" / "lesiongan"
    # an empty cache folder holds no checkpoints: the checkout's are used
    (tmp_path / "xdg" / "lesiongan" / "checkpoints").mkdir(parents=True)
    assert assets.find_checkpoints(env) == ROOT / "checkpoints"
    shutil.rmtree(tmp_path / "xdg" / "lesiongan" / "checkpoints")
    _checkpoints(tmp_path / "xdg" / "lesiongan" / "checkpoints")
    assert assets.find_checkpoints(env) == (tmp_path / "xdg" / "lesiongan" / "checkpoints").resolve()


def test_nothing_found_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "checkout_checkpoints", lambda: tmp_path / "site-packages" / "checkpoints")
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg")}
    assert assets.find_checkpoints(env) is None
    assert assets.missing_reason(env) == assets.NOT_FOUND == f"no shipped checkpoints found: {HINT}"
    with pytest.raises(assets.AssetNotFound) as e:
        assets.require(*assets.ENCODER, what="dermoscopy encoder", environ=env)
    assert str(e.value) == f"no dermoscopy encoder: no shipped checkpoints found: {HINT}"
    _checkpoints(tmp_path / "xdg" / "lesiongan" / "checkpoints")
    assert assets.require("dcgan", environ=env).is_dir()
    with pytest.raises(assets.AssetNotFound, match=r"^no pggan in the shipped checkpoints \(checkpoints/pggan\): set "):
        assets.require("pggan", environ=env)
