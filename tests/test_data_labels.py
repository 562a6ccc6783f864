"""Tests of gan.data.labels: the canonical class vocabulary, its aliases and the class numbering."""
from __future__ import annotations

import doctest

import pytest

import gan.data.labels
from gan.data.labels import ALIASES, VOCABULARY, canonical, class_order, slug


def test_vocabulary_is_canonical_and_unique():
    assert len(set(VOCABULARY)) == len(VOCABULARY)
    assert VOCABULARY[:8] == ("melanoma", "nevus", "seborrheic_keratosis", "basal_cell_carcinoma",
                              "actinic_keratosis", "benign_keratosis", "dermatofibroma", "vascular_lesion")
    assert all(slug(c) == c for c in VOCABULARY)
    assert set(ALIASES.values()) <= set(VOCABULARY) and not set(ALIASES) & set(VOCABULARY)


@pytest.mark.parametrize("text, expected", [
    ("melanoma", "melanoma"), ("Melanoma", "melanoma"), (" seborrheic keratosis ", "seborrheic_keratosis"),
    ("Seborrheic-Keratosis", "seborrheic_keratosis"), ("Melanoma Invasive", "melanoma"),
    ("Melanoma in situ", "melanoma"), ("Melanoma, NOS", "melanoma"), ("Nevus", "nevus"),
    ("mel", "melanoma"), ("nv", "nevus"), ("bkl", "benign_keratosis"), ("bcc", "basal_cell_carcinoma"),
    ("akiec", "actinic_keratosis"), ("df", "dermatofibroma"), ("vasc", "vascular_lesion"),
    ("Solar or actinic keratosis", "actinic_keratosis"), ("Pigmented benign keratosis", "benign_keratosis"),
    ("lentigo NOS", "lentigo_nos"), ("cafe-au-lait macule", "cafe_au_lait_macule"),
    ("Squamous cell carcinoma in situ", "squamous_cell_carcinoma"),
    ("benign", None), ("Malignant", None), ("my lesions", None), ("", None), (None, None),
])
def test_canonical(text, expected):
    assert canonical(text) == expected


def test_class_order_vocabulary_first_then_alphabetical():
    labels = ["zeta", "nevus", None, "alpha", "melanoma", "nevus", "dermatofibroma", "Beta"]
    assert class_order(labels) == ["melanoma", "nevus", "dermatofibroma", "Beta", "alpha", "zeta"]
    assert class_order(reversed(labels)) == class_order(labels)  # order and counts do not matter
    assert class_order([None, None]) == [] and class_order([]) == []


def test_module_examples():
    assert doctest.testmod(gan.data.labels).failed == 0
