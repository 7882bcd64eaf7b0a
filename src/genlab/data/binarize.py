"""Binarised images as the likelihood papers use them: each pixel a Bernoulli draw with its gray level as
probability (Salakhutdinov & Murray 2008; Burda et al. 2016).

"dynamic" draws the training images afresh every epoch (seeded by seed, epoch and batch, so a resumed run
draws the same pixels); "static" draws every image once. Either way the validation images are drawn once,
with their own seed, so held-out scores are computed on one fixed binary set and repeat exactly.
Binary images stay uint8 (0 or 255), so every later stage (normalisation, figures, metrics) is unchanged.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.data.arrays import ImageSet

# The last seed word of each draw: training set (static), validation set, per-batch training draws (dynamic).
TRAIN_DRAW, VAL_DRAW, BATCH_DRAW = 0, 1, 2


def draw(images: np.ndarray, seed: list[int] | int) -> np.ndarray:
    """One Bernoulli draw of uint8 images: pixel v becomes 255 with probability v / 255, else 0."""
    rng = np.random.default_rng(seed)
    out = np.empty_like(images)
    step = 4096  # in chunks: the uniform draws of a whole set in float32 would be 4x its size
    for start in range(0, len(images), step):
        part = images[start:start + step]
        out[start:start + step] = (rng.random(part.shape, dtype=np.float32) * 255.0 < part) * np.uint8(255)
    return out


def draw_batch(x_uint8: torch.Tensor, generator: torch.Generator, rows: slice | None = None,
               global_rows: int | None = None) -> torch.Tensor:
    """The dynamic draw of one batch (N, C, H, W), on its device. With several processes each holds `rows`
    of a global batch of `global_rows`: uniforms are drawn for the whole global batch and its rows taken, so
    the pixels do not depend on how many processes split the batch."""
    n = len(x_uint8) if global_rows is None else global_rows
    u = torch.rand((n, *x_uint8.shape[1:]), generator=generator, device=x_uint8.device)
    if rows is not None:
        u = u[rows]
    return (u * 255.0 < x_uint8).to(torch.uint8) * 255


def batch_generator(seed: int, epoch: int, batch: int, device: torch.device) -> torch.Generator:
    """The generator of batch `batch` of `epoch`: a function of the three numbers alone, for resuming."""
    word = int(np.random.default_rng([seed, epoch, BATCH_DRAW, batch]).integers(2**62))
    return torch.Generator(device=device).manual_seed(word)


def apply(mode: str | None, train: ImageSet, val: ImageSet, seed: int) -> None:
    """Binarise the sets in place as `mode` says (None: leave them gray)."""
    if mode is None:
        return
    val.images = draw(val.images, [seed, VAL_DRAW])
    if mode == "static":
        train.images = draw(train.images, [seed, TRAIN_DRAW])


def describe(mode: str | None, seed: int) -> str | None:
    """The binarisation in words, for every score's protocol (None when the images are gray)."""
    if mode is None:
        return None
    val = f"validation images drawn once (split_seed {seed})"
    if mode == "static":
        return f"static: each pixel Bernoulli(gray level / 255), training images drawn once; {val}"
    return f"dynamic: each pixel Bernoulli(gray level / 255), training images drawn afresh every epoch; {val}"
