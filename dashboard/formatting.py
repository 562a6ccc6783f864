"""Numbers and messages as the pages print them: counts (``64k``, ``1.5M``), durations (``42 s``, ``3 min``,
``1.8 h``), and messages from files and libraries without the server's paths."""
from __future__ import annotations

import functools
import math
import re
from typing import Callable


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


# An absolute or home-relative path inside a message: the server's layout, never shown as it is (a URL's
# "//host/..." is not one).
_PATH_RE = re.compile(r"(?<![\w.~/])(?:~|/)(?:/?[^\s'\"`()\[\],;<>]+)+")
_URL_ERROR_RE = re.compile(r"\s*(?:and its download failed: )?URLError: <urlopen error [^>]*>")
_INCEPTION = "no Inception weights"


def plain_message(text: str, display: Callable[[str], str] | None = None) -> str:
    """A message from a file, a library or another tool as a visitor may read it: every path shown as
    ``display`` gives it (default: its last part), a failed download's URLError left out, and the missing
    Inception weights said in plain words."""
    text = str(text)
    if text.startswith(_INCEPTION):
        return ("no Inception weights on this server: FID and KID need torch-fidelity's Inception weights "
                "(python -m eval.run --inception-weights PATH)")
    text = _URL_ERROR_RE.sub("", text)

    def shown(m: re.Match) -> str:
        if m.group(0)[:2] == "//" and m.group(0)[2:3] != "/" and m.string[max(m.start() - 1, 0):m.start()] == ":":
            return m.group(0)  # a URL (https://host/...), not a path of this server
        path = m.group(0).rstrip(".:")
        tail = m.group(0)[len(path):]
        if display is not None and not path.startswith("~"):
            return display(path) + tail
        return (path.rstrip("/").rsplit("/", 1)[-1] or "a folder") + tail

    return _PATH_RE.sub(shown, text)


# Words of the code and its files, as a visitor reads them: what tools and model cards write for readers of
# the files (who need the keys) is shown on the pages in plain words.
_LOG_FILES = {"metrics.jsonl": "the run's metrics log", "stats.jsonl": "the run's training log",
              "results.json": "the model's scores file"}
_KIMG_RE = re.compile(r"(\d[\d,.]*)\s*kimg\b")
_CODE_RE = re.compile(r"(`[^`]*`)")


@functools.lru_cache(maxsize=1)
def _metric_words() -> tuple[dict[str, str], re.Pattern, re.Pattern]:
    """Every metric identifier (a key or name with ``_``: "diversity" is also an ordinary word) with its
    label, a pattern that finds one, and one that finds a parenthesis only repeating them."""
    from eval.registry import catalogue

    labels: dict[str, str] = {}
    for m in catalogue():
        for k in (m.name, *m.keys):
            if "_" in k:
                labels.setdefault(k, m.label)
    keys = "|".join(sorted(map(re.escape, labels), key=len, reverse=True))
    return labels, re.compile(rf"\b({keys})\b"), re.compile(rf"\s*\(`(?:{keys})(?:\s*/\s*(?:{keys}))*`\)")


def plain_words(line: str) -> str:
    """One line of Markdown with the code's own words put plainly, outside code spans: ``N kimg`` as
    ``N k images``, ``G_ema`` as the generator's moving average, a metric's key as its label (``fd_derm``:
    FD derm), a log file's name as what it holds; a parenthesis that only repeats a metric's keys
    (`` (`js_rgb_hist64`)``) goes. Commands and other code spans stay as written."""
    labels, key_re, paren_re = _metric_words()
    out = []
    for part in _CODE_RE.split(paren_re.sub("", line)):
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            out.append(_LOG_FILES.get(part[1:-1], part))
            continue
        part = _KIMG_RE.sub(r"\1 k images", part)
        part = re.sub(r"\bG_ema\b", "the generator's moving average", part)
        out.append(key_re.sub(lambda m: labels[m.group(1)], part))
    return "".join(out)
