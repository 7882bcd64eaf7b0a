"""VQ-VAE (van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning").

A conv encoder maps an image to a grid of D-dim vectors z_e (image_size / 4 on a side with the default two
stride-2 convolutions); each vector is replaced by its nearest code e_k of a K-code codebook, and a conv
decoder that mirrors the encoder maps the quantised grid z_q back to an image. Nearest-neighbour lookup has
no gradient, so the decoder's gradient is copied straight through to the encoder (z_q = z_e + sg(e - z_e),
sec. 3.2). The codebook is learned by exponential moving averages of the encoder outputs assigned to each
code (appendix A.1: decay 0.99, Laplace-smoothed cluster sizes, eps 1e-5), not by gradients, so the loss
keeps only the commitment term beta * ||z_e - sg(e)||^2 (beta 0.25), which `encode` hands to the objective
through `Posterior.losses`.

Layout (sec. 4.1, and DeepMind's released Sonnet example): two 4x4 stride-2 convolutions, a 3x3 convolution,
two residual blocks (ReLU, 3x3 conv, ReLU, 1x1 conv), a 1x1 convolution to D; the decoder is a 3x3
convolution from D, two residual blocks, and two 4x4 stride-2 transposed convolutions.

The code grid is the latent: `encode(x).mean` is z_q flattened to (B, D * h * w) and `decode` takes that
flat code (or the (B, D, h, w) grid), so the autoencoder family's callers (reconstruction scores, export)
need nothing VQ-specific. The model cannot sample on its own: the codes of a VQ-VAE have no fixed prior, and
samples need an autoregressive prior learned over the frozen encoder's code grids (sec. 3.1, 4.2): a
`vqvae_prior` run (models/vqvae_prior.py) that names this one.

The model knows nothing of training loops or files; the EMA update is a side effect of `encode` in training
mode, as batch norm's running statistics are of its forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genlab import distributed
from genlab.errors import GenlabError
from genlab.models import blocks
from genlab.models.latent import Posterior, code_perplexity
from genlab.models.registry import LatentSpec, ModelEntry

NEEDS_PRIOR = ("VQ-VAE samples need a learned prior over the codes: the model maps images to a grid of code "
               "indices and back, and its codes have no fixed distribution to draw from. Train a prior over "
               "this run's code grids to sample: a vqvae_prior run that names this one (genlab train "
               "vqvae_prior --set prior.run=RUN_DIR); "
               "reconstructions and reconstruction metrics work now (genlab eval, genlab figures)")


@dataclass
class Quantized:
    """One pass through the codebook: the straight-through grid, the code chosen per cell, the commitment
    error ||z_e - sg(e)||^2 (mean over elements, unweighted), and how many cells chose each code."""

    grid: torch.Tensor
    indices: torch.Tensor
    commitment: torch.Tensor
    counts: torch.Tensor
    restarted: int


class VectorQuantizer(nn.Module):
    """Nearest-neighbour codebook with an EMA update and restarts of dead codes.

    The codebook and its EMA statistics are buffers, not parameters: no gradient ever reaches them, and the
    optimiser leaves them alone. Each training-mode forward (only there) updates, under no_grad and in fp32
    whatever autocast is on (bf16 sums of thousands of vectors lose the small EMA increments):

        N_k <- decay * N_k + (1 - decay) * n_k             n_k: cells of this batch assigned to code k
        m_k <- decay * m_k + (1 - decay) * sum of those z_e
        e_k <- m_k / N~_k, with N~_k = (N_k + eps) / (sum N + K eps) * sum N   (Laplace smoothing)

    Across processes n_k and the sums are added up first, so every process keeps the same codebook.

    Dead-code restarts: a code whose EMA count N_k falls below `dead_code_threshold` is re-initialised from a
    random encoder output of the current batch (N_k = max(1, threshold), m_k = that vector), as Jukebox does
    (Dhariwal et al. 2020, sec. 3.2 "random restarts for embeddings"; also Zeghidour et al. 2021, SoundStream,
    sec. 3.2). Without it codes that start far from the encoder's outputs are never chosen and never move, and
    most of a large codebook stays unused. The counts start at 1 (with m_k = e_k, so an unused code stays
    where it is), so with the default threshold 1 the first training step restarts every code that batch did
    not pick: the codebook starts on the data, not on its random initialisation. Threshold 0 turns restarts
    off.
    """

    def __init__(self, num_codes: int, code_dim: int, decay: float = 0.99, eps: float = 1e-5,
                 dead_code_threshold: float = 1.0):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1) (got {decay}); the paper uses 0.99")
        if eps <= 0 or dead_code_threshold < 0:
            raise ValueError(f"eps must be > 0 and dead_code_threshold >= 0 (got {eps}, {dead_code_threshold})")
        self.num_codes, self.code_dim = num_codes, code_dim
        self.decay, self.eps, self.dead_code_threshold = decay, eps, dead_code_threshold
        codebook = torch.randn(num_codes, code_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("code_sum", codebook.clone())

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code (squared Euclidean distance) of each row of `flat` (fp32)."""
        distances = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t()
                     + self.codebook.pow(2).sum(1)[None, :])
        return distances.argmin(1)

    def forward(self, z_e: torch.Tensor) -> Quantized:
        b, d, h, w = z_e.shape
        with torch.autocast(device_type=z_e.device.type, enabled=False):
            flat = z_e.float().permute(0, 2, 3, 1).reshape(-1, d)
            indices = self.nearest(flat.detach())
            e = F.embedding(indices, self.codebook)  # a buffer: no gradient to the codebook
            commitment = (flat - e.detach()).pow(2).mean()
            counts = torch.bincount(indices, minlength=self.num_codes).float()
            restarted = 0
            if self.training:
                restarted = self.ema_update(flat.detach(), indices, counts)
            quantized = flat + (e - flat).detach()  # straight-through: forward e, backward identity to z_e
        grid = quantized.view(b, h, w, d).permute(0, 3, 1, 2).to(z_e.dtype)
        return Quantized(grid, indices.view(b, h, w), commitment, counts, restarted)

    @torch.no_grad()
    def ema_update(self, flat: torch.Tensor, indices: torch.Tensor, counts: torch.Tensor) -> int:
        """One EMA step of the counts, sums and codes, then dead-code restarts; returns the codes restarted."""
        sums = torch.zeros_like(self.code_sum).index_add_(0, indices, flat)
        counts = distributed.all_reduce_sum(counts.clone())
        sums = distributed.all_reduce_sum(sums)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.code_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.num_codes * self.eps) * total
        self.codebook.copy_(self.code_sum / smoothed[:, None])
        return self.restart_dead(flat)

    @torch.no_grad()
    def restart_dead(self, flat: torch.Tensor) -> int:
        if self.dead_code_threshold <= 0:
            return 0
        dead = (self.cluster_size < self.dead_code_threshold).nonzero().flatten()
        if len(dead) == 0:
            return 0
        if len(flat) >= len(dead):  # distinct vectors where the batch has enough
            pick = torch.randperm(len(flat), device=flat.device)[:len(dead)]
        else:
            pick = torch.randint(len(flat), (len(dead),), device=flat.device)
        fresh = flat[pick].contiguous()
        distributed.broadcast_tensors([fresh])  # every process restarts to rank 0's choice
        count = max(1.0, self.dead_code_threshold)
        self.codebook[dead] = fresh
        self.code_sum[dead] = fresh * count
        self.cluster_size[dead] = count
        return len(dead)


