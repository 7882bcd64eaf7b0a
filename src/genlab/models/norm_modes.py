"""Running a network's BatchNorm layers on batch statistics without training it.

A GAN's discriminator trains on real-only and fake-only batches, each normalised by its own
statistics, while its running statistics average both kinds; in eval mode a batch of only real images
then meets statistics that describe neither, and D's output means something else than in training.
Scoring D the way it trained needs batch statistics, with nothing about the network changed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[None]:
    """BatchNorm layers of `module` normalise by each batch's own statistics, as in training; everything else
    (dropout) stays in its mode, and the running statistics and batch counters are restored afterwards."""
    norms = batch_norms(module)
    saved = [({k: v.clone() for k, v in m.state_dict().items()}, m.training) for m in norms]
    for m in norms:
        m.train()
    try:
        yield
    finally:
        for m, (state, training) in zip(norms, saved):
            m.load_state_dict(state)
            m.train(training)
