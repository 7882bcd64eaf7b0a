"""Every registered data source, read from the tiny copy its own entry writes: what it declares, what it loads.

Parametrized over the registry, so a new source is tested the day it is registered."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.config import DataConfig
from genlab.data import SOURCES, channels_of, load_data
from genlab.data.registry import describe_split
from genlab.errors import GenlabError

NAMES = sorted(SOURCES)


def _example(name: str, tmp_path, **extra) -> DataConfig:
    keys = SOURCES[name].example(tmp_path / name)
    return DataConfig.model_validate({"name": name, "image_size": 12, "cache": False, **keys, **extra})


@pytest.mark.parametrize("name", NAMES)
def test_entry_declares_a_summary_and_an_example(name):
    source = SOURCES[name]
    assert source.name == name and source.summary
    assert source.example is not None, f"{name}: no tiny example to test it with"
    assert source.needs_root or not source.cached  # sources without files have nothing to cache


@pytest.mark.parametrize("name", NAMES)
def test_loads_its_example_at_the_configured_size_and_channels(name, tmp_path):
    cfg = _example(name, tmp_path)
    data = load_data(cfg)
    channels = 1 if SOURCES[name].gray_default else 3
    assert channels_of(cfg) == data.channels == channels
    for part in (data.train, data.val):
        assert len(part) > 0 and part.images.dtype == np.uint8
        assert part.images.shape[1:] == (12, 12, channels)
        if part.labels is not None:
            assert part.labels.dtype == np.int64 and len(part.labels) == len(part)
    assert describe_split(cfg, len(data.val))  # every score's protocol names how the held-out images were chosen


@pytest.mark.parametrize("name", NAMES)
def test_the_other_channel_count_is_honoured(name, tmp_path):
    gray = not SOURCES[name].gray_default
    data = load_data(_example(name, tmp_path, grayscale=gray))
    assert data.channels == (1 if gray else 3) == data.train.images.shape[-1]


@pytest.mark.parametrize("name", NAMES)
def test_the_split_is_reproducible_and_limits_are_kept(name, tmp_path):
    cfg = _example(name, tmp_path)
    a, b = load_data(cfg), load_data(cfg)
    assert np.array_equal(a.train.images, b.train.images) and np.array_equal(a.val.images, b.val.images)
    limited = load_data(cfg.model_copy(update={"limit": 5, "val_limit": 3}))
    assert (len(limited.train), len(limited.val)) == (5, 3)


@pytest.mark.parametrize("name", NAMES)
def test_an_official_test_split_is_offered_only_where_one_exists(name, tmp_path):
    cfg = _example(name, tmp_path)
    if SOURCES[name].official_test_split:
        assert load_data(cfg.model_copy(update={"use_test_split": True})).val is not None
    else:
        with pytest.raises(GenlabError, match=f"'{name}' has no official test split"):
            load_data(cfg.model_copy(update={"use_test_split": True}))


def test_an_unknown_source_is_refused_when_the_config_is_read():
    with pytest.raises(ValueError, match="unknown data source; did you mean 'mnist'"):
        DataConfig.model_validate({"name": "mnsit"})
