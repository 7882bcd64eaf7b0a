"""Latent-space figures: traversals, interpolations (linear and spherical) and a t-SNE map.

Everything here uses the model's public API (`encode`, `decode`) and tensors; nothing trains.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from genlab.data import Normalizer  # noqa: E402
from genlab.losses import kl_per_dimension  # noqa: E402
from genlab.viz.grids import save_cells, save_figure  # noqa: E402


@torch.no_grad()
def encode_all(model: nn.Module, images: torch.Tensor, batch: int = 256) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Posterior means (and log-variances, for VAEs) of normalised images."""
    model.eval()
    means, logvars = [], []
    for chunk in images.split(batch):
        post = model.encode(chunk)
        means.append(post.mean.float().cpu())
        if post.logvar is not None:
            logvars.append(post.logvar.float().cpu())
    return torch.cat(means), (torch.cat(logvars) if logvars else None)


def dimension_ranking(means: torch.Tensor, logvars: torch.Tensor | None) -> tuple[list[int], list[float]]:
    """Latent dimensions by mean KL over the data, highest first (by variance of the means for an AE)."""
    score = kl_per_dimension(means, logvars).mean(0) if logvars is not None else means.var(0)
    order = torch.argsort(score, descending=True)
    return order.tolist(), score[order].tolist()


@torch.no_grad()
def traversal_figure(model: nn.Module, normalizer: Normalizer, path: Path, base: torch.Tensor, dims: list[int],
                     scores: list[float], values: list[float], title: str, score_name: str = "KL") -> Path:
    """One row per latent dimension: `base` with that coordinate set to each value, decoded."""
    model.eval()
    device = next(model.parameters()).device
    rows = []
    for d in dims:
        z = base.to(device).repeat(len(values), 1)
        z[:, d] = torch.tensor(values, device=device, dtype=z.dtype)
        rows.append(normalizer.to_unit(model.decode(z)).cpu())
    labels = [f"z[{d}]\n{score_name} {s:.2f}" for d, s in zip(dims, scores)]
    return save_cells(torch.stack(rows), path, title, row_labels=labels,
                      col_labels=[f"{v:+.1f}" for v in values], xlabel="value of the latent coordinate")


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for generative models)."""
    na, nb = a / a.norm(), b / b.norm()
    omega = torch.acos((na * nb).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    if omega.abs() < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@torch.no_grad()
def interpolation_figure(model: nn.Module, normalizer: Normalizer, path: Path, z_a: torch.Tensor,
                         z_b: torch.Tensor, steps: int = 8, title: str = "") -> Path:
    """Linear and spherical paths between two codes, decoded; endpoints are the two codes themselves."""
    model.eval()
    device = next(model.parameters()).device
    ts = [i / (steps - 1) for i in range(steps)]
    lin = torch.stack([(1 - t) * z_a + t * z_b for t in ts]).to(device)
    sph = torch.stack([slerp(z_a, z_b, t) for t in ts]).to(device)
    rows = torch.stack([normalizer.to_unit(model.decode(lin)).cpu(), normalizer.to_unit(model.decode(sph)).cpu()])
    return save_cells(rows, path, title or "Interpolation between two held-out images' codes",
                      row_labels=["linear", "spherical"], col_labels=[f"{t:.2f}" for t in ts],
                      xlabel="interpolation weight t (0 = first image, 1 = second)")


def tsne_figure(means: torch.Tensor, labels: np.ndarray | None, class_names: list[str] | None, path: Path,
                seed: int = 0, max_points: int = 2000, title: str = "") -> Path:
    """t-SNE (scikit-learn) of posterior means, PCA to 50 dimensions first for speed (van der Maaten 2008)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = means.numpy().astype(np.float64)
    idx = np.arange(len(x))
    if len(x) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), max_points, replace=False))
    x = x[idx]
    if x.shape[1] > 50:
        x = PCA(n_components=50, random_state=seed).fit_transform(x)
    perplexity = float(min(30, max(2, (len(x) - 1) // 3)))
    emb = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    fig, ax = plt.subplots(figsize=(7, 6))
    if labels is not None:
        lab = labels[idx]
        cmap = plt.get_cmap("tab10" if lab.max() < 10 else "tab20")
        for c in np.unique(lab):
            name = class_names[c] if class_names and c < len(class_names) else str(c)
            m = lab == c
            ax.scatter(emb[m, 0], emb[m, 1], s=4, color=cmap(int(c) % cmap.N), label=name)
        if len(np.unique(lab)) <= 20:
            ax.legend(markerscale=3, fontsize=7, loc="best", frameon=False)
    else:
        ax.scatter(emb[:, 0], emb[:, 1], s=4)
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title or f"t-SNE of {len(x)} held-out posterior means (perplexity {perplexity:g})", fontsize=10)
    return save_figure(fig, path)


def traversal_values(limit: float = 3.0, steps: int = 7) -> list[float]:
    return [(-limit + 2 * limit * i / (steps - 1)) for i in range(steps)] if steps > 1 else [0.0]
