"""The procedural shapes set: factor grid, rendering, sampling and the train/validation reader."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.config import DataConfig
from genlab.data.shapes import (
    FACTOR_NAMES,
    FACTOR_SIZES,
    FACTOR_VALUES,
    SHAPE_NAMES,
    ShapesSampler,
    render,
    sample_factors,
)

CENTRE = np.array([[0, 3, 4, 16, 16]])  # a square, mid scale, slightly turned, in the middle


def shape_cfg(**kw) -> DataConfig:
    """A DataConfig for read_shapes; name is a placeholder (read_shapes must not look at it)."""
    return DataConfig.model_validate({"name": "digits", "image_size": 64, **kw})


def test_factor_grid_is_dsprites():
    assert FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert [len(v) for v in FACTOR_VALUES] == list(FACTOR_SIZES)
    np.testing.assert_allclose(FACTOR_VALUES[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert FACTOR_VALUES[2][0] == 0 and FACTOR_VALUES[2][-1] < 2 * np.pi
    np.testing.assert_allclose(np.diff(FACTOR_VALUES[2]), 2 * np.pi / 40)


def test_render_dtype_shape_and_binary_values():
    images = render(sample_factors(50, np.random.default_rng(0)))
    assert images.shape == (50, 64, 64, 1) and images.dtype == np.uint8
    assert set(np.unique(images)) == {0, 255}
    assert (images.reshape(50, -1).max(1) == 255).all()  # no image is blank


def test_render_is_deterministic_and_chunk_independent():
    factors = sample_factors(1100, np.random.default_rng(1))  # spans more than one internal chunk
    first = render(factors)
    assert np.array_equal(first, render(factors))
    assert np.array_equal(first[700:703], render(factors[700:703]))


@pytest.mark.parametrize("factor", range(5))
def test_changing_one_factor_changes_the_image(factor):
    base = CENTRE.copy()
    moved = base.copy()
    moved[0, factor] += 1
    assert not np.array_equal(render(base), render(moved)), FACTOR_NAMES[factor]


def test_factors_move_the_shape_the_right_way():
    def centroid(f):
        img = render(np.array([f]))[0, :, :, 0].astype(float)
        rows, cols = np.nonzero(img)
        return rows.mean(), cols.mean(), len(rows)

    r0, c0, _ = centroid([1, 5, 0, 0, 0])
    r1, c1, _ = centroid([1, 5, 0, 31, 0])
    r2, c2, _ = centroid([1, 5, 0, 0, 31])
    assert c1 - c0 > 30 and abs(r1 - r0) < 0.5  # pos_x moves right only
    assert r2 - r0 > 30 and abs(c2 - c0) < 0.5  # pos_y moves down only
    areas = [centroid([2, s, 0, 16, 16])[2] for s in range(6)]
    assert all(b > a for a, b in zip(areas, areas[1:]))  # larger scale, larger shape
    # An ellipse turned by a quarter turn is its transpose about the centre.
    wide, tall = (render(np.array([[1, 5, o, 16, 16]]))[0, :, :, 0] for o in (0, 10))
    assert wide.any(axis=0).sum() > 1.5 * wide.any(axis=1).sum()
    assert tall.any(axis=1).sum() > 1.5 * tall.any(axis=0).sum()


def test_shapes_differ_at_the_same_pose():
    images = render(np.array([[s, 4, 3, 10, 20] for s in range(3)])).astype(int)
    for a in range(3):
        for b in range(a + 1, 3):
            assert np.abs(images[a] - images[b]).sum() > 10 * 255, (SHAPE_NAMES[a], SHAPE_NAMES[b])


def test_shape_stays_inside_the_frame_at_extremes():
    extremes = np.array([[s, 5, o, x, y] for s in range(3) for o in range(40) for x in (0, 31) for y in (0, 31)])
    images = render(extremes)[..., 0]
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], axis=1)
    assert border.max() == 0
    assert (images.reshape(len(images), -1).max(1) == 255).all()  # and still drawn, not clipped away


def test_render_rejects_bad_factors():
    with pytest.raises(ValueError, match="orientation"):
        render(np.array([[0, 0, 40, 0, 0]]))
    with pytest.raises(ValueError, match="integer array"):
        render(np.zeros((2, 4), dtype=int))


def test_sample_factors_is_seeded_and_covers_the_grid():
    a = sample_factors(4000, np.random.default_rng(3))
    assert np.array_equal(a, sample_factors(4000, np.random.default_rng(3)))
    assert a.dtype == np.int64 and a.shape == (4000, 5)
    for k, size in enumerate(FACTOR_SIZES):
        counts = np.bincount(a[:, k], minlength=size)
        assert len(counts) == size and counts.min() > 0.5 * 4000 / size


def test_sampler_fixed_factor_batches():
    sampler = ShapesSampler(seed=0)
    factors, images = sampler.sample_with_fixed(64, 2, np.random.default_rng(5))
    assert len(np.unique(factors[:, 2])) == 1
    assert all(len(np.unique(factors[:, k])) > 1 for k in (1, 3, 4))
    assert np.array_equal(images, render(factors))
    f1, _ = ShapesSampler(seed=7).sample(10)
    f2, _ = ShapesSampler(seed=7).sample(10)
    assert np.array_equal(f1, f2)


def test_read_shapes_counts_labels_and_independent_splits(monkeypatch):
    import genlab.data.shapes as shapes

    drawn = []

    def recording_sample_factors(n, rng):
        drawn.append(sample_factors(n, rng))
        return drawn[-1]

    monkeypatch.setattr(shapes, "sample_factors", recording_sample_factors)
    train, val = shapes.read_shapes(shape_cfg(limit=300, val_limit=120, split_seed=4))
    assert (len(train), len(val)) == (300, 120)
    assert train.images.shape == (300, 64, 64, 1) and train.images.dtype == np.uint8
    assert train.class_names == ["square", "ellipse", "heart"] and val.class_names == train.class_names
    # Images and labels come from the same factors: the label is the shape actually drawn.
    for s, f in zip((train, val), drawn):
        assert np.array_equal(s.images, render(f))
        assert s.labels.dtype == np.int64 and np.array_equal(s.labels, f[:, 0])
    assert set(np.unique(train.labels)) == {0, 1, 2}
    assert not np.array_equal(drawn[0][:120], drawn[1])  # validation is not a prefix of the train stream
    again, _ = shapes.read_shapes(shape_cfg(limit=300, val_limit=120, split_seed=4))
    assert np.array_equal(train.images, again.images)
    other, _ = shapes.read_shapes(shape_cfg(limit=300, val_limit=120, split_seed=5))
    assert not np.array_equal(train.images, other.images)


def test_read_shapes_resize_channels_and_no_labels():
    from genlab.data.shapes import read_shapes

    train, val = read_shapes(shape_cfg(limit=40, val_limit=10, image_size=32, labels=False))
    assert train.images.shape == (40, 32, 32, 1) and val.images.shape == (10, 32, 32, 1)
    assert train.labels is None and train.class_names is None
    assert 0 < train.images.mean() < 255
    rgb, _ = read_shapes(shape_cfg(limit=5, val_limit=5, grayscale=False))
    assert rgb.images.shape == (5, 64, 64, 3)


def test_read_shapes_default_counts(monkeypatch):
    import genlab.data.shapes as shapes

    assert (shapes.DEFAULT_TRAIN, shapes.DEFAULT_VAL) == (20000, 5000)
    monkeypatch.setattr(shapes, "DEFAULT_TRAIN", 30)  # render fewer: the defaults are read at call time
    monkeypatch.setattr(shapes, "DEFAULT_VAL", 12)
    train, val = shapes.read_shapes(shape_cfg())
    assert (len(train), len(val)) == (30, 12)
