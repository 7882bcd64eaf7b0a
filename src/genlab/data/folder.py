"""Any folder of image files, recursive; one sub-folder per class gives labels.

The split is drawn over source files, before any random crops, so crops of one texture never land on
both sides. Files that cannot be decoded are skipped by name with the reason, up to
data.max_skipped_fraction.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from genlab.data.arrays import ImageSet, limit_indices, split_indices
from genlab.data.decode import (
    IMAGE_SUFFIXES,
    Geometry,
    describe_failure,
    fit_square,
    open_image,
    random_crops,
    to_array,
)
from genlab.data.roots import resolve_root
from genlab.data.source import Source, noise_images
from genlab.errors import GenlabError
from genlab.sections import DataConfig

log = logging.getLogger("genlab.data")


def list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def folder_labels(root: Path, files: list[Path]) -> tuple[np.ndarray | None, list[str] | None]:
    """One sub-folder per class gives labels; images directly in root (or a single class) give none."""
    tops = [p.relative_to(root).parts for p in files]
    if any(len(t) < 2 for t in tops):
        return None, None
    names = sorted({t[0] for t in tops})
    if len(names) < 2:
        return None, None
    index = {n: i for i, n in enumerate(names)}
    return np.array([index[t[0]] for t in tops], dtype=np.int64), names


def decode_files(files: list[Path], cfg: DataConfig, crop_seed: int, channels: int) -> tuple[ImageSet, np.ndarray]:
    """Decode files in order; returns the set and, per kept image, the index of its source file."""
    geom = Geometry(cfg.image_size, channels == 1, cfg.center_crop)
    rng = np.random.default_rng(crop_seed)
    arrays, keep, skipped = [], [], []
    for i, path in enumerate(files):
        try:
            img = open_image(path, geom.grayscale)
        except Exception as exc:  # any decoder failure is the same to the user: this file is unusable
            skipped.append((str(path), describe_failure(exc)))
            continue
        if cfg.random_crops:
            crops = random_crops(img, cfg.random_crops.per_image, cfg.random_crops.size, geom.size, rng)
            arrays += [to_array(c) for c in crops]
            keep += [i] * len(crops)
        else:
            arrays.append(to_array(fit_square(img, geom)))
            keep.append(i)
    images = np.stack(arrays) if arrays else np.zeros((0, geom.size, geom.size, 1 if geom.grayscale else 3),
                                                       np.uint8)
    return ImageSet(images, None, None, skipped), np.array(keep, dtype=np.int64)


def read_folder(cfg: DataConfig, channels: int, root: Path | None = None, partition: dict[str, int] | None = None
                ) -> tuple[ImageSet, ImageSet]:
    """`partition` (file name -> 0 train / 1 validation) replaces the seeded split (CelebA's own)."""
    root = root or resolve_root(cfg)
    if not root.is_dir():
        raise GenlabError(f"data.root {root} is not a folder; {cfg.name} reads a folder of images.")
    files = list_images(root)
    if not files:
        raise GenlabError(f"data.root {root} holds no image files (looked recursively for "
                          f"{', '.join(sorted(IMAGE_SUFFIXES))}).")
    labels, names = folder_labels(root, files) if cfg.labels else (None, None)
    if partition is not None:
        part = np.array([partition.get(p.name, -1) for p in files])
        train_idx, val_idx = np.flatnonzero(part == 0), np.flatnonzero(part == 1)
    else:
        train_idx, val_idx = split_indices(len(files), cfg.val_fraction, cfg.split_seed)
    train_idx = limit_indices(train_idx, cfg.limit, cfg.split_seed)
    val_idx = limit_indices(val_idx, cfg.val_limit, cfg.split_seed + 1)
    out = []
    for which, idx in (("train", train_idx), ("validation", val_idx)):
        chosen = [files[i] for i in idx]
        s, keep = decode_files(chosen, cfg, crop_seed=cfg.split_seed + (0 if which == "train" else 1),
                               channels=channels)
        if labels is not None:
            s.labels, s.class_names = labels[idx][keep], names
        out.append(s)
    skipped = out[0].skipped + out[1].skipped
    total = len(train_idx) + len(val_idx)
    if skipped:
        shown = "; ".join(f"{Path(p).name} ({why})" for p, why in skipped[:10])
        more = f"; and {len(skipped) - 10} more" if len(skipped) > 10 else ""
        log.warning("skipped %d of %d files under %s: %s%s", len(skipped), total, root, shown, more)
    if total and len(skipped) / total > cfg.max_skipped_fraction:
        raise GenlabError(f"{len(skipped)} of {total} files under {root} could not be read (more than "
                          f"data.max_skipped_fraction={cfg.max_skipped_fraction}); first: {skipped[0][0]} "
                          f"({skipped[0][1]}).")
    return out[0], out[1]


def example(folder: Path) -> dict:
    """Two classes (sub-folders) of 24 PNG images each, 20x16 (not square: the reader crops)."""
    from PIL import Image

    for c, name in enumerate(("a", "b")):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, arr in enumerate(noise_images(24, 20, 3, seed=c)):
            Image.fromarray(arr[:16]).save(folder / name / f"{i:03d}.png")
    return {"root": str(folder)}


SOURCES = (Source("image_folder", read_folder, "any folder of images, recursive; one sub-folder per class gives "
                  "labels", cached=True, example=example),)
