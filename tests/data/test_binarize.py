"""Binarised images: Bernoulli draws of the gray levels, seeded so runs repeat and resume, independent of how
many processes split a batch; static sets drawn once, validation sets drawn once in either mode."""

from __future__ import annotations

import numpy as np
import torch

from genlab.data import BatchLoader, Normalizer, load_data
from genlab.data.binarize import describe, draw
from genlab.sections import DataConfig


def gray(n: int = 64, level: int = 64) -> np.ndarray:
    return np.full((n, 8, 8, 1), level, dtype=np.uint8)


def test_a_draw_is_binary_with_the_gray_level_as_probability_and_repeats_with_its_seed():
    images = gray(400, 64)  # p = 64 / 255
    once = draw(images, [0, 1])
    assert set(np.unique(once)) == {0, 255}
    assert abs((once == 255).mean() - 64 / 255) < 0.01
    assert np.array_equal(once, draw(images, [0, 1])) and not np.array_equal(once, draw(images, [0, 2]))
    assert set(np.unique(draw(np.array([[[[0]], [[255]]]], np.uint8), 5))) == {0, 255}
    assert draw(np.zeros((3, 2, 2, 1), np.uint8), 0).max() == 0 and draw(np.full((3, 2, 2, 1), 255, np.uint8), 0
                                                                         ).min() == 255


def loader(images, **kw) -> BatchLoader:
    return BatchLoader(images, None, batch_size=8, shuffle=True, seed=3, normalizer=Normalizer("zero_one", 1),
                       binarize=True, **kw)


def test_dynamic_draws_change_every_epoch_and_repeat_when_resumed():
    images = gray(32, 128)
    first = [b.images for b in loader(images).batches(0)]
    assert all(set(torch.unique(x).tolist()) <= {0.0, 1.0} for x in first)
    again = [b.images for b in loader(images).batches(0)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    resumed = [b.images for b in loader(images).batches(0, start=2)]
    assert all(torch.equal(a, b) for a, b in zip(first[2:], resumed))
    other_epoch = [b.images for b in loader(images).batches(1)]
    assert not any(torch.equal(a, b) for a, b in zip(first, other_epoch))


def test_dynamic_draws_do_not_depend_on_the_number_of_processes():
    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    whole = [b.images for b in loader(images).batches(4)]
    halves = [[b.images for b in loader(images, rank=r, world_size=2).batches(4)] for r in (0, 1)]
    assert all(torch.equal(w, torch.cat([a, b])) for w, a, b in zip(whole, *halves))


def test_load_data_draws_validation_once_and_training_as_the_mode_says(tmp_path):
    base = {"name": "digits", "image_size": 12, "limit": 40, "val_limit": 20, "split_seed": 2}
    plain = load_data(DataConfig(**base))
    dynamic = load_data(DataConfig(**base, binarize="dynamic"))
    static = load_data(DataConfig(**base, binarize="static"))
    assert len(np.unique(plain.train.images)) > 2
    assert np.array_equal(dynamic.train.images, plain.train.images)  # drawn per batch by the loader
    for bundle in (dynamic, static):
        assert set(np.unique(bundle.val.images)) <= {0, 255}
    assert np.array_equal(dynamic.val.images, static.val.images)
    assert set(np.unique(static.train.images)) <= {0, 255}
    assert np.array_equal(static.train.images, load_data(DataConfig(**base, binarize="static")).train.images)
    assert "afresh every epoch" in describe("dynamic", 2) and "drawn once" in describe("static", 2)
    assert describe(None, 2) is None
