"""``precision="auto"``: bf16 only where the hardware runs it natively *and* a one-off measurement of
the model's own layers finds it faster than fp32; otherwise fp32.

Where bf16 is not native (:func:`gan.nets.native_bf16`: no AVX512-BF16/AMX-BF16 flag, a GPU before
Ampere) the answer is fp32 at once, with nothing measured: emulated bf16 is slower. Where it is, the
model's own work (its sampling forward pass, or its training step) is timed in both precisions,
interleaved, median of 3 to 5: a second or two. The result is kept per machine (CPU model and a hash
of its flags, or the GPU's name), torch version, thread count and model, in ``precision.json`` in the
user's cache folder:
``$LESIONGAN_CACHE``, else ``$XDG_CACHE_HOME/lesiongan``, else ``~/.cache/lesiongan``. The file is
written atomically; one that cannot be read is ignored and rewritten; one that cannot be written only
means measuring again in the next process.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from gan import nets

PRECISIONS = ("fp32", "bf16", "auto")
MIN_SPEEDUP = 1.15  # bf16 must beat fp32 by this much; below it, fp32's exactness is worth more
CACHE_FORMAT = 1


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``auto`` chose and why.

    Attributes:
        precision: ``"fp32"`` or ``"bf16"``.
        reason: one line that starts with the choice, e.g. ``"bf16: native AVX512-BF16, 1.9x faster
            than fp32 on this model (measured)"``.
        speedup: fp32 time / bf16 time where measured, else None.
    """

    precision: str
    reason: str
    speedup: float | None = None

    def __str__(self) -> str:
        return self.reason


def asked(precision: str) -> PrecisionChoice:
    """The choice for an explicit ``fp32`` or ``bf16``."""
    return PrecisionChoice(precision, f"{precision}: as asked")


def cache_path() -> Path:
    """The precision cache file (see the module docstring for the folder)."""
    folder = os.environ.get("LESIONGAN_CACHE")
    if not folder:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        folder = os.path.join(base, "lesiongan")
    return Path(folder) / "precision.json"


def machine_key(device: torch.device | str) -> str:
    """What a measurement holds for: the CPU model and a hash of its flags (or the GPU), the thread
    count and the torch version."""
    device = torch.device(device)
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        where = f"cuda {torch.cuda.get_device_name(device)} cc{major}.{minor}"
    else:
        model, flags = nets.cpu_info()
        digest = hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:12]
        where = f"{device.type} {model} flags {digest} {torch.get_num_threads()} threads"
    return f"{where} torch {torch.__version__}"


def interleaved_medians(runs: dict[str, Callable[[], object]], device: torch.device | str = "cpu",
                        repeats: tuple[int, int] = (3, 5), budget_s: float = 1.5) -> dict[str, float]:
    """Median wall time of each ``runs[name]()``, the calls interleaved (A, B, A, B...) so that a
    machine busy with other work slows every variant alike. One untimed warm-up call each comes first
    (first-call allocations, oneDNN kernel creation); then as many rounds, between ``repeats[0]`` and
    ``repeats[1]``, as the warm-up says fit in ``budget_s``. CUDA work is waited for."""
    device = torch.device(device)

    def timed(fn: Callable[[], object]) -> float:
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - t

    warm_up = sum(timed(fn) for fn in runs.values())
    rounds = max(repeats[0], min(repeats[1], int(budget_s / max(warm_up, 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, fn in runs.items():
            times[name].append(timed(fn))
    return {name: statistics.median(t) for name, t in times.items()}


# Measurements of this process, by (cache file, key): the same answer twice in a process even where
# the cache cannot be written.
_measured: dict[tuple[str, str], dict] = {}


def _valid(entry: object) -> bool:
    return isinstance(entry, dict) and all(
        isinstance(entry.get(k), (int, float)) and math.isfinite(entry[k]) and entry[k] > 0
        for k in ("fp32_ms", "bf16_ms"))


def read_cache(path: Path | None = None) -> dict[str, dict]:
    """The cache's valid entries by key; a missing, unreadable or malformed file gives none."""
    path = path or cache_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("entries"), dict):
        return {}
    return {k: v for k, v in data["entries"].items() if _valid(v)}


def _write_cache(path: Path, key: str, entry: dict) -> None:
    from gan.fileio import atomic_write_text

    entries = {**read_cache(path), key: entry}
    try:
        atomic_write_text(path, json.dumps({"format": CACHE_FORMAT, "entries": entries}, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home: measured again next time, nothing else changes


def choose(device: torch.device | str, model: str, make_run: Callable[[str], Callable[[], object]]
           ) -> PrecisionChoice:
    """fp32 or bf16 for ``model`` on ``device``, by measurement where bf16 is native.

    Args:
        device: where the model runs.
        model: what is measured, for the cache key (e.g. ``"sampling dcgan 64px 3576704 params"``).
        make_run: ``make_run("fp32")`` / ``make_run("bf16")`` -> a function that runs the model's own
            work once in that precision (its sampling forward pass, its training step); they are
            timed with :func:`interleaved_medians`. Called only where bf16 is native and nothing
            is cached.

    Returns:
        A :class:`PrecisionChoice`.
    """
    device = torch.device(device)
    feature = nets.native_bf16(device)
    if feature is None:
        what = {"cpu": "this CPU", "cuda": "this GPU"}.get(device.type, str(device))
        return PrecisionChoice("fp32", f"fp32: {what} has no native bf16 (emulated bf16 is slower)")
    path, key = cache_path(), f"{machine_key(device)} | {model}"
    entry = _measured.get((str(path), key)) or read_cache(path).get(key)
    when = "measured earlier on this machine"
    if entry is None:
        seconds = interleaved_medians({p: make_run(p) for p in ("fp32", "bf16")}, device)
        entry = {"fp32_ms": round(1000 * seconds["fp32"], 3), "bf16_ms": round(1000 * seconds["bf16"], 3),
                 "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        _write_cache(path, key, entry)
        when = "measured"
    _measured[(str(path), key)] = entry
    speedup = entry["fp32_ms"] / entry["bf16_ms"]
    if speedup >= MIN_SPEEDUP:
        return PrecisionChoice("bf16", f"bf16: native {feature}, {speedup:.1f}x faster than fp32 on this model "
                                       f"({when})", speedup)
    return PrecisionChoice("fp32", f"fp32: native {feature}, but bf16 is only {speedup:.2f}x the speed of fp32 on "
                                   f"this model ({when}; bf16 needs {MIN_SPEEDUP:g}x)", speedup)
