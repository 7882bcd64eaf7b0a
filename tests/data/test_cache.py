"""The decoded-image cache: written once, memory-mapped after, invalidated by any change to the data."""

from __future__ import annotations

import logging
import os

import numpy as np
import pytest
from PIL import Image

from genlab.config import DataConfig
from genlab.data import folder, load_data


def _folder(tmp_path, n: int = 12):
    root = tmp_path / "imgs"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(root / "ab"[i % 2] / f"{i}.png")
    (root / "a" / "broken.jpg").write_bytes(b"<html>")
    return root


def _cfg(root, **kw) -> DataConfig:
    return DataConfig.model_validate({"name": "image_folder", "root": str(root), "image_size": 16, **kw})


def _entries(private_cache):
    folder = private_cache / "data"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_second_load_comes_from_the_cache_unchanged(tmp_path, private_cache, monkeypatch, genlab_log):
    genlab_log.set_level(logging.INFO, logger="genlab")
    root = _folder(tmp_path)
    first = load_data(_cfg(root))
    assert len(_entries(private_cache)) == 1
    monkeypatch.setattr(folder, "decode_files", lambda *a, **k: pytest.fail("decoded again despite the cache"))
    second = load_data(_cfg(root, hflip=True, normalize="imagenet"))  # per-batch settings share the entry
    for a, b in ((first.train, second.train), (first.val, second.val)):
        assert isinstance(b.images, np.memmap) and np.array_equal(a.images, b.images)
        assert np.array_equal(a.labels, b.labels) and a.class_names == b.class_names
    assert len(second.train.skipped) + len(second.val.skipped) == 1  # the broken file is still reported
    assert any("from the cache" in r.getMessage() and "1 files were skipped" in r.getMessage()
               for r in genlab_log.records)
    binary = load_data(_cfg(root, binarize="static"))  # drawn after decoding: the gray entry serves it too
    assert len(_entries(private_cache)) == 1 and set(np.unique(binary.train.images)) <= {0, 255}


def test_a_changed_file_or_setting_is_decoded_again(tmp_path, private_cache):
    root = _folder(tmp_path)
    load_data(_cfg(root))
    load_data(_cfg(root, image_size=12))
    assert len(_entries(private_cache)) == 2
    path = root / "a" / "0.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(path)
    os.utime(path, ns=(1, 1))
    fresh = load_data(_cfg(root))
    assert len(_entries(private_cache)) == 3
    assert any((s.images == 0).all(axis=(1, 2, 3)).any() for s in (fresh.train, fresh.val))


def test_cache_off_and_array_sources_write_nothing(tmp_path, private_cache):
    load_data(_cfg(_folder(tmp_path), cache=False))
    load_data(DataConfig.model_validate({"name": "digits", "image_size": 8}))
    assert _entries(private_cache) == []


def test_an_unreadable_entry_is_rebuilt(tmp_path, private_cache, genlab_log):
    root = _folder(tmp_path)
    first = load_data(_cfg(root))
    (private_cache / "data" / _entries(private_cache)[0] / "val_images.npy").write_bytes(b"garbage")
    again = load_data(_cfg(root))
    assert np.array_equal(first.val.images, again.val.images)
    assert any("unreadable" in r.getMessage() for r in genlab_log.records)
    assert isinstance(load_data(_cfg(root)).val.images, np.memmap)
