"""Model registry: ``get_model("dcgan")`` returns the :class:`~gan.models.base.ModelSpec`."""
from __future__ import annotations

from gan.models.base import ModelSpec, Stage, count_params

_REGISTRY: dict[str, ModelSpec] = {}


def register_model(cls: type[ModelSpec]) -> type[ModelSpec]:
    """Class decorator: register a :class:`ModelSpec` subclass under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"model {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls()
    return cls


def _load_builtin() -> None:
    # Imported here, not at module top, so `gan.models` stays cheap and free of cycles.
    from gan.models import dcgan, pggan, pggan_seed  # noqa: F401


def get_model(name: str) -> ModelSpec:
    """The registered model called ``name``; ``ValueError`` listing the choices otherwise."""
    if name not in _REGISTRY:
        _load_builtin()  # also when a model module was imported directly first and registered alone
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def model_names() -> list[str]:
    """Names of every registered model."""
    _load_builtin()
    return sorted(_REGISTRY)


__all__ = ["ModelSpec", "Stage", "count_params", "get_model", "model_names", "register_model"]
