"""Where the evaluation tools spend their time: ``eval.run``, ``eval.utility --quick`` and ``eval.privacy``,
each run once through its own ``main(argv)`` with a per-stage breakdown of the wall time.

    python bench/bench_eval_stages.py --real ../shared/data/isic2017 --generator checkpoints/dcgan-cond \
        [--tools run,utility,privacy] [--n 2000] [--privacy-n 10000] [--threads 2] [--utility-workers 1] \
        [--run-reference PATH] [--inception-weights PATH] [--json OUT.json]
    python bench/bench_eval_stages.py --tiny [--json OUT.json]

Benchmark, not a test. Each tool is called in this process as its command line would call it:

    run      python -m eval.run --real REFERENCE --fake GENERATOR --n N --seed 0 --offline --quiet --json
             (the default metrics; REFERENCE is --run-reference, default --real: a data set folder, whose
             validation split is the held-out set, or a fingerprint .npz)
    utility  python -m eval.utility --real REAL --synthetic GENERATOR --quick --workers W --no-save --json
    privacy  python -m eval.privacy --checkpoint GENERATOR --real REAL --n N --no-save --json

all with ``--threads``. ``--no-save`` keeps the model folder's results.json as it was; ``--offline``: nothing
is downloaded, so FID and KID are unavailable (and cost nothing) unless ``--inception-weights`` names
Inception-v3 weights. The generator must be conditional for ``utility``.

How the stages are timed: while a tool runs, the functions that do each stage are wrapped (module and
class attributes replaced, restored afterwards; nothing in ``eval/`` knows) by a :class:`StageTimer`,
which books every call's time to its stage minus the time of the stages called inside it (a metric's
time excludes the features it asks for, the features are booked once, to ``features: <kind>``). So the
stages never count a second twice, and ``unattributed`` (the tool's wall time minus all stages: argument
checks, indexing, report writing, progress bars) makes them add up to the wall time. The stages:

    data loading and decoding     gan.data.load_dataset: decoding the folder, or reading gan.data's cache
    generator load, model loading the generator file; the derm encoder, Inception-v3 and D
    sampling (G forward)          the generator's forward passes (eval.utility: also the synthetic class draws)
    resizing                      images brought to the evaluation size (PIL)
    fingerprint load              a reference fingerprint .npz (eval.run with one)
    features: <kind>              per feature kind, all sets together (each set's computed once per
                                  evaluation): colour histograms, derm encoder, derm mean and covariance,
                                  Inception-v3
    metric: <name>                each metric's own computation on those features (eval.run)
    training sets: assembly, classical augmentation, classifier training: <setting>, scoring the test sets,
    bootstrap, shortcut check     eval.utility (with --utility-workers above 1 the trainings run in worker
                                  processes and are booked whole to "trainings in worker processes")
    distance attack: nearest samples (pixels | derm features), discriminator attack: D scores, features:
    derm encoder, bootstrap       eval.privacy (bootstrap: each attack's AUC and its interval)

A library's first import inside a stage (scikit-learn, scipy) is booked to that stage, as it costs a
command line run. The tools' own modules (and torch) are imported before the first tool starts: that
time is reported apart, as ``imports``, what a command line adds before its work begins.

Each tool gets a Markdown table (stage | seconds | share) on stdout; ``--json`` writes every figure with
the machine's context (CPU model, cores, torch version and threads, load average before and after each
tool, the generator's sampling precision). ``--tiny`` runs all three on made-up data (an ISIC 2017
folder of synthetic lesions and an untrained conditional DCGAN in a temporary folder) at toy sizes, in
seconds: a check that every stage is found, not a measurement.

Bad input (a missing --real or --generator, an unknown tool) ends with one line and exit code 2; so does
a tool that fails (its own message is above it).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import importlib
import io
import json
import os
import platform
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

FORMAT = "lesiongan-bench-eval-stages"
VERSION = 1
TOOLS = ("run", "utility", "privacy")
MODULES = {"run": "eval.run", "utility": "eval.utility", "privacy": "eval.privacy"}
UNATTRIBUTED = "unattributed"

# Stage names (the table's rows).
LOAD = "data loading and decoding"
GENERATOR_LOAD = "generator load"
MODEL_LOAD = "model loading (encoder, Inception, D)"
SAMPLING = "sampling (G forward)"
RESIZE = "resizing"
FINGERPRINT = "fingerprint load"
ASSEMBLY = "training sets: assembly"
AUGMENT = "classical augmentation"
SCORING = "scoring the test sets"
BOOTSTRAP = "bootstrap"
SHORTCUT = "shortcut check"
POOL = "trainings in worker processes"
D_ATTACK = "discriminator attack: D scores"
FEATURE_KINDS = {"hist_rgb256": "colour histograms", "hist_hsv256": "HSV histograms",
                 "inception_pool3": "Inception-v3", "derm_features": "derm encoder",
                 "derm_stats": "derm mean and covariance"}
DERM_FEATURES = "features: " + FEATURE_KINDS["derm_features"]


def feature_stage(name: str) -> str:
    """The stage of a ``FeatureCache`` entry: ``features: <kind>`` (the name's part before the first colon)."""
    kind = name.split(":", 1)[0]
    return f"features: {FEATURE_KINDS.get(kind, kind)}"


def training_stage(setting: str) -> str:
    return f"classifier training: {setting}"


# The stages a run of each tool must show (with a labelled real set and a conditional generator with its D;
# FID and KID add "features: Inception-v3" when weights are given).
def expected_stages(tool: str, metrics: tuple[str, ...] | None = None, settings: tuple[str, ...] | None = None,
                    workers: int = 1) -> set[str]:
    """The stages :func:`measure` finds for ``tool`` on such inputs (``metrics``: eval.run's, default its
    defaults; ``settings``: eval.utility's, default protocol v2's)."""
    if tool == "run":
        from eval.registry import DEFAULT_METRICS

        return {LOAD, GENERATOR_LOAD, MODEL_LOAD, SAMPLING, "features: colour histograms", DERM_FEATURES,
                "features: derm mean and covariance", *(f"metric: {m}" for m in (metrics or DEFAULT_METRICS))}
    if tool == "utility":
        from eval.utility import SETTINGS_V2

        base = {LOAD, GENERATOR_LOAD, BOOTSTRAP}
        if workers > 1:  # sampling, training, scoring and the shortcut check happen in the workers
            return base | {POOL}
        return base | {SAMPLING, ASSEMBLY, AUGMENT, SCORING, SHORTCUT,
                       *(training_stage(s) for s in settings or SETTINGS_V2)}
    if tool == "privacy":
        return {LOAD, GENERATOR_LOAD, MODEL_LOAD, SAMPLING, DERM_FEATURES, BOOTSTRAP, D_ATTACK,
                "distance attack: nearest samples (pixels)", "distance attack: nearest samples (derm features)"}
    raise ValueError(f"unknown tool {tool!r}; known: {', '.join(TOOLS)}")


# -- the timer -------------------------------------------------------------------------------------

class StageTimer:
    """Exclusive time per stage: a call's seconds minus those of the stages it calls.

    Only the thread that made the timer is timed (a call from another thread runs untimed), so the
    stages' sum never exceeds the wall time of the code they ran in. ``context`` holds what a stage
    name may depend on (eval.utility's current setting).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.context: dict[str, Any] = {}
        self._stack: list[list] = []  # [stage, seconds of the stages inside it]
        self._thread = threading.get_ident()

    @contextlib.contextmanager
    def stage(self, name: str | None) -> Iterator[None]:
        """Book the time inside the block to ``name``, less that of the stages opened inside it (None:
        no stage; the time stays with the stage around it, or unattributed)."""
        if name is None or threading.get_ident() != self._thread:
            yield
            return
        self._stack.append([name, 0.0])
        t0 = self.clock()
        try:
            yield
        finally:
            dt = self.clock() - t0
            _, inner = self._stack.pop()
            self.seconds[name] = self.seconds.get(name, 0.0) + (dt - inner)
            self.calls[name] = self.calls.get(name, 0) + 1
            if self._stack:
                self._stack[-1][1] += dt

    def inside(self, name: str) -> bool:
        """Whether a stage ``name`` is open."""
        return any(entry[0] == name for entry in self._stack)

    def timed(self, fn: Callable, name: str | Callable[[tuple, dict], str | None]) -> Callable:
        """``fn`` booked to ``name`` (or to ``name(args, kwargs)``, the stage a call belongs to)."""
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.stage(name(args, kwargs) if callable(name) else name):
                return fn(*args, **kwargs)

        return wrapper


class Patches:
    """Attributes of modules and classes replaced, each put back by :meth:`undo` (in reverse order)."""

    _MISSING = object()

    def __init__(self) -> None:
        self._undo: list[tuple[Any, str, Any]] = []

    def set(self, owner: Any, attr: str, value: Any) -> None:
        self._undo.append((owner, attr, vars(owner).get(attr, self._MISSING)))
        setattr(owner, attr, value)

    def wrap(self, owner: Any, attr: str, make: Callable[[Callable], Callable]) -> None:
        """Replace ``owner.attr`` (defined on ``owner`` itself) by ``make(original)``."""
        self.set(owner, attr, make(vars(owner)[attr]))

    def undo(self) -> None:
        while self._undo:
            owner, attr, old = self._undo.pop()
            if old is self._MISSING:
                delattr(owner, attr)
            else:
                setattr(owner, attr, old)


# The modules whose functions the stage hooks replace.
HOOKED = ("eval.evaluate", "eval.evalset", "eval.sources", "eval.images", "eval.fingerprint", "eval.encoder",
          "eval.metrics.derm", "eval.metrics.derm_extractor", "eval.metrics.inception", "eval.utility",
          "eval.privacy", "gan.generator", "gan.data")


def _nearest_stage(args: tuple, kwargs: dict) -> str:
    # eval.privacy searches in two spaces: pixel vectors (3 x H x W values, at least 768 from 16 px up)
    # and the derm encoder's 128-d features.
    queries = args[0] if args else kwargs["queries"]
    return f"distance attack: nearest samples ({'pixels' if queries.shape[1] >= 768 else 'derm features'})"


@contextlib.contextmanager
def instrumented(timer: StageTimer, seen: dict) -> Iterator[None]:
    """Every stage hook installed while inside (see the module docstring); ``seen`` gets the loaded
    generator's ``precision`` and ``precision_reason``."""
    m = {name: importlib.import_module(name) for name in HOOKED}
    p = Patches()

    def wrap(module: str, attr: str, name, owner: str | None = None) -> None:
        target = getattr(m[module], owner) if owner else m[module]
        p.wrap(target, attr, lambda fn: timer.timed(fn, name))

    try:
        wrap("gan.data", "load_dataset", LOAD)

        def load_generator(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                with timer.stage(GENERATOR_LOAD):
                    G = fn(*args, **kwargs)
                seen.update(precision=getattr(G, "precision", None),
                            precision_reason=getattr(G, "precision_reason", None))
                return G
            return wrapper

        p.wrap(m["gan.generator"], "load_generator", load_generator)
        for attr in ("generate", "synthesize"):
            wrap("gan.generator", attr, SAMPLING, owner="LoadedGenerator")
        for module, attr in (("eval.metrics.derm", "load"), ("eval.encoder", "load_encoder"),
                             ("eval.metrics.derm_extractor", "extractor"), ("eval.metrics.inception", "extractor"),
                             ("eval.privacy", "load_discriminator")):
            wrap(module, attr, MODEL_LOAD)
        wrap("eval.images", "resize_images", RESIZE)
        wrap("eval.sources", "resize_images", RESIZE)
        wrap("eval.fingerprint", "load_fingerprint", FINGERPRINT)

        # eval.run: the features each set needs (computed once, in the evaluation's FeatureCache), and
        # each metric's own time (evaluate() looks every metric up through get_metric).
        def feature_get(fn):
            @functools.wraps(fn)
            def wrapper(cache, s, name, compute=None):
                if compute is not None:
                    compute = timer.timed(compute, feature_stage(name))
                return fn(cache, s, name, compute)
            return wrapper

        p.wrap(m["eval.evalset"].FeatureCache, "get", feature_get)

        def get_metric(fn):
            @functools.wraps(fn)
            def wrapper(name):
                spec = fn(name)
                return dataclasses.replace(spec, fn=timer.timed(spec.fn, f"metric: {spec.name}"))
            return wrapper

        p.wrap(m["eval.evaluate"], "get_metric", get_metric)

        # eval.utility: the setting a training belongs to is its task's.
        def one_training(fn):
            @functools.wraps(fn)
            def wrapper(task, *args, **kwargs):
                timer.context["setting"] = task["setting"]
                try:
                    return fn(task, *args, **kwargs)
                finally:
                    timer.context.pop("setting", None)
            return wrapper

        p.wrap(m["eval.utility"], "one_training", one_training)
        wrap("eval.utility", "train_classifier", lambda a, k: training_stage(timer.context.get("setting", "?")))
        wrap("eval.utility", "predict_proba", lambda a, k: SHORTCUT if timer.inside(SHORTCUT) else SCORING)
        wrap("eval.utility", "shortcut_check", SHORTCUT)
        wrap("eval.utility", "images", SAMPLING, owner="SyntheticSource")
        wrap("eval.utility", "setting_data", ASSEMBLY)
        wrap("eval.utility", "augmented_extras", AUGMENT)
        for attr in ("summarize", "summarize_shortcut", "weighted_auc", "bootstrap_weights"):
            wrap("eval.utility", attr, BOOTSTRAP)
        # With worker processes the trainings happen out of sight: run_utility's own time is theirs.
        wrap("eval.utility", "run_utility", lambda a, k: POOL if k.get("workers", 1) > 1 else None)

        # eval.privacy
        wrap("eval.privacy", "nearest_distances", _nearest_stage)
        wrap("eval.privacy", "pixel_vectors", "distance attack: nearest samples (pixels)")
        wrap("eval.encoder", "features", DERM_FEATURES, owner="DermEncoder")
        wrap("eval.privacy", "discriminator_scores", D_ATTACK)
        for attr in ("attack_auc", "stratified_weights"):
            wrap("eval.privacy", attr, BOOTSTRAP)
        yield
    finally:
        p.undo()


# -- one tool --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ToolTiming:
    """One tool's run: its wall time split into stages.

    Attributes:
        tool: ``run``, ``utility`` or ``privacy``.
        command: the command line it stands for (paths as files meant to travel name them).
        exit_code: what its ``main`` returned.
        total_s: wall seconds of the ``main`` call.
        stages: {stage: seconds}, largest first; together with ``unattributed_s``, ``total_s``.
        calls: {stage: how many calls were booked to it} (a stage that calls itself counts twice).
        unattributed_s: ``total_s`` minus the stages' sum.
        load_before, load_after: ``os.getloadavg()`` around the call.
        threads: torch's CPU threads while it ran.
        precision: the generator's sampling precision and why (``gan.load_generator``).
        notes: what the tool reported unavailable (FID without weights, an attack without D...).
    """

    tool: str
    command: str
    exit_code: int
    total_s: float
    stages: dict[str, float]
    calls: dict[str, int]
    unattributed_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    threads: int
    precision: str | None = None
    precision_reason: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ToolTiming:
        d = dict(d)
        d["load_before"], d["load_after"] = tuple(d["load_before"]), tuple(d["load_after"])
        return cls(**d)

    def rows(self) -> list[tuple[str, float, float]]:
        """(stage, seconds, share of the total), largest first, then ``unattributed``."""
        total = self.total_s or 1.0
        return [(s, v, v / total) for s, v in self.stages.items()] + \
            [(UNATTRIBUTED, self.unattributed_s, self.unattributed_s / total)]

    def markdown(self) -> str:
        lines = [f"### {MODULES[self.tool]}: {self.total_s:.2f} s" + ("" if self.exit_code == 0 else
                                                                       f" (exit code {self.exit_code})"),
                 "", f"`{self.command}`", "", "| stage | seconds | share |", "| --- | ---: | ---: |"]
        lines += [f"| {s} | {v:.3f} | {share:.1%} |" for s, v, share in self.rows()]
        lines.append(f"| total | {self.total_s:.3f} | 100.0% |")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines)


def _notes(tool: str, stdout: str) -> list[str]:
    """What the tool's JSON says could not be computed."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return []
    if tool == "run":
        return [f"{k}: unavailable: {v}" for k, v in (doc.get("unavailable") or {}).items()]
    if tool == "privacy":
        return [f"{k}: unavailable: {v['unavailable']}" for k, v in (doc.get("attacks") or {}).items()
                if isinstance(v, dict) and "unavailable" in v]
    return []


def measure(tool: str, argv: list[str]) -> ToolTiming:
    """Run ``MODULES[tool]``'s ``main(argv)`` here with the stage hooks in place; its stdout is kept
    for its notes, not printed; torch's thread count is restored afterwards."""
    import torch

    from gan.assets import portable_command

    main = importlib.import_module(MODULES[tool]).main
    timer, seen, out = StageTimer(), {}, io.StringIO()
    threads_before = torch.get_num_threads()
    load_before = os.getloadavg()
    try:
        with instrumented(timer, seen), contextlib.redirect_stdout(out):
            t0 = time.perf_counter()
            rc = main(argv)
            total = time.perf_counter() - t0
        threads = torch.get_num_threads()
    finally:
        torch.set_num_threads(threads_before)
    stages = dict(sorted(timer.seconds.items(), key=lambda kv: -kv[1]))
    calls = {k: timer.calls[k] for k in stages}
    return ToolTiming(tool=tool, command=portable_command([f"python -m {MODULES[tool]}", *argv]), exit_code=int(rc),
                      total_s=total, stages=stages, calls=calls, unattributed_s=total - sum(stages.values()),
                      load_before=tuple(load_before),
                      load_after=tuple(os.getloadavg()), threads=threads, precision=seen.get("precision"),
                      precision_reason=seen.get("precision_reason"), notes=_notes(tool, out.getvalue()))


# -- the report ------------------------------------------------------------------------------------

def machine_context() -> dict:
    """CPU model, cores, torch version and threads, Python, the load average now."""
    import torch

    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model or platform.processor() or platform.machine(), "cpus": os.cpu_count(), "cpus_usable": usable,
            "torch": torch.__version__, "torch_threads_default": torch.get_num_threads(),
            "python": platform.python_version(), "platform": platform.platform(), "load_average": list(os.getloadavg())}


