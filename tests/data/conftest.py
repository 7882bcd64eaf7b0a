"""Fixture files for the data tests: tiny images of every awkward kind, IDX files, npz archives.

Everything is written into pytest's tmp_path by hand (Pillow / numpy), so the tests need no data set.
The writers are handed to tests through fixtures (`files`, `zoo`, ...) since tests/ holds no packages.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)

GOOD_KINDS = ("rgb.jpg", "cmyk.jpg", "palette.png", "rgba.png", "gray16.png", "exif6.jpg", "png_as.jpg")
BROKEN_KINDS = ("truncated.jpg", "empty.jpg", "page.jpg")


def distinct_colours(n: int) -> list[tuple[int, int, int]]:
    """n RGB colours at least 40 apart in some channel (safe to tell apart even after JPEG)."""
    levels = [20, 80, 140, 200, 250]
    out = [(r, g, b) for r in levels for g in levels for b in levels]
    assert n <= len(out)
    return out[:n]


def solid(path: Path, colour, size=(24, 16), fmt: str | None = None, **save) -> Path:
    """A single-colour RGB image (w, h) = size; PNG keeps the colour exact."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, tuple(colour)).save(path, format=fmt, **save)
    return path


def halves(size, left, right, mode="RGB") -> Image.Image:
    """A (w, h) image whose left half is `left` and right half `right`."""
    w, h = size
    img = Image.new(mode, size, left)
    img.paste(Image.new(mode, (w - w // 2, h), right), (w // 2, 0))
    return img


def noise_jpeg_bytes(size=(48, 48), seed=0) -> bytes:
    """A JPEG of noise: large enough that cutting it in half really truncates the scan data."""
    import io

    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_kind(folder: Path, kind: str) -> Path:
    """Write one fixture file of `kind` (a name from GOOD_KINDS or BROKEN_KINDS) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / kind
    if kind == "rgb.jpg":
        solid(path, RED, quality=95)
    elif kind == "cmyk.jpg":
        Image.new("CMYK", (24, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    elif kind == "palette.png":
        img = Image.new("P", (24, 16), 0)
        img.putpalette([0, 0, 0, 0, 0, 255] + [0] * (254 * 3))  # index 0 black (transparent), 1 blue
        img.paste(1, (12, 0, 24, 16))
        img.save(path, transparency=0)
    elif kind == "rgba.png":
        halves((24, 16), (0, 0, 0, 0), (0, 255, 0, 255), mode="RGBA").save(path)  # clear black | green
    elif kind == "gray16.png":
        arr = np.zeros((16, 24), dtype=np.uint16)
        arr[:, 12:] = 65535
        Image.fromarray(arr).save(path)
    elif kind == "exif6.jpg":
        exif = Image.Exif()
        exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
        halves((40, 20), RED, BLUE).save(path, exif=exif, quality=95)
    elif kind == "png_as.jpg":
        solid(path, GREEN, fmt="PNG")
    elif kind == "truncated.jpg":
        data = noise_jpeg_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "empty.jpg":
        path.write_bytes(b"")
    elif kind == "page.jpg":
        path.write_text("<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>"
                        "<body><h1>Not Found</h1></body></html>\n")
    else:
        raise ValueError(kind)
    return path


def write_idx(path: Path, arr: np.ndarray, gz: bool) -> Path:
    """An IDX file (magic 0x0000080N, N = ndim, big-endian dims, raw uint8 data), optionally gzipped."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    raw = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def idx_arrays(seed: int = 0, n_train: int = 12, n_test: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": (np.arange(n_train) % 10).astype(np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": ((np.arange(n_test) + 3) % 10).astype(np.uint8),
    }


def write_idx_set(folder: Path, arrays: dict[str, np.ndarray], gz: bool) -> dict[str, Path]:
    names = {
        "train_images": "train-images-idx3-ubyte",
        "train_labels": "train-labels-idx1-ubyte",
        "test_images": "t10k-images-idx3-ubyte",
        "test_labels": "t10k-labels-idx1-ubyte",
    }
    return {key: write_idx(folder / stem, arrays[key], gz) for key, stem in names.items()}


@pytest.fixture
def files():
    """The writers above, for tests: files.solid(...), files.write_kind(...), files.write_idx_set(...)."""
    return SimpleNamespace(
        solid=solid, halves=halves, write_kind=write_kind, write_idx=write_idx, idx_arrays=idx_arrays,
        write_idx_set=write_idx_set, distinct_colours=distinct_colours, noise_jpeg_bytes=noise_jpeg_bytes,
        GOOD_KINDS=GOOD_KINDS, BROKEN_KINDS=BROKEN_KINDS, RED=RED, GREEN=GREEN, BLUE=BLUE, WHITE=WHITE,
    )


@pytest.fixture
def zoo(tmp_path) -> dict[str, Path]:
    """Every fixture kind, good and broken, in tmp_path/zoo: {kind: path}."""
    return {kind: write_kind(tmp_path / "zoo", kind) for kind in GOOD_KINDS + BROKEN_KINDS}
