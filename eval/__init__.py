"""LesionGAN evaluation: ``evaluate(real, fake, metrics=[...]) -> dict`` in torch-fidelity's style.

    from eval import evaluate, KEY_JS_RGB, KEY_WASSERSTEIN_RGB, KEY_FID, KEY_FD_DERM
    r = evaluate("checkpoints/dcgan/fingerprint.npz", "checkpoints/dcgan/generator.pt", n=2000, seed=0)
    r[KEY_JS_RGB], r[KEY_FD_DERM], r["unavailable"]

Metrics are pure functions, one module each under ``eval.metrics``, registered with
``@register_metric``; reference sets are stored as fingerprints (``eval.fingerprint``); the CLI is
``python -m eval.run``.
"""
from eval.evaluate import DEFAULT_METRICS, EvalConfig, Result, evaluate
from eval.keys import (CHANNELS, DEFAULT_BINS, KEY_COPY_RATE, KEY_COPY_RATE_DERM, KEY_COVERAGE_DERM, KEY_DENSITY_DERM,
                       KEY_FD_DERM, KEY_FID, KEY_JS_HSV, KEY_JS_RGB, KEY_KID, KEY_KID_DERM, KEY_KID_DERM_STD,
                       KEY_KID_STD, KEY_MSSSIM_FAKE, KEY_MSSSIM_GAP, KEY_MSSSIM_REAL, KEY_N_FAKE, KEY_N_REAL,
                       KEY_NN_FAKE_MEDIAN, KEY_NN_FAKE_MEDIAN_DERM, KEY_NN_HELDOUT_MEDIAN, KEY_NN_HELDOUT_MEDIAN_DERM,
                       KEY_NN_THRESHOLD, KEY_NN_THRESHOLD_DERM, KEY_PRECISION_DERM, KEY_RECALL_DERM, KEY_RESIZE,
                       KEY_RESOLUTION, KEY_SECONDS, KEY_SEED, KEY_SWD_AVG, KEY_UNAVAILABLE, KEY_WASSERSTEIN_HSV,
                       KEY_WASSERSTEIN_RGB, key_js, key_swd, key_wasserstein)
from eval.registry import MetricUnavailable, get_metric, list_metrics, register_metric
from eval.evalset import FeatureCache

_FINGERPRINT_NAMES = ("Fingerprint", "load_fingerprint", "make_fingerprint", "save_fingerprint")


def __getattr__(name: str):
    # Imported on first use, so that `python -m eval.fingerprint` does not import its own module twice.
    if name in _FINGERPRINT_NAMES:
        from eval import fingerprint
        return getattr(fingerprint, name)
    raise AttributeError(f"module 'eval' has no attribute {name!r}")


__all__ = [n for n in dir() if n.startswith(("KEY_", "key_"))] + [
    "CHANNELS", "DEFAULT_BINS", "DEFAULT_METRICS", "EvalConfig", "FeatureCache", "Fingerprint", "MetricUnavailable", "Result",
    "evaluate", "get_metric", "list_metrics", "load_fingerprint", "make_fingerprint", "register_metric",
    "save_fingerprint",
]
