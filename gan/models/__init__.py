"""Model registry: ``get_model("dcgan")`` returns the :class:`~gan.models.base.ModelSpec`."""
from __future__ import annotations

from gan.models.base import ModelSpec, Stage, count_params
from gan.models.registry import REGISTRY as _REGISTRY
from gan.models.registry import register_model


def _load_builtin() -> None:
    # Imported here, not at module top, so that `gan.models` stays cheap (the model files import torch).
    from gan.models import dcgan, pggan, pggan_seed, stylegan2  # noqa: F401


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
