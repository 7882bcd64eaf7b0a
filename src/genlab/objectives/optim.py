"""Optimisers from the config, and the one place where a loss becomes a parameter update."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch

from genlab import distributed
from genlab.errors import NonFiniteLoss
from genlab.sections import OptimConfig


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
    """zero_grad -> finite check -> backward (scaled for fp16) -> gradient averaging across processes ->
    optional clipping -> step.

    Objectives call this instead of `loss.backward()` so that precision, clipping, the NaN/inf guard and
    the synchronisation of several processes (genlab.distributed says why here and not DDP) are the
    engine's business, identical for every model. Under torchrun every decision to stop is taken by all
    processes together: the finite check counts any process's non-finite term, and the gradient norm is
    that of the averaged, hence identical, gradients.
    """

    def __init__(self, grad_clip: float | None = None, scaler: torch.amp.GradScaler | None = None):
        self.grad_clip = grad_clip
        self.scaler = scaler
        self.step_index = 0

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, terms: dict[str, torch.Tensor]) -> None:
        self._check_finite(terms)
        optimizer.zero_grad(set_to_none=True)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            distributed.average_gradients(params)  # scaled alike on every process, so averaged before unscaling
            self.scaler.unscale_(optimizer)
        else:
            loss.backward()
            distributed.average_gradients(params)
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

    def _check_finite(self, terms: dict[str, torch.Tensor]) -> None:
        values = torch.stack([v.detach().float().reshape(()) for v in terms.values()])
        bad = ~torch.isfinite(values)
        if distributed.world_size() > 1:  # any process's NaN stops (or skips) the step on all of them
            bad = distributed.all_reduce_sum(bad.float()) > 0
        if not bad.any():  # one device sync for all terms
            return
        name = list(terms)[int(bad.nonzero()[0])]
        value = terms[name].detach()
        if torch.isfinite(value).all():
            raise NonFiniteLoss(f"loss term {name!r} is not finite on another process at step {self.step_index}")
        raise NonFiniteLoss(f"loss term {name!r} is {value.item()} at step {self.step_index}")
