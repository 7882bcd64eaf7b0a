"""Readers for each data set name, all offline: each returns decoded uint8 train and validation sets.

Everything is decoded once into uint8 arrays (N, H, W, C) at the configured size: augmentation and
normalisation then run on whole batches, which is both faster than per-item transforms and makes
the data order a pure function of (seed, epoch), so resumed runs see exactly the same batches.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genlab.config import DataConfig
from genlab.data.decode import (
    IMAGE_SUFFIXES,
    Geometry,
    describe_failure,
    fit_square,
    open_image,
    random_crops,
    to_array,
)
from genlab.errors import GenlabError

log = logging.getLogger("genlab.data")

DATA_ENV = "GENLAB_DATA"


@dataclass
class ImageSet:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray | None = None  # int64 (N,)
    class_names: list[str] | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def root_path(cfg: DataConfig) -> Path:
    """Absolute roots as given; relative ones under $GENLAB_DATA when set, else the working directory."""
    if not cfg.root:
        raise GenlabError(f"data.root is required for data set {cfg.name!r}: set it to the folder that holds "
                          f"the data, absolute or relative to ${DATA_ENV}.")
    root = Path(os.path.expanduser(cfg.root))
    if not root.is_absolute() and os.environ.get(DATA_ENV):
        root = Path(os.environ[DATA_ENV]) / root
    return root


def resolve_root(cfg: DataConfig) -> Path:
    root = root_path(cfg)
    if not root.exists():
        env = os.environ.get(DATA_ENV)
        where = f"${DATA_ENV}={env}" if env else f"${DATA_ENV} is not set"
        raise GenlabError(f"data.root {cfg.root!r} does not exist (looked for {root.resolve()}; {where}). "
                          f"Point data.root at the data folder or set ${DATA_ENV} to its parent.")
    return root


def channels_of(cfg: DataConfig) -> int:
    gray_default = cfg.name in ("digits", "mnist", "fashion_mnist", "shapes")
    return 1 if (cfg.grayscale if cfg.grayscale is not None else gray_default) else 3


# ---------------------------------------------------------------- array sources


def resize_array(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize an (N, H, W, C) uint8 stack with antialiased bilinear interpolation; convert gray/RGB."""
    if images.shape[1:] == (size, size, channels):
        return images
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
    if x.shape[1] == 3 and channels == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] == 1 and channels == 3:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-1] != size or x.shape[-2] != size:
        chunks = [F.interpolate(c, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
                  for c in x.split(4096)]
        x = torch.cat(chunks)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def read_digits(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """scikit-learn's bundled 8x8 digits (values 0..16): the default that needs no download."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = (d.images * (255.0 / 16.0)).round().astype(np.uint8)[..., None]
    full = ImageSet(imgs, d.target.astype(np.int64), [str(i) for i in range(10)])
    return finish_arrays(*split_fraction(full, cfg), cfg)


_IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_TV_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
CLASS_NAMES = {
    "mnist": [str(i) for i in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
}


def read_idx_file(path: Path) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format), gzipped or not: magic, dims, then raw uint8 data."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise GenlabError(f"cannot read IDX file {path}: {exc}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise GenlabError(f"{path} is not a uint8 IDX file (bad magic number {raw[:4].hex()}).")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    start = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - start != count:
        raise GenlabError(f"{path} is truncated or padded: header says {dims} ({count} bytes), "
                          f"file holds {len(raw) - start}.")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims).copy()


def _find_idx(root: Path, name: str, stem: str) -> Path | None:
    for folder in (root, root / "raw", root / _TV_FOLDER[name] / "raw", root / _TV_FOLDER[name]):
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def read_idx_dataset(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """MNIST / Fashion-MNIST from the four IDX files, in a plain folder or torchvision's layout."""
    if cfg.download:
        _torchvision_download(cfg)
    root = resolve_root(cfg)
    sets = {}
    for split in ("train", "test") if cfg.use_test_split else ("train",):
        img_stem, lbl_stem = _IDX_NAMES[split]
        img_path, lbl_path = _find_idx(root, cfg.name, img_stem), _find_idx(root, cfg.name, lbl_stem)
        if img_path is None or lbl_path is None:
            missing = img_stem if img_path is None else lbl_stem
            raise GenlabError(
                f"{cfg.name}: {missing}(.gz) not found under {root} (looked in the folder itself, raw/, "
                f"{_TV_FOLDER[cfg.name]}/raw/). Put the four IDX files there, or set data.download: true "
                f"when online.")
        images, labels = read_idx_file(img_path), read_idx_file(lbl_path).astype(np.int64)
        if len(images) != len(labels):
            raise GenlabError(f"{img_path} holds {len(images)} images but {lbl_path} {len(labels)} labels.")
        sets[split] = ImageSet(images[..., None], labels, CLASS_NAMES[cfg.name])
    pair = (sets["train"], sets["test"]) if cfg.use_test_split else split_fraction(sets["train"], cfg)
    return finish_arrays(*pair, cfg)


def _torchvision_download(cfg: DataConfig) -> None:
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[cfg.name]
    root = root_path(cfg)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # network errors come in many types; all mean the same to the user
        raise GenlabError(f"download of {cfg.name} into {root} failed ({exc}); copy the IDX files there "
                          f"by hand and set data.download: false.") from None


def read_npz(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """uint8 arrays in an .npz: images (N, H, W[, C]) under images_key, labels optional under labels_key."""
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
    return finish_arrays(*split_fraction(ImageSet(images, labels), cfg), cfg)


# ---------------------------------------------------------------- folders of image files


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


def decode_files(files: list[Path], cfg: DataConfig, crop_seed: int) -> tuple[ImageSet, np.ndarray]:
    """Decode files in order; returns the set and, per kept image, the index of its source file."""
    geom = Geometry(cfg.image_size, channels_of(cfg) == 1, cfg.center_crop)
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


def read_folder(cfg: DataConfig, root: Path | None = None, partition: dict[str, int] | None = None
                ) -> tuple[ImageSet, ImageSet]:
    """Any folder of images, recursive; the split is drawn over source files, before any random crops."""
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
    train_idx, val_idx = _limit(train_idx, cfg.limit, cfg.split_seed), _limit(val_idx, cfg.val_limit,
                                                                               cfg.split_seed + 1)
    out = []
    for which, idx in (("train", train_idx), ("validation", val_idx)):
        chosen = [files[i] for i in idx]
        s, keep = decode_files(chosen, cfg, crop_seed=cfg.split_seed + (0 if which == "train" else 1))
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


def read_celeba(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """CelebA from torchvision's layout (celeba/img_align_celeba + list_eval_partition.txt) or a plain folder."""
    root = resolve_root(cfg)
    base = root / "celeba" if (root / "celeba").is_dir() else root
    img_dir = base / "img_align_celeba" if (base / "img_align_celeba").is_dir() else base
    if (img_dir / "img_align_celeba").is_dir():  # the zip unpacks to a nested folder of the same name
        img_dir = img_dir / "img_align_celeba"
    part_file = base / "list_eval_partition.txt"
    partition = None
    if part_file.is_file() and cfg.use_test_split:
        partition = {}
        for line in part_file.read_text().split("\n"):
            bits = line.split()
            if len(bits) == 2 and bits[1].isdigit():
                partition[bits[0]] = int(bits[1])
    return read_folder(cfg.model_copy(update={"labels": False}), img_dir, partition)


# ---------------------------------------------------------------- splitting


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, round(n * val_fraction))) if n > 1 else 0  # both sides keep at least one
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _limit(idx: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or len(idx) <= limit:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))


def finish_arrays(train: ImageSet, val: ImageSet, cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """Array sources: apply data.limit / val_limit, then resize only the images kept."""
    train = subset(train, _limit(np.arange(len(train)), cfg.limit, cfg.split_seed))
    val = subset(val, _limit(np.arange(len(val)), cfg.val_limit, cfg.split_seed + 1))
    ch = channels_of(cfg)
    for s in (train, val):
        s.images = resize_array(s.images, cfg.image_size, ch)
    return train, val


def subset(s: ImageSet, idx: np.ndarray) -> ImageSet:
    return ImageSet(s.images[idx], None if s.labels is None else s.labels[idx], s.class_names, s.skipped)


def split_fraction(full: ImageSet, cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    tr, va = split_indices(len(full), cfg.val_fraction, cfg.split_seed)
    return subset(full, tr), subset(full, va)


def read_shapes(cfg: DataConfig) -> tuple[ImageSet, ImageSet]:
    """The procedural shapes set (its module imports this one, hence the late import)."""
    from genlab.data.shapes import read_shapes as render_sets

    return render_sets(cfg)


READERS = {
    "digits": read_digits,
    "mnist": read_idx_dataset,
    "fashion_mnist": read_idx_dataset,
    "npz": read_npz,
    "image_folder": read_folder,
    "celeba": read_celeba,
    "shapes": read_shapes,
}
