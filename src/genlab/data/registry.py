"""Data-source registry: every `Source` declared by a module of this package, found by its presence.

A new data set is one module here that ends with `SOURCES = (Source(...),)`; `data.name` is validated
against what this finds, and nothing else in genlab lists data set names.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil

import genlab.data as _package
from genlab.data.source import Source
from genlab.errors import GenlabError
from genlab.sections import DataConfig


def _collect() -> dict[str, Source]:
    found: dict[str, Source] = {}
    for info in sorted(pkgutil.iter_modules(_package.__path__), key=lambda m: m.name):
        if info.name == "registry":
            continue
        for source in getattr(importlib.import_module(f"genlab.data.{info.name}"), "SOURCES", ()):
            if source.name in found:
                raise RuntimeError(f"data source {source.name!r} is registered twice")
            found[source.name] = source
    return found


SOURCES: dict[str, Source] = _collect()


def get_source(name: str) -> Source:
    if name not in SOURCES:
        hint = difflib.get_close_matches(name, list(SOURCES), n=1)
        raise GenlabError(f"unknown data source {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ".")
                          + f" Registered: {', '.join(sorted(SOURCES))}.")
    return SOURCES[name]


def channels_of(cfg: DataConfig) -> int:
    """1 or 3: data.grayscale when set, else the source's own default."""
    gray = cfg.grayscale if cfg.grayscale is not None else get_source(cfg.name).gray_default
    return 1 if gray else 3


def describe_split(cfg: DataConfig, n_val: int) -> str:
    """How the held-out images of this config were chosen, in words, for a score's protocol."""
    return get_source(cfg.name).describe_split(cfg, n_val)
