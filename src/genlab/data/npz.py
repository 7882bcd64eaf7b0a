"""uint8 arrays in an .npz archive: `images` (N, H, W[, C]) and optional `labels` (data.images_key, labels_key)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genlab.data.arrays import ImageSet, finish_arrays, split_fraction
from genlab.data.roots import resolve_root
from genlab.data.source import Source, noise_images
from genlab.errors import GenlabError
from genlab.sections import DataConfig


def read_npz(cfg: DataConfig, channels: int) -> tuple[ImageSet, ImageSet]:
    root = resolve_root(cfg)
    path = root if root.is_file() else next(iter(sorted(root.glob("*.npz"))), None)
    if path is None:
        raise GenlabError(f"data.root {root} holds no .npz file; point data.root at the .npz itself.")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise GenlabError(f"{path} is a single .npy array, not an .npz archive of named arrays "
                              f"({cfg.images_key!r}, optional {cfg.labels_key!r}).")
        with archive as z:
            if cfg.images_key not in z:
                raise GenlabError(f"{path} has no array {cfg.images_key!r}; it holds {sorted(z.files)}. "
                                  f"Set data.images_key.")
            images = z[cfg.images_key]
            labels = z[cfg.labels_key].astype(np.int64) if cfg.labels and cfg.labels_key in z else None
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise GenlabError(f"cannot read {path} as .npz: {exc}.") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise GenlabError(f"{path}:{cfg.images_key} must be uint8 (N, H, W) or (N, H, W, C); "
                          f"got {images.dtype} {images.shape}.")
    if len(images) == 0:
        raise GenlabError(f"{path}:{cfg.images_key} holds no images.")
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 4:  # RGBA: drop alpha; 2 = gray + alpha: keep gray
        images = images[..., :3]
    elif images.shape[-1] == 2:
        images = images[..., :1]
    if images.shape[-1] not in (1, 3):
        raise GenlabError(f"{path}:{cfg.images_key} has {images.shape[-1]} channels in its last axis; expected "
                          f"(N, H, W) gray or (N, H, W, C) with C = 1, 3 or 4.")
    if labels is not None and (labels.ndim != 1 or len(labels) != len(images) or labels.min() < 0):
        raise GenlabError(f"{path}:{cfg.labels_key} must be one non-negative integer per image; got shape "
                          f"{labels.shape} for {len(images)} images (min {labels.min()}).")
    return finish_arrays(*split_fraction(ImageSet(images, labels), cfg), cfg, channels)


def example(folder: Path) -> dict:
    """48 RGB images of 16x16 with labels of 4 classes."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny.npz"
    np.savez(path, images=noise_images(48, 16, 3), labels=np.arange(48) % 4)
    return {"root": str(path)}


SOURCES = (Source("npz", read_npz, "uint8 arrays `images` (N, H, W[, C]) and optional `labels` in an .npz",
                  example=example),)
