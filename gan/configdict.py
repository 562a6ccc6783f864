"""Frozen config dataclasses to and from their JSON dicts: the two helpers every config of the project
(the run's, each model's, the data's, the encoder's) is saved and read back with, in a module that
imports nothing of the project."""
from __future__ import annotations

import dataclasses
from typing import Any


def to_dict(cfg: Any) -> dict:
    """A frozen dataclass as a JSON-ready dict."""
    return dataclasses.asdict(cfg)


def _tuples(value: Any) -> Any:
    """JSON lists back to (nested) tuples, as frozen config dataclasses hold them."""
    if isinstance(value, (list, tuple)):
        return tuple(_tuples(v) for v in value)
    return value


# Field annotations (as strings: ``from __future__ import annotations``) that a JSON value is checked
# against: (accepted types, words for the message). bool is an int to Python, and only a bool is a bool.
_PLAIN_TYPES = {"int": ((int,), "an integer"), "float": ((int, float), "a number"), "bool": ((bool,), "true or false"),
                "str": ((str,), "a string")}


def config_from_dict(cls: type, d: dict, what: str | None = None) -> Any:
    """Rebuild the config dataclass ``cls`` from its JSON dict: lists become (nested) tuples, and
    unknown keys are refused, named in the error (``what`` names the config, default the class)."""
    if not isinstance(d, dict):
        raise ValueError(f"{what or cls.__name__}: expected a JSON object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(d) - set(fields)
    if unknown:
        raise ValueError(f"unknown {what or cls.__name__} keys: {sorted(unknown)}")
    for k, v in d.items():  # a value of the wrong plain type would fail deep in __post_init__ otherwise
        want = _PLAIN_TYPES.get(str(fields[k].type))
        if want is not None and (isinstance(v, bool) != (want[0] == (bool,)) or not isinstance(v, want[0])):
            raise ValueError(f"{what or cls.__name__}: {k} must be {want[1]}, got {v!r}")
    try:
        return cls(**{k: _tuples(v) for k, v in d.items()})
    except TypeError as e:
        raise ValueError(f"{what or cls.__name__}: {e}") from None
