"""Shared test fixtures: tiny synthetic "lesions" (dark discs on skin-coloured backgrounds)."""
from __future__ import annotations

import contextlib
import os

import pytest
import torch

from eval.testing import lesion_images

# Under pytest-xdist (``-n N``) the workers share the machine's cores: each worker and every process it
# starts gets its share of threads, so that N workers of a 2-core machine do not run 2N threads.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ:
    _THREADS = max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))
    os.environ.setdefault("OMP_NUM_THREADS", str(_THREADS))
    torch.set_num_threads(_THREADS)


def disc_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size): :func:`eval.testing.lesion_images` without pixel noise, NCHW as
    ``gan.data`` holds images."""
    return torch.from_numpy(lesion_images(n, size, seed, noise=0)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture
def discs():
    """The :func:`disc_images` factory."""
    return disc_images



@contextlib.contextmanager
def quick_bn_recalibration():
    """G_ema's BatchNorm statistics re-estimated on 2 batches of 16 instead of 16 of 64 (gan.loop) while
    inside: for tests of the loop's behaviour (resume, determinism, files, signals, the command line) on
    tiny runs, where the re-estimation at every snapshot and grid costs more than the training steps.
    Tests that judge the images keep the default."""
    import gan.loop

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gan.loop, "BN_RECALIBRATION", (2, 16))
        yield


@pytest.fixture
def quick_bn():
    """:func:`quick_bn_recalibration` for one test."""
    with quick_bn_recalibration():
        yield