class Residual(nn.Module):
    """x + 1x1conv(ReLU(3x3conv(ReLU(x)))): the paper's residual block (sec. 4.1)."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class VQVAE(nn.Module):
    """Conv encoder -> code grid -> nearest codes (EMA codebook) -> mirrored conv decoder."""

    def __init__(self, *, image_size: int, channels: int, hidden_channels: int = 128, residual_channels: int = 32,
                 residual_blocks: int = 2, downsamples: int = 2, num_codes: int = 512, code_dim: int = 64,
                 commitment_beta: float = 0.25, decay: float = 0.99, eps: float = 1e-5,
                 dead_code_threshold: float = 1.0, output_activation: str = "tanh"):
        super().__init__()
        factor = 2 ** downsamples
        if image_size % factor:
            raise ValueError(f"image_size must be divisible by 2 ** downsamples = {factor} (got {image_size}); "
                             f"the decoder's stride-2 transposed convolutions double the grid back exactly")
        if commitment_beta < 0:
            raise ValueError(f"commitment_beta must be >= 0 (got {commitment_beta}); the paper uses 0.25")
        self.image_shape = (channels, image_size, image_size)
        self.grid_size = image_size // factor
        self.grid_shape = (code_dim, self.grid_size, self.grid_size)
        self.latent_dim = math.prod(self.grid_shape)
        self.num_codes = num_codes
        self.commitment_beta = commitment_beta
        widths = [max(1, hidden_channels // 2 ** (downsamples - 1 - i)) for i in range(downsamples)]
        enc: list[nn.Module] = []
        for c_in, c_out in zip((channels, *widths), widths):
            enc += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
        enc += [nn.Conv2d(widths[-1], hidden_channels, 3, padding=1)]
        enc += [Residual(hidden_channels, residual_channels) for _ in range(residual_blocks)]
        enc += [nn.ReLU(), nn.Conv2d(hidden_channels, code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantizer(num_codes, code_dim, decay, eps, dead_code_threshold)
        dec: list[nn.Module] = [nn.Conv2d(code_dim, hidden_channels, 3, padding=1)]
        dec += [Residual(hidden_channels, residual_channels) for _ in range(residual_blocks)]
        dec += [nn.ReLU()]
        ups = [*reversed(widths[:-1]), channels]
        for i, (c_in, c_out) in enumerate(zip((hidden_channels, *ups), ups)):
            last = i == len(ups) - 1
            dec += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
                    blocks.output_activation(output_activation) if last else nn.ReLU()]
        self.decoder = nn.Sequential(*dec)

    @property
    def codebook(self) -> torch.Tensor:
        """The (num_codes, code_dim) code vectors."""
        return self.quantizer.codebook

    def quantize(self, x: torch.Tensor) -> Quantized:
        return self.quantizer(self.encoder(x))

    def encode(self, x: torch.Tensor) -> Posterior:
        """z_q flattened, with the weighted commitment loss for the objective and the usage for the history.
        In training mode this also takes one EMA step of the codebook (see VectorQuantizer)."""
        q = self.quantize(x)
        stats = {"perplexity": code_perplexity(q.counts), "codes_in_batch": (q.counts > 0).sum().float()}
        if self.training:
            stats["codes_restarted"] = q.counts.new_tensor(float(q.restarted))
        return Posterior(q.grid.flatten(1), losses={"commitment": self.commitment_beta * q.commitment},
                         stats=stats, indices=q.indices)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """A flat code (B, D*h*w) as `encode` returns it, or the (B, D, h, w) grid, to an image."""
        return self.decoder(z.reshape(z.shape[0], *self.grid_shape))

    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """A (B, h, w) grid of code indices (what a prior over the codes draws) to an image."""
        return self.decode(F.embedding(indices, self.codebook).permute(0, 3, 1, 2))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x).mean)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        raise GenlabError(NEEDS_PRIOR + ".")


ENTRIES = (
    ModelEntry(
        name="vqvae", build=VQVAE, family="autoencoder", trains_with=("reconstruction",),
        summary="VQ-VAE (van den Oord et al. 2017): conv encoder to a code grid, EMA codebook, conv decoder",
        latent=LatentSpec(layout="grid", prior="learned", posterior="quantized"),
        tiny={"hidden_channels": 8, "residual_channels": 4, "num_codes": 8, "code_dim": 4},
        tiny_image_sizes=(16, 28, 32), sizes=("hidden_channels", "residual_channels", "downsamples", "num_codes",
                                              "code_dim"),
        cannot_sample=NEEDS_PRIOR,
    ),
)
