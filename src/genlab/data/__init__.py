"""Data sets by name, decoded to uint8 arrays, served as normalised batches."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.config import DataConfig
from genlab.data.loader import Batch, BatchLoader, Normalizer
from genlab.data.sources import READERS, ImageSet, channels_of
from genlab.errors import GenlabError

__all__ = ["Batch", "BatchLoader", "DataBundle", "ImageSet", "Normalizer", "channels_of", "load_data"]



@dataclass
class DataBundle:
    train: ImageSet
    val: ImageSet
    channels: int
    image_size: int
    normalizer: Normalizer

    @property
    def num_classes(self) -> int | None:
        if self.train.labels is None:
            return None
        if self.train.class_names:
            return len(self.train.class_names)
        return int(max(self.train.labels.max(), self.val.labels.max() if len(self.val) else 0)) + 1


def load_data(cfg: DataConfig) -> DataBundle:
    from genlab.data.cache import load_cached  # the cache module imports the readers

    train, val = load_cached(cfg, READERS[cfg.name])
    if not cfg.labels:
        train.labels = val.labels = None
    if len(train) == 0:
        raise GenlabError(f"data set {cfg.name!r} gave no training images; check data.root and data.limit.")
    if len(val) == 0:
        raise GenlabError(f"data set {cfg.name!r} gave no validation images; raise data.val_fraction "
                          f"(now {cfg.val_fraction}) or add images.")
    ch = channels_of(cfg)
    return DataBundle(train, val, ch, cfg.image_size, Normalizer(cfg.normalize, ch))
