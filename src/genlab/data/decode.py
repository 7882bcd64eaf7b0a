"""Turning one image file into a uint8 array of the configured size, or a reason to skip it.

Real folders hold CMYK JPEGs, palette PNGs with transparency, 16-bit PNGs, EXIF-rotated photos and
HTML pages saved as .jpg; each is either converted here or reported by name, never a crash.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}


@dataclass(frozen=True)
class Geometry:
    """How a source picture becomes a square `size` image: optional center crop, then resize."""

    size: int
    grayscale: bool
    center_crop: int | None = None


def open_image(path: Path, grayscale: bool) -> Image.Image:
    """Decode fully, apply EXIF orientation and flatten transparency onto white; raises on bad files."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # I;16* is 16-bit by definition; only plain 32-bit "I" has to guess its scale from the values
        top = 65535.0 if img.mode != "I" or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info or img.mode in ("LA", "PA"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    return img.convert("L" if grayscale else "RGB")


def fit_square(img: Image.Image, geom: Geometry) -> Image.Image:
    """Center crop (if asked), then shorter side to `size` and a center square: aspect is kept."""
    if geom.center_crop:
        w, h = img.size
        c = min(geom.center_crop, w, h)
        left, top = (w - c) // 2, (h - c) // 2
        img = img.crop((left, top, left + c, top + c))
    return ImageOps.fit(img, (geom.size, geom.size), Image.Resampling.BICUBIC)


def random_crops(img: Image.Image, n: int, crop: int, size: int, rng: np.random.Generator) -> list[Image.Image]:
    """n random crop x crop squares resized to size; an image smaller than the crop is scaled up first."""
    w, h = img.size
    if min(w, h) < crop:
        scale = crop / min(w, h)
        img = img.resize((max(crop, round(w * scale)), max(crop, round(h * scale))), Image.Resampling.BICUBIC)
        w, h = img.size
    out = []
    for _ in range(n):
        left = int(rng.integers(0, w - crop + 1))
        top = int(rng.integers(0, h - crop + 1))
        out.append(img.crop((left, top, left + crop, top + crop)).resize((size, size), Image.Resampling.BICUBIC))
    return out


def to_array(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def describe_failure(exc: Exception) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "not an image file Pillow can identify"
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return "image too large (decompression-bomb guard)"
    if isinstance(exc, OSError) and "truncated" in str(exc):
        return "truncated image data"
    return f"{type(exc).__name__}: {exc}"