@dataclass(frozen=True)
class Report:
    """Every tool's timing with the machine's context and the settings; ``imports_s``: importing the tools'
    modules (and torch) before the first one ran."""

    machine: dict
    settings: dict
    tools: list[ToolTiming]
    imports_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    format: str = FORMAT
    version: int = VERSION

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["tools"] = [t.to_dict() for t in self.tools]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Report:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} file")
        d = dict(d)
        d["tools"] = [ToolTiming.from_dict(t) for t in d["tools"]]
        d["load_before"], d["load_after"] = tuple(d["load_before"]), tuple(d["load_after"])
        return cls(**d)

    def markdown(self) -> str:
        m = self.machine
        head = (f"Machine: {m['cpu']}, {m['cpus_usable']} of {m['cpus']} CPUs usable, torch {m['torch']}, "
                f"{self.settings['threads']} thread(s); load average {self.load_before[0]:.2f} before, "
                f"{self.load_after[0]:.2f} after. Imports before the first tool: {self.imports_s:.2f} s.")
        return "\n\n".join([head, *(t.markdown() for t in self.tools)]) + "\n"


def tool_argv(tool: str, a: argparse.Namespace) -> list[str]:
    """The command line each tool is given (see the module docstring)."""
    threads = ["--threads", str(a.threads)]
    if tool == "run":
        weights = ["--inception-weights", str(a.inception_weights)] if a.inception_weights else []
        return ["--real", str(a.run_reference or a.real), "--fake", str(a.generator), "--n", str(a.n), "--seed", "0",
                *weights, *a.run_extra, "--offline", "--quiet", "--json", *threads]
    if tool == "utility":
        return ["--real", str(a.real), "--synthetic", str(a.generator), "--quick", *a.utility_extra,
                "--workers", str(a.utility_workers), "--no-save", "--json", *threads]
    n = ["--n", str(a.privacy_n)] if a.privacy_n else []
    return ["--checkpoint", str(a.generator), "--real", str(a.real), *n, *a.privacy_extra, "--no-save", "--json",
            *threads]


