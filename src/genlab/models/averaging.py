"""An exponential moving average of a network's weights, kept beside the trained network.

GAN generators (Yazici et al. 2019) and diffusion networks (Ho et al. 2020, decay 0.9999) sample better from
the average than from the last step's weights; the average lives in the model's state dict, so checkpoints
and resumed runs carry it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


@torch.no_grad()
def update_average(average: nn.Module, live: nn.Module, updates: torch.Tensor, max_decay: float) -> None:
    """Move `average` towards `live` and count the update in `updates` (a 0-d long buffer).

    The decay ramps up as min(max_decay, (1 + t) / (10 + t)) over the first updates (as TensorFlow's
    ExponentialMovingAverage does with num_updates), so the average does not drag the random initialisation
    through a short run. Integer buffers (BatchNorm's batch counter) are copied.
    """
    t = int(updates)
    decay = min(max_decay, (1 + t) / (10 + t))
    source = dict(live.state_dict())
    avg, src = [], []
    for name, value in average.state_dict().items():
        if value.is_floating_point():
            avg.append(value)
            src.append(source[name])
        else:
            value.copy_(source[name])
    torch._foreach_lerp_(avg, src, 1.0 - decay)
    updates += 1


def check_decay(ema_decay: float) -> None:
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1): 0 turns the average off, 0.99-0.9999 are usual "
                         f"(got {ema_decay})")


def with_average(state_dict, live: str, average: str):
    """A state dict for a model that keeps an average: a checkpoint from before the average was kept gets one
    copied from its live network (`live.*` -> `average.*`), so it resumes with the average started there."""
    if any(k.startswith(average + ".") for k in state_dict):
        return state_dict
    state_dict = dict(state_dict)
    for k, v in list(state_dict.items()):
        if k.startswith(live + "."):
            state_dict[average + k[len(live):]] = v
    state_dict.setdefault("ema_updates", torch.zeros((), dtype=torch.long))
    return state_dict


def keep_average(owner: nn.Module, live: nn.Module, name: str, ema_decay: float) -> None:
    """Give `owner` the attribute `name`: a frozen copy of `live` to average into (None when ema_decay is 0),
    and the `ema_updates` counter the decay ramp reads."""
    check_decay(ema_decay)
    owner.ema_decay = ema_decay
    setattr(owner, name, copy.deepcopy(live).requires_grad_(False) if ema_decay else None)
    if ema_decay:
        owner.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))
