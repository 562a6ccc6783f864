"""One module per metric; importing this package registers them all (``eval.registry``)."""
from eval.metrics import histogram, wasserstein, fid, kid, msssim, memorization, swd, derm, c2st  # noqa: F401