# -- made-up inputs for --tiny ---------------------------------------------------------------------

TINY_CLASSES = ("melanoma", "nevus", "seborrheic_keratosis")


def write_tiny_inputs(root: Path, n_train: int = 24, n_val: int = 12) -> tuple[Path, Path]:
    """An ISIC 2017 folder of synthetic lesions (training and validation splits, 64 px, every third image
    a melanoma and every third a seborrheic keratosis) and a run folder with an untrained conditional
    DCGAN (32 px) and its D; returns (data folder, run folder)."""
    import torch
    from PIL import Image

    from eval.privacy import save_discriminator
    from eval.testing import lesion_images
    from gan.checkpoint import export_generator
    from gan.config import RunConfig

    data = root / "isic2017"
    imgs = lesion_images(n_train + n_val, 64, seed=5)
    for part, ids in (("Training", range(n_train)), ("Validation", range(n_train, n_train + n_val))):
        folder = data / f"ISIC-2017_{part}_Data"
        folder.mkdir(parents=True)
        rows = []
        for i in ids:
            Image.fromarray(imgs[i]).save(folder / f"ISIC_{i:07d}.png")
            rows.append(f"ISIC_{i:07d},{float(i % 3 == 0)},{float(i % 3 == 1)}")
        (data / f"ISIC-2017_{part}_Part3_GroundTruth.csv").write_text(
            "image_id,melanoma,seborrheic_keratosis\n" + "\n".join(rows) + "\n")
    cfg = RunConfig.from_dict({"model": "dcgan", "model_cfg": {"resolution": 32, "z_dim": 8, "ngf": 4, "ndf": 4,
                                                                 "class_names": list(TINY_CLASSES)}})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G, D = cfg.spec.build(cfg.model_cfg)[:2]
    run = root / "dcgan-cond"
    export_generator({"model": cfg.model, "config": cfg, "G_ema": G.state_dict(), "info": {"nimg": 0}},
                     run / "generator.pt")
    save_discriminator({"config": cfg, "D": D.state_dict(), "nimg": 0}, run / "discriminator.pt")
    return data, run


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- the command line ------------------------------------------------------------------------------

