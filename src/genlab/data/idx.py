"""MNIST and Fashion-MNIST from their four IDX files (LeCun's format), in a plain folder or torchvision's layout."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from genlab.data.arrays import ImageSet, finish_arrays, split_fraction
from genlab.data.roots import resolve_root, root_path
from genlab.data.source import Source, fraction_split, noise_images
from genlab.errors import GenlabError
from genlab.sections import DataConfig

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
    """Parse an IDX file, gzipped or not: magic, dims, then raw uint8 data."""
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


def read_idx_dataset(cfg: DataConfig, channels: int) -> tuple[ImageSet, ImageSet]:
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
    return finish_arrays(*pair, cfg, channels)


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


def _split(cfg: DataConfig, n_val: int) -> str:
    return "the official test split" if cfg.use_test_split else fraction_split(cfg, n_val)


def write_idx_file(path: Path, array: np.ndarray) -> Path:
    """uint8 array -> IDX file (gzipped when the name ends in .gz): magic 0x08 and the dims, big-endian."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open if path.suffix == ".gz" else open)(path, "wb") as f:
        f.write(data)
    return path


def example(folder: Path) -> dict:
    """The four files at 28x28, 40 training and 20 test images, labels 0-9."""
    for split, n in (("train", 40), ("test", 20)):
        images, labels = _IDX_NAMES[split]
        write_idx_file(folder / f"{images}.gz", noise_images(n, 28, 1, seed=n)[..., 0])
        write_idx_file(folder / f"{labels}.gz", (np.arange(n) % 10).astype(np.uint8))
    return {"root": str(folder), "use_test_split": True}


SOURCES = tuple(
    Source(name, read_idx_dataset, f"{title}: the four IDX files (.gz or not); data.download: true fetches them",
           gray_default=True, official_test_split=True, canonical=True, describe_split=_split, example=example)
    for name, title in (("mnist", "MNIST"), ("fashion_mnist", "Fashion-MNIST"))
)
