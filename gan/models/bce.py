"""The BCE loss of the DCGAN-style models (``dcgan``, ``pggan-seed``): PyTorch's DCGAN example step.

Phase "D": one batch of latents, ``fake = G(z)``; D is trained on real (label 1) and ``fake.detach()``
(label 0). Phase "G": the same ``fake`` through the updated D, label 1 (the non-saturating loss).
Re-using ``fake`` is what the PyTorch example does and saves a G forward. Phase "G" computes no
gradients for D's weights (the example does, then zeroes them unused).

The one thing that differs between the models is what D returns: probabilities (DCGAN's sigmoid head,
``binary_cross_entropy``, the reference recipe) or logits (``binary_cross_entropy_with_logits``, the same
loss, numerically safer). ``D_real`` / ``D_fake`` are mean probabilities either way; ``D_real_sign`` is
the mean sign of D's logit on the real batch (ADA's r_t, :mod:`gan.daug`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gan.models.base import Stage, no_param_grads
from gan.rng import BatchRNG


class BCELoss:
    """DCGAN's step at the stage's resolution.

    Args:
        G: the generator, called as ``G(z, resolution=stage.resolution[, labels=...])``.
        D: the discriminator, called as ``D(x, resolution=stage.resolution[, labels=...])``.
        cfg: the model config (``z_dim`` is read).
        logits: D returns logits (True) or probabilities (False, a sigmoid head).
    """

    phases = ("D", "G")

    def __init__(self, G: nn.Module, D: nn.Module, cfg, *, logits: bool):
        self.G, self.D, self.cfg, self.logits = G, D, cfg, logits
        self._fake: torch.Tensor | None = None

    def _bce(self, d: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(d) if real else torch.zeros_like(d)
        if self.logits:
            return F.binary_cross_entropy_with_logits(d, target)
        return F.binary_cross_entropy(d, target)

    def _prob(self, d: torch.Tensor) -> torch.Tensor:
        """Mean probability of "real" (a statistic, detached)."""
        d = d.detach()
        return (torch.sigmoid(d) if self.logits else d).mean()

    def _sign(self, d: torch.Tensor) -> torch.Tensor:
        """Mean sign of D's logit on real images: ADA's overfitting heuristic r_t (a statistic)."""
        d = d.detach().float()
        return torch.sign(d if self.logits else d - 0.5).mean()

    def accumulate_gradients(self, phase: str, real: torch.Tensor, stage: Stage,
                             rng: torch.Generator | BatchRNG, labels: torch.Tensor | None = None
                             ) -> dict[str, torch.Tensor]:
        # A conditional model: G draws the real batch's classes, and D scores each image for its class.
        kw = {"resolution": stage.resolution} if labels is None else {"resolution": stage.resolution, "labels": labels}
        if phase == "D":
            z = BatchRNG.of(rng).randn(real.shape[0], self.cfg.z_dim, device=real.device)
            d_real = self.D(real, **kw)
            loss_real = self._bce(d_real, True)
            self._fake = self.G(z, **kw)
            d_fake = self.D(self._fake.detach(), **kw)
            loss = loss_real + self._bce(d_fake, False)
            loss.backward()
            return {"loss_D": loss.detach(), "D_real": self._prob(d_real), "D_fake": self._prob(d_fake),
                    "D_real_sign": self._sign(d_real)}
        if phase == "G":
            if self._fake is None:
                raise RuntimeError("phase 'G' ran before phase 'D'")
            with no_param_grads(self.D):  # D's weight gradients would be thrown away: skip them
                d_fake = self.D(self._fake, **kw)
                loss = self._bce(d_fake, True)
                loss.backward()
            self._fake = None
            return {"loss_G": loss.detach(), "D_fake_after": self._prob(d_fake)}
        raise ValueError(f"unknown phase {phase!r}")
