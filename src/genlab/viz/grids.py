"""Image grids: reconstructions (clean / noisy / denoised for a DAE) and samples from a fixed seed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402


def _show(ax, images: torch.Tensor, nrow: int) -> None:
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, padding=2, pad_value=1.0)
    arr = grid.permute(1, 2, 0).numpy()
    ax.imshow(arr[..., 0] if images.shape[1] == 1 else arr, cmap="gray" if images.shape[1] == 1 else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def save_rows(rows: list[tuple[str, torch.Tensor]], path: Path, title: str) -> Path:
    """One labelled row per (name, images in [0, 1]) pair, stacked vertically."""
    n = rows[0][1].shape[0]
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(4.0, n * 0.75), 0.95 * len(rows) + 0.6), squeeze=False)
    for ax, (name, imgs) in zip(axes[:, 0], rows):
        _show(ax, imgs, nrow=n)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def save_grid(images: torch.Tensor, path: Path, title: str, nrow: int = 8) -> Path:
    rows = -(-images.shape[0] // nrow)
    fig, ax = plt.subplots(figsize=(nrow * 0.8 + 0.4, rows * 0.8 + 0.6))
    _show(ax, images, nrow)
    ax.set_title(title, fontsize=10)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
