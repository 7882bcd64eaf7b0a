"""Data sets by name (genlab.data.registry), decoded to uint8 arrays, served as normalised batches."""

from __future__ import annotations

from dataclasses import dataclass

from genlab.data import binarize
from genlab.data.arrays import ImageSet
from genlab.data.loader import Batch, BatchLoader, Normalizer
from genlab.data.registry import SOURCES, channels_of, get_source
from genlab.errors import GenlabError
from genlab.sections import DataConfig

__all__ = ["SOURCES", "Batch", "BatchLoader", "DataBundle", "ImageSet", "Normalizer", "channels_of", "load_data"]


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
    from genlab.data.cache import load_cached  # reads files: only when data is loaded

    source = get_source(cfg.name)
    if cfg.use_test_split and not source.official_test_split:
        with_split = ", ".join(sorted(n for n, s in SOURCES.items() if s.official_test_split))
        raise GenlabError(f"data.use_test_split is set, but {cfg.name!r} has no official test split (sources "
                          f"that have one: {with_split}); remove it to hold out data.val_fraction of the images.")
    ch = channels_of(cfg)
    train, val = load_cached(cfg, source, ch)
    binarize.apply(cfg.binarize, train, val, cfg.split_seed)
    if not cfg.labels:
        train.labels = val.labels = None
    if len(train) == 0:
        raise GenlabError(f"data set {cfg.name!r} gave no training images; check data.root and data.limit.")
    if len(val) == 0:
        raise GenlabError(f"data set {cfg.name!r} gave no validation images; raise data.val_fraction "
                          f"(now {cfg.val_fraction}) or add images.")
    return DataBundle(train, val, ch, cfg.image_size, Normalizer(cfg.normalize, ch))
