"""Batches from uint8 image arrays: shuffled by (seed, epoch), augmented and normalised per batch.

The order of epoch e is a permutation drawn from a generator seeded with (seed, e), so a run
resumed at batch k of epoch e skips straight to the same k-th batch: no loader state to save.
Several processes (torchrun) share one order: each takes its contiguous `shard` of every batch, so the
batches do not depend on how many processes split them.
Images stay uint8 until they reach the device (a quarter of the bytes of float32 to copy).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from genlab.data import binarize as binarization

NORMALIZATION = {
    "minus_one_one": ((0.5,), (0.5,)),
    "zero_one": ((0.0,), (1.0,)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


@dataclass
class Batch:
    images: torch.Tensor  # float (B, C, H, W), normalised
    labels: torch.Tensor | None  # int64 (B,)


class Normalizer:
    """Maps uint8 images to the model's input range and back (for figures and metrics)."""

    def __init__(self, kind: str, channels: int):
        mean, std = NORMALIZATION[kind]
        if len(mean) == 3 and channels == 1:  # gray images: ImageNet statistics of the luminance
            mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        self.kind = kind
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, x_uint8: torch.Tensor) -> torch.Tensor:
        x = x_uint8.float().div_(255.0)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def to_unit(self, x: torch.Tensor) -> torch.Tensor:
        """Back to [0, 1] (clamped): the range in which figures are drawn and PSNR/SSIM computed."""
        return (x * self.std.to(x.device) + self.mean.to(x.device)).clamp(0.0, 1.0)

    def output_range(self) -> tuple[float, float]:
        """The normalised values of black and white, per the widest channel."""
        lo = ((0 - self.mean) / self.std).min().item()
        hi = ((1 - self.mean) / self.std).max().item()
        return lo, hi


def to_uint8(x_unit: torch.Tensor) -> np.ndarray:
    """[0, 1] images (N, C, H, W) to uint8 (N, H, W, C) as if saved to PNG: the quantisation published
    FID pipelines apply to generated images, so genlab's scores see what a saved sample would be."""
    return (x_unit.float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


DEVICE_SHARE = 0.25  # a data set may take this share of the GPU's free memory and live there


def choose_placement(nbytes: int, device: torch.device, free_device_bytes: int | None = None) -> str:
    """Where the uint8 images live while training: "device" (a small set copied to the GPU once: no
    per-batch transfer at all), "pinned" (page-locked host memory, so copies to the GPU run
    asynchronously), or "host" (CPU training: nothing to transfer)."""
    if device.type != "cuda":
        return "host"
    if free_device_bytes is None:
        free_device_bytes = torch.cuda.mem_get_info(device)[0]
    return "device" if nbytes <= DEVICE_SHARE * free_device_bytes else "pinned"


def shard(n: int, rank: int, world_size: int) -> slice:
    """Process `rank`'s contiguous part of n items; the sizes differ by at most one."""
    return slice(rank * n // world_size, (rank + 1) * n // world_size)


class BatchLoader:
    """`batch_size` is the global batch; with world_size > 1 each batch yields only this rank's shard
    (ranks whose shard of a short last batch is empty skip it)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, *, batch_size: int, shuffle: bool,
                 seed: int, normalizer: Normalizer, hflip: bool = False, drop_last: bool = False,
                 device: torch.device | str = "cpu", channels_last: bool = False, rank: int = 0,
                 world_size: int = 1, binarize: bool = False):
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.normalizer = normalizer
        self.hflip = hflip
        self.drop_last = drop_last
        self.device = torch.device(device)
        # NHWC uint8 permuted to NCHW already has channels-last strides: keeping them saves a copy too.
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.placement = choose_placement(images.nbytes, self.device) if len(images) else "host"
        self._on_device = torch.from_numpy(np.ascontiguousarray(images)).to(self.device) \
            if self.placement == "device" else None
        self.rank = rank
        self.world_size = world_size
        self.binarize = binarize

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_images(self) -> int:
        return len(self.images)

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

    def batches(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        """Batches of `epoch` from the `start`-th on; augmentation draws come from the same (seed, epoch)."""
        order = self.order(epoch)
        flip_rng = np.random.default_rng([self.seed, epoch, 1])
        flips = flip_rng.random(len(order)) < 0.5 if self.hflip else None
        for b in range(start, len(self)):
            batch = slice(b * self.batch_size, (b + 1) * self.batch_size)
            idx = order[batch]
            mine = shard(len(idx), self.rank, self.world_size)  # flips stay those of the global positions
            if mine.start == mine.stop:
                continue
            draws = binarization.batch_generator(self.seed, epoch, b, self.device) if self.binarize else None
            yield self._make(idx[mine], None if flips is None else flips[batch][mine], draws,
                             (mine, len(idx)))

    def _make(self, idx: np.ndarray, flips: np.ndarray | None, draws: torch.Generator | None = None,
              part: tuple[slice, int] | None = None) -> Batch:
        sorted_idx = np.sort(idx)  # sorted reads are kinder to memory-mapped arrays
        back = np.argsort(np.argsort(idx))
        if self._on_device is not None:
            x = self._on_device[torch.from_numpy(idx).to(self.device)].permute(0, 3, 1, 2)
        else:
            x = torch.from_numpy(np.ascontiguousarray(self.images[sorted_idx][back]))
            if self.placement == "pinned":
                x = x.pin_memory()  # lets the copy below overlap with the GPU's work
            x = x.permute(0, 3, 1, 2).to(self.device, non_blocking=True)
        if draws is not None:
            x = binarization.draw_batch(x, draws, *part) if part is not None else binarization.draw_batch(x, draws)
        x = self.normalizer(x)
        if flips is not None and flips.any():
            f = torch.from_numpy(flips).to(x.device)
            x = torch.where(f.view(-1, 1, 1, 1), x.flip(-1), x)
        y = None
        if self.labels is not None:
            y = torch.from_numpy(self.labels[sorted_idx][back]).to(self.device, non_blocking=True)
        return Batch(x.contiguous(memory_format=self.memory_format), y)
