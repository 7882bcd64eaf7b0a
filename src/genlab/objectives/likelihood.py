"""The decoder's likelihood as the reconstruction objective states it, and the importance weights built on it.

One place says what p(x | z) a config trains, so the IWAE objective (Burda et al. 2016) and the
importance-sampled log-likelihood of `genlab eval --metrics nll` use the same density the run was
trained with, constants included (the training loss drops them; a likelihood in nats cannot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from genlab.losses import gaussian_log_density, reconstruction_per_image
from genlab.models.latent import Posterior

# The Gaussian decoder that plain squared error is the likelihood of: SSE = (x - x̂)² / (2σ²) at σ = 1/√2.
PLAIN_MSE_STD = 1 / math.sqrt(2)


@dataclass(frozen=True)
class DecoderLikelihood:
    """p(x | z) per image: Bernoulli with the decoder's outputs as probabilities, or a Gaussian of fixed
    std (in normalised units) around them."""

    kind: Literal["bernoulli", "gaussian"]
    std: float | None = None

    def log_prob(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """(B,) log p(x | z) in nats, normalising constant included."""
        if self.kind == "bernoulli":
            return -reconstruction_per_image(x_hat, x, "bce")
        sse = reconstruction_per_image(x_hat, x, "mse")
        dims = x[0].numel()
        return -sse / (2 * self.std ** 2) - 0.5 * dims * math.log(2 * math.pi * self.std ** 2)

    def describe(self) -> str:
        if self.kind == "bernoulli":
            return "Bernoulli per pixel, the decoder's outputs (clamped to [1e-6, 1 - 1e-6]) as probabilities"
        return f"Gaussian per pixel around the decoder's output, fixed std {self.std:.6g} in normalised units"


def decoder_likelihood(objective) -> DecoderLikelihood | str:
    """The likelihood a reconstruction objective trains, or why it has none that is a density per image."""
    if getattr(objective, "kind", None) != "reconstruction":
        return f"the objective {getattr(objective, 'kind', objective)!r} trains no decoder likelihood"
    if objective.reduction != "sum":
        return ("objective.reduction 'mean' averages the error over pixels, which is no per-image likelihood; "
                "train with reduction: sum")
    if objective.recon_loss == "bce":
        return DecoderLikelihood("bernoulli")
    return DecoderLikelihood("gaussian", objective.likelihood_std or PLAIN_MSE_STD)


@dataclass
class LogWeights:
    """Per importance sample and image (k, B): log p(x | z), log p(z) and log q(z | x)."""

    log_px: torch.Tensor
    log_pz: torch.Tensor
    log_qz: torch.Tensor

    def total(self, kl_weight: float = 1.0) -> torch.Tensor:
        """log w = log p(x | z) + weight · (log p(z) - log q(z | x)); weight 1 is the importance weight."""
        return self.log_px + kl_weight * (self.log_pz - self.log_qz)


def log_weights(model: nn.Module, x: torch.Tensor, post: Posterior, k: int, likelihood: DecoderLikelihood,
                generator: torch.Generator | None = None) -> LogWeights:
    """k reparameterised draws z ~ q(z | x) per image, decoded in one batch of k·B; the prior is N(0, I), the
    one the ELBO's closed-form KL is taken against."""
    mean, logvar = post.mean.float(), post.logvar.float()
    eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device, dtype=mean.dtype)
    z = mean + torch.exp(0.5 * logvar) * eps
    x_hat = model.decode(z.flatten(0, 1).to(post.mean.dtype))
    targets = x.unsqueeze(0).expand(k, *x.shape).flatten(0, 1)
    log_px = likelihood.log_prob(x_hat, targets).view(k, -1)
    log_pz = gaussian_log_density(z)
    # log q at its own draw: (z - mean)² / var is eps², exact, and cheaper than recomputing it from z
    log_qz = -0.5 * (eps.pow(2).sum(-1) + logvar.sum(-1) + mean.shape[-1] * math.log(2 * math.pi))
    return LogWeights(log_px, log_pz, log_qz)


def iw_bound(lw: torch.Tensor) -> torch.Tensor:
    """(B,) log (1/k) Σ_k w_k: the k-sample importance-weighted bound on log p(x) (Burda et al. 2016, Eq. 8)."""
    return torch.logsumexp(lw.double(), 0) - math.log(lw.shape[0])
