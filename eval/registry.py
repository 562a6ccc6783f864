"""The metric registry: every metric is a function registered by name with ``@register_metric``.

A registered metric has the signature ``fn(real: EvalSet, fake: EvalSet, cfg: EvalConfig) -> dict``
and returns flat ``{key: number}`` entries (key names from ``eval.keys``). It raises
``MetricUnavailable(reason)`` when it cannot give an honest number (no weights, too few images, a
fingerprint that lacks what it needs); ``evaluate`` records the one-line reason and goes on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


class MetricUnavailable(Exception):
    """A metric cannot be computed for these inputs; ``str(exc)`` is the one-line reason."""


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: Callable
    keys: tuple[str, ...]  # the main result keys it writes (for tables; per-channel keys come extra)
    doc: str


_METRICS: dict[str, MetricSpec] = {}


def register_metric(name: str, keys: tuple[str, ...] = ()) -> Callable:
    """Decorator: register ``fn`` under ``name`` (the name ``--metrics`` takes)."""

    def deco(fn: Callable) -> Callable:
        if name in _METRICS and _METRICS[name].fn is not fn:
            raise ValueError(f"metric {name!r} is registered twice")
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        _METRICS[name] = MetricSpec(name=name, fn=fn, keys=tuple(keys), doc=doc)
        return fn

    return deco


def _load_builtin() -> None:
    # Importing the package registers every built-in metric module.
    from eval import metrics  # noqa: F401


def list_metrics() -> list[str]:
    """Names of all registered metrics, in registration order."""
    _load_builtin()
    return list(_METRICS)


def get_metric(name: str) -> MetricSpec:
    """The registered metric ``name``; ``ValueError`` naming the known ones otherwise."""
    _load_builtin()
    if name not in _METRICS:
        raise ValueError(f"unknown metric {name!r} (--metrics); known: {', '.join(_METRICS)}")
    return _METRICS[name]
