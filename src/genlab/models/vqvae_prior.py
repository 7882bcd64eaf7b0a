"""A VQ-VAE that samples: a frozen VQ-VAE and a gated PixelCNN prior over its code grids (van den Oord, Vinyals
& Kavukcuoglu 2017, sec. 3.1 and 4.2; the PixelCNN of van den Oord et al. 2016).

The VQ-VAE is a submodule whose weights come from another run (`prior.run`, loaded at run set-up by
genlab.prior_run, never by this module) and stay fixed: its parameters do not require gradients, and it stays
in eval mode whatever mode the whole model is put in, so its codebook's EMA update never runs. Only the
PixelCNN is trained (objective kind `autoregressive_prior`: cross-entropy of each cell's code given the cells
before it, on the codes the frozen encoder gives the training images).

Because the VQ-VAE is a submodule, this run's checkpoint holds both networks: `genlab sample`, `genlab eval`
and `genlab export` need only this run. `sample` draws a grid of code indices cell by cell through the
PixelCNN and decodes it with the VQ-VAE (`decode_indices`); `encode`, `decode` and `reconstruct` are the
VQ-VAE's, so reconstruction scores and the code-usage figure are those of the first run's model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genlab.models.pixelcnn import GatedPixelCNN
from genlab.models.registry import LatentSpec, ModelEntry

NEEDS_BASE = ("model.base is the first run's model, {name: ..., its arguments}, which run set-up fills in from "
              "prior.run; give prior.run (the folder of a finished vqvae run) rather than this key")


class VQVAEPrior(nn.Module):
    """Frozen quantized autoencoder (`base`, built through the registry) + trained GatedPixelCNN over its grid."""

    def __init__(self, *, image_size: int, channels: int, base: dict[str, Any] | None = None,
                 prior_channels: int = 64, prior_layers: int = 8, prior_kernel: int = 7, temperature: float = 1.0,
                 output_activation: str = "tanh"):
        super().__init__()
        from genlab.models import build_model  # the registry imports this module

        if not isinstance(base, dict) or not isinstance(base.get("name"), str):
            raise ValueError(NEEDS_BASE)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (got {temperature}); 1 samples the learned distribution")
        kwargs = {k: v for k, v in base.items() if k != "name"}
        self.vqvae = build_model(base["name"], {**kwargs, "output_activation": output_activation},
                                 image_size=image_size, channels=channels)
        self.vqvae.requires_grad_(False)
        self.vqvae.eval()
        self.pixelcnn = GatedPixelCNN(num_codes=self.vqvae.num_codes, channels=prior_channels, layers=prior_layers,
                                      kernel=prior_kernel)
        self.temperature = temperature
        self.image_shape = self.vqvae.image_shape
        self.latent_dim = self.vqvae.latent_dim
        self.grid_shape = self.vqvae.grid_shape
        self.num_codes = self.vqvae.num_codes

    def train(self, mode: bool = True) -> VQVAEPrior:
        """Only the prior trains: the frozen VQ-VAE stays in eval mode (no codebook EMA step, ever)."""
        super().train(mode)
        self.vqvae.eval()
        return self

    def load_base(self, state: dict[str, torch.Tensor]) -> None:
        """The first run's model weights (its checkpoint's state dict) into the frozen submodule."""
        self.vqvae.load_state_dict(state)

    @property
    def codebook(self) -> torch.Tensor:
        return self.vqvae.codebook

    @torch.no_grad()
    def code_indices(self, x: torch.Tensor) -> torch.Tensor:
        """(B, h, w) code indices the frozen encoder gives the images: what the prior is trained on."""
        return self.vqvae.encode(x).indices

    def prior_logits(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) logits of each cell's code given the cells before it in raster order."""
        return self.pixelcnn(indices)

    def encode(self, x: torch.Tensor):
        return self.vqvae.encode(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.vqvae.decode(z)

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        return self.vqvae.decode_indices(indices)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.vqvae.reconstruct(x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images: code grids drawn cell by cell from the PixelCNN (row by row: GatedPixelCNN.sample), decoded
        by the VQ-VAE."""
        grid = tuple(int(s) for s in self.grid_shape[1:])
        indices = self.pixelcnn.sample(n, grid, generator, self.temperature)
        return self.vqvae.decode_indices(indices)


ENTRIES = (
    ModelEntry(
        name="vqvae_prior", build=VQVAEPrior, family="autoencoder", trains_with=("autoregressive_prior",),
        summary="a finished VQ-VAE run (frozen) with a gated PixelCNN prior over its code grids, which samples "
                "(van den Oord et al. 2016, 2017); needs prior.run",
        latent=LatentSpec(layout="grid", prior="learned", posterior="quantized"),
        # a tiny stand-in for the first run's model (random weights): the registry tests build it without a run
        tiny={"base": {"name": "vqvae", "hidden_channels": 8, "residual_channels": 4, "num_codes": 8, "code_dim": 4},
              "prior_channels": 8, "prior_layers": 2, "prior_kernel": 3},
        tiny_image_sizes=(16, 28, 32), sizes=("prior_channels", "prior_layers", "prior_kernel"),
        builds_on="quantized",
    ),
)
