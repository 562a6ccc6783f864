"""The one type every metric reads (:class:`EvalSet`: images at the evaluation size, or a fingerprint
standing in for them) and the cache of intermediate results that metrics share (:class:`FeatureCache`).
``eval.sources`` makes them from what ``evaluate`` is given; a fingerprint makes one of itself."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from eval.registry import MetricUnavailable
from gan.assets import portable_name


@dataclass(frozen=True, eq=False)
class EvalSet:
    """One side of an evaluation: images at the evaluation size, or a fingerprint standing in for them.

    ``features`` holds the intermediate results the set came with (a fingerprint's stored histograms
    and Inception features), by a name that says what changes them; nothing changes it afterwards.
    Results computed during an evaluation live in a :class:`FeatureCache`.
    """

    role: str                      # "real" | "fake" | "heldout"
    kind: str                      # "folder" | "dataset" | "generator" | "fingerprint" | "array"
    source: str
    images: np.ndarray | None      # uint8 (N, S, S, 3) at the evaluation size; None for a fingerprint
    names: list[str]
    size: int
    native_resolution: int | None  # resolution before resizing (generator output, array), if known
    resize: str                    # "none", "pil-<mode>", or "gan.data" (its own loader's preprocessing)
    seed: int | None = None        # generator sampling seed
    skipped: int = 0               # unreadable files skipped while loading
    fingerprint: Any = None
    features: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    label: str | None = None       # the one class of a per-class set (real: filtered; fake: drawn)
    split: str | None = None       # the data set split read (ISIC 2017: "train", "validation", "test")

    @property
    def count(self) -> int:
        if self.images is not None:
            return len(self.images)
        return int(self.fingerprint.count) if self.fingerprint is not None else 0

    def require_images(self, what: str) -> np.ndarray:
        """The images, or ``MetricUnavailable`` saying that ``what`` needs them."""
        if self.images is None:
            raise MetricUnavailable(f"{what} needs the {self.role} images; the {self.role} set is a "
                                    f"fingerprint without them ({portable_name(self.source)})")
        return self.images

    def describe(self) -> dict:
        """JSON-ready provenance of this set; paths as :func:`gan.assets.portable_name` gives them (the
        results travel: no path of this machine goes in)."""
        d = {"kind": self.kind, "source": portable_name(self.source), "count": self.count, "size": self.size,
             "resize": self.resize, "skipped": self.skipped}
        if self.native_resolution is not None:
            d["native_resolution"] = self.native_resolution
        if self.label is not None:
            d["class"] = self.label
        if self.split is not None:
            d["split"] = self.split
        if self.seed is not None:
            d["seed"] = self.seed
        if self.fingerprint is not None:
            fm = self.fingerprint.meta
            d["fingerprint"] = {k: fm.get(k) for k in ("source", "layout", "image_count", "size",
                                                       "preprocessing", "created")}
            if isinstance(fm.get("source"), str):  # older files hold a path
                d["fingerprint"]["source"] = portable_name(fm["source"])
        return d


class FeatureCache:
    """Intermediate results of sets (histograms, Inception features) by set and by a name that says what
    changes them, so that metrics sharing a stage compute it once.

    ``evaluate`` makes one per call; pass one to several calls that score the same ``EvalSet`` (e.g. one
    sample set against the training and the validation split) to compute that set's features once.
    A set's own ``features`` (a fingerprint's stored ones) are read, never copied or changed.
    """

    def __init__(self) -> None:
        # id(set) -> (set, computed features); holding the set keeps its id from being reused.
        self._computed: dict[int, tuple[EvalSet, dict[str, Any]]] = {}

    def _computed_of(self, s: EvalSet) -> dict[str, Any]:
        entry = self._computed.get(id(s))
        return entry[1] if entry is not None else {}

    def names(self, s: EvalSet) -> list[str]:
        """The feature names known for ``s``: stored with it or computed here."""
        return [*s.features, *(k for k in self._computed_of(s) if k not in s.features)]

    def get(self, s: EvalSet, name: str, compute: Callable[[], Any] | None = None) -> Any:
        """Feature ``name`` of ``s``: stored with the set, computed here before, or ``compute()`` now
        (and kept). ``KeyError`` when it is none of these and ``compute`` is None."""
        if name in s.features:
            return s.features[name]
        computed = self._computed.setdefault(id(s), (s, {}))[1]
        if name not in computed:
            if compute is None:
                raise KeyError(f"no feature {name!r} for the {s.role} set")
            computed[name] = compute()
        return computed[name]
