"""bench/utility_dev.py fold: the development training fold written as an ISIC 2017 folder holds exactly the
images ``eval.utility --dev`` trains ``real`` on, with their labels; a second write or a wrong layout is one
line and exit 2."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from eval import utility as U
from test_audit import make_isic

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("utility_dev", ROOT / "bench" / "utility_dev.py")
ud = importlib.util.module_from_spec(_spec)
sys.modules["utility_dev"] = ud
_spec.loader.exec_module(ud)


def test_fold_is_the_development_training_fold(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    data = make_isic(tmp_path / "isic", n_train=30, n_val=3)
    out = tmp_path / "dev-train"
    assert ud.main(["fold", "--real", str(data), "--out", str(out)]) == 0
    assert "24 images (melanoma 8, nevus 16)" in capsys.readouterr().out
    x, y, classes, _ = ud.dev_data(str(data))
    fold = U.load_labelled(str(out))
    assert fold.layout == "isic2017" and len(fold.names) == len(y) == 24
    assert [classes.index(label) for label in fold.labels] == y.tolist()
    assert np.array_equal(fold.images.numpy(), x.numpy())  # the same images, decoded the same way
    assert not (tmp_path / "dev-train.partial").exists()

    assert ud.main(["fold", "--real", str(data), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert ud.main(["fold", "--real", str(data / "ISIC-2017_Validation_Data"), "--out", str(tmp_path / "v")]) == 2
    assert "training split" in capsys.readouterr().err
