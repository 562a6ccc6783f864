"""Training hooks that another package provides: ``gan`` trains and knows nothing about what watches it.

``gan`` is the bottom layer (``eval`` and ``dashboard`` build on it, never the reverse), yet
``python -m gan.train --metrics fd_derm`` scores G_ema while training. The two meet here:

- :class:`gan.loop.TrainingHook` is what the loop calls (after each step and each snapshot);
- a *provider* makes those hooks for a run: an object (a module will do) with
  ``metric_names() -> list[str]`` (what ``--metrics`` accepts) and
  ``training_hooks(config, run, images, progress) -> list[TrainingHook]``;
- a package declares its provider in its packaging metadata, under the entry-point group
  :data:`GROUP`; LesionGAN's own ``pyproject.toml`` names ``eval.training_metrics`` as the provider
  ``metrics``. :func:`provider` loads it by that name when a run asks for it, so ``gan`` imports no
  ``eval`` module, neither in its source nor through a module name written in it.

A program can also hand a provider over itself with :func:`register` (a registered provider wins over
the metadata's). Other groups load the same way (``group=``): ``gan.synthesize --keep-if-classifier``
finds its sample filter under ``lesiongan.sample_filters``.
"""
from __future__ import annotations

from typing import Any

GROUP = "lesiongan.training_hooks"
METRICS = "metrics"  # the provider that --metrics, --metrics-kimg and --keep-best need

_REGISTERED: dict[tuple[str, str], Any] = {}  # (group, name) -> provider


def register(name: str, provider: Any, group: str = GROUP) -> None:
    """Make ``provider`` the provider called ``name`` of ``group`` in this process."""
    _REGISTERED[(group, name)] = provider


def provider(name: str, flag: str, group: str = GROUP) -> Any:
    """The provider called ``name``: registered in this process, else declared under ``group``.

    Raises:
        ValueError: none is installed; the message names ``flag`` (the option that needs it) and the group.
    """
    if (group, name) not in _REGISTERED:
        from importlib.metadata import distributions

        # Every distribution's metadata, not entry_points()'s first per name: a stale egg-info of an
        # older version in the current folder would hide the installed one.
        found = [ep for d in distributions() for ep in d.entry_points if ep.group == group and ep.name == name]
        if not found:
            raise ValueError(f"{flag}: no installed package provides {name!r} (entry-point group {group}; "
                             f"LesionGAN's eval package declares it: pip install -e . in the checkout)")
        _REGISTERED[(group, name)] = found[0].load()
    return _REGISTERED[(group, name)]
