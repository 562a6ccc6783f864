"""Compute behind the LesionGAN dashboard: discovery, tables, figures, generation, ZIP export.

Nothing here imports Streamlit, so every function can be unit-tested and reused from a notebook.
The pages in ``dashboard/views/`` call these functions and only draw the results.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from eval import keys as K

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINTS = REPO_ROOT / "checkpoints"
DEFAULT_RUNS = REPO_ROOT / "runs"
ENV_CHECKPOINTS = "LESIONGAN_CHECKPOINTS"

MAX_COUNT = 128  # images per Generate request; 64 at 64 px take well under a second on 2 cores
WEIGHT_FILES = ("generator.pt", "checkpoint.pt")  # preference order: exported G_ema first
GRID_RE = re.compile(r"grid-(\d+)\.png$")
TEMPLATE = "plotly_white"
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
CHANNELS = (("R", "#d62728"), ("G", "#2ca02c"), ("B", "#1f77b4"))


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelEntry:
    """One model the dashboard can show: a shipped checkpoint folder or a training run folder.

    Attributes:
        name: folder name, used as the model's label everywhere.
        path: the folder.
        weights: generator.pt (exported G_ema) if present, else checkpoint.pt, else None
            (a run that has not written a checkpoint yet still shows its curves and grids).
    """

    name: str
    path: Path
    weights: Path | None

    @property
    def stats(self) -> Path | None:
        p = self.path / "stats.jsonl"
        return p if p.is_file() else None

    @property
    def config(self) -> Path | None:
        p = self.path / "config.json"
        return p if p.is_file() else None

    @property
    def fingerprint(self) -> Path | None:
        p = self.path / "fingerprint.npz"
        return p if p.is_file() else None

    @property
    def model_card(self) -> Path | None:
        p = self.path / "MODEL_CARD.md"
        return p if p.is_file() else None


def _is_model_dir(path: Path) -> bool:
    return any((path / f).is_file() for f in (*WEIGHT_FILES, "stats.jsonl"))


def _entry(path: Path) -> ModelEntry:
    weights = next((path / f for f in WEIGHT_FILES if (path / f).is_file()), None)
    return ModelEntry(name=path.name, path=path, weights=weights)


def resolve_folder(folder: str | Path | None) -> Path:
    """Resolve a user-given folder: empty means the default, relative paths are relative to the repo root."""
    if folder is None or str(folder).strip() == "":
        return DEFAULT_CHECKPOINTS
    p = Path(str(folder).strip()).expanduser()
    return p if p.is_absolute() else (REPO_ROOT / p)


def discover_models(folder: str | Path) -> list[ModelEntry]:
    """Find the models in ``folder``.

    ``folder`` is either a run folder itself (it holds checkpoint.pt, generator.pt or stats.jsonl), or a
    folder of such folders (``checkpoints/``, ``runs/``). Returns entries sorted by name; an empty list
    when the folder is missing or holds no models.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    if _is_model_dir(folder):
        return [_entry(folder)]
    return [_entry(p) for p in sorted(folder.iterdir()) if p.is_dir() and _is_model_dir(p)]


