"""Deterministic convolutional autoencoder (the Fashion-MNIST denoising experiment); denoising is the
objective's business, so the same module is the plain and the denoising autoencoder."""

from __future__ import annotations

import torch
from torch import nn

from genlab.models.blocks import ConvDecoder, ConvEncoder
from genlab.models.latent import Posterior, prior_sample
from genlab.models.registry import LatentSpec, ModelEntry


class AutoEncoder(nn.Module):
    """Conv encoder -> Linear to `latent_dim`; mirrored transposed-conv decoder.

    `encode` returns a Posterior without a variance, so code that handles VAEs handles this too.
    """

    def __init__(self, *, image_size: int, channels: int, hidden_dims: tuple[int, ...] = (32, 64, 128),
                 latent_dim: int = 128, batch_norm: bool = False, activation: str = "relu",
                 output_activation: str = "tanh"):
        super().__init__()
        hidden_dims = tuple(hidden_dims)
        self.latent_dim = latent_dim
        self.image_shape = (channels, image_size, image_size)
        self.encoder = ConvEncoder(channels, image_size, hidden_dims, batch_norm, activation, "ae")
        self.fc = nn.Linear(self.encoder.out_features, latent_dim)
        self.decoder = ConvDecoder(channels, self.encoder.sizes, hidden_dims, latent_dim, batch_norm,
                                   activation, output_activation)

    def encode(self, x: torch.Tensor) -> Posterior:
        return Posterior(self.fc(self.encoder(x)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode standard-normal codes; an AE's latent space is not regularised, so expect poor samples."""
        return self.decode(prior_sample(self, n, generator))


ENTRIES = (
    ModelEntry(
        name="ae", build=AutoEncoder, family="autoencoder", trains_with=("reconstruction",),
        summary="convolutional autoencoder (plain or denoising: objective.noise_std)",
        latent=LatentSpec(posterior="point"), tiny={"hidden_dims": [4, 8, 8], "latent_dim": 4},
        tiny_image_sizes=(28, 32, 64, 128), sizes=("hidden_dims", "latent_dim"),
    ),
)
