"""scikit-learn's bundled 8x8 handwritten digits: the data set that needs no download (the quickstart's)."""

from __future__ import annotations

import numpy as np

from genlab.data.arrays import ImageSet, finish_arrays, split_fraction
from genlab.data.source import Source
from genlab.sections import DataConfig


def read_digits(cfg: DataConfig, channels: int) -> tuple[ImageSet, ImageSet]:
    """Values 0..16 scaled to 0..255, labels 0..9, resized to data.image_size."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = (d.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None]
    full = ImageSet(imgs, d.target.astype(np.int64), [str(i) for i in range(10)])
    return finish_arrays(*split_fraction(full, cfg), cfg, channels)


SOURCES = (Source("digits", read_digits, "scikit-learn's bundled 8x8 digits (no download)", gray_default=True,
                  canonical=True, needs_root=False, example=lambda folder: {"limit": 48, "val_limit": 16}),)
