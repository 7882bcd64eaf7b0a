"""The losses a GAN's two players can play, as functions of D's outputs, and the gradient penalty.

- bce: D's cross-entropy against its targets (one-sided label smoothing when real_target < 1) and G's
  non-saturating -log D(G(z)) (Goodfellow et al. 2014, sec. 3);
- hinge: D pays max(0, 1 - D(x)) + max(0, 1 + D(G(z))), G pays -D(G(z)) (Lim & Ye 2017; the loss of
  SNGAN with a projection D, Miyato et al. 2018);
- wasserstein: the critic's estimate D(G(z)) - D(x) of minus the Wasserstein-1 distance, G pays
  -D(G(z)) (Arjovsky et al. 2017); it means something only for a 1-Lipschitz critic, which the gradient
  penalty (Gulrajani et al. 2017) or spectral normalisation provides.
"""

from __future__ import annotations

import contextlib
import math
from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["bce", "hinge", "wasserstein"]
LOSSES: tuple[str, ...] = ("bce", "hinge", "wasserstein")


def bce_logits(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


def d_terms(loss: str, out_real: torch.Tensor, out_fake: torch.Tensor, real_target: float = 1.0,
            fake_target: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """D's loss on real and on generated images; D's loss is their sum."""
    real, fake = out_real.float(), out_fake.float()
    if loss == "bce":
        return bce_logits(real, real_target), bce_logits(fake, fake_target)
    if loss == "hinge":
        return F.relu(1.0 - real).mean(), F.relu(1.0 + fake).mean()
    return -real.mean(), fake.mean()


def g_loss(loss: str, out_fake: torch.Tensor) -> torch.Tensor:
    return bce_logits(out_fake, 1.0) if loss == "bce" else -out_fake.float().mean()


def d_loss_floor(loss: str, real_target: float, fake_target: float) -> float | None:
    """The least loss D can reach, None when it has none (a critic's estimate is unbounded)."""
    if loss == "bce":
        return binary_entropy(real_target) + binary_entropy(fake_target)
    return 0.0 if loss == "hinge" else None


def binary_entropy(p: float) -> float:
    return 0.0 if p in (0.0, 1.0) else -(p * math.log(p) + (1 - p) * math.log(1 - p))


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """E[(||grad_x D(x_hat)||_2 - 1)^2] at x_hat uniformly between paired real and generated images
    (Gulrajani et al. 2017, Algorithm 1, lines 6-8). `critic` maps images to one output per image; the
    penalty keeps its graph, so D's optimiser steps on it (a second-order gradient through D)."""
    eps = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=torch.float32)
    x_hat = (eps * real.detach().float() + (1 - eps) * fake.detach().float()).requires_grad_(True)
    # In fp32 whatever the run's autocast: an fp16 input gradient underflows without a scaler of its own, and
    # the penalty is a squared difference of norms near 1, where bf16's 8 bits of mantissa are too coarse.
    # Eager even when train.compile compiled D: compiled graphs have no double backward.
    with torch.autocast(device_type=real.device.type, enabled=False), _eager():
        out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.float().sum(), x_hat, create_graph=True)
    return ((grad.float().flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def _eager():
    set_stance = getattr(torch.compiler, "set_stance", None)  # PyTorch >= 2.6
    return set_stance("force_eager") if set_stance else contextlib.nullcontext()