def list_run_folders(runs_dir: str | Path = DEFAULT_RUNS) -> list[Path]:
    """Training run folders under ``runs_dir`` (newest name last), for the sidebar's quick pick."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    return [p for p in sorted(runs_dir.iterdir()) if p.is_dir() and _is_model_dir(p)]


def folder_stamp(folder: str | Path) -> tuple[float, int]:
    """(newest modification time, file count) over the models' stats, grids and weights: changes when
    a training run writes anything the pages show."""
    newest, count = 0.0, 0
    for e in discover_models(folder):
        files = [e.stats, e.weights, *(p for _, p in list_grids(e.path))]
        for p in files:
            if p is not None:
                newest = max(newest, file_stamp(p))
                count += 1
    return newest, count


def load_generator(path: str | Path) -> Any:
    """Load a generator on the CPU with ``gan.load_generator`` (imported lazily: importing lib stays cheap).

    Sampling runs in bf16 where the CPU has it natively (about half the time; within a few grey levels
    of fp32); ``python -m eval.run`` and ``gan.sample`` stay in fp32."""
    from gan import load_generator as _load

    return _load(path, device="cpu", precision="auto")


def file_stamp(path: Path | None) -> float:
    """Modification time used as a cache key, so a growing stats.jsonl or a new checkpoint is re-read."""
    try:
        return path.stat().st_mtime if path is not None else 0.0
    except OSError:
        return 0.0


# ---------------------------------------------------------------------------------------------
# Training statistics
# ---------------------------------------------------------------------------------------------


def read_stats(path: str | Path) -> pd.DataFrame:
    """Read a ``stats.jsonl`` into a DataFrame sorted by images seen.

    Lines that do not parse (a run still writing its last line) are skipped. Missing columns stay missing;
    callers check with ``in df``.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    df = pd.DataFrame(rows)
    if "nimg" not in df and "kimg" in df:
        df["nimg"] = (df["kimg"] * 1000).round().astype("int64")
    if "nimg" in df:
        df = df.sort_values("nimg", kind="stable").reset_index(drop=True)
    return df


