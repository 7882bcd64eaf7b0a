"""The denoising objective of DDPM (Ho et al. 2020, Algorithm 1): noise a clean image to a uniformly drawn step
t of the forward process, and regress the network's ε̂(x_t, t) on the noise, ||ε − ε̂||² averaged per value
(their L_simple).

The forward process is diffusers' DDPMScheduler.add_noise, the schedule the model's sampler reverses.
Class-conditional models are trained for classifier-free guidance (Ho & Salimans 2022): each label is
replaced by the model's null label with probability `class_dropout`, so one network learns both the
conditional and the unconditional prediction that sampling mixes. After each step the U-Net's weight
average moves (model.ema_decay).

Validation loss draws its t and noise from the evaluation generator, so it is the same draw at every
evaluation and comparable across epochs; it is the default best metric because a sample score costs
`sample_steps` network passes per image. `proxy_samples` > 0 adds fd_randconv on that many DDIM samples.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from genlab.data import Batch, BatchLoader, Normalizer
from genlab.errors import GenlabError
from genlab.metrics.proxy import NAME as PROXY
from genlab.metrics.proxy import proxy_score
from genlab.objectives.contract import BuildContext, Objective, ObjectiveEntry
from genlab.objectives.optim import Stepper, build_optimizer
from genlab.sections import OptimConfig, Section


class DiffusionConfig(Section):
    kind: Literal["diffusion"] = "diffusion"
    class_dropout: float = Field(0.1, ge=0.0, lt=1.0, description="share of labels dropped to the null label "
                                                                   "(classifier-free guidance); conditional only")
    proxy_samples: int = Field(0, ge=0, description="DDIM samples for fd_randconv at each evaluation; 0 is off")


class Diffusion(Objective):
    min_val_images = 1

    def __init__(self, model, cfg: DiffusionConfig, optim: OptimConfig, normalizer: Normalizer):
        self.model = model
        self.cfg = cfg
        self.normalizer = normalizer
        self.noise_schedule = model.training_scheduler()
        self.timesteps = int(self.noise_schedule.config.num_train_timesteps)
        self.optimizers = {"model": build_optimizer(model.unet.parameters(), optim)}
        self.score_names = (PROXY,) if cfg.proxy_samples else ()
        if model.conditional and cfg.class_dropout == 0 and model.guidance_scale != 1:
            raise GenlabError(
                f"model.guidance_scale {model.guidance_scale:g} mixes in the unconditional prediction, which "
                f"objective.class_dropout 0 never trains (the null label's embedding stays at its initialisation). "
                f"Set class_dropout > 0 (0.1 is usual) or guidance_scale: 1 (no guidance)")
        if cfg.proxy_samples == 1:
            raise GenlabError("objective.proxy_samples 1 cannot give fd_randconv a covariance: use 0 (off) or >= 2")

    def _labels(self, batch: Batch, drop: float, generator: torch.Generator | None = None) -> torch.Tensor | None:
        if not self.model.conditional:
            return None
        labels = batch.labels
        if drop:
            mask = torch.rand(labels.shape, generator=generator, device=labels.device) < drop
            labels = torch.where(mask, torch.full_like(labels, self.model.null_label), labels)
        return labels

    def _loss(self, x0: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator | None = None,
              unet: torch.nn.Module | None = None) -> torch.Tensor:
        n = x0.shape[0]
        noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
        t = torch.randint(0, self.timesteps, (n,), generator=generator, device=x0.device)
        x_t = self.noise_schedule.add_noise(x0, noise, t)
        return F.mse_loss(self.model.predict_noise(x_t, t, labels, unet).float(), noise.float())

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]:
        loss = self._loss(batch.images, self._labels(batch, self.cfg.class_dropout))
        stepper.step(loss, self.optimizers["model"], {"loss": loss})
        self.model.update_average()
        return {"loss": loss.detach()}

    @torch.no_grad()
    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """The loss of the average the samples come from, with labels kept (the conditional prediction)."""
        return {"loss": self._loss(batch.images, self._labels(batch, 0.0), generator, self.model.sampling_unet)}

    @torch.no_grad()
    def scores(self, loader: BatchLoader, generator: torch.Generator) -> dict[str, float]:
        if not self.cfg.proxy_samples:
            return {}
        return {PROXY: proxy_score(self.model, self.normalizer, loader, generator, self.cfg.proxy_samples)}


def build(ctx: BuildContext) -> Diffusion:
    return Diffusion(ctx.model, ctx.cfg.objective, ctx.cfg.optim, ctx.normalizer)


def training_note(o: DiffusionConfig) -> str:
    dropped = f", with {o.class_dropout:.0%} of labels dropped for guidance" if o.class_dropout else ""
    return (f"training loss is the live network's on fresh noise{dropped}; validation loss is the sampling "
            "network's (the weight average when model.ema_decay > 0) on one fixed draw of t and noise, labels kept.")


ENTRY = ObjectiveEntry(
    kind="diffusion", config=DiffusionConfig, build=build, default_best_metric="loss",
    units=lambda o: {"loss": "mean squared error of the predicted noise ε, per value"}, train_note=training_note,
    summary="denoising diffusion: ε-prediction on diffusers' DDPM schedule (Ho et al. 2020), classifier-free "
            "guidance dropout for labelled data",
)
