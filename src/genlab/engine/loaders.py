"""The loop's training and validation batches, with the layout and sharding the run asks for."""

from __future__ import annotations

import torch

from genlab import distributed
from genlab.data import BatchLoader, DataBundle
from genlab.errors import GenlabError


def uses_channels_last(cfg) -> bool:
    """train.channels_last; null (auto) is on: with train.allocator tuned, bench/train_speed.py measured NHWC
    faster at every benchmark shape on this CPU, 28x28 included (before, page faults hid it there)."""
    if cfg.train.channels_last is None:
        return True
    return cfg.train.channels_last


def make_loaders(data: DataBundle, cfg, device: torch.device, rank: int = 0, world_size: int = 1
                 ) -> tuple[BatchLoader, BatchLoader]:
    """Training and validation batches; with several processes, this rank's share of each global batch."""
    bs = cfg.train.batch_size
    distributed.local_batch_size(bs, world_size)
    if len(data.train) < bs:
        raise GenlabError(f"the training set has {len(data.train)} images, fewer than one batch "
                          f"(train.batch_size={bs}); use at least {bs} images or a smaller batch size.")
    cl = uses_channels_last(cfg)
    train = BatchLoader(data.train.images, data.train.labels, batch_size=bs, shuffle=True,
                        seed=cfg.train.seed, normalizer=data.normalizer, hflip=cfg.data.hflip,
                        drop_last=True, device=device, channels_last=cl, rank=rank, world_size=world_size,
                        binarize=cfg.data.binarize == "dynamic")
    return train, make_val_loader(data, cfg, device, rank, world_size)


def make_val_loader(data: DataBundle, cfg, device: torch.device, rank: int = 0, world_size: int = 1
                    ) -> BatchLoader:
    """Validation batches in a fixed order; with several processes, this rank's share unless rank/world 0/1."""
    return BatchLoader(data.val.images, data.val.labels, batch_size=cfg.train.batch_size, shuffle=False,
                       seed=cfg.train.seed, normalizer=data.normalizer, device=device,
                       channels_last=uses_channels_last(cfg), rank=rank, world_size=world_size)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """What the training loader yields per epoch (the last partial batch is dropped)."""
    return n_train // batch_size