def smooth(values: Sequence[float] | pd.Series, weight: float) -> np.ndarray:
    """Debiased exponential moving average (TensorBoard's smoothing). ``weight`` in [0, 1); 0 = raw."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    x = np.asarray(values, dtype=np.float64)
    out = np.empty_like(x)
    acc, norm = 0.0, 0.0
    for i, v in enumerate(x):
        if not math.isfinite(v):
            out[i] = np.nan
            continue
        acc = weight * acc + (1.0 - weight) * v
        norm = weight * norm + (1.0 - weight)
        out[i] = acc / norm
    return out


def is_progressive(df: pd.DataFrame) -> bool:
    """True when the run grew its resolution or faded layers in (a progressive GAN)."""
    if "resolution" in df and df["resolution"].nunique() > 1:
        return True
    return "alpha" in df and bool((df["alpha"] < 1.0).any())


@dataclass(frozen=True)
class Boundaries:
    """Where a progressive run switched phase and where it faded a new resolution in (images seen)."""

    phases: list[tuple[int, str]] = field(default_factory=list)  # (nimg at phase start, label)
    fades: list[tuple[int, int]] = field(default_factory=list)  # (start nimg, end nimg) with alpha < 1


def phase_boundaries(df: pd.DataFrame) -> Boundaries:
    """Phase starts and fade-in spans from the ``phase``/``resolution``/``alpha`` columns of stats.jsonl.

    Rows that lack a column (older or partial lines) are ignored for that column.
    """
    if df.empty or "nimg" not in df:
        return Boundaries()
    phases: list[tuple[int, str]] = []
    key = "phase" if "phase" in df else ("resolution" if "resolution" in df else None)
    if key is not None:
        d = df.dropna(subset=[key])
        vals, nimg = d[key].to_numpy(), d["nimg"].to_numpy()
        res = d["resolution"].to_numpy() if "resolution" in d else None
        for i in range(1, len(vals)):
            if vals[i] != vals[i - 1]:
                label = f"phase {int(vals[i])}" if key == "phase" else ""
                if res is not None and np.isfinite(res[i]):
                    label = f"{label} · {int(res[i])}px".strip(" ·")
                # The switch happened between the two logged points; draw it at the first new one.
                phases.append((int(nimg[i]), label))
    fades: list[tuple[int, int]] = []
    if "alpha" in df:
        d = df.dropna(subset=["alpha"])
        nimg, fading = d["nimg"].to_numpy(), d["alpha"].to_numpy() < 1.0
        start = None
        for i, f in enumerate(fading):
            if f and start is None:
                start = int(nimg[i - 1]) if i > 0 else int(nimg[i])
            if not f and start is not None:
                fades.append((start, int(nimg[i])))
                start = None
        if start is not None:
            fades.append((start, int(nimg[-1])))
    return Boundaries(phases=phases, fades=fades)


def last_value(df: pd.DataFrame, column: str) -> Any:
    """The last non-missing value of ``column``, or None."""
    if column not in df:
        return None
    s = df[column].dropna()
    return s.iloc[-1] if len(s) else None


def final_losses(df: pd.DataFrame) -> dict[str, float | None]:
    """The last logged D and G loss (what the report's comparison table quotes)."""
    out: dict[str, float | None] = {"loss_D": None, "loss_G": None}
    for k in out:
        if k in df and df[k].notna().any():
            out[k] = float(df[k].dropna().iloc[-1])
    return out


def list_grids(folder: str | Path) -> list[tuple[int, Path]]:
    """Fixed-noise grids in ``folder/grids`` as (images seen, path), sorted by images seen."""
    gdir = Path(folder) / "grids"
    if not gdir.is_dir():
        return []
    out = []
    for p in gdir.iterdir():
        m = GRID_RE.search(p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def read_config(entry: ModelEntry) -> dict[str, Any]:
    """The run's resolved config.json, or {} when the folder has none (shipped checkpoints)."""
    if entry.config is None:
        return {}
    try:
        return json.loads(entry.config.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


# ---------------------------------------------------------------------------------------------
# Results (written by ``python -m eval.run``)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    """What ``python -m eval.run`` wrote to ``results.json``: run settings and one row per model and reference.

    Attributes:
        rows: flat dicts; each has ``model`` and ``reference`` ("train", or "validation" when a
            fingerprint-val.npz was scored too), metric keys from ``eval.keys``, ``unavailable``
            ("metric: reason; ...") and, for a model that could not be scored, ``error``.
        meta: the file's other top-level fields (n, seed, bins, created, command).
        path: the file read.
    """

    rows: list[dict]
    meta: dict[str, Any]
    path: Path

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(str(r.get("model")) for r in self.rows))

    def references(self, model: str) -> list[str]:
        return list(dict.fromkeys(str(r.get("reference") or "train") for r in self.rows if str(r.get("model")) == model))

    def row(self, model: str, reference: str = "train") -> dict | None:
        """The row for ``model`` scored against ``reference``; the model's first row when that reference is absent."""
        mine = [r for r in self.rows if str(r.get("model")) == model]
        return next((r for r in mine if (r.get("reference") or "train") == reference), mine[0] if mine else None)

    def settings(self) -> str:
        """One line on how the numbers were made, e.g. ``n = 2000 samples, seed 0, 64 histogram bins``."""
        parts = []
        if "n" in self.meta:
            parts.append(f"{self.meta['n']} generated samples per model")
        if "seed" in self.meta:
            parts.append(f"seed {self.meta['seed']}")
        if "bins" in self.meta:
            parts.append(f"{self.meta['bins']} histogram bins")
        if "created" in self.meta:
            parts.append(f"scored {self.meta['created']}")
        return ", ".join(parts)


def load_results(folder: str | Path) -> Results | None:
    """``results.json`` in ``folder`` (as written by ``python -m eval.run``), or None when there is none.

    Also accepts a bare list of rows. Raises ValueError naming the file when it cannot be read.
    """
    path = Path(folder) / "results.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not readable JSON ({e})") from e
    if isinstance(data, list):
        data = {"rows": data}
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: expected eval.run's format (an object with a 'rows' list)")
    rows = [r for r in data["rows"] if isinstance(r, dict) and "model" in r]
    meta = {k: v for k, v in data.items() if k != "rows"}
    return Results(rows=rows, meta=meta, path=path)


def unavailable_reasons(row: dict | None) -> dict[str, str]:
    """``{metric: reason}`` from a row's ``unavailable`` field (a dict, or eval.run's "m: why; m2: why")."""
    u = (row or {}).get(K.KEY_UNAVAILABLE)
    if isinstance(u, dict):
        return {str(k): str(v) for k, v in u.items()}
    out: dict[str, str] = {}
    if isinstance(u, str) and u.strip():
        last = None
        for part in u.split("; "):
            m = re.match(r"([A-Za-z_][\w-]*): (.*)", part, re.S)
            if m:
                last = m.group(1)
                out[last] = m.group(2)
            elif last is not None:  # a reason that itself contained "; "
                out[last] += "; " + part
    return out


@dataclass(frozen=True)
class MetricInfo:
    """A result key of ``eval`` with the one-line explanation the pages show.

    Attributes:
        label: column title.
        key: the result key (``eval.keys``).
        metric: the ``eval`` registry name whose ``unavailable`` reason explains a missing value.
        better: "lower" or "higher".
        what: what it measures, one line.
    """

    label: str
    key: str
    metric: str
    better: str
    what: str


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("JSD colour", K.KEY_JS_RGB, "hist_js", "lower",
               "Jensen-Shannon divergence of real vs generated RGB histograms (64 bins, mean over channels); "
               "0 = same colours, 1 = disjoint."),
    MetricInfo("Wasserstein", K.KEY_WASSERSTEIN_RGB, "wasserstein", "lower",
               "Earth mover's distance between real and generated pixel-value distributions "
               "(per channel, values in [0, 1], mean over R, G, B)."),
    MetricInfo("FID", K.KEY_FID, "fid", "lower",
               "Fréchet distance between Inception-v3 feature statistics of real and generated images."),
    MetricInfo("KID", K.KEY_KID, "kid", "lower",
               "Kernel Inception Distance (unbiased MMD on Inception features); steadier than FID on few samples."),
    MetricInfo("Diversity MS-SSIM", K.KEY_MSSSIM_FAKE, "diversity", "lower",
               "Mean pairwise MS-SSIM between generated samples; lower = more varied. Above the real images' "
               "own value warns of mode collapse."),
    MetricInfo("Copy rate", K.KEY_COPY_RATE, "memorization", "lower",
               "Share of samples closer to a training image than 99% of held-out real images are; "
               "about 0.01 is honest, near 1 means copying."),
)


def metric_value(row: dict | None, key: str) -> float | None:
    """A finite float from a results row, or None."""
    if row is None:
        return None
    try:
        v = float(row.get(key))
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def metric_note(row: dict | None, info: MetricInfo) -> str:
    """Why a metric has no value for a model: ``eval``'s own reason when the results give one."""
    if row is None:
        return "model not in results.json; rerun `python -m eval.run`"
    if row.get("error"):
        return f"not scored: {row['error']}"
    why = unavailable_reasons(row).get(info.metric)
    if why:
        return why
    if row.get(info.key) is None:
        return "not computed (results.json gives no reason)"
    return "not a finite number in results.json"


# ---------------------------------------------------------------------------------------------
# Overview table
# ---------------------------------------------------------------------------------------------


def generator_facts(G: Any) -> dict[str, Any]:
    """Resolution, parameters, images seen, training time and hardware from a loaded generator."""
    info = dict(getattr(G, "info", {}) or {})
    hw = info.get("hardware")
    if isinstance(hw, dict):
        hw = ", ".join(str(v) for v in hw.values() if v)
    t = info.get("train_time_s", info.get("time_s", info.get("training_time_s")))
    return {
        "architecture": getattr(G, "model_name", None),
        "resolution": getattr(G, "resolution", None),
        "parameters": getattr(G, "num_params", None),
        "images seen": info.get("nimg"),
        "training time": t,
        "hardware": hw,
    }


def format_duration(seconds: float | None) -> str | None:
    if seconds is None or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return None
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_count(n: float | int | None) -> str | None:
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return None
    n = float(n)
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}".replace(".00", "")
    return f"{n:.0f}"


