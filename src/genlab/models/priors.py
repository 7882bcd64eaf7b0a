"""What a VAE's samples are drawn from: N(0, I), or a density fitted to the codes after training.

A VAE trained to reconstruct well leaves its aggregate posterior (the codes of the training images) far from
N(0, I): codes of real images fill a smaller, correlated region, and standard-normal draws land in the gaps
between them, where the decoder has never been trained and draws smudges. Fitting a Gaussian mixture to the
training codes after training and sampling from it ("ex-post density estimation", Ghosh et al. 2020, §4)
puts samples where the decoder knows what to draw; it costs one encoder pass over the training set and
leaves the encoder, decoder and objective untouched.

The fitted parameters are buffers of the model, so they ride in every checkpoint and export. scikit-learn's
GaussianMixture fits them (EM with k-means initialisation); sampling is plain torch, so it runs on any device
from any generator, and a model whose mixture is not fitted yet samples N(0, I).
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

PriorName = Literal["standard_normal", "gmm"]
PRIORS: tuple[str, ...] = ("standard_normal", "gmm")


@runtime_checkable
class FittablePrior(Protocol):
    """A prior whose parameters come from the training codes, once the encoder has learned them."""

    def fit(self, codes: torch.Tensor, seed: int) -> None: ...

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | None = None) -> torch.Tensor: ...

    def describe(self, short: bool = False) -> str: ...


class StandardNormal(nn.Module):
    """N(0, I), the prior the KL term of the objective pulls codes towards."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, device=_where(generator, device))

    def describe(self, short: bool = False) -> str:
        return "N(0, I)"


class GaussianMixturePrior(nn.Module):
    """A full-covariance Gaussian mixture over the posterior means of the training images."""

    def __init__(self, latent_dim: int, components: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.components = components
        self.register_buffer("weights", torch.full((components,), 1.0 / components))
        self.register_buffer("means", torch.zeros(components, latent_dim))
        self.register_buffer("scale_tril", torch.eye(latent_dim).expand(components, -1, -1).clone())
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("fitted_on", torch.zeros((), dtype=torch.long))  # how many codes

    def fit(self, codes: torch.Tensor, seed: int) -> None:
        """EM on `codes` (n, latent_dim). A small ridge on each covariance keeps it positive definite when a
        component holds fewer codes than dimensions (a small data set, many components)."""
        from sklearn.mixture import GaussianMixture

        x = codes.detach().double().cpu().numpy()
        if len(x) < 2 * self.components:
            raise ValueError(f"a {self.components}-component mixture needs at least {2 * self.components} codes "
                             f"(got {len(x)})")
        gm = GaussianMixture(self.components, covariance_type="full", reg_covar=1e-3 * float(x.var(0).mean()),
                             random_state=seed, max_iter=200)
        gm.fit(x)
        tril = np.linalg.cholesky(gm.covariances_)
        self.weights.copy_(torch.from_numpy(gm.weights_ / gm.weights_.sum()))
        self.means.copy_(torch.from_numpy(gm.means_))
        self.scale_tril.copy_(torch.from_numpy(tril))
        self.fitted.fill_(True)
        self.fitted_on.fill_(len(x))

    def sample(self, n: int, generator: torch.Generator | None = None,
               device: torch.device | None = None) -> torch.Tensor:
        where = _where(generator, device)
        eps = torch.randn(n, self.latent_dim, generator=generator, device=where)
        if not bool(self.fitted):
            return eps
        which = torch.multinomial(self.weights.float().to(where), n, replacement=True, generator=generator)
        tril = self.scale_tril.to(where)[which]
        return self.means.to(where)[which] + (tril @ eps.unsqueeze(-1)).squeeze(-1)

    def describe(self, short: bool = False) -> str:
        if not bool(self.fitted):
            return "N(0, I)" if short else f"N(0, I) (its {self.components}-component mixture is not fitted yet)"
        if short:
            return f"a {self.components}-component Gaussian mixture fitted to the training codes"
        return (f"a {self.components}-component full-covariance Gaussian mixture fitted to the posterior means "
                f"of {int(self.fitted_on):,} training images (ex-post density estimation, Ghosh et al. 2020)")


def build_prior(name: str, latent_dim: int, components: int) -> nn.Module:
    if name == "standard_normal":
        return StandardNormal(latent_dim)
    if name == "gmm":
        if components < 1:
            raise ValueError(f"prior_components must be at least 1 (got {components})")
        return GaussianMixturePrior(latent_dim, components)
    raise ValueError(f"prior must be one of {', '.join(PRIORS)} (got {name!r})")


def _where(generator: torch.Generator | None, device: torch.device | None) -> torch.device:
    """Draws happen where the generator lives (a seeded CPU generator gives the same codes on every device)."""
    if generator is not None:
        return generator.device
    return device if device is not None else torch.device("cpu")
