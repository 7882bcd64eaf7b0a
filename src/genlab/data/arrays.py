"""Decoded image sets and what every source does to them: resize, split, subsample.

Everything is decoded once into uint8 arrays (N, H, W, C) at the configured size: augmentation and
normalisation then run on whole batches, which is both faster than per-item transforms and makes
the data order a pure function of (seed, epoch), so resumed runs see exactly the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from genlab.sections import DataConfig


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray | None = None  # int64 (N,)
    class_names: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def resize_array(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize an (N, H, W, C) uint8 stack with antialiased bilinear interpolation; convert gray/RGB."""
    if images.shape[1:] == (size, size, channels):
        return images
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    if x.shape[1] == 3 and channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        chunks = [F.interpolate(c, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
                  for c in x.split(4096)]
        x = torch.cat(chunks)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction))) if n > 1 else 0  # both sides keep at least one
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def limit_indices(idx: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """At most `limit` of `idx`, a seeded choice, in their original order."""
    if limit is None or len(idx) <= limit:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))


def subset(s: ImageSet, idx: np.ndarray) -> ImageSet:
    return ImageSet(s.images[idx], None if s.labels is None else s.labels[idx], s.class_names, s.skipped)


def split_fraction(full: ImageSet, cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    tr, va = split_indices(len(full), cfg.val_fraction, cfg.split_seed)
    return subset(full, tr), subset(full, va)


def finish_arrays(train: ImageSet, val: ImageSet, cfg: DataConfig, channels: int) -> tuple[ImageSet, ImageSet]:
    """Array sources: apply data.limit / val_limit, then resize only the images kept."""
    train = subset(train, limit_indices(np.arange(len(train)), cfg.limit, cfg.split_seed))
    val = subset(val, limit_indices(np.arange(len(val)), cfg.val_limit, cfg.split_seed + 1))
    for s in (train, val):
        s.images = resize_array(s.images, cfg.image_size, channels)
    return train, val
