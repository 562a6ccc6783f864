"""``evaluate(real, fake, metrics=[...])``: resolve both inputs, run each registered metric, return one
flat dict of numbers keyed by ``eval.keys`` plus the provenance every result carries."""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any, Sequence

from eval import metrics as _builtin_metrics  # noqa: F401  (importing them registers the built-in metrics)
from eval import sources
from eval.images import DEFAULT_RESIZE
from eval.keys import (DEFAULT_BINS, KEY_N_FAKE, KEY_N_REAL, KEY_RESIZE, KEY_RESOLUTION, KEY_SECONDS,
                       KEY_SEED, KEY_UNAVAILABLE)
from eval.registry import DEFAULT_METRICS, MetricUnavailable, get_metric
from eval.sources import FeatureCache

@dataclass(frozen=True)
class EvalConfig:
    """Settings every metric may read. ``heldout`` is the resolved held-out set (or None); ``cache``
    holds the sets' intermediate results (``set_histograms``, ``inception.set_features`` read it)."""

    n: int = 2000
    seed: int = 0
    size: int | None = None
    resize: str = DEFAULT_RESIZE
    bins: int = DEFAULT_BINS
    batch_size: int = 64
    msssim_pairs: int = 1000
    kid_subset_size: int = 1000
    kid_subsets: int = 100
    inception_weights: str | None = None
    offline: bool = False
    derm_encoder: str | None = None
    progress: bool = False
    heldout: Any = None
    cache: FeatureCache = field(default_factory=FeatureCache, compare=False)


