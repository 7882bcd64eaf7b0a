"""The fully connected VAE of the likelihood papers: image flattened, hidden layers, a diagonal Gaussian code.

Kingma & Welling 2014 and Burda et al. 2016 (one stochastic layer: 784-200-200-50, tanh) report their
MNIST log-likelihoods with this network; having it lets a run be held to their tables with their own
architecture, and it is cheap enough on a CPU to estimate a likelihood with thousands of importance samples.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from genlab.models import blocks
from genlab.models.latent import Posterior, prior_sample
from genlab.models.priors import PriorName, build_prior
from genlab.models.registry import LatentSpec, ModelEntry


def _stack(dims: tuple[int, ...], act: str) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), blocks.activation(act)]
    return layers


class MLPVAE(nn.Module):
    """Encoder: flatten, Linear + activation per hidden width, heads to mean and log-variance.
    Decoder: the widths reversed, a Linear to every pixel, the output activation (sigmoid for Bernoulli)."""

    def __init__(self, *, image_size: int, channels: int, hidden_dims: tuple[int, ...] = (200, 200),
                 latent_dim: int = 50, activation: str = "tanh", output_activation: str = "sigmoid",
                 prior: PriorName = "standard_normal", prior_components: int = 10):
        super().__init__()
        hidden_dims = tuple(hidden_dims)
        self.latent_dim = latent_dim
        self.prior = build_prior(prior, latent_dim, prior_components)
        self.image_shape = (channels, image_size, image_size)
        pixels = channels * image_size * image_size
        self.encoder = nn.Sequential(nn.Flatten(), *_stack((pixels, *hidden_dims), activation))
        self.fc_mu = nn.Linear(hidden_dims[-1], latent_dim)
        self.fc_logvar = nn.Linear(hidden_dims[-1], latent_dim)
        rev = (latent_dim, *reversed(hidden_dims))
        self.decoder = nn.Sequential(*_stack(rev, activation), nn.Linear(rev[-1], pixels),
                                     blocks.output_activation(output_activation))

    def encode(self, x: torch.Tensor) -> Posterior:
        h = self.encoder(x)
        return Posterior(self.fc_mu(h), self.fc_logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z).view(z.shape[0], *self.image_shape)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(prior_sample(self, n, generator))


# Burda et al. 2016, one stochastic layer.
BURDA = {"hidden_dims": (200, 200), "latent_dim": 50}

ENTRIES = (
    ModelEntry(
        name="mlp_vae", build=partial(MLPVAE, **BURDA), family="autoencoder", trains_with=("reconstruction",),
        summary="fully connected VAE of the likelihood papers: 200-200 tanh, latent 50 (Burda et al. 2016)",
        latent=LatentSpec(posterior="gaussian"), tiny={"hidden_dims": [8], "latent_dim": 4},
        tiny_image_sizes=(16, 28), sizes=("hidden_dims", "latent_dim", "prior_components"), presets=BURDA,
    ),
)
