"""TensorBoard as a live view: every history row as scalars, the fixed-noise samples after each epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genlab import distributed
from genlab.engine.hook import Hook, StepRecord

if TYPE_CHECKING:
    from pathlib import Path

    from genlab.data import Normalizer
    from genlab.engine.loop import Loop


class TensorBoardHook(Hook):
    """Rank 0 only. The event files open at the first step, so that a resumed run purges the events from
    the first step after its checkpoint on, as history.csv drops its rows past it: each step shows once."""

    name = "tensorboard"

    def __init__(self, run_path: Path, normalizer: Normalizer, seed: int, num_classes: int, log_every_steps: int,
                 resumed: bool = False, samples: bool = True):
        self.run_path, self.resumed = run_path, resumed
        self.draw_samples = samples  # False for a model that cannot sample (its entry's cannot_sample)
        self.log = None
        self.normalizer, self.seed, self.num_classes, self.every = normalizer, seed, num_classes, log_every_steps

    def _open(self, loop: Loop, in_step: bool = False):
        if self.log is None and distributed.is_main():
            from genlab.live import TensorBoardLog

            # the first step not in the checkpoint: on_step runs after the counter moved past it
            first = loop.progress.step + (0 if in_step else 1)
            self.log = TensorBoardLog(self.run_path, resumed_at=first if self.resumed else None)
        return self.log

    def on_step(self, loop: Loop, record: StepRecord) -> None:
        if self._open(loop, in_step=True) is None or record.values is None or record.step % self.every:
            return
        p = loop.progress
        self.log.scalars("step", "train", p.epoch, p.step, p.images, p.seconds, record.values)

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        if self._open(loop) is None:
            return
        p = loop.progress
        if scope == "epoch":
            self.log.scalars("epoch", "train", p.epoch, p.step, p.images, p.seconds, p.epoch_means())
        self.log.scalars(scope, "val", p.epoch, p.step, p.images, p.seconds, values)

    def on_epoch_end(self, loop: Loop) -> None:
        if self.draw_samples and self._open(loop) is not None:
            self.log.samples(loop.objective.model, self.normalizer, loop.progress.step, self.seed, self.num_classes)

    def close(self, loop: Loop) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None  # a later fit of the same loop opens the event files again
