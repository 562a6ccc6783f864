"""The downstream classifier of ``eval.utility``: one fixed recipe, trained from scratch.

The recipe is fixed on purpose, so that the only thing that changes between the utility settings is
the training data:

* network (``arch="small"``, :class:`SmallCNN`, the default): four 3x3 conv blocks (16, 32, 64, 128 channels; BatchNorm, ReLU; the
  first with stride 2, 2x2 max-pooling after the second and third), global average pooling, dropout
  0.3, a linear head; 98 k parameters; 64 px input. Trained from scratch: no pretrained weights, no outside data.
* input: uint8 RGB at 64 px, scaled to [-1, 1].
* optimizer: AdamW (lr 2e-3, weight decay 5e-4, betas 0.9/0.999), batch 64, ``steps`` optimizer steps
  (``eval.utility`` sets them per setting: protocol v1 the same for every setting, v2 in proportion
  to the setting's size), learning rate warmed up linearly over the first 5% of steps, then
  cosine-annealed to 0.
* augmentation (every setting, every batch): random flips and 90-degree rotations
  (:func:`gan.data.augment`), a random shift of up to 4 px (reflect padding; one per batch) and per-image
  brightness and contrast jitter of +-10%.
* loss: cross-entropy weighted by class (``n / (C * n_c)`` over the setting's own training set), so
  every class counts equally however many images it has.
* batches: drawn with replacement, uniformly over the training images, from a ``torch.Generator``
  seeded with ``seed`` (so two settings with the same seed and the same images see the same batches);
  the network's initial weights come from ``seed`` too.

``train_classifier`` returns the network; ``predict_proba`` gives class probabilities and
``embed`` the features before the linear head (for the shortcut check's linear probe).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan.data.augmentation import augment


ARCHS = ("small", "resnet18")


@dataclass(frozen=True)
class RecipeConfig:
    """The classifier recipe (see the module docstring). ``eval.utility``'s protocols fix every field;
    ``steps`` is set per setting, ``arch`` picks the network."""

    steps: int = 1000
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup: float = 0.05
    width: int = 16
    dropout: float = 0.3
    crop_shift: int = 4
    jitter: float = 0.1
    arch: str = "small"

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"unknown classifier {self.arch!r}; known: {', '.join(ARCHS)}")
        if self.steps < 1 or self.batch < 1:
            raise ValueError(f"steps ({self.steps}) and batch ({self.batch}) must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


class SmallCNN(nn.Module):
    """images (N, 3, S, S) in [-1, 1] -> class logits (N, C); any S divisible by 8.

    Four 3x3 conv blocks (conv, BatchNorm, ReLU): the first with stride 2 (S -> S/2, ``width`` channels),
    then 2x, 4x and 8x ``width`` channels with 2x2 max-pooling between them; global average pooling,
    dropout, a linear head."""

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.3):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for i in range(4):
            layers += [nn.Conv2d(chans[i], chans[i + 1], 3, stride=2 if i == 0 else 1, padding=1, bias=False),
                       nn.BatchNorm2d(chans[i + 1]), nn.ReLU(inplace=True)]
            if i in (1, 2):
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(chans[-1], num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features the head reads, (N, 8 * width)."""
        return self.features(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.embed(x)))


class ResNet18(nn.Module):
    """torchvision's ResNet-18, random initial weights, its ``fc`` as ``head``; (N, 3, S, S) -> logits."""

    def __init__(self, num_classes: int):
        super().__init__()
        from torchvision.models import resnet18

        body = resnet18(weights=None, num_classes=num_classes)
        self.head = body.fc
        body.fc = nn.Identity()
        self.body = body

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def make_network(recipe: "RecipeConfig", num_classes: int) -> nn.Module:
    """The recipe's untrained network (uses the global torch RNG for its initial weights)."""
    if recipe.arch == "resnet18":
        return ResNet18(num_classes)
    return SmallCNN(num_classes, recipe.width, recipe.dropout)


