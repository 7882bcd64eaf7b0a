"""What a data source is to the rest of genlab: one `Source` entry, declared by the module that reads it.

A source module defines `SOURCES = (Source(...), ...)`; genlab.data.registry finds it. Everything that
depends on which data set a run uses (the gray default, whether decoded arrays are cached, whether an
official test split exists, how the held-out split is described in a score's protocol, whether its
content depends on where the files are) is read from the entry, never from a list of names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.data.arrays import ImageSet
from genlab.sections import DataConfig

Reader = Callable[[DataConfig, int], tuple[ImageSet, ImageSet]]


def fraction_split(cfg: DataConfig, n_val: int) -> str:
    return f"{cfg.val_fraction:.0%} held out with split_seed {cfg.split_seed}"


@dataclass(frozen=True)
class Source:
    """One data set name.

    read(cfg, channels): decoded uint8 train and validation sets at cfg.image_size with `channels`.
    gray_default: single-channel unless data.grayscale says otherwise.
    cached: decoded from image files, so the decoded arrays are worth caching (data.cache).
    official_test_split: data.use_test_split validates on the set's own test split, the one papers report.
    canonical: the content does not depend on data.root (one classifier cache entry serves every copy).
    describe_split(cfg, n_val): how the held-out split was made, for the protocol of every score.
    factors(seed): for sets with known generative factors, a sampler of (factors, images) pairs, which the
    disentanglement metrics score codes against (genlab.metrics.disentanglement.GroundTruthSampler).
    example(folder): writes a tiny copy of the set in its own layout into `folder` and returns the data-section
    keys that read it (a few dozen images: the registry tests load every source this way; it also shows
    a user the layout the reader expects).
    """

    name: str
    read: Reader
    summary: str
    gray_default: bool = False
    cached: bool = False
    official_test_split: bool = False
    canonical: bool = False
    needs_root: bool = True
    describe_split: Callable[[DataConfig, int], str] = fraction_split
    factors: Callable[[int], Any] | None = None
    example: Callable[[Path], dict[str, Any]] | None = None


def noise_images(n: int, size: int, channels: int, seed: int = 0):
    """Random uint8 images (n, size, size, channels), for the sources' tiny examples."""
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)
