"""Variational autoencoders: the plain conv VAE (and its β-VAE preset) and the residual VAE for 128x128 faces."""

from __future__ import annotations

from functools import partial
from typing import Literal

import torch
from torch import nn

from genlab.models import blocks
from genlab.models.blocks import ConvDecoder, ConvEncoder, ResidualBlock, down_sizes
from genlab.models.latent import Posterior, prior_sample
from genlab.models.priors import PriorName, build_prior
from genlab.models.registry import LatentSpec, ModelEntry


class VAE(nn.Module):
    """Conv encoder (3x3 stride-2 blocks) to mu and log-variance; mirrored transposed-conv decoder."""

    def __init__(self, *, image_size: int, channels: int,
                 hidden_dims: tuple[int, ...] = (32, 64, 128, 256, 512), latent_dim: int = 128,
                 batch_norm: bool = True, activation: str = "leaky_relu", output_activation: str = "tanh",
                 prior: PriorName = "standard_normal", prior_components: int = 10):
        super().__init__()
        hidden_dims = tuple(hidden_dims)
        self.latent_dim = latent_dim
        self.prior = build_prior(prior, latent_dim, prior_components)
        self.image_shape = (channels, image_size, image_size)
        self.encoder = ConvEncoder(channels, image_size, hidden_dims, batch_norm, activation, "vae")
        self.fc_mu = nn.Linear(self.encoder.out_features, latent_dim)
        self.fc_logvar = nn.Linear(self.encoder.out_features, latent_dim)
        self.decoder = ConvDecoder(channels, self.encoder.sizes, hidden_dims, latent_dim, batch_norm,
                                   activation, output_activation)

    def encode(self, x: torch.Tensor) -> Posterior:
        h = self.encoder(x)
        return Posterior(self.fc_mu(h), self.fc_logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Decode the posterior mean: the reconstruction protocol of the β-VAE experiment (PyTorch-VAE's)."""
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(prior_sample(self, n, generator))


class ResVAE(nn.Module):
    """VAE whose encoder and decoder stages each hold residual blocks (the CelebA 128x128 experiment).

    Encoder stage: a 3x3 stride-2 conv to the stage's width, then residual blocks at that size.
    Decoder stage: residual blocks, then nearest upsampling to the exact mirrored size and a 3x3
    conv to the next width; the last one outputs the image. No block runs at full resolution,
    where it would cost most of the FLOPs for little gain (about 3x faster at 128x128).

    bottleneck "dense": the last stage's feature map is flattened and mapped by linear layers to a code of
    latent_dim, as the original experiment does. "spatial": 1x1 convs map it to latent_dim / (h * w)
    channels on the last stage's h x w grid, so each code cell describes its own region of the image. The code
    is still a flat vector of latent_dim to everything outside the model (KL, prior, traversals, export), and
    the two linear layers, the largest weights of the dense model, are gone.
    """

    def __init__(self, *, image_size: int, channels: int,
                 hidden_dims: tuple[int, ...] = (32, 64, 128, 256, 512), latent_dim: int = 128,
                 blocks_per_stage: int = 1, activation: str = "leaky_relu", output_activation: str = "tanh",
                 prior: PriorName = "standard_normal", prior_components: int = 10,
                 bottleneck: Literal["dense", "spatial"] = "dense"):
        super().__init__()
        hidden_dims = tuple(hidden_dims)
        self.latent_dim = latent_dim
        self.image_shape = (channels, image_size, image_size)
        sizes = down_sizes(image_size, len(hidden_dims), "res_vae")
        grid = sizes[-1] ** 2
        if bottleneck not in ("dense", "spatial"):
            raise ValueError(f"res_vae's bottleneck must be 'dense' or 'spatial' (got {bottleneck!r})")
        if bottleneck == "spatial" and latent_dim % grid:
            fits = ", ".join(str(grid * c) for c in (4, 8, 16))
            raise ValueError(
                f"res_vae with bottleneck 'spatial' spreads latent_dim over the {sizes[-1]}x{sizes[-1]} grid of its "
                f"last stage, so latent_dim must be a multiple of {grid} (got {latent_dim}; e.g. {fits})")
        self.prior = build_prior(prior, latent_dim, prior_components)
        act = activation
        enc: list[nn.Module] = []
        dims = (channels, *hidden_dims)
        for c_in, c_out in zip(dims, dims[1:]):
            enc += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), blocks.activation(act)]
            enc += [ResidualBlock(c_out, act) for _ in range(blocks_per_stage)]
        rev = tuple(reversed(dims))
        rsizes = list(reversed(sizes))
        self.start = (rev[0], rsizes[0], rsizes[0])
        if bottleneck == "dense":
            flat = hidden_dims[-1] * grid
            self.encoder = nn.Sequential(*enc, nn.Flatten())
            self.fc_mu = nn.Linear(flat, latent_dim)
            self.fc_logvar = nn.Linear(flat, latent_dim)
            self.fc_dec: nn.Module = nn.Linear(latent_dim, flat)
        else:
            code = (latent_dim // grid, sizes[-1], sizes[-1])
            self.encoder = nn.Sequential(*enc)
            self.fc_mu = nn.Sequential(nn.Conv2d(hidden_dims[-1], code[0], 1), nn.Flatten())
            self.fc_logvar = nn.Sequential(nn.Conv2d(hidden_dims[-1], code[0], 1), nn.Flatten())
            self.fc_dec = nn.Sequential(nn.Unflatten(1, code), nn.Conv2d(code[0], hidden_dims[-1], 1))
        dec: list[nn.Module] = []
        for i in range(len(hidden_dims)):
            last = i == len(hidden_dims) - 1
            dec += [ResidualBlock(rev[i], act) for _ in range(blocks_per_stage)]
            dec += [nn.Upsample(size=(rsizes[i + 1], rsizes[i + 1]), mode="nearest"),
                    nn.Conv2d(rev[i], rev[i + 1], 3, padding=1)]
            dec += [blocks.output_activation(output_activation) if last else blocks.activation(act)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x: torch.Tensor) -> Posterior:
        h = self.encoder(x)
        return Posterior(self.fc_mu(h), self.fc_logvar(h))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.fc_dec(z).reshape(z.shape[0], *self.start))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.decode(prior_sample(self, n, generator))


