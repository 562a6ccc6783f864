"""eval.utility --subset: every setting trains on exactly the listed real images (the development fold taken
within them with --dev), the list is recorded by name, hash and count, and a bad list is one line naming it."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from eval import utility as U
from eval.classifier import RecipeConfig
from eval.testing import lesion_images
from gan.data.subset import list_sha256, write_image_list

CLASSES = ("melanoma", "nevus")


def _folder(root, n_per_class: int, seed: int) -> list[str]:
    """An imagefolder set at 64 px (nevus images are the melanoma ones inverted); the names gan.data gives them."""
    names = []
    for ci, c in enumerate(CLASSES):
        (root / c).mkdir(parents=True)
        for i, img in enumerate(lesion_images(n_per_class, 64, seed + ci)):
            Image.fromarray(img if ci == 0 else 255 - img).save(root / c / f"img{i:03d}.png")
            names.append(f"{c}/img{i:03d}.png")
    return names


@pytest.fixture
def sets(tmp_path, monkeypatch):
    monkeypatch.setenv("LESIONGAN_CACHE", str(tmp_path / "cache"))
    return _folder(tmp_path / "real", 12, 0), _folder(tmp_path / "test", 4, 10)


@pytest.fixture
def trained(monkeypatch):
    """The size of every training set the run uses (2 steps each, whatever the recipe asks)."""
    sizes = []
    real = U.train_classifier

    def spy(images, labels, num_classes, seed, recipe, progress=None):
        sizes.append(len(images))
        return real(images, labels, num_classes, seed, RecipeConfig(steps=2, batch=8), progress)

    monkeypatch.setattr(U, "train_classifier", spy)
    return sizes


def _run(tmp_path, *extra: str) -> int:
    return U.main(["--real", str(tmp_path / "real"), "--settings", "real", "real-long", "--seeds", "1", "--steps", "2",
                   "--bootstrap", "20", "--json", "--workers", "1", "--threads", "1", "--no-save", *extra])


def test_every_setting_trains_on_exactly_the_listed_images_and_the_list_is_recorded(tmp_path, sets, trained, capsys):
    names, _ = sets
    chosen = names[1:6] + names[14:19]  # 5 melanoma, 5 nevus
    lst = write_image_list(tmp_path / "scarce.txt", chosen[::-1], comment="a seeded subset")  # order is free
    assert _run(tmp_path, "--subset", str(lst), "--test", str(tmp_path / "test"), "--out", str(tmp_path / "o")) == 0
    doc = json.loads(capsys.readouterr().out)
    assert trained == [10, 10]  # real and real-long, each on the 10 listed images only
    assert doc["real"]["n"] == 10
    assert doc["real"]["subset"] == {"list": "scarce.txt", "sha256": list_sha256(chosen), "n": 10}
    assert json.loads((tmp_path / "o" / "utility.json").read_text())["real"]["subset"]["n"] == 10
    assert doc["tests"][0]["n"] == 8 and not doc["preregistered"]


def test_the_development_fold_is_taken_within_the_subset(tmp_path, sets, trained, capsys):
    names, _ = sets
    lst = write_image_list(tmp_path / "scarce.txt", names[:10] + names[12:22])
    assert _run(tmp_path, "--subset", str(lst), "--dev") == 0
    doc = json.loads(capsys.readouterr().out)
    # 20% of each class of the subset (2 of 10) held out: 16 train, 4 test; the other 4 images are never used
    assert trained == [16, 16] and doc["real"]["n"] == 16
    assert [t["n"] for t in doc["tests"]] == [4] and doc["real"]["subset"]["n"] == 20


@pytest.mark.parametrize("content, why", [(["melanoma/img000.png", "melanoma/nope.png"],
                                           "1 of its 2 images are not in"),
                                          ([], "names no image")])
def test_a_list_naming_a_missing_image_or_none_is_one_line_naming_it(tmp_path, sets, trained, capsys, content, why):
    lst = tmp_path / "bad.txt"
    lst.write_text("# nothing else\n" + "".join(f"{n}\n" for n in content))
    assert _run(tmp_path, "--subset", str(lst), "--test", str(tmp_path / "test")) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: {lst}: ") and why in err[0], err
    assert trained == []  # refused before any training
