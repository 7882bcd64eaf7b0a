"""The engine's own hooks, and the order a loop runs them in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genlab.engine.hooks.best import BestCheckpoint
from genlab.engine.hooks.history import HistoryHook
from genlab.engine.hooks.nonfinite import NonFinitePolicy
from genlab.engine.hooks.progress import ProgressBar

if TYPE_CHECKING:
    from genlab.engine.hook import Hook
    from genlab.engine.loop import Loop

__all__ = ["BestCheckpoint", "HistoryHook", "NonFinitePolicy", "ProgressBar", "standard_hooks"]


def standard_hooks(loop: Loop, objective_hooks: list[Hook]) -> list[Hook]:
    """The non-finite policy first (it decides whether a bad step stops the run), then the objective's hooks
    (they may add to an evaluation), then what records and ranks: history, best checkpoint, progress."""
    cfg = loop.cfg
    return [NonFinitePolicy(cfg.train.on_nonfinite, cfg.train.max_skipped_batches), *objective_hooks,
            HistoryHook(loop.run.history, cfg.train.log_every_steps),
            BestCheckpoint(loop.best_metric, cfg.train.best_mode),
            ProgressBar(cfg.train.progress, cfg.train.epochs)]
