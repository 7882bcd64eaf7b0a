"""Reconstruction objective: AE, denoising AE, VAE, β-VAE and capacity-annealed β-VAE in one place.

Whether a KL term exists is decided by the model's posterior (a plain AE has no variance), so one
objective covers the whole autoencoder family without dispatching on model types.
"""

from __future__ import annotations

import torch
from torch import nn

from genlab import distributed
from genlab.config import DEFAULT_BEST_METRIC, ObjectiveConfig, OptimConfig
from genlab.data import Batch, BatchLoader, Normalizer
from genlab.errors import GenlabError
from genlab.losses import add_gaussian_noise, capacity, kl_divergence, reconstruction_loss
from genlab.metrics.latent_usage import LatentUsage, measure
from genlab.objectives.optim import Stepper, build_optimizer


class Reconstruction:
    default_best_metric = DEFAULT_BEST_METRIC["reconstruction"]

    def __init__(self, model: nn.Module, cfg: ObjectiveConfig, optim: OptimConfig, normalizer: Normalizer):
        if cfg.recon_loss == "bce" and normalizer.kind != "zero_one":
            raise GenlabError(f"objective.recon_loss 'bce' needs targets in [0, 1]: set data.normalize: zero_one "
                              f"(now {normalizer.kind!r}) and model.output_activation: sigmoid.")
        self.model = model
        self.cfg = cfg
        self.noise_clip = normalizer.output_range() if cfg.noise_clip else None
        self.optimizers = {"model": build_optimizer(model.parameters(), optim)}

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising input: x plus Gaussian noise of std `noise_std` in normalised units."""
        if self.cfg.noise_std <= 0:
            return x
        return add_gaussian_noise(x, self.cfg.noise_std, self.noise_clip, generator)

    def kl_weight(self, step: int) -> float:
        """β · kld_weight, ramped linearly from 0 over kl_warmup_steps (Bowman et al. 2016)."""
        w = self.cfg.beta * self.cfg.kld_weight
        if self.cfg.kl_warmup_steps:
            w *= min(1.0, step / self.cfg.kl_warmup_steps)
        return w

    def _terms(self, batch: Batch, step: int, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        x = batch.images
        post = self.model.encode(self.corrupt(x, generator))
        recon = reconstruction_loss(self.model.decode(post.rsample(generator)), x, self.cfg.recon_loss,
                                    self.cfg.reduction)
        if self.cfg.likelihood_std is not None:
            recon = recon / (2 * self.cfg.likelihood_std ** 2)
        if post.logvar is None:
            return {"loss": recon, "recon": recon}
        kl = kl_divergence(post.mean, post.logvar)
        if self.cfg.capacity_max is not None:
            c = capacity(step, self.cfg.capacity_max, self.cfg.capacity_steps)
            # |KL - C| of the global batch's mean KL: with several processes each one's |KL_rank - C| would
            # pull in opposite directions near C. The value is global, the gradient stays this shard's.
            kl_global = kl + (distributed.all_reduce_mean(kl.detach()) - kl.detach())
            loss = recon + self.cfg.gamma * (kl_global - c).abs()
            return {"loss": loss, "recon": recon, "kl": kl, "capacity": kl.new_tensor(c)}
        return {"loss": recon + self.kl_weight(step) * kl, "recon": recon, "kl": kl}

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]:
        terms = self._terms(batch, step, None)
        stepper.step(terms["loss"], self.optimizers["model"], terms)
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self._terms(batch, 10**12, generator)

    @torch.no_grad()
    def latent_usage(self, loader: BatchLoader) -> LatentUsage | None:
        """KL per dimension and active units over the clean images of `loader` (no denoising noise: the
        question is what the encoder does with the data); None for a plain AE, which has no KL."""
        return measure(self.model, (batch.images for batch in loader.batches()))
