"""The metric registry and catalogue: every metric is a function registered by name with
``@register_metric``, together with what a reader needs to know about it (label, direction, one-line
description, what it sees and what it misses). The dashboard, ``eval.run`` and the model cards read
the catalogue from here; nothing else describes a metric.

A registered metric has the signature ``fn(real: EvalSet, fake: EvalSet, cfg: EvalConfig) -> dict``
and returns flat ``{key: number}`` entries (key names from ``eval.keys``). It raises
``MetricUnavailable(reason)`` when it cannot give an honest number (no weights, too few images, a
fingerprint that lacks what it needs); ``evaluate`` records the one-line reason and goes on.

This module imports no metric: the built-in ones (``eval.metrics``) register when the package ``eval``
is imported, which any import of this module does first (``eval/__init__`` imports ``eval.evaluate``,
which imports ``eval.metrics``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from eval.keys import KEY_JS_RGB, KEY_WASSERSTEIN_RGB


class MetricUnavailable(Exception):
    """A metric cannot be computed for these inputs; ``str(exc)`` is the one-line reason."""


@dataclass(frozen=True)
class MetricSpec:
    """A registered metric and its catalogue entry.

    Attributes:
        name: the name ``--metrics`` takes.
        fn: the pure function.
        keys: the result keys it writes under the default settings (the first is the headline number;
            per-channel keys come extra).
        keys_for: for a metric whose key names a setting (the histogram's bin count), the keys it
            writes under an ``EvalConfig``; None when they never change. Use :meth:`result_keys`.
        doc: first line of the function's docstring.
        label: short column title.
        better: "lower" or "higher": which way is better for the headline key.
        description: what the number is, one line.
        sees: what it is sensitive to, one line.
        misses: what it cannot see, one line.
        needs_heldout: it needs a held-out real set (``evaluate(heldout=...)``); without one it is
            reported unavailable.
    """

    name: str
    fn: Callable
    keys: tuple[str, ...]
    doc: str
    label: str = ""
    better: str = "lower"
    description: str = ""
    sees: str = ""
    misses: str = ""
    needs_heldout: bool = False
    keys_for: Callable[[Any], tuple[str, ...]] | None = None

    @property
    def key(self) -> str | None:
        """The headline result key under the default settings."""
        return self.keys[0] if self.keys else None

    def result_keys(self, cfg: Any = None) -> tuple[str, ...]:
        """The keys it writes under ``cfg`` (an ``EvalConfig``; None: the defaults), headline first."""
        return self.keys if cfg is None or self.keys_for is None else tuple(self.keys_for(cfg))


_METRICS: dict[str, MetricSpec] = {}
# What ``evaluate`` and ``eval.run`` compute when no metrics are named.
DEFAULT_METRICS = ("hist_js", "wasserstein", "fid", "kid", "diversity", "memorization", "fd_derm", "kid_derm",
                   "precision_derm", "recall_derm", "density_derm", "coverage_derm", "memorization_derm")


def register_metric(name: str, keys: tuple[str, ...] = (), *, label: str = "", better: str = "lower",
                    description: str = "", sees: str = "", misses: str = "", needs_heldout: bool = False,
                    keys_for: Callable[[Any], tuple[str, ...]] | None = None) -> Callable:
    """Decorator: register ``fn`` under ``name`` (the name ``--metrics`` takes) with its catalogue entry
    (the arguments are :class:`MetricSpec`'s attributes)."""
    if better not in ("lower", "higher"):
        raise ValueError(f"metric {name!r}: better must be 'lower' or 'higher', got {better!r}")

    def deco(fn: Callable) -> Callable:
        if name in _METRICS and _METRICS[name].fn is not fn:
            raise ValueError(f"metric {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _METRICS[name] = MetricSpec(name=name, fn=fn, keys=tuple(keys), doc=doc, label=label or name,
                                    better=better, description=description or doc, sees=sees, misses=misses,
                                    needs_heldout=needs_heldout, keys_for=keys_for)
        return fn

    return deco


def list_metrics() -> list[str]:
    """Names of all registered metrics, in registration order."""
    return list(_METRICS)


def get_metric(name: str) -> MetricSpec:
    """The registered metric ``name``; ``ValueError`` naming the known ones otherwise."""
    if name not in _METRICS:
        raise ValueError(f"unknown metric {name!r} (--metrics); known: {', '.join(_METRICS)}")
    return _METRICS[name]


def catalogue(names: tuple[str, ...] | list[str] | None = None) -> list[MetricSpec]:
    """The catalogue entries of ``names`` (default: the metrics ``eval.run`` computes by default),
    in that order."""
    if names is None:
        names = DEFAULT_METRICS
    return [get_metric(n) for n in names]


# The project's quality bar: colour statistics against the training split that a shipped model
# must reach (two disjoint halves of ISIC 2017's training split score 0.0010 and 0.0048).
QUALITY_BAR: dict[str, float] = {KEY_JS_RGB: 0.010, KEY_WASSERSTEIN_RGB: 0.020}


def meets_quality_bar(row: dict | None) -> bool | None:
    """Whether a result row (scored against the training split) meets :data:`QUALITY_BAR`; None when
    a number it needs is missing."""
    vals = [(row or {}).get(k) for k in QUALITY_BAR]
    if any(not isinstance(v, (int, float)) for v in vals):
        return None
    return all(v <= bar for v, bar in zip(vals, QUALITY_BAR.values()))


def describe_quality_bar() -> str:
    """The bar in words, e.g. ``js_rgb_hist64 <= 0.010 and wasserstein_rgb <= 0.020``."""
    return " and ".join(f"{get_label(k)} <= {v:.3f}" for k, v in QUALITY_BAR.items())


def get_label(key: str) -> str:
    """The catalogue label of a result key (the key itself when no metric has it as headline)."""
    return next((m.label for m in _METRICS.values() if m.key == key), key)
