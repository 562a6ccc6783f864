"""Numbers as the pages print them: counts (``64k``, ``1.5M``) and durations (``42 s``, ``3 min``, ``1.8 h``)."""
from __future__ import annotations

import math


def format_duration(seconds: float | None) -> str | None:
    """A wall time in the unit that reads best; None for a missing or non-finite value."""
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return None
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_count(n: float | int | None) -> str | None:
    """A count with a k/M/G suffix to 3 significant digits (``150k``, ``1.02k``, ``64k``); None for a missing
    or non-finite value."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return None
    n = float(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            v = n / scale
            text = f"{v:.{max(0, 2 - int(math.floor(math.log10(abs(v)))))}f}"
            if "." in text:
                text = text.rstrip("0").rstrip(".")
            return f"{text}{unit}"
    return f"{n:.0f}"
