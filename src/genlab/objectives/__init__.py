"""Objectives wrap a model with its loss and step order; the engine only calls their methods.

Contract (what `genlab.engine.fit` relies on):
- `model`: the nn.Module whose state is checkpointed;
- `optimizers`: dict name -> torch optimizer (checkpointed, scheduled);
- `train_step(batch, step, stepper) -> dict[str, Tensor]`: computes, back-propagates and steps;
- `eval_step(batch, generator) -> dict[str, Tensor]`: no gradients; "loss" ranks best checkpoints.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from genlab.config import RunConfig
from genlab.data import Batch, Normalizer
from genlab.objectives.optim import Stepper, build_optimizer
from genlab.objectives.reconstruction import Reconstruction

__all__ = ["Objective", "Reconstruction", "Stepper", "build_objective", "build_optimizer"]


class Objective(Protocol):
    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]: ...

    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]: ...


def build_objective(cfg: RunConfig, model: nn.Module, normalizer: Normalizer) -> Objective:
    return Reconstruction(model, cfg.objective, cfg.optim, normalizer)
