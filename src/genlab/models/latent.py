"""What an encoder returns: a diagonal Gaussian, or a point when there is no variance (plain AE)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class Posterior:
    """What `encode` returns. Beside the code, an encoder may contribute to whatever objective trains it:

    losses: weighted terms that objective adds to its loss and logs by name (a VQ-VAE's commitment loss,
    beta * ||z_e - sg(e)||^2), so a model with a regulariser of its own needs no objective of its own.
    stats: numbers logged beside the loss terms and not optimised (a codebook's perplexity).
    indices: for a quantized posterior, the codebook index chosen at each cell of the code grid, (B, h, w).
    """

    mean: torch.Tensor
    logvar: torch.Tensor | None = None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    indices: torch.Tensor | None = None

    def rsample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised draw z = mu + sigma * eps (Kingma & Welling 2014, eq. 10); the mean for an AE."""
        if self.logvar is None:
            return self.mean
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + torch.exp(0.5 * self.logvar) * eps


def code_perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the code usage distribution counts / sum(counts) of a quantized posterior: K when all
    K codes are used alike, 1 when one code takes every cell (the usual health figure of a VQ-VAE codebook)."""
    p = counts / counts.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return torch.exp(entropy)


def draw_codes(model: nn.Module, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n codes from the model's prior (N(0, I) unless it has a fitted one: `genlab.models.priors`), drawn where
    the generator lives, else on the model's device."""
    device = next(model.parameters()).device
    prior = getattr(model, "prior", None)
    if prior is None:
        return torch.randn(n, model.latent_dim, generator=generator,
                           device=generator.device if generator is not None else device)
    return prior.sample(n, generator, device)


def prior_description(model: nn.Module, short: bool = False) -> str:
    """What the codes of samples are drawn from, for protocols (in full) and figure captions (short)."""
    prior = getattr(model, "prior", None)
    return "N(0, I)" if prior is None else prior.describe(short)


def prior_phrase(model: nn.Module) -> str:
    """'the prior N(0, I)' or the fitted prior's short description, to follow 'samples from'."""
    short = prior_description(model, short=True)
    return "the prior N(0, I)" if short == "N(0, I)" else short


def prior_sample(model: nn.Module, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n codes from the model's prior, on the model's device."""
    return draw_codes(model, n, generator).to(next(model.parameters()).device)


@torch.no_grad()
def decode_prior_samples(model: nn.Module, n: int, seed: int, batch_size: int,
                         labels: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """n samples from the prior, decoded batch by batch. All codes are drawn first, on the CPU, from one
    seeded generator, so the samples depend on the seed alone, not on the batch size or the device."""
    codes = draw_codes(model, n, torch.Generator().manual_seed(seed))
    device = next(model.parameters()).device
    for start in range(0, n, batch_size):
        z = codes[start:start + batch_size].to(device)
        if labels is None:
            yield model.decode(z)
        else:
            yield model.decode(z, labels[start:start + batch_size].to(device))


LEARNED_PRIOR = "the model's learned prior over its code grid"


def sample_source(model: nn.Module, flat_prior: bool, short: bool = False) -> str:
    """What samples come from: the flat code's prior (`prior_description`), or a model's own learned prior."""
    return prior_description(model, short) if flat_prior else LEARNED_PRIOR


def learned_prior_seed(seed: int, batch: int) -> int:
    """The seed of the `batch`-th batch a learned prior draws (one generator per batch)."""
    return seed * 1_000_003 + batch


@torch.no_grad()
def sample_batches(model: nn.Module, flat_prior: bool, n: int, seed: int, batch_size: int,
                   labels: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
    """n samples, batch by batch. A flat prior's codes are drawn at once (`decode_prior_samples`: the images
    depend on the seed alone); a model with a learned prior samples each batch itself from a generator seeded
    by `learned_prior_seed(seed, batch index)`, on the model's device, so its images depend on the seed, the
    batch size and the device."""
    if flat_prior:
        yield from decode_prior_samples(model, n, seed, batch_size, labels)
        return
    device = next(model.parameters()).device
    for i, start in enumerate(range(0, n, batch_size)):
        g = torch.Generator(device=device).manual_seed(learned_prior_seed(seed, i))
        m = min(batch_size, n - start)
        if labels is None:
            yield model.sample(m, generator=g)
        else:
            yield model.sample(m, generator=g, labels=labels[start:start + m].to(device))