def overview_table(
    entries: Sequence[ModelEntry],
    stats: dict[str, pd.DataFrame],
    facts: dict[str, dict[str, Any]],
    results: Results | None,
    reference: str = "train",
) -> tuple[pd.DataFrame, list[str]]:
    """The report's comparison table, one row per model, plus notes on what is missing and why.

    Args:
        entries: the models found in the folder.
        stats: model name -> stats.jsonl DataFrame (may be absent for a model).
        facts: model name -> :func:`generator_facts` (absent when the generator did not load).
        results: what ``eval.run`` wrote, or None.
        reference: which real set the metric columns are scored against ("train" as in the report).
    Returns:
        (table, notes): the table with display-ready values and a list of one-line notes.
    """
    rows, notes = [], []
    for e in entries:
        df = stats.get(e.name)
        f = facts.get(e.name, {})
        res_row = results.row(e.name, reference) if results is not None else None
        row: dict[str, Any] = {"model": e.name, "architecture": f.get("architecture")}
        fl = final_losses(df) if df is not None else {"loss_D": None, "loss_G": None}
        row["final D loss"] = fl["loss_D"]
        row["final G loss"] = fl["loss_G"]
        for info in METRICS:
            row[info.label] = metric_value(res_row, info.key)
            if row[info.label] is None and res_row is not None and not res_row.get("error"):
                notes.append(f"{info.label} for {e.name}: {metric_note(res_row, info)}")
        if results is not None and res_row is None:
            notes.append(f"{e.name}: not in results.json, so no metrics; rerun `python -m eval.run`.")
        elif res_row is not None and res_row.get("error"):
            notes.append(f"{e.name}: eval.run could not score it: {res_row['error']}")
        # The generator file knows best; a run without one yet falls back on its stats.
        nimg = f.get("images seen")
        t = f.get("training time")
        res = f.get("resolution")
        if df is not None:
            nimg = last_value(df, "nimg") if nimg is None else nimg
            t = last_value(df, "time_s") if t is None else t
            res = last_value(df, "resolution") if res is None else res
        row["resolution"] = f"{int(res)}×{int(res)}" if res else None
        row["parameters"] = format_count(f.get("parameters"))
        row["images seen"] = format_count(nimg)
        row["training time"] = format_duration(t)
        row["hardware"] = f.get("hardware")
        rows.append(row)
    if results is None:
        notes.insert(0, "No results.json in this folder yet: run `python -m eval.run` to fill the metric columns.")
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.set_index("model")
    return table, _dedupe_notes(notes)


