"""The package outside its checkout: the shipped files are found through :mod:`gan.assets`
(``$LESIONGAN_HOME``, the user cache, the checkout), and a non-editable install finds them from any folder."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

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
    _checkpoints(tmp_path / "xdg" / "lesiongan" / "checkpoints")
    assert assets.asset("dcgan", environ=env).is_dir() and not assets.asset("pggan", environ=env).exists()


# -- a non-editable install, used from another folder -----------------------------------------------

SOURCES = ("pyproject.toml", "README.md", "LICENSE", ".streamlit", "gan", "eval", "dashboard")

FOUND = """
import json, gan
from gan import assets
from eval.metrics import derm
from dashboard.discovery import discover_models
enc = derm.require_encoder(None)
print(json.dumps({"gan": gan.__file__, "checkpoints": str(assets.find_checkpoints()), "encoder": str(enc.path),
                  "models": sorted(m.name for m in discover_models(assets.checkpoints_dir()))}))
"""

MISSING = """
import contextlib, io, json
from gan import assets
from eval.metrics import derm
from eval.registry import MetricUnavailable
from dashboard.discovery import discover_models
from eval.run import main
try:
    derm.require_encoder(None)
    why = None
except MetricUnavailable as e:
    why = str(e)
err = io.StringIO()
with contextlib.redirect_stderr(err):
    try:
        main([])
    except SystemExit:
        pass
print(json.dumps({"derm": why, "run": err.getvalue().strip().splitlines()[-1], "models": len(discover_models(
    assets.checkpoints_dir())), "found": str(assets.find_checkpoints())}))
"""


def _python(code: str, site: Path, cwd: Path, **env: str) -> dict:
    import json

    base = {k: v for k, v in os.environ.items() if k not in ("LESIONGAN_HOME", "LESIONGAN_DERM_ENCODER",
                                                              "PYTHONPATH")}
    r = subprocess.run([sys.executable, "-c", code], cwd=cwd, env={**base, "PYTHONPATH": str(site), **env},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_wheel_install_finds_the_shipped_files_through_lesiongan_home(tmp_path):
    src, site, elsewhere = tmp_path / "src", tmp_path / "site", tmp_path / "elsewhere"
    src.mkdir()
    elsewhere.mkdir()
    for name in SOURCES:  # a copy: the build's own build/ folder stays out of the checkout
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, src / name)
    start = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--no-build-isolation",
                        "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert time.perf_counter() - start < 120
    # the wheel: the dashboard's favicon and settings, both new scripts, and no weights
    assert not (site / "checkpoints").exists() and not list(site.rglob("*.pt"))
    assert (site / "dashboard" / "favicon.png").read_bytes() == (ROOT / "dashboard" / "favicon.png").read_bytes()
    settings = site / "dashboard" / "streamlit-config.toml"
    assert not settings.is_symlink() and settings.read_text() == (ROOT / ".streamlit" / "config.toml").read_text()
    entry_points = next(site.glob("lesiongan-*.dist-info")).joinpath("entry_points.txt").read_text()
    assert "lesiongan-dashboard = dashboard.launch:main" in entry_points
    assert "lesiongan-data = gan.data.cli:main" in entry_points
    assert "lesiongan-audit = eval.audit:main" in entry_points

    xdg = str(tmp_path / "xdg")
    found = _python(FOUND, site, elsewhere, LESIONGAN_HOME=str(ROOT), XDG_CACHE_HOME=xdg)
    assert Path(found["gan"]).is_relative_to(site)  # the installed copy, not the checkout
    assert found["checkpoints"] == str(ROOT / "checkpoints")
    assert found["encoder"] == str(ROOT / "checkpoints" / "derm-encoder" / "encoder.pt")
    assert {"dcgan", "dcgan-cond", "pggan", "pggan-seed"} <= set(found["models"])

    missing = _python(MISSING, site, elsewhere, XDG_CACHE_HOME=xdg)
    assert missing["found"] == "None" and missing["models"] == 0
    assert missing["derm"] == f"no dermoscopy encoder: no shipped checkpoints found: {HINT}"
    assert missing["run"].endswith(f"(no shipped checkpoints found: {HINT})")


def test_the_dashboard_command_runs_the_packaged_app_with_the_packaged_settings():
    from dashboard import launch

    settings = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    argv = launch.streamlit_argv(["--runs", "runs", "--server.port", "8600", "--data=/data/isic2017"])
    assert argv[0] == "run" and argv[-4:] == [str(ROOT / "dashboard" / "app.py"), "--", "--runs=runs",
                                              "--data=/data/isic2017"]
    flags = argv[1:-4]
    assert flags[-2:] == ["--server.port", "8600"]  # after the packaged settings: the user's win
    assert flags[:-2] == [f"--{section}.{key}={str(v).lower() if isinstance(v, bool) else v}"
                          for section, table in settings.items() for key, v in table.items()]
    assert "--client.showErrorDetails=none" in flags and "--browser.gatherUsageStats=false" in flags
    assert launch.streamlit_argv([])[-1] == str(ROOT / "dashboard" / "app.py")


def test_the_packaging_metadata():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = meta["project"]["scripts"]
    assert scripts["lesiongan-dashboard"] == "dashboard.launch:main" and scripts["lesiongan-data"] == "gan.data.cli:main"
    assert set(meta["tool"]["setuptools"]["package-data"]["dashboard"]) == {"favicon.png", "streamlit-config.toml"}
    assert (ROOT / "dashboard" / "streamlit-config.toml").resolve() == (ROOT / ".streamlit" / "config.toml").resolve()
    docker = (ROOT / "Dockerfile").read_text()
    assert "\nUSER " in docker and "pip install --no-deps -e" not in docker
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {"tests", "bench", ".git"} <= set(ignored)


def test_every_command_that_names_a_console_script_has_one():
    """``prog(module, script)`` (gan.cli) prints ``script`` in usage lines when run as it: each such script
    is declared, and runs the ``main(argv)`` of that module (or of its ``cli`` submodule)."""
    import ast
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    named = {}
    for path in sorted(p for pkg in ("gan", "eval", "dashboard") for p in (ROOT / pkg).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "prog" and len(node.args) == 2:
                named[node.args[1].value] = node.args[0].value
    assert {"lesiongan-audit", "lesiongan-class-fidelity", "lesiongan-train", "lesiongan-eval"} <= set(named)
    for script, module in sorted(named.items()):
        assert script in scripts, f"{module} calls itself {script}, which pyproject.toml does not declare"
        target, _, func = scripts[script].partition(":")
        assert target in (module, f"{module}.cli") and func == "main", (script, scripts[script])
        assert callable(getattr(importlib.import_module(target), func))
