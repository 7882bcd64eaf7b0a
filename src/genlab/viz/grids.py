"""Image grids: reconstructions (clean / noisy / denoised for a DAE) and samples from a fixed seed."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def _show(ax, images: torch.Tensor, nrow: int) -> None:
    from torchvision.utils import make_grid  # torchvision's import costs seconds; only figures need it

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
    return save_figure(fig, path)


def save_grid(images: torch.Tensor, path: Path, title: str, nrow: int = 8) -> Path:
    rows = -(-images.shape[0] // nrow)
    fig, ax = plt.subplots(figsize=(nrow * 0.8 + 0.4, rows * 0.8 + 0.6))
    _show(ax, images, nrow)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, path)


def save_figure(fig, path: Path, rect: tuple[float, float, float, float] | None = None) -> Path:
    """rect: the part of the figure the panels are laid out in (room below for a note)."""
    fig.tight_layout(rect=rect)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def save_cells(cells: torch.Tensor, path: Path, title: str, row_labels: list[str], col_labels: list[str],
               xlabel: str = "") -> Path:
    """A labelled table of images: cells (rows, cols, C, H, W) in [0, 1], with row and column labels.

    One image on one axes, the labels as its ticks: an axes per cell (a traversal has 56) took most of a
    run's figure time in matplotlib's axes set-up, about 13 ms each."""
    rows, cols, _, h, w = cells.shape
    fig, ax = plt.subplots(figsize=(cols * 0.9 + 1.4, rows * 0.9 + 0.9))
    _show(ax, cells.reshape(rows * cols, *cells.shape[2:]), nrow=cols)
    pad = 2  # _show's padding between cells
    ax.set_xticks([pad + c * (w + pad) + (w - 1) / 2 for c in range(cols)], col_labels, fontsize=10)
    ax.set_yticks([pad + r * (h + pad) + (h - 1) / 2 for r in range(rows)], row_labels, fontsize=10)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if xlabel:
        ax.set_xlabel(xlabel, fontsize=10)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
