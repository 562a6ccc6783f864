"""Class conditioning shared by the models, as the field does it:

* G: a learned class embedding joined to the latent (``[z, embed(c)]``), so the first block sees both;
* D: a projection discriminator (Miyato & Koyama, ICLR 2018): the score of image ``x`` for class
  ``c`` is ``psi(phi(x)) + <embed(c), phi(x)>``, where ``phi(x)`` is D's pooled last feature vector and
  ``psi`` its unconditional head, so the class enters through an inner product rather than as an input.

A model config carries ``class_names`` (empty: unconditional; the networks are then exactly the
unconditional ones, parameter for parameter).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class ConditionalConfig:
    """The class-conditioning part of a model config, shared by the models (their configs derive from it,
    so these fields come first in a config's JSON); each model checks it in its ``__post_init__`` with
    :meth:`check_conditional`.

    Args:
        class_names: the classes of a class-conditional model (empty: unconditional); filled from the
            data's labels by ``gan.train --cond``.
        embed_dim: size of G's class embedding (conditional models only).
    """

    class_names: tuple[str, ...] = ()
    embed_dim: int = 32

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def check_conditional(self, model: str) -> None:
        """Refuse class names a conditional model cannot use, or an embedding size below 1, naming ``model``."""
        check_class_names(model, self.class_names)
        if self.embed_dim < 1:
            raise ValueError(f"{model} embed_dim must be positive, got {self.embed_dim}")


def check_class_names(model: str, class_names: tuple[str, ...]) -> None:
    """Refuse a class list a conditional model cannot use, naming the model."""
    if len(class_names) == 1:
        raise ValueError(f"{model}: a conditional model needs at least two classes, got {list(class_names)}")
    if len(set(class_names)) != len(class_names) or any(not isinstance(c, str) or not c for c in class_names):
        raise ValueError(f"{model}: class_names must be distinct non-empty names, got {list(class_names)}")


def check_labels(labels: torch.Tensor | None, num_classes: int, n: int) -> torch.Tensor | None:
    """``labels`` as a long tensor of ``n`` class indices, or None for an unconditional network."""
    if num_classes == 0:
        if labels is not None:
            raise ValueError("labels were given to an unconditional network")
        return None
    if labels is None:
        raise ValueError(f"this network is conditional ({num_classes} classes): pass labels")
    if labels.shape != (n,):
        raise ValueError(f"expected {n} labels, got shape {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return labels.long()


class LatentEmbedding(nn.Module):
    """``[z, embed(c)]``: the latent joined to a learned ``dim``-d class embedding (N(0, 1) init, the
    same scale as z)."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, dim)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(labels).to(z.dtype)], dim=1)


class Projection(nn.Module):
    """``<embed(c), phi>`` for pooled features ``phi`` (N, C): the projection term of D's score."""

    def __init__(self, num_classes: int, channels: int, std: float = 0.02):
        super().__init__()
        self.embed = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.embed.weight, 0.0, std)

    def forward(self, phi: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (self.embed(labels).to(phi.dtype) * phi).sum(dim=1)
