"""Procedural 2D shapes with known generative factors, in the spirit of dSprites (Matthey et al. 2017).

Disentanglement metrics (MIG, FactorVAE score, DCI) need every image's ground-truth factors and the
ability to draw images with one factor held fixed. dSprites provides both but has to be downloaded;
rendering the same factor grid here keeps the data offline, exact and reproducible from a seed.

The factor grid is dSprites': 3 shapes x 6 scales x 40 orientations x 32 x 32 positions (737,280
combinations). Each shape is an implicit inside-test in a unit frame, so one vectorised pass over the
pixel grid renders a whole batch. Images are binary (like dSprites): no anti-aliasing, so the pixels
are an exact, platform-independent function of the factors (up to float rounding at shape edges).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from genlab.data.arrays import ImageSet, resize_array
from genlab.data.source import Source
from genlab.sections import DataConfig

FACTOR_NAMES: tuple[str, ...] = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES: tuple[int, ...] = (3, 6, 40, 32, 32)
SHAPE_NAMES: tuple[str, ...] = ("square", "ellipse", "heart")
# Factor index -> value, as in dSprites (except orientation, where 2*pi would repeat 0 here).
FACTOR_VALUES: tuple[np.ndarray, ...] = (
    np.arange(3),
    np.linspace(0.5, 1.0, 6),
    np.linspace(0.0, 2.0 * np.pi, 40, endpoint=False),
    np.linspace(0.0, 1.0, 32),
    np.linspace(0.0, 1.0, 32),
)
for _values in FACTOR_VALUES:
    _values.flags.writeable = False  # shared by every render call

IMAGE_SIZE = 64
# Every shape lies inside the unit disc of its own frame, so at any orientation it stays within
# RADIUS * scale pixels of its centre. Centres span [MARGIN + RADIUS, IMAGE_SIZE - MARGIN - RADIUS]:
# the largest shape at the extreme position still leaves a MARGIN-pixel empty border (dSprites, too,
# moves its shapes over a central region only).
RADIUS = 11.0
MARGIN = 2.0
_LO = MARGIN + RADIUS
_SPAN = IMAGE_SIZE - 2.0 * (MARGIN + RADIUS)

_SQUARE_HALF = 1.0 / np.sqrt(2.0)  # corners on the unit circle
_ELLIPSE_AXES = (1.0, 0.5)  # semi-axes along the frame's u and v
# The heart curve (x^2 + y^2 - 1)^3 - x^2 y^3 = 0 spans x in [-1.14, 1.14], y in [-1, 1.24]; around
# its area centroid (0, 0.293) all of it lies within 1.294. Dividing by 1.3 puts it in the unit disc.
_HEART_ZOOM = 1.3
_HEART_CENTRE_Y = 0.293

_CHUNK = 512  # images per vectorised pass: a few (512, 64, 64) float32 arrays, about 8 MB each


def _inside_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF


def _inside_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    a, b = _ELLIPSE_AXES
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    x = u * _HEART_ZOOM
    y = v * _HEART_ZOOM + _HEART_CENTRE_Y
    x2 = x * x
    return (x2 + y * y - 1.0) ** 3 - x2 * y * y * y <= 0.0


_INSIDE: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (_inside_square, _inside_ellipse,
                                                                        _inside_heart)


def check_factors(factors: np.ndarray) -> np.ndarray:
    """Factor indices as int64 (N, 5); a ValueError names the first factor out of range."""
    f = np.asarray(factors)
    if f.ndim != 2 or f.shape[1] != len(FACTOR_SIZES) or not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"factors must be an integer array (N, {len(FACTOR_SIZES)}) of indices "
                         f"{dict(zip(FACTOR_NAMES, FACTOR_SIZES))}; got {f.dtype} {f.shape}.")
    for k, (name, size) in enumerate(zip(FACTOR_NAMES, FACTOR_SIZES)):
        col = f[:, k]
        if len(col) and (col.min() < 0 or col.max() >= size):
            raise ValueError(f"factor {name!r} indices must lie in [0, {size}); got {col.min()}..{col.max()}.")
    return f.astype(np.int64, copy=False)


def factor_values(factors: np.ndarray) -> np.ndarray:
    """Float (N, 5) values of the given factor indices (shape stays its index)."""
    f = check_factors(factors)
    return np.stack([FACTOR_VALUES[k][f[:, k]] for k in range(len(FACTOR_SIZES))], axis=1).astype(np.float64)


def render(factors: np.ndarray) -> np.ndarray:
    """uint8 (N, 64, 64, 1) images of the factor indices (N, 5): white shapes (255) on black (0).

    Each pixel centre is mapped into the shape's own frame (translate, inverse-rotate, divide by
    scale), where the shape is a fixed implicit region; pos_x runs left to right and pos_y top to
    bottom, orientation turns the shape counter-clockwise.
    """
    f = check_factors(factors)
    out = np.zeros((len(f), IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
    centres = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    for start in range(0, len(f), _CHUNK):
        chunk = f[start:start + _CHUNK]
        for shape, inside in enumerate(_INSIDE):
            rows = np.flatnonzero(chunk[:, 0] == shape)
            if not len(rows):
                continue
            c = chunk[rows]
            radius = (RADIUS * FACTOR_VALUES[1][c[:, 1]]).astype(np.float32)[:, None, None]
            angle = FACTOR_VALUES[2][c[:, 2]]
            cos = np.cos(angle).astype(np.float32)[:, None, None] / radius
            sin = np.sin(angle).astype(np.float32)[:, None, None] / radius
            cx = (_LO + _SPAN * FACTOR_VALUES[3][c[:, 3]]).astype(np.float32)[:, None, None]
            cy = (_LO + _SPAN * FACTOR_VALUES[4][c[:, 4]]).astype(np.float32)[:, None, None]
            dx = centres[None, None, :] - cx  # (n, 1, 64): columns
            dy = cy - centres[None, :, None]  # (n, 64, 1): rows, pointing up
            u = cos * dx + sin * dy
            v = cos * dy - sin * dx
            out[start + rows, :, :, 0] = inside(u, v).astype(np.uint8) * 255
    return out


def sample_factors(n: int, rng: np.random.Generator) -> np.ndarray:
    """int64 (n, 5) factor indices, uniform over all factor combinations (each factor independently)."""
    return np.stack([rng.integers(0, size, n) for size in FACTOR_SIZES], axis=1).astype(np.int64)


class ShapesSampler:
    """Draws (factors, images) pairs; what the disentanglement metrics sample ground truth from.

    The metrics need the factors apart from the images (to hold one fixed, to score codes against
    them), hence `sample_factors` and `observe` as separate steps, like disentanglement_lib's
    GroundTruthData. Methods take an explicit `rng` so a metric's result depends on its own seed only;
    without one they use the sampler's generator. A subclass may override `observe` (tests feed the
    factors themselves to the metrics that way).
    """

    factor_names: tuple[str, ...] = FACTOR_NAMES
    factor_sizes: tuple[int, ...] = FACTOR_SIZES

    def __init__(self, seed: int = 0):
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def sample_factors(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        return sample_factors(n, self.rng if rng is None else rng)

    def observe(self, factors: np.ndarray) -> np.ndarray:
        return render(factors)

    def sample(self, n: int, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        factors = self.sample_factors(n, rng)
        return factors, self.observe(factors)

    def factors_with_fixed(self, n: int, factor_index: int,
                           rng: np.random.Generator | None = None) -> np.ndarray:
        """n factor rows sharing one random value of factor `factor_index` (FactorVAE's vote batch)."""
        rng = self.rng if rng is None else rng
        factors = self.sample_factors(n, rng)
        factors[:, factor_index] = rng.integers(0, self.factor_sizes[factor_index])
        return factors

    def sample_with_fixed(self, n: int, factor_index: int,
                          rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        factors = self.factors_with_fixed(n, factor_index, rng)
        return factors, self.observe(factors)


DEFAULT_TRAIN = 20000
DEFAULT_VAL = 5000
_RESIZE_SLICE = 4096


def read_shapes(cfg: DataConfig, channels: int | None = None) -> tuple[ImageSet, ImageSet]:
    """Train and validation sets rendered from independent generators spawned from data.split_seed.

    Sizes are data.limit / data.val_limit (default 20000 / 5000): the set is generated, so there is
    nothing to subsample, and independent draws keep validation from sharing the train generator's
    stream. Labels are the shape index. Single-channel unless data.grayscale is explicitly false.
    """
    n_train = DEFAULT_TRAIN if cfg.limit is None else cfg.limit
    n_val = DEFAULT_VAL if cfg.val_limit is None else cfg.val_limit
    channels = channels or (3 if cfg.grayscale is False else 1)
    sets = []
    for n, seq in zip((n_train, n_val), np.random.SeedSequence(cfg.split_seed).spawn(2)):
        factors = sample_factors(n, np.random.default_rng(seq))
        # Render and resize in slices: resize_array works in float32, 16 KB per 64x64 image.
        images = np.concatenate([resize_array(render(factors[i:i + _RESIZE_SLICE]), cfg.image_size, channels)
                                 for i in range(0, max(n, 1), _RESIZE_SLICE)])
        if cfg.labels:
            sets.append(ImageSet(images, factors[:, 0].astype(np.int64), list(SHAPE_NAMES)))
        else:
            sets.append(ImageSet(images))
    return sets[0], sets[1]


def _split(cfg: DataConfig, n_val: int) -> str:
    return f"rendered independently of training from split_seed {cfg.split_seed}"


# Rendered, so no root matters; not marked canonical all the same, so that its domain classifier keeps the
# cache key genlab 0.1 gave it (which includes the unused root).
SOURCES = (Source("shapes", read_shapes, "procedural dSprites-like shapes with known factors (for disentanglement)",
                  gray_default=True, needs_root=False, describe_split=_split,
                  factors=ShapesSampler, example=lambda folder: {"limit": 48, "val_limit": 16}),)
