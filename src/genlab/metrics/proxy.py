"""A cheap, offline sample-quality proxy for choosing GAN checkpoints during training.

FD-randconv: the Fréchet distance between held-out images and samples in the 64-dimensional
feature space of a small conv net with fixed random weights (seeded, never trained). Random conv
features respond to colour, contrast and texture statistics, so the score falls as samples stop
being noise or collapsing to a few modes; it does not measure perceptual quality the way FID does.
It is named for its extractor and never reported as FID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from genlab.data.loader import to_uint8
from genlab.metrics.context import distribution_tolerance
from genlab.metrics.frechet import frechet_distance, gaussian_stats
from genlab.metrics.metric import Metric, Score

if TYPE_CHECKING:
    from genlab.metrics.context import Context

NAME = "fd_randconv"


class RandomConvFeatures(nn.Module):
    def __init__(self, channels: int, seed: int = 0, dim: int = 64):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):  # layer construction must not move the training RNG
            self.net = self._layers(channels, dim)
        for p in self.net.parameters():
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / max(1, p[0].numel())) ** 0.5)
        self.requires_grad_(False)

    @staticmethod
    def _layers(channels: int, dim: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(channels, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(64, dim, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )

    @torch.no_grad()
    def forward(self, x_unit: torch.Tensor) -> torch.Tensor:
        """x in [0, 1]."""
        return self.net(x_unit * 2 - 1)


class RandConvExtractor:
    """The proxy's features behind the same interface as the Inception and classifier extractors."""

    def __init__(self, channels: int, seed: int = 0, device: torch.device | str = "cpu"):
        self.net = RandomConvFeatures(channels, seed).to(device)
        self.seed = seed
        self.device = torch.device(device)

    @property
    def name(self) -> str:
        return NAME

    def identity(self) -> dict[str, object]:
        return {"name": NAME, "weights": f"random, He-normal, seed {self.seed} (never trained)", "feature_dim": 64,
                "resize": "none (native resolution)"}

    @torch.no_grad()
    def features(self, images: np.ndarray) -> np.ndarray:
        out = [self.net(torch.from_numpy(np.ascontiguousarray(images[i:i + 256])).permute(0, 3, 1, 2)
                        .to(self.device).float() / 255.0).double().cpu().numpy() for i in range(0, len(images), 256)]
        return np.concatenate(out) if out else np.zeros((0, 64))


@torch.no_grad()
def fd_randconv(real_unit: torch.Tensor, fake_unit: torch.Tensor, seed: int = 0) -> float:
    """The training-time score: the same extractor and quantisation as `genlab eval`'s fd_randconv, without
    its minimum sample count (a checkpoint ranking on few validation images is still a ranking)."""
    ext = RandConvExtractor(real_unit.shape[1], seed, real_unit.device)
    fr, ff = ext.features(to_uint8(real_unit)), ext.features(to_uint8(fake_unit))
    return frechet_distance(*gaussian_stats(fr), *gaussian_stats(ff))


@torch.no_grad()
def proxy_score(model: nn.Module, normalizer, loader, generator: torch.Generator, limit: int) -> float:
    """fd_randconv between the first `limit` validation images (fewer if the set is smaller) and as many fresh
    samples of `model`, drawn with `generator`: the per-evaluation score of models without an encoder."""
    from genlab.errors import GenlabError

    n = min(limit, loader.num_images)
    if n < 2:
        raise GenlabError(f"{NAME} needs at least 2 validation images (a covariance); the validation set "
                          f"has {loader.num_images}. Raise data.val_fraction or data.val_limit.")
    real: list[torch.Tensor] = []
    for b in loader.batches():
        real.append(b.images[: n - sum(len(r) for r in real)])
        if sum(len(r) for r in real) >= n:
            break
    fake = torch.cat([model.sample(min(256, n - i), generator=generator) for i in range(0, n, 256)])
    return fd_randconv(normalizer.to_unit(torch.cat(real).float()), normalizer.to_unit(fake.float()))


def _compute(ctx: Context) -> dict[str, Score]:
    from genlab.metrics.context import distribution_scores

    extractor = RandConvExtractor(ctx.data.channels, seed=0, device=ctx.device)
    return {NAME: distribution_scores(ctx, extractor, fd_name=NAME)}


def _applies(ctx: Context) -> str | None:
    from genlab.metrics.context import needs_samples

    return needs_samples(ctx)


def _ranks_checkpoints(caps) -> bool:
    """At the end of training only for models it ranked the checkpoints of during training (those without an
    encoder, whose objective has no reconstruction loss to rank by); `genlab eval` computes it for any model."""
    return not caps.has_encoder


METRIC = Metric(name=NAME, summary="Fréchet distance in random-conv features (offline sample-quality proxy)",
                compute=_compute, applies=_applies, at_train_end=_ranks_checkpoints,
                higher_is_better={NAME: False, "kid_mean": False, "precision": True, "recall": True},
                tolerance=distribution_tolerance(NAME))
