"""Image lists: a text file naming the images of a data set to use, one name per line.

The format (this module owns it): UTF-8 text, one image name per line exactly as the reader names the
image (``ImageSet.names``: ``ISIC_0000000`` for the ISIC layouts, the path relative to the data set's
folder for the folder layouts); blank lines and lines starting with ``#`` are ignored. Training on a
list (``--subset``) keeps the data set's order, so a list and its reordering train identically.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

from gan.fileio import atomic_write_text


def write_image_list(path: str | os.PathLike, names: list[str], comment: str = "") -> Path:
    """Write ``names`` (atomically), after an optional ``# comment`` line."""
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: an image list names each image once")
    bad = [n for n in names if not n or n != n.strip() or "\n" in n or n.startswith("#")]
    if bad:
        raise ValueError(f"{path}: unusable image name {bad[0]!r} (empty, padded, multi-line or starting with #)")
    head = "".join(f"# {line}\n" for line in comment.splitlines())
    path = Path(path)
    atomic_write_text(path, head + "".join(f"{n}\n" for n in names))
    return path


def read_image_list(path: str | os.PathLike) -> list[str]:
    """The names of an image list, in file order; ValueError naming the file when it is missing,
    unreadable, empty or names an image twice."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such image list") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: unreadable image list ({e.__class__.__name__})") from None
    names = [line.strip() for line in text.splitlines()]
    names = [n for n in names if n and not n.startswith("#")]
    if not names:
        raise ValueError(f"{path}: the image list names no image")
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise ValueError(f"{path}: names {n} twice")
        seen.add(n)
    return names


def list_sha256(names: list[str]) -> str:
    """A content hash of a set of names (order-free): what a run's provenance records of its subset."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()


def select(ds: Any, path: str | os.PathLike) -> Any:
    """The images of ``ds`` (a :class:`gan.data.dataset.ImageSet`) named in the list at ``path``, in ``ds``'s order; ValueError naming the
    list when it names an image ``ds`` does not have."""
    import torch

    wanted = read_image_list(path)
    index = {n: i for i, n in enumerate(ds.names)}
    missing = [n for n in wanted if n not in index]
    if missing:
        raise ValueError(f"{path}: {len(missing)} of its {len(wanted)} images are not in {ds.source} "
                         f"(first: {missing[0]})")
    keep = sorted(index[n] for n in wanted)
    return dataclasses.replace(
        ds, images=ds.images[torch.tensor(keep, dtype=torch.long)], names=[ds.names[i] for i in keep],
        labels=[ds.labels[i] for i in keep], codes=None if ds.codes is None else [ds.codes[i] for i in keep],
        info={**ds.info, "subset": Path(path).name, "subset_sha256": list_sha256(wanted)})


def split_names(names: list[str], seed: int) -> tuple[list[str], list[str]]:
    """A seeded random half of ``names`` and the other half (sizes n//2 and n - n//2), each in the
    order of ``names``; the same seed and names give the same halves on any machine."""
    import torch

    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(names), generator=g).tolist()
    first = set(perm[: len(names) // 2])
    return [n for i, n in enumerate(names) if i in first], [n for i, n in enumerate(names) if i not in first]


def sample_names(names: list[str], labels: list[str | None], n: int, seed: int) -> list[str]:
    """A seeded random ``n`` of ``names``, stratified by ``labels`` (None, unlabelled, is a group of its
    own): when ``n`` allows, every group first gets one image; the rest of ``n`` is shared in proportion
    to the images each group has left, by largest remainders (ties to the larger group, then to the
    group met first in ``names``). Returned in the order of ``names``; the same names, labels, n and
    seed give the same list on any machine.

    Raises:
        ValueError: ``n`` is not between 1 and ``len(names)``.
    """
    import torch

    if not 1 <= n <= len(names):
        raise ValueError(f"the sample size must be between 1 and the {len(names)} images, got {n}")
    groups: dict[str | None, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    keys = list(groups)
    base = {k: 1 if n >= len(keys) else 0 for k in keys}
    left = {k: len(groups[k]) - base[k] for k in keys}
    rest = n - sum(base.values())
    exact = {k: rest * left[k] / sum(left.values()) if rest else 0.0 for k in keys}
    take = {k: base[k] + int(exact[k]) for k in keys}
    by_remainder = sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), -len(groups[k]), keys.index(k)))
    for k in by_remainder[: n - sum(take.values())]:
        take[k] += 1
    g = torch.Generator().manual_seed(int(seed))
    keep: set[int] = set()
    for k in keys:  # one permutation per group, in the order the groups are met
        perm = torch.randperm(len(groups[k]), generator=g).tolist()
        keep.update(groups[k][j] for j in perm[: take[k]])
    return [names[i] for i in sorted(keep)]
