"""Distances between real and generated images in a feature space: Fréchet distance, KID, precision/recall.

All three take feature arrays, so one code path serves every extractor (Inception for FID, genlab's
domain classifiers, the random-conv proxy) and a feature set is computed once for all three scores.
Each refuses sample counts that cannot give a meaningful number, naming the minimum.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.metrics.frechet import frechet_distance, gaussian_stats


def _check(real: np.ndarray, fake: np.ndarray) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise GenlabError(f"feature sets must be (N, D) arrays of one width; got {real.shape} and {fake.shape}.")


def frechet(real: np.ndarray, fake: np.ndarray, *, name: str = "Fréchet distance") -> float:
    """Needs more samples than feature dimensions on both sides, or the covariances are singular and the
    score mostly measures the sample count (the usual way FID on a few hundred images misleads)."""
    _check(real, fake)
    need = real.shape[1] + 1
    if min(len(real), len(fake)) < need:
        raise GenlabError(f"{name} in {real.shape[1]} feature dimensions needs at least {need} real and {need} "
                          f"generated images for full-rank covariances; got {len(real)} real and {len(fake)} "
                          f"generated. Raise --samples (the held-out split must be large enough too) or use a "
                          f"smaller feature space.")
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def kid(real: np.ndarray, fake: np.ndarray, *, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel,
    averaged over random subsets; unbiased, so unlike FID its expectation does not depend on N."""
    _check(real, fake)
    if subset_size < 2:
        raise GenlabError(f"KID subsets need at least 2 images each (the unbiased estimate leaves the diagonal "
                          f"out); got subset size {subset_size}.")
    if min(len(real), len(fake)) < subset_size:
        raise GenlabError(f"KID with subsets of {subset_size} images needs at least {subset_size} real and "
                          f"{subset_size} generated images; got {len(real)} real and {len(fake)} generated. "
                          f"Raise --samples or lower --kid-subset-size (minimum 2).")
    from torchmetrics.image.kid import poly_mmd  # torchmetrics pulls in torchvision's models: only when used

    rng = np.random.default_rng(seed)
    r, f = torch.from_numpy(np.asarray(real, np.float64)), torch.from_numpy(np.asarray(fake, np.float64))
    values = []
    for _ in range(subsets):
        i = torch.from_numpy(rng.choice(len(r), subset_size, replace=False))
        j = torch.from_numpy(rng.choice(len(f), subset_size, replace=False))
        values.append(float(poly_mmd(r[i], f[j])))
    return float(np.mean(values)), float(np.std(values))


def _kth_neighbour_radii(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    radii = []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start:start + chunk], x)
        radii.append(d.kthvalue(k + 1, dim=1).values)  # the 0-distance to itself is the first value
    return torch.cat(radii)


def _covered(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, chunk: int) -> torch.Tensor:
    hits = []
    for start in range(0, len(points), chunk):
        d = torch.cdist(points[start:start + chunk], centres)
        hits.append((d <= radii.unsqueeze(0)).any(dim=1))
    return torch.cat(hits)


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3, chunk: int = 1024) -> tuple[float, float]:
    """Kynkäänniemi et al. 2019: each set's manifold is the union of balls reaching each point's k-th nearest
    neighbour; precision = share of generated images on the real manifold (fidelity), recall = share of real
    images on the generated one (coverage). Two numbers, because FID cannot tell blur from missing modes."""
    _check(real, fake)
    if min(len(real), len(fake)) < k + 1:
        raise GenlabError(f"precision/recall with k = {k} needs at least {k + 1} real and {k + 1} generated images; "
                          f"got {len(real)} and {len(fake)}.")
    r, f = torch.from_numpy(np.asarray(real, np.float64)), torch.from_numpy(np.asarray(fake, np.float64))
    precision = _covered(f, r, _kth_neighbour_radii(r, k, chunk), chunk).double().mean()
    recall = _covered(r, f, _kth_neighbour_radii(f, k, chunk), chunk).double().mean()
    return float(precision), float(recall)
