"""Where model specs register (``@register_model``): a module the model files import, apart from the
package ``gan.models``, which imports them to look a name up (:func:`gan.models.get_model`)."""
from __future__ import annotations

from gan.models.base import ModelSpec

REGISTRY: dict[str, ModelSpec] = {}


def register_model(cls: type[ModelSpec]) -> type[ModelSpec]:
    """Class decorator: register a :class:`ModelSpec` subclass under ``cls.name``."""
    if cls.name in REGISTRY:
        raise ValueError(f"model {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls
