"""Objectives wrap a model with its loss and step order; the engine only calls their methods.

Contract (what `genlab.engine.fit` relies on):
- `model`: the nn.Module whose state is checkpointed;
- `optimizers`: dict name -> torch optimizer (checkpointed, scheduled);
- `train_step(batch, step, stepper) -> dict[str, Tensor]`: computes, back-propagates and steps;
- `eval_step(batch, generator) -> dict[str, Tensor]`: no gradients, averaged over the validation set;
- `default_best_metric`: the validation value that ranks best checkpoints unless train.best_metric says;
optional: `scores(loader, generator) -> dict[str, float]` (whole-set scores added to each evaluation),
`monitors` (objects whose `check(step, values)` returns a warning or None after each step) and
`latent_usage(loader) -> LatentUsage | None` (KL per latent dimension and active units, measured at
each epoch end; None when the model has no KL).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from genlab.config import RunConfig
from genlab.data import Batch, Normalizer
from genlab.errors import GenlabError
from genlab.models import is_gan
from genlab.objectives.adversarial import Adversarial
from genlab.objectives.optim import Stepper, build_optimizer
from genlab.objectives.reconstruction import Reconstruction

__all__ = ["Adversarial", "Objective", "Reconstruction", "Stepper", "build_objective", "build_optimizer"]


class Objective(Protocol):
    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]: ...

    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]: ...


def build_objective(cfg: RunConfig, model: nn.Module, normalizer: Normalizer) -> Objective:
    kind, gan = cfg.objective.kind, is_gan(model)
    if kind == "adversarial" and not gan:
        raise GenlabError(f"objective.kind 'adversarial' needs a GAN model (dcgan, cgan); model "
                          f"{cfg.model.name!r} is trained with objective.kind: reconstruction.")
    if kind == "reconstruction" and gan:
        raise GenlabError(f"model {cfg.model.name!r} is a GAN: set objective.kind: adversarial.")
    if gan:
        return Adversarial(model, cfg.objective, cfg.optim, normalizer)
    return Reconstruction(model, cfg.objective, cfg.optim, normalizer)
