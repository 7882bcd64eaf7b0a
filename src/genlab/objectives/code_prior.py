"""The loop hook that fits a model's ex-post prior (`genlab.models.priors`) to the training codes.

It runs at every epoch end, after the validation pass and before the best-checkpoint hook, so every
checkpoint (best and last) carries a mixture fitted to the encoder it holds, and the epoch's sample grid
and the end-of-training sample scores draw from it. The codes are the posterior means of the training
images as loaded (no flips), batch norm in eval mode, at most MAX_CODES of them (a seeded choice), which
bounds the cost on a large set: one encoder pass and an EM fit (bench/recommended_cost.py resvae: the
recommended residual VAE's whole epoch end, this included, costs 8.2 ms per training image against a step's
23 ms). Rank 0 fits; every process then holds rank 0's mixture.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from genlab import distributed
from genlab.data.loader import BatchLoader
from genlab.device import autocast
from genlab.engine.hook import Hook
from genlab.models.priors import FittablePrior

if TYPE_CHECKING:
    from torch import nn

    from genlab.engine.loop import Loop

MAX_CODES = 20_000
log = logging.getLogger("genlab.engine")


def fittable_prior(model: nn.Module) -> FittablePrior | None:
    prior = getattr(model, "prior", None)
    return prior if isinstance(prior, FittablePrior) else None


@torch.no_grad()
def training_codes(model: nn.Module, loader: BatchLoader, precision: str = "fp32") -> torch.Tensor:
    """Posterior means of the loader's images, in its order, in float32 on the CPU; `precision` is the run's
    (the validation pass's too: bf16 halves this pass's cost where the run trains in bf16)."""
    with autocast(loader.device, precision):
        return torch.cat([model.encode(batch.images).mean.float().cpu() for batch in loader.batches()])


class CodePriorFit(Hook):
    name = "code_prior"

    def __init__(self, seed: int):
        self.seed = seed
        self._loader: BatchLoader | None = None

    def loader(self, loop: Loop) -> BatchLoader:
        if self._loader is None:
            source = loop.train_loader
            images = source.images
            if len(images) > MAX_CODES:
                keep = np.sort(np.random.default_rng(self.seed).choice(len(images), MAX_CODES, replace=False))
                images = images[keep]
            self._loader = BatchLoader(images, None, batch_size=source.batch_size, shuffle=False, seed=self.seed,
                                       normalizer=source.normalizer, device=source.device,
                                       channels_last=source.memory_format == torch.channels_last)
        return self._loader

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        if scope != "epoch":
            return
        model = loop.objective.model
        prior = fittable_prior(model)
        if prior is None:
            return
        if distributed.is_main():
            start = time.perf_counter()
            model.eval()
            codes = training_codes(model, self.loader(loop), loop.precision)
            prior.fit(codes, self.seed + loop.progress.epoch)
            model.train()
            log.debug("prior fitted to %d training codes in %.1f s", len(codes), time.perf_counter() - start)
        distributed.broadcast_buffers(model)