_SIZES = ("hidden_dims", "latent_dim", "prior_components")
# The β-VAE experiment's network (PyTorch-VAE's BetaVAE): 32-64-128-256-512 conv blocks, latent 128.
BETA_VAE = {"hidden_dims": (32, 64, 128, 256, 512), "latent_dim": 128}
SMALL_VAE = {"hidden_dims": (32, 64, 128), "latent_dim": 32}

ENTRIES = (
    ModelEntry(
        name="vae", build=partial(VAE, **SMALL_VAE), family="autoencoder", trains_with=("reconstruction",),
        summary="convolutional VAE, 32-64-128, latent 32 (any hidden_dims / latent_dim)",
        latent=LatentSpec(posterior="gaussian"), tiny={"hidden_dims": [4, 8, 8], "latent_dim": 4},
        tiny_image_sizes=(28, 32, 64, 128), sizes=_SIZES, presets=SMALL_VAE,
    ),
    ModelEntry(
        name="beta_vae", build=partial(VAE, **BETA_VAE), family="autoencoder", trains_with=("reconstruction",),
        summary="the β-VAE experiment's VAE: 32-64-128-256-512 conv blocks, latent 128 (β in the objective)",
        latent=LatentSpec(posterior="gaussian"), tiny={"hidden_dims": [4, 4, 8, 8, 8], "latent_dim": 4},
        tiny_image_sizes=(28, 32, 64, 128), sizes=_SIZES, presets=BETA_VAE,
    ),
    ModelEntry(
        name="res_vae", build=ResVAE, family="autoencoder", trains_with=("reconstruction",),
        summary="VAE with residual blocks in every encoder and decoder stage (the CelebA 128x128 experiment)",
        latent=LatentSpec(posterior="gaussian"), tiny={"hidden_dims": [4, 4, 8, 8, 8], "latent_dim": 4},
        tiny_image_sizes=(28, 32, 64, 128), sizes=(*_SIZES, "blocks_per_stage"),
    ),
)
