"""dashboard.roots: the folders a dashboard server shares, and the one line for every other path."""
from __future__ import annotations

from pathlib import Path

import pytest

from dashboard import roots as R


@pytest.fixture
def shared(tmp_path) -> R.Roots:
    for d in ("checkpoints/dcgan", "here/runs/00001-a", "there/runs/00002-b", "data/isic", "secret"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "secret" / "key.pt").write_bytes(b"x")
    (tmp_path / "here" / "runs" / "escape").symlink_to(tmp_path / "secret")
    return R.Roots(checkpoints=(tmp_path / "checkpoints",), runs=(tmp_path / "here" / "runs", tmp_path / "there" / "runs"),
                   data=(tmp_path / "data",))


def test_paths_below_a_shared_folder_resolve_as_the_pages_show_them(shared, tmp_path):
    assert shared.resolve(str(tmp_path / "checkpoints" / "dcgan")) == tmp_path / "checkpoints" / "dcgan"
    assert shared.resolve("checkpoints/dcgan") == tmp_path / "checkpoints" / "dcgan"
    assert shared.display(tmp_path / "data" / "isic") == "data/isic"
    # Two shared folders named runs/: the name as shown finds the run in whichever holds it.
    assert shared.resolve("runs/00002-b") == tmp_path / "there" / "runs" / "00002-b"
    assert shared.resolve("runs/00001-a") == tmp_path / "here" / "runs" / "00001-a"
    assert shared.resolve("runs/not-yet") == tmp_path / "here" / "runs" / "not-yet"  # a run about to start


@pytest.mark.parametrize("text", ["/etc", "/etc/passwd", "/proc/1", "/nowhere", "~", "~/x", "..", "checkpoints/../secret",
                                  "x" * 2000, "a\0b", "tab\there", ""])
def test_every_other_path_is_the_same_one_line(shared, tmp_path, text):
    with pytest.raises(R.OutsideRoots) as e:
        shared.resolve(text)
    assert str(e.value) == "That path is outside the folders this server shares."
    for path in (tmp_path / "secret" / "key.pt", tmp_path / "here" / "runs" / "escape" / "key.pt"):  # a link out
        with pytest.raises(R.OutsideRoots):
            shared.resolve(str(path))  # a file, a folder or nothing: the same line


def test_the_roots_come_from_the_command_line_the_environment_and_lesiongan_toml(tmp_path, monkeypatch):
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / R.CONFIG_NAME).write_text('[roots]\nruns = ["more-runs"]\ndata = ["isic"]\n')
    env = {R.ENV_ROOTS: f"{tmp_path / 'a'}:{tmp_path / 'b'}", R.ENV_CHECKPOINTS: str(tmp_path / "ckpt")}
    got = R.configured(["--runs", str(tmp_path / "cli-runs"), "--data", "rel-data"], env, tmp_path)
    assert got.checkpoints[0] == tmp_path / "ckpt"  # the operator's folder is the default view
    assert {tmp_path / "cli-runs", tmp_path / "more-runs", tmp_path / "runs", tmp_path / "a", tmp_path / "b"} <= set(got.runs)
    assert {tmp_path / "rel-data", tmp_path / "isic", tmp_path / "a"} <= set(got.data)
    (tmp_path / ".streamlit" / R.CONFIG_NAME).write_text('[roots]\nruns = "not a list"\n')
    with pytest.raises(ValueError, match=r"lesiongan.toml: \[roots\] runs must be a list of folder names"):
        R.configured([], {}, tmp_path)