def to_input(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW -> float in [-1, 1]."""
    return x.float().div_(127.5).sub_(1.0)


def class_weights(y: np.ndarray, num_classes: int) -> torch.Tensor:
    """``n / (C * n_c)`` per class; a class absent from ``y`` gets weight 0 (it cannot be learned)."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (num_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def _jitter_crop(x: torch.Tensor, rng: torch.Generator, shift: int, jitter: float) -> torch.Tensor:
    """A random shift of the batch by up to ``shift`` px each way (reflect-padded; one shift per batch, which
    keeps it cheap) and per-image brightness/contrast jitter of a float batch in [-1, 1]."""
    n, _, s, _ = x.shape
    if shift:
        dx, dy = torch.randint(0, 2 * shift + 1, (2,), generator=rng).tolist()
        x = F.pad(x, (shift, shift, shift, shift), mode="reflect")[:, :, dy:dy + s, dx:dx + s]
    if jitter:
        b = (torch.rand(n, 1, 1, 1, generator=rng) * 2 - 1) * jitter * 2  # brightness on the [-1, 1] scale
        c = 1 + (torch.rand(n, 1, 1, 1, generator=rng) * 2 - 1) * jitter
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * c + mean + b).clamp_(-1, 1)
    return x


def train_classifier(images: torch.Tensor, labels: np.ndarray, num_classes: int, seed: int,
                     recipe: RecipeConfig = RecipeConfig(), progress=None) -> nn.Module:
    """Train the recipe's CNN on uint8 ``images`` (N, 3, S, S) with integer ``labels`` (N,).

    Args:
        images: the training images (real, synthetic or both), uint8 NCHW.
        labels: class index of each image, 0..num_classes-1.
        num_classes: number of outputs.
        seed: drives the initial weights, the batches and the augmentation.
        recipe: the recipe (network, optimizer, steps, augmentation).
        progress: an optional callable, called with 1 after every step (a tqdm's ``update``).

    Returns:
        The trained network, in eval mode.
    """
    if len(images) != len(labels) or len(images) == 0:
        raise ValueError(f"{len(images)} images and {len(labels)} labels: need as many, and at least one")
    labels = np.asarray(labels, dtype=np.int64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = make_network(recipe, num_classes)
    rng = torch.Generator().manual_seed(seed + 1_000_003)
    drop_rng = torch.Generator().manual_seed(seed + 2_000_003)
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    warm = max(1, int(recipe.warmup * recipe.steps))

    def lr_at(step: int) -> float:
        if step < warm:
            return recipe.lr * (step + 1) / warm
        t = (step - warm) / max(1, recipe.steps - warm)
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * t))

    weights = class_weights(labels, num_classes)
    y_all = torch.from_numpy(labels)
    net.train()
    for step in range(recipe.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        idx = torch.randint(0, len(images), (recipe.batch,), generator=rng)
        x = augment(images[idx], rng)
        x = _jitter_crop(to_input(x), rng, recipe.crop_shift, recipe.jitter)
        with torch.random.fork_rng(devices=[]):  # dropout masks from their own seeded stream
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=drop_rng)))
            loss = F.cross_entropy(net(x), y_all[idx], weight=weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress is not None:
            progress(1)
    return net.eval()


@torch.inference_mode()
def predict_proba(net: nn.Module, images: torch.Tensor, batch: int = 512) -> np.ndarray:
    """Softmax class probabilities (N, C) of uint8 ``images`` (N, 3, S, S), in eval mode."""
    net.eval()
    out = [torch.softmax(net(to_input(images[i:i + batch])), dim=1) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy() if out else np.empty((0, net.head.out_features), np.float32)


@torch.inference_mode()
def embed(net: nn.Module, images: torch.Tensor, batch: int = 512) -> np.ndarray:
    """The features before the head (N, D) of uint8 ``images``, in eval mode."""
    net.eval()
    out = [net.embed(to_input(images[i:i + batch])) for i in range(0, len(images), batch)]
    return torch.cat(out).numpy() if out else np.empty((0, net.head.in_features), np.float32)