class BadInput(ValueError):
    """Refused before any tool runs: one line, exit code 2."""


def _check(a: argparse.Namespace) -> list[str]:
    tools = [t for t in a.tools.split(",") if t]
    unknown = [t for t in tools if t not in TOOLS]
    if unknown or not tools:
        raise BadInput(f"--tools {a.tools}: expected a comma-separated choice of {', '.join(TOOLS)}")
    for flag in ("n", "threads", "utility_workers"):
        if getattr(a, flag) < 1:
            raise BadInput(f"--{flag.replace('_', '-')} {getattr(a, flag)}: must be at least 1")
    if a.privacy_n is not None and a.privacy_n < 1:
        raise BadInput(f"--privacy-n {a.privacy_n}: must be at least 1")
    if not a.tiny:
        if a.real is None or a.generator is None:
            raise BadInput("--real and --generator are required (or --tiny for made-up data)")
        for flag, path in (("--real", a.real), ("--generator", a.generator), ("--run-reference", a.run_reference),
                           ("--inception-weights", a.inception_weights)):
            if path is not None and not Path(path).exists():
                raise BadInput(f"{flag} {path}: no such file or folder")
    return tools


def run(a: argparse.Namespace, tools: list[str], argv: list[str]) -> Report:
    """Measure ``tools`` one after another."""
    from gan.assets import portable_command

    load_before = tuple(os.getloadavg())
    t0 = time.perf_counter()
    for name in (*MODULES.values(), *HOOKED):
        importlib.import_module(name)
    imports = time.perf_counter() - t0
    timings = []
    for tool in tools:
        t = measure(tool, tool_argv(tool, a))
        print(f"{MODULES[tool]}: {t.total_s:.1f} s", file=sys.stderr)
        timings.append(t)
        if t.exit_code != 0:
            break
    settings = {"command": portable_command(["python bench/bench_eval_stages.py", *argv]), "tools": tools,
                "n": a.n, "privacy_n": a.privacy_n, "threads": a.threads, "utility_workers": a.utility_workers,
                "inception_weights": a.inception_weights is not None, "tiny": a.tiny}
    return Report(machine=machine_context(), settings=settings, tools=timings, imports_s=imports,
                  load_before=load_before, load_after=tuple(os.getloadavg()))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--real", help="labelled real data set (the ISIC 2017 folder): eval.run's reference, eval.utility's "
                                  "training set, eval.privacy's members")
    p.add_argument("--generator", help="a conditional generator file or model folder")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"comma-separated (default {','.join(TOOLS)})")
    p.add_argument("--n", type=int, default=2000, help="eval.run's samples (default 2000)")
    p.add_argument("--privacy-n", type=int, default=None, help="eval.privacy's samples (default: its own, 10,000)")
    p.add_argument("--run-reference", help="eval.run's --real in place of --real (a fingerprint .npz, say)")
    p.add_argument("--inception-weights", help="Inception-v3 weights for FID and KID (default: none, both unavailable)")
    p.add_argument("--threads", type=int, default=2, help="every tool's --threads (default 2)")
    p.add_argument("--utility-workers", type=int, default=1,
                   help="eval.utility's --workers (default 1: the trainings split by setting; with more they run in "
                        "worker processes, timed as one stage)")
    p.add_argument("--json", help="write the report here as JSON")
    p.add_argument("--tiny", action="store_true", help="made-up data and an untrained generator in a temporary "
                                                       "folder, toy sizes: seconds")
    a = p.parse_args(argv)
    a.run_extra, a.utility_extra, a.privacy_extra = [], [], []
    try:
        tools = _check(a)
        if a.tiny:
            with tempfile.TemporaryDirectory(prefix="bench-eval-stages-") as tmp, \
                    _environ(LESIONGAN_CACHE=str(Path(tmp) / "cache"), LESIONGAN_OFFLINE="1"):
                a.real, a.generator = write_tiny_inputs(Path(tmp))
                a.n, a.privacy_n = 12, 12
                a.run_extra = ["--size", "32"]
                a.utility_extra = ["--seeds", "1", "--steps", "1", "--bootstrap", "20"]
                a.privacy_extra = ["--bootstrap", "20", "--pairs", "2"]
                report = run(a, tools, argv)
        else:
            report = run(a, tools, argv)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.markdown())
    if a.json:
        from gan.fileio import atomic_write_text

        atomic_write_text(Path(a.json), json.dumps(report.to_dict(), indent=1) + "\n")
        print(f"wrote {a.json}", file=sys.stderr)
    failed = [t for t in report.tools if t.exit_code != 0]
    if failed:
        print(f"error: {MODULES[failed[0].tool]} ended with exit code {failed[0].exit_code} (its message is above)",
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
