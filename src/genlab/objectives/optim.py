"""Optimisers from the config, and the one place where a loss becomes a parameter update."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from genlab.config import OptimConfig
from genlab.errors import NonFiniteLoss


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig, lr: float | None = None
                    ) -> torch.optim.Optimizer:
    lr = cfg.lr if lr is None else lr
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def build_scheduler(opt: torch.optim.Optimizer, cfg: OptimConfig, total_epochs: Callable[[], int]):
    """Stepped once per epoch, so a schedule does not depend on batch size. The factor is a closed
    form of the epoch index (never a running product), so a run extended on resume re-plans its
    cosine over the new length instead of staying at the final learning rate of 0."""
    if cfg.scheduler == "cosine":
        def cosine(epoch: int) -> float:
            total = max(1, total_epochs())
            return 0.5 * (1.0 + math.cos(math.pi * min(epoch, total) / total))

        return torch.optim.lr_scheduler.LambdaLR(opt, cosine)
    if cfg.scheduler == "exponential":
        gamma = cfg.scheduler_gamma
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: gamma ** epoch)
    return None


class Stepper:
    """zero_grad -> finite check -> backward (scaled for fp16) -> optional clipping -> step.

    Objectives call this instead of `loss.backward()` so that precision, clipping and the
    NaN/inf guard are the engine's business, identical for every model.
    """

    def __init__(self, grad_clip: float | None = None, scaler: torch.amp.GradScaler | None = None):
        self.grad_clip = grad_clip
        self.scaler = scaler
        self.step_index = 0

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, terms: dict[str, torch.Tensor]) -> None:
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        if not torch.isfinite(values).all():  # one device sync for all terms
            name, value = next((k, v) for k, v in terms.items() if not torch.isfinite(v).all())
            raise NonFiniteLoss(f"loss term {name!r} is {value.item()} at step {self.step_index}")
        optimizer.zero_grad(set_to_none=True)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(optimizer)
        else:
            loss.backward()
        if self.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
        elif self.scaler is None:  # with a scaler, inf/NaN gradients make it skip the step instead
            norm = torch.linalg.vector_norm(
                torch.stack([torch.linalg.vector_norm(p.grad) for p in params if p.grad is not None]))
        if self.scaler is None and not torch.isfinite(norm):
            raise NonFiniteLoss(f"gradient norm is {norm.item()} at step {self.step_index}")
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
