"""CelebA from torchvision's layout (celeba/img_align_celeba + list_eval_partition.txt) or a plain folder of faces."""

from __future__ import annotations

from pathlib import Path

from genlab.data.arrays import ImageSet
from genlab.data.folder import read_folder
from genlab.data.roots import resolve_root
from genlab.data.source import Source, fraction_split, noise_images
from genlab.sections import DataConfig


def read_celeba(cfg: DataConfig, channels: int) -> tuple[ImageSet, ImageSet]:
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
    return read_folder(cfg.model_copy(update={"labels": False}), channels, img_dir, partition)


def _split(cfg: DataConfig, n_val: int) -> str:
    if cfg.use_test_split:
        return "CelebA's validation partition (list_eval_partition.txt, when present)"
    return fraction_split(cfg, n_val)


def example(folder: Path) -> dict:
    """torchvision's layout: celeba/img_align_celeba/NNNNNN.jpg and list_eval_partition.txt (40 train, 20 val)."""
    from PIL import Image

    images = folder / "celeba" / "img_align_celeba"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, arr in enumerate(noise_images(60, 24, 3)):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(arr).save(images / name, quality=95)
        lines.append(f"{name} {0 if i < 40 else 1}")
    (folder / "celeba" / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    return {"root": str(folder), "use_test_split": True}


SOURCES = (Source("celeba", read_celeba, "CelebA in torchvision's layout or a plain folder of faces", cached=True,
                  official_test_split=True, describe_split=_split, example=example),)