def display_table(table: pd.DataFrame, missing: str = "—") -> pd.DataFrame:
    """The overview table as text: losses to 3 decimals, metrics to 4 significant digits, gaps as a dash."""
    out = table.copy().astype(object)
    formats = {"final D loss": "{:.3f}", "final G loss": "{:.3f}", **{m.label: "{:.4g}" for m in METRICS}}
    for col in out.columns:
        fmt = formats.get(col, "{}")
        out[col] = [missing if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)
                    for v in table[col]]
    return out


def _dedupe_notes(notes: list[str]) -> list[str]:
    """Collapse per-model notes that say the same thing for every model into one line."""
    by_reason: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str]] = []
    plain: list[str] = []
    for n in notes:
        m = re.match(r"(.+?) for (.+?): (.+)", n)
        if not m:
            plain.append(n)
            continue
        k = (m.group(1), m.group(3))
        if k not in by_reason:
            by_reason[k] = []
            order.append(k)
        by_reason[k].append(m.group(2))
    out = plain[:]
    for label, why in order:
        out.append(f"{label} ({', '.join(by_reason[(label, why)])}): {why}")
    return out


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


def cap_count(requested: int, cap: int = MAX_COUNT) -> tuple[int, str | None]:
    """Clamp a requested image count to [1, cap]; the message says what happened, None when nothing did."""
    requested = int(requested)
    if requested > cap:
        return cap, f"Asked for {requested} images; showing {cap}, the most this page generates at once."
    if requested < 1:
        return 1, "Asked for fewer than one image; showing one."
    return requested, None


