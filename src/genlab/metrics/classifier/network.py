"""The domain classifier's network and training recipe; the recipe and its version are part of the cache key."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import nn

from genlab.errors import GenlabError

# Bump when the architecture, the preprocessing or the training loop changes in a way that changes weights:
# it is part of the cache key, so old files are then simply not found (and retrained) instead of misused.
RECIPE_VERSION = 1

# Fixed, not fitted to the data: the same uint8 image always gives the same input, whatever the data set.
PREPROCESSING = "uint8 / 255 to [0, 1], then (x - 0.5) / 0.5 per channel (fixed, not fitted); no resizing"

@dataclass(frozen=True)
class Recipe:
    """How the classifier is trained; every field is part of the cache key."""

    epochs: int = 3
    # Small sets (digits: 10 batches per epoch) are repeated until at least this many optimiser steps,
    # or the one-cycle schedule ends before the network has converged.
    min_steps: int = 300
    batch_size: int = 128
    lr: float = 1e-2  # the one-cycle peak; BatchNorm keeps it stable
    weight_decay: float = 5e-4
    # Random translation by up to this many pixels: the only augmentation, kept light so the features stay
    # sensitive to how generated images are placed.
    shift: int = 1
    width: int = 16  # channels 16-32-64: ~100k weights, a few tens of ms per batch of 128 on one CPU core
    feature_dim: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        non_negative = ("seed", "shift", "weight_decay")
        bad = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
               if not (getattr(self, f.name) >= 0 if f.name in non_negative else getattr(self, f.name) > 0)]
        if bad:
            raise GenlabError(f"classifier recipe values must be positive ({', '.join(non_negative)}: >= 0); "
                              f"got {', '.join(bad)}.")


def make_recipe(**overrides: Any) -> Recipe:
    names = {f.name for f in fields(Recipe)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise GenlabError(f"unknown classifier recipe option(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(sorted(names))}.")
    return Recipe(**overrides)


class SmallCNN(nn.Module):
    """Three conv blocks (the last two at 1/2 and 1/4 resolution), adaptive pooling so any size >= 8
    works, then a `feature_dim` layer whose activations are the Fréchet features, then a linear head."""

    def __init__(self, channels: int, num_classes: int, width: int = 16, feature_dim: int = 128):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        w = width
        self.body = nn.Sequential(*block(channels, w), nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2),
                                  *block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(4 * w * 9, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
