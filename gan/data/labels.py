"""One class vocabulary for every data set LesionGAN reads.

Each reader gives every image two fields: a *label*, in the canonical vocabulary below (what
conditional models and class counts use), and a *code*, the data set's own spelling (HAM10000's
``mel``/``nv``/``bkl``, the ISIC archive's ``benign``/``malignant``, the ISIC 2017 ground-truth
column), kept so nothing the data set said is lost.

Canonical names are lowercase with underscores. ``VOCABULARY`` fixes their order: the eight classes
of the common benchmarks first (ISIC 2017's three, then HAM10000's other four plus ``benign_keratosis``),
then the ISIC archive's other specific diagnoses. ``benign_keratosis`` is HAM10000's ``bkl`` (solar
lentigines, seborrheic and lichen-planus-like keratoses; the archive's "pigmented benign keratosis"):
broader than ``seborrheic_keratosis``, so the two stay distinct.

    >>> canonical("Seborrheic keratosis"), canonical("mel"), canonical("Melanoma Invasive")
    ('seborrheic_keratosis', 'melanoma', 'melanoma')
    >>> class_order(["nevus", "my_class", "melanoma", None, "nevus"])
    ['melanoma', 'nevus', 'my_class']
"""
from __future__ import annotations

import re
from collections.abc import Iterable

VOCABULARY: tuple[str, ...] = (
    "melanoma",
    "nevus",
    "seborrheic_keratosis",
    "basal_cell_carcinoma",
    "actinic_keratosis",
    "benign_keratosis",
    "dermatofibroma",
    "vascular_lesion",
    # The ISIC archive's other specific diagnoses (legacy ``meta.clinical.diagnosis`` spelling).
    "squamous_cell_carcinoma",
    "melanoma_metastasis",
    "atypical_melanocytic_proliferation",
    "aimp",
    "atypical_spitz_tumor",
    "solar_lentigo",
    "lentigo_simplex",
    "lentigo_nos",
    "lichenoid_keratosis",
    "clear_cell_acanthoma",
    "angioma",
    "angiokeratoma",
    "pyogenic_granuloma",
    "acrochordon",
    "verruca",
    "neurofibroma",
    "sebaceous_hyperplasia",
    "cafe_au_lait_macule",
    "scar",
)

# Other spellings (after slug()) of vocabulary classes: data set codes and the isic-cli
# ``diagnosis_3`` names of the archive's current taxonomy.
ALIASES: dict[str, str] = {
    # HAM10000 dx codes
    "mel": "melanoma", "nv": "nevus", "bkl": "benign_keratosis", "bcc": "basal_cell_carcinoma",
    "akiec": "actinic_keratosis", "df": "dermatofibroma", "vasc": "vascular_lesion",
    # isic-cli diagnosis_3 and other common spellings
    "melanoma_invasive": "melanoma", "melanoma_in_situ": "melanoma", "melanoma_nos": "melanoma",
    "naevus": "nevus", "melanocytic_nevus": "nevus", "nevus_nos": "nevus",
    "solar_or_actinic_keratosis": "actinic_keratosis",
    "pigmented_benign_keratosis": "benign_keratosis",
    "vascular_lesions": "vascular_lesion",
    "squamous_cell_carcinoma_nos": "squamous_cell_carcinoma",
    "squamous_cell_carcinoma_in_situ": "squamous_cell_carcinoma",
    "squamous_cell_carcinoma_invasive": "squamous_cell_carcinoma",
    "lichen_planus_like_keratosis": "lichenoid_keratosis",
    "atypical_melanocytic_neoplasm": "atypical_melanocytic_proliferation",
    "atypical_intraepithelial_melanocytic_proliferation": "aimp",
    "hemangioma": "angioma",
}

_RANK = {name: i for i, name in enumerate(VOCABULARY)}


def slug(text: str) -> str:
    """``text`` lowercased, with every run of other characters than letters and digits made one
    underscore, and none at either end ("Melanoma, NOS" -> "melanoma_nos")."""
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_")


def canonical(text: str | None) -> str | None:
    """The vocabulary class that ``text`` names, or None when it names none (or is empty).

    ``text`` is compared after :func:`slug`, so case, spaces and punctuation do not matter; data set
    codes (``mel``, ``bkl``, ...) and the archive's newer diagnosis names ("Solar or actinic
    keratosis", "Melanoma in situ") map through ``ALIASES``.
    """
    if text is None:
        return None
    s = slug(text)
    if s in _RANK:
        return s
    return ALIASES.get(s)


def class_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class name, or None when it can.

    A class name becomes a folder name (``gan.synthesize --layout imagefolder``, class folders read
    back), so it must be one plain folder name: a non-empty string of at most 100 characters, with no
    ``/`` or ``\\``, no control character (NUL, line breaks), not ``.`` or ``..``, not starting with a dot
    (hidden folders are not read back) and without spaces at either end.
    """
    if not isinstance(name, str) or not name:
        return "is empty or not text"
    if len(name) > 100:
        return "is longer than 100 characters"
    if "/" in name or "\\" in name:
        return "holds a path separator (/ or \\)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "holds a control character (NUL, a line break...)"
    if name.startswith("."):
        return "starts with a dot (., .., or a hidden folder)"
    if name != name.strip():
        return "has spaces at an end"
    return None


def class_order(labels: Iterable[str | None]) -> list[str]:
    """The classes present in ``labels`` in the order that numbers them (class index = position).

    Vocabulary classes come first, in ``VOCABULARY`` order; any other class names follow sorted
    alphabetically (by code point); None (unlabelled) is left out. The result depends only on
    the set of classes present, never on the order or counts of ``labels``.
    """
    present = {label for label in labels if label is not None}
    return sorted(present, key=lambda c: (0, _RANK[c], "") if c in _RANK else (1, 0, c))
