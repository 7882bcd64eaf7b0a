"""Data-source registry: every `Source` declared by a module of this package, found by its presence.

A new data set is one module here that ends with `SOURCES = (Source(...),)`; `data.name` is validated
against what this finds, and nothing else in genlab lists data set names.
"""

from __future__ import annotations

import genlab.data as _package
from genlab.data.source import Source
from genlab.registries import collect, lookup
from genlab.sections import DataConfig

SOURCES: dict[str, Source] = collect(_package, "SOURCES", lambda s: s.name, skip=("registry",))


def get_source(name: str) -> Source:
    return lookup(SOURCES, name, "data source")


def channels_of(cfg: DataConfig) -> int:
    """1 or 3: data.grayscale when set, else the source's own default."""
    gray = cfg.grayscale if cfg.grayscale is not None else get_source(cfg.name).gray_default
    return 1 if gray else 3


def describe_split(cfg: DataConfig, n_val: int) -> str:
    """How the held-out images of this config were chosen, in words, for a score's protocol."""
    return get_source(cfg.name).describe_split(cfg, n_val)
