"""Test support: synthetic images, a stand-in generator, stand-in Inception weights, a tiny generator
file. Nothing here touches real data or the network; everything is deterministic per seed."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


def lesion_images(n: int, size: int, seed: int = 0, noise: float = 4.0) -> np.ndarray:
    """uint8 (n, size, size, 3): a dark disc of random colour, centre and radius on a skin-coloured
    background, the project's one synthetic "lesion" (tests, ``eval.testing``, the dashboard's demo).

    Args:
        n: how many images.
        size: side in px.
        seed: the images are a function of ``seed`` (and ``noise``).
        noise: standard deviation of Gaussian pixel noise (default 4: smooth enough for SSIM and
            nearest-neighbour tests to mean something, not so flat that every pixel repeats); 0 gives
            flat discs (and draws no noise).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        skin = np.array([225, 170, 150]) + rng.integers(-20, 21, 3)
        lesion = np.array([110, 60, 40]) + rng.integers(-25, 26, 3)
        cy, cx = rng.uniform(0.3, 0.7, 2) * size
        r = rng.uniform(0.15, 0.35) * size
        inside = ((yy - cy) ** 2 + (xx - cx) ** 2 < r ** 2)[..., None]
        img = np.where(inside, lesion, skin)
        if noise:
            img = img + rng.normal(0, noise, (size, size, 3))
        out[i] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


class FakeGenerator:
    """Stands in for ``gan.load_generator``'s object: ``latents``/``synthesize``/``generate`` with the
    same signatures; image ``i`` of a seed is a deterministic function of its latent."""

    model_name = "fake"

    def __init__(self, resolution: int = 16, z_dim: int = 8):
        self.resolution, self.z_dim, self.num_params, self.info = resolution, z_dim, 0, {}

    def latents(self, n: int, seed: int = 0) -> torch.Tensor:
        return torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(int(seed)))

    def synthesize(self, z: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        seeds = (z[:, 0].abs() * 1e6).long().tolist()
        return np.concatenate([lesion_images(1, self.resolution, s) for s in seeds]) if seeds else \
            np.empty((0, self.resolution, self.resolution, 3), np.uint8)

    def generate(self, n: int, seed: int = 0, batch_size: int = 256) -> np.ndarray:
        return self.synthesize(self.latents(n, seed), batch_size)


def make_standin_inception_weights(path: str | os.PathLike, seed: int = 0) -> Path:
    """Save a randomly initialised network of torch-fidelity's Inception-v3 architecture as a
    state_dict at ``path`` (a stand-in for the real weights, which cannot be downloaded here)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    class _Unloaded(fe.FeatureExtractorInceptionV3):
        def load_state_dict(self, *a, **k):  # keep the random initialisation
            return None

    orig = fe.load_state_dict_from_url
    fe.load_state_dict_from_url = lambda *a, **k: {}  # never download
    try:
        torch.manual_seed(seed)
        net = _Unloaded("standin", ["2048"])
    finally:
        fe.load_state_dict_from_url = orig
    # He initialisation keeps activations from fading through ~50 layers of random convolutions.
    for m in net.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    path = Path(path)
    torch.save({k: v.clone() for k, v in net.state_dict().items()}, path)
    return path


def write_tiny_generator(path: str | os.PathLike, resolution: int = 32, seed: int = 0) -> Path:
    """Write an untrained, tiny DCGAN generator file that ``gan.load_generator`` opens."""
    from gan.checkpoint import export_generator
    from gan.config import RunConfig

    cfg = RunConfig.from_dict({"model": "dcgan", "model_cfg": {"resolution": resolution, "z_dim": 8, "ngf": 4,
                                                                 "ndf": 4}})
    with torch.random.fork_rng(devices=[]):  # seeded weights without touching the caller's RNG
        torch.manual_seed(seed)
        net = cfg.spec.build_generator(cfg.model_cfg)
    ckpt = {"model": cfg.model, "config": cfg, "G_ema": net.state_dict(), "info": {"nimg": 0}}
    return export_generator(ckpt, path)
