"""history.csv as a hook: a row per logged step, and per evaluation the epoch's training means and the
validation values (after the objective's hooks added theirs). Rank 0 writes; other processes do nothing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from genlab import distributed
from genlab.engine.hook import Hook, StepRecord
from genlab.history import History

if TYPE_CHECKING:
    from genlab.engine.loop import Loop


class HistoryHook(Hook):
    name = "history"

    def __init__(self, path: Path, log_every_steps: int):
        self.history = History(path) if distributed.is_main() else None
        self.every = log_every_steps

    def on_step(self, loop: Loop, record: StepRecord) -> None:
        if self.history is None or record.values is None or record.step % self.every:
            return
        p = loop.progress
        self.history.write("step", "train", p.epoch, p.step, p.images, p.seconds, record.values)

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        if self.history is None:
            return
        p = loop.progress
        if scope == "epoch":
            self.history.write("epoch", "train", p.epoch, p.step, p.images, p.seconds, p.epoch_means())
        self.history.write(scope, "val", p.epoch, p.step, p.images, p.seconds, values)

    def truncate_after(self, step: int, ended_step: int, reopened_epoch: int | None) -> None:
        """On resume: drop the rows past the checkpoint, so no step is lost or counted twice."""
        if self.history is not None:
            self.history.truncate_after(step, ended_step, reopened_epoch)

    def close(self, loop: Loop) -> None:
        if self.history is not None:
            self.history.close()
