"""Random draws that train the same on any number of processes (:class:`BatchRNG`): the one thing the
losses, the augmentations and the loop share about randomness, in a module that depends on torch only."""
from __future__ import annotations

import torch


class BatchRNG:
    """Per-sample random draws for this process's share of a global batch.

    Every process holds the same generator state, draws for the whole global batch and keeps its own
    rows (process r of W: rows ``[r * n, (r + 1) * n)``), so that the draws put together are what one
    process would draw for the global batch, and the generator stays in step on every process. With
    one process a draw is exactly ``torch.randn(n, ..., generator=generator)``.

    Args:
        generator: the shared generator.
        rank: this process's index.
        world_size: number of processes.
    """

    def __init__(self, generator: torch.Generator, rank: int = 0, world_size: int = 1):
        self.generator, self.rank, self.world_size = generator, rank, world_size

    @classmethod
    def of(cls, rng: torch.Generator | BatchRNG) -> BatchRNG:
        """``rng`` itself, or a plain generator as a single-process :class:`BatchRNG`."""
        return rng if isinstance(rng, BatchRNG) else cls(rng)

    def randn(self, n: int, *shape: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Normal draws of shape ``(n, *shape)`` for this process's ``n`` samples."""
        return self._draw(torch.randn, n, shape, device)

    def rand(self, n: int, *shape: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Uniform [0, 1) draws of shape ``(n, *shape)`` for this process's ``n`` samples."""
        return self._draw(torch.rand, n, shape, device)

    def _draw(self, fn, n: int, shape: tuple[int, ...], device) -> torch.Tensor:
        x = fn(n * self.world_size, *shape, generator=self.generator, device=device)
        return x[self.rank * n:(self.rank + 1) * n]