class Result(dict):
    """A flat JSON-ready dict of results; ``extras`` holds arrays (closest-pair images, per-sample
    distances) keyed by metric name, kept out of the JSON."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.extras: dict[str, dict] = {}

    def to_json(self, **kw) -> str:
        return json.dumps(self, **kw)


def evaluate(real: Any, fake: Any, metrics: Sequence[str] | None = None, *, heldout: Any = None,
             n: int = 2000, seed: int = 0, size: int | None = None, resize: str = DEFAULT_RESIZE,
             bins: int = DEFAULT_BINS, inception_weights: str | None = None, batch_size: int = 64,
             msssim_pairs: int = 1000, kid_subset_size: int = 1000, kid_subsets: int = 100,
             progress: bool = False, cache: FeatureCache | None = None, label: str | None = None,
             offline: bool | None = None, derm_encoder: str | None = None) -> Result:
    """Score ``fake`` against ``real`` with the named metrics.

    Args:
        real: the reference set: a folder or data set path, an ``ImageSet``, a fingerprint (``.npz``
            path or ``Fingerprint``), uint8 images, or an ``EvalSet`` (``eval.sources.resolve``). For
            memorization it is the training set.
        fake: the same kinds, or a generator (``.pt`` file, run folder, or object with
            ``generate``/``resolution``).
        metrics: registered metric names (``eval.list_metrics()``); default ``DEFAULT_METRICS``.
        heldout: held-out real images (same kinds as ``real``), read only when a requested metric
            needs them (``MetricSpec.needs_heldout``: the memorization thresholds). Default: when
            ``real`` is the ISIC 2017 training split read from its folder, that folder's validation
            split (``result["heldout"]["chosen"]`` says so); otherwise none, and such a metric is
            reported unavailable.
        n: samples drawn from a generator input.
        seed: drives generator latents, MS-SSIM pairs and KID subsets.
        size: evaluation size in px; default the real set's (a fingerprint's size, an array's own
            size, 64 for folders).
        resize: PIL filter for images of another size (``bicubic``, ``bilinear``, ``box``, ``lanczos``,
            ``nearest``; default ``lanczos`` like gan.data); recorded in the result.
        bins: histogram bins over [0, 256) for the colour JSD (1..256).
        inception_weights: Inception-v3 weights file for FID/KID. Default: torch-fidelity's cached file,
            downloaded into its cache (torch hub's ``checkpoints`` folder) when missing, with a timeout;
            when that is forbidden or fails, FID/KID are reported unavailable with the reason.
        offline: forbid any download (default: ``$LESIONGAN_OFFLINE`` is 1/true/yes).
        derm_encoder: the dermoscopy encoder for the ``*_derm`` metrics (file or folder; default
            ``$LESIONGAN_DERM_ENCODER``, else the shipped ``checkpoints/derm-encoder``).
        batch_size: generator and Inception batch size (does not change any number).
        msssim_pairs: random pairs per set for MS-SSIM diversity.
        kid_subset_size, kid_subsets: KID subsets (the size is capped by both set sizes).
        progress: tqdm progress on stderr.
        cache: where the sets' intermediate results (histograms, Inception features) are kept; pass
            one ``FeatureCache`` to several calls that score the same ``EvalSet`` to compute them once.
            Default: a fresh one for this call. The inputs themselves are never changed.
        label: score one class (``--class``): a conditional generator draws only that class, and the
            real (and held-out) data sets keep only its images; they must be labelled data sets.

    Returns:
        ``Result``: metric keys (``eval.keys``), ``n_real``, ``n_fake``, ``resolution``, ``resize``,
        ``seed``, ``seconds``, ``real``/``fake`` provenance, ``config`` per metric, and ``unavailable``
        {metric: one-line reason} for metrics that could not give an honest number (and for a part
        of a metric that could not, by its key: a C2ST's ``c2st_pixel_floor``; the metric returns
        those as ``"_unavailable"``).
    """
    from eval.metrics.derm import encoder_file
    from eval.metrics.inception import offline_from_env

    t0 = time.perf_counter()
    names = list(DEFAULT_METRICS if metrics is None else metrics)
    specs = [get_metric(m) for m in names]
    if not 1 <= bins <= 256:
        raise ValueError(f"--bins must be in 1..256, got {bins}")
    if size is not None and size < 1:
        raise ValueError(f"--size must be positive, got {size}")
    cfg = EvalConfig(n=n, seed=seed, size=size, resize=resize, bins=bins, batch_size=batch_size,
                     msssim_pairs=msssim_pairs, kid_subset_size=kid_subset_size, kid_subsets=kid_subsets,
                     inception_weights=None if inception_weights is None else str(inception_weights),
                     offline=offline_from_env() if offline is None else bool(offline),
                     derm_encoder=None if derm_encoder is None else str(derm_encoder),
                     progress=progress, cache=FeatureCache() if cache is None else cache)
    if inception_weights is not None:
        from eval.metrics.inception import find_weights

        find_weights(inception_weights)  # a wrong path is the caller's error, not an unavailable metric
    if derm_encoder is not None and not encoder_file(derm_encoder).is_file():
        raise ValueError(f"--derm-encoder {str(derm_encoder)!r}: no encoder file there")
    kw = dict(n=n, seed=seed, resize=resize, batch_size=batch_size, progress=progress, label=label)
    r = sources.resolve(real, "real", size=size, **kw)
    f = sources.resolve(fake, "fake", size=r.size, **kw)
    if size is not None and r.size != size:
        raise ValueError(f"real set is at {r.size} px but --size is {size}")
    if f.size != r.size:
        raise ValueError(f"fake set is at {f.size} px, real set at {r.size} px; pass them at one --size")
    h, h_chosen = None, None
    if any(spec.needs_heldout for spec in specs):
        if heldout is not None:
            h = sources.resolve(heldout, "heldout", size=r.size, **kw)
        else:
            h = sources.default_heldout(r, resize=resize, progress=progress, label=label)
            h_chosen = None if h is None else "default: the validation split of the real data set (no --heldout)"
    cfg = replace(cfg, heldout=h, size=r.size)

    res = Result()
    res[KEY_N_REAL], res[KEY_N_FAKE] = r.count, f.count
    res[KEY_RESOLUTION], res[KEY_SEED] = r.size, seed
    res[KEY_RESIZE] = {"real": r.resize, "fake": f.resize}
    res["real"], res["fake"] = r.describe(), f.describe()
    if label is not None:
        res["class"] = label
    if h is not None:
        res["heldout"] = h.describe()
        if h_chosen:
            res["heldout"]["chosen"] = h_chosen
    res["config"], res["details"], res[KEY_UNAVAILABLE], res["timing"] = {}, {}, {}, {}
    from tqdm import tqdm

    for spec in tqdm(specs, desc="metrics", unit="metric", disable=not progress, leave=False):
        t = time.perf_counter()
        try:
            if spec.needs_heldout and h is None:
                raise MetricUnavailable(f"{spec.name} needs a held-out real set and none was given "
                                        f"(--heldout PATH)")
            out = dict(spec.fn(r, f, cfg))
        except MetricUnavailable as e:
            res[KEY_UNAVAILABLE][spec.name] = str(e)
            if progress:
                print(f"{spec.name}: unavailable: {e}", file=sys.stderr)
            continue
        finally:
            res["timing"][spec.name] = round(time.perf_counter() - t, 3)
        res["config"][spec.name] = out.pop("_config", {})
        if "_details" in out:
            res["details"][spec.name] = out.pop("_details")
        if "_extras" in out:
            res.extras[spec.name] = out.pop("_extras")
        # A part the metric could not give (a C2ST's floor), with its reason; the rest of it stands.
        res[KEY_UNAVAILABLE].update(out.pop("_unavailable", {}))
        res.update(out)
    res[KEY_SECONDS] = round(time.perf_counter() - t0, 3)
    return res