def class_names(G: Any) -> list[str]:
    """Class labels of a conditional generator (``G.class_names``), [] for an unconditional one.

    LesionGAN's models are unconditional today; a conditional one exposes ``class_names`` and accepts
    ``synthesize(z, labels=LongTensor)``, and the Generate page then offers a class selector.
    """
    names = getattr(G, "class_names", None) or (getattr(G, "info", None) or {}).get("class_names")
    return [str(n) for n in names] if names else []


def _synthesize(G: Any, z: Any, class_index: int | None) -> np.ndarray:
    import torch

    with torch.inference_mode():
        if class_index is None:
            return G.synthesize(z)
        labels = torch.full((z.shape[0],), int(class_index), dtype=torch.long, device=z.device)
        return G.synthesize(z, labels=labels)


def seed_latents(G: Any, seeds: Sequence[int]):
    """One latent per seed, so image ``i`` is reproducible on its own from ``seeds[i]``."""
    import torch

    return torch.cat([G.latents(1, int(s)) for s in seeds], dim=0)


def generate_images(G: Any, seeds: Sequence[int], class_index: int | None = None) -> np.ndarray:
    """uint8 (n, H, W, 3) images, one per seed, under ``torch.inference_mode``."""
    return _synthesize(G, seed_latents(G, seeds), class_index)


def slerp(a: Any, b: Any, t: Any):
    """Spherical interpolation between latent batches ``a`` and ``b`` (shape (1, z)) at fractions ``t`` (k,)."""
    import torch

    a_n = a / a.norm(dim=-1, keepdim=True)
    b_n = b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    t = t.reshape(-1, 1).to(a)
    so = torch.sin(omega)
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate(G: Any, seed_a: int, seed_b: int, steps: int = 8, class_index: int | None = None) -> np.ndarray:
    """Images along the great circle between the latents of two seeds (``steps`` >= 2, both ends included)."""
    import torch

    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    za, zb = G.latents(1, int(seed_a)), G.latents(1, int(seed_b))
    z = slerp(za, zb, torch.linspace(0, 1, steps))
    return _synthesize(G, z, class_index)


def seed_filename(seed: int) -> str:
    return f"seed{int(seed):04d}.png"


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def zip_pngs(images: np.ndarray, seeds: Sequence[int]) -> bytes:
    """A ZIP of PNGs named ``seed0042.png`` by the seed each image came from."""
    if len(images) != len(seeds):
        raise ValueError(f"{len(images)} images but {len(seeds)} seeds")
    buf = io.BytesIO()
    # PNGs are already compressed: storing them is as small and much faster than deflating again.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for img, s in zip(images, seeds):
            zf.writestr(seed_filename(s), png_bytes(img))
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Real images and fingerprints
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealBank:
    """What the dashboard shows from a training-split fingerprint (``eval.fingerprint`` format).

    Attributes:
        hist: float (3, 256) per-channel share of pixels at each value (rows sum to 1).
        thumbs: uint8 (T, S, S, 3) real images at the fingerprint size S, for galleries (may be empty).
        thumb_names: image ids of ``thumbs``.
        bank: uint8 (N, B, B, 3) every training image box-downscaled (B = 32), for nearest neighbours,
            or None when the fingerprint was made without one.
        bank_names: image ids of ``bank``.
        meta: the fingerprint's provenance (source, split, size, image_count, ...).
    """

    hist: np.ndarray
    thumbs: np.ndarray
    thumb_names: list[str]
    bank: np.ndarray | None
    bank_names: list[str]
    meta: dict[str, Any]


def load_real_bank(path: str | Path) -> RealBank:
    """Read a fingerprint with ``eval.fingerprint.load_fingerprint``; ValueError naming the file if invalid."""
    from eval.fingerprint import load_fingerprint

    fp = load_fingerprint(path)
    hist = fp.hist_rgb256.astype(np.float64)
    hist /= np.clip(hist.sum(axis=1, keepdims=True), 1, None)
    names = fp.bank_names
    thumbs = fp.thumbs if fp.thumbs is not None else np.zeros((0, fp.size, fp.size, 3), np.uint8)
    if fp.thumb_index is not None and len(fp.thumb_index) == len(thumbs):
        thumb_names = [names[i] if 0 <= i < len(names) else f"#{i}" for i in fp.thumb_index.tolist()]
    else:
        thumb_names = [f"#{i}" for i in range(len(thumbs))]
    meta = {k: v for k, v in fp.meta.items() if k != "names"}
    return RealBank(hist=hist, thumbs=thumbs, thumb_names=thumb_names, bank=fp.nn_bank, bank_names=names, meta=meta)


def load_real_images(path: str | Path, size: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` random images (uint8 NHWC) from a data set folder, via ``gan.data.load_dataset``."""
    from gan.data import load_dataset

    ds = load_dataset(path, size=size, progress=False)
    if len(ds) == 0:
        raise ValueError(f"{path}: no images found")
    return ds.images[sample_indices(len(ds), count, seed)].permute(0, 2, 3, 1).numpy()


def sample_indices(n: int, count: int, seed: int = 0) -> np.ndarray:
    """``min(count, n)`` distinct sorted indices into ``n`` items, reproducible per seed."""
    return np.sort(np.random.default_rng(int(seed)).choice(n, size=min(int(count), n), replace=False))


def colour_histogram(images: np.ndarray) -> np.ndarray:
    """Per-channel share of pixels at each value, float (3, 256), from ``eval``'s exact counts."""
    from eval.metrics.histogram import channel_histograms

    h = channel_histograms(np.array(images, dtype=np.uint8)).astype(np.float64)  # a writable copy
    return h / np.clip(h.sum(axis=1, keepdims=True), 1, None)


@dataclass(frozen=True)
class NeighbourPair:
    """A generated image, its nearest training image and their distance (RMS on [0, 1] pixels)."""

    fake_index: int
    fake: np.ndarray
    real: np.ndarray
    real_name: str
    distance: float


def closest_pairs(fakes: np.ndarray, bank: np.ndarray, bank_names: Sequence[str], k: int = 8) -> list[NeighbourPair]:
    """The ``k`` generated images closest to a training image, closest first.

    Uses the same space as the copy rate of ``eval.metrics.memorization`` when it reads a fingerprint:
    every image box-downscaled to the bank's size, RMS pixel difference on [0, 1].
    """
    from eval.images import resize_images
    from eval.metrics.memorization import nearest_neighbours

    if bank is None or len(bank) == 0:
        raise ValueError("no training images to compare against (the fingerprint has no image bank)")
    q = resize_images(np.ascontiguousarray(fakes), bank.shape[1], "box")
    dist, idx = nearest_neighbours(q, bank)
    order = np.argsort(dist, kind="stable")[:k]
    return [NeighbourPair(int(i), q[i], bank[idx[i]], str(bank_names[idx[i]]) if idx[i] < len(bank_names)
                          else f"#{idx[i]}", float(dist[i])) for i in order]


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def _layout(fig: go.Figure, **kw) -> go.Figure:
    fig.update_layout(template=TEMPLATE, hovermode="x unified", margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.1, xanchor="left", x=0), **kw)
    return fig


def _draw_boundaries(fig: go.Figure, b: Boundaries, rows: int = 1) -> None:
    for x0, x1 in b.fades:
        for r in range(1, rows + 1):
            fig.add_vrect(x0=x0, x1=x1, fillcolor="#888", opacity=0.12, line_width=0, row=r, col=1)
    for x, label in b.phases:
        for r in range(1, rows + 1):
            fig.add_vline(x=x, line_dash="dot", line_color="#555", line_width=1, row=r, col=1,
                          annotation_text=label if r == 1 else None, annotation_position="top left",
                          annotation_font_size=10)


def _curves_figure(df: pd.DataFrame, series: tuple[tuple[str, str, str], ...], y_title: str, height: int,
                   weight: float, show_raw: bool, boundaries: Boundaries | None) -> go.Figure:
    """Columns of ``df`` against images seen: faint raw lines, bold smoothed lines, phase marks."""
    fig = make_subplots(rows=1, cols=1)
    for key, colour, label in series:
        if key not in df:
            continue
        if show_raw:
            fig.add_trace(go.Scatter(x=df["nimg"], y=df[key], name=f"{label} (raw)", mode="lines",
                                     line=dict(color=colour, width=1), opacity=0.3))
        fig.add_trace(go.Scatter(x=df["nimg"], y=smooth(df[key], weight), name=f"{label} (smoothed)",
                                 mode="lines", line=dict(color=colour, width=2.5)))
    if boundaries is not None:
        _draw_boundaries(fig, boundaries)
    fig.update_xaxes(title_text="images seen")
    fig.update_yaxes(title_text=y_title)
    return _layout(fig, height=height)


def loss_figure(df: pd.DataFrame, weight: float = 0.9, show_raw: bool = True,
                boundaries: Boundaries | None = None) -> go.Figure:
    """D and G loss of one model against images seen: faint raw lines, bold smoothed lines, phase marks."""
    return _curves_figure(df, (("loss_D", COLOURS[0], "D loss"), ("loss_G", COLOURS[1], "G loss")),
                          "loss", 380, weight, show_raw, boundaries)


def overlay_figure(frames: dict[str, pd.DataFrame], weight: float = 0.9) -> go.Figure:
    """Smoothed D and G losses of several models on shared axes (D top, G bottom)."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("D loss (smoothed)", "G loss (smoothed)"))
    for i, (name, df) in enumerate(frames.items()):
        colour = COLOURS[i % len(COLOURS)]
        for r, key in ((1, "loss_D"), (2, "loss_G")):
            if key in df:
                fig.add_trace(go.Scatter(x=df["nimg"], y=smooth(df[key], weight), name=name, legendgroup=name,
                                         showlegend=r == 1, mode="lines", line=dict(color=colour, width=2)),
                              row=r, col=1)
    fig.update_xaxes(title_text="images seen", row=2, col=1)
    return _layout(fig, height=520)


def d_output_figure(df: pd.DataFrame, weight: float = 0.9, show_raw: bool = True,
                    boundaries: Boundaries | None = None) -> go.Figure:
    """Mean D output on real images, D(x), and on generated ones, D(G(z))."""
    return _curves_figure(df, (("D_real", COLOURS[2], "D(x) real"), ("D_fake", COLOURS[3], "D(G(z)) generated")),
                          "mean D output", 340, weight, show_raw, boundaries)


def histogram_figure(real: np.ndarray | None, fake: np.ndarray | None, name: str = "generated") -> go.Figure:
    """Real vs generated colour histograms, one panel per RGB channel (each (3, bins), rows sum to 1)."""
    fig = make_subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[f"{c} channel" for c, _ in CHANNELS])
    for ci, (cname, colour) in enumerate(CHANNELS):
        for hist, label, dash, show in ((real, "real", "solid", ci == 0), (fake, name, "dot", ci == 0)):
            if hist is None:
                continue
            bins = np.arange(hist.shape[1]) * (256 // hist.shape[1])
            fig.add_trace(go.Scatter(x=bins, y=hist[ci], name=label, legendgroup=label, showlegend=show,
                                     mode="lines", line=dict(color=colour if label == "real" else "#333",
                                                             dash=dash, width=2)),
                          row=1, col=ci + 1)
    fig.update_xaxes(title_text="intensity", range=[0, 255])
    fig.update_yaxes(title_text="share of pixels", row=1, col=1)
    return _layout(fig, height=320)
