"""What a NaN or inf loss term or gradient does: stop the run (default) or skip that batch's update."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from genlab import distributed
from genlab.engine.hook import Hook, StepRecord
from genlab.errors import NonFiniteLoss

if TYPE_CHECKING:
    from genlab.engine.loop import Loop

log = logging.getLogger("genlab.engine")


class NonFinitePolicy(Hook):
    """train.on_nonfinite "stop" re-raises the step's error; "skip" lets the batch count as seen (the data
    order stays that of an uninterrupted run) but update nothing, up to train.max_skipped_batches."""

    name = "nonfinite"

    def __init__(self, policy: str, max_skipped: int):
        self.policy = policy
        self.max_skipped = max_skipped
        self.skipped = 0

    def on_step(self, loop: Loop, record: StepRecord) -> None:
        exc = record.error
        if exc is None:
            return
        if self.policy != "skip":
            raise exc
        self.skipped += 1
        # The forward pass may already have written NaN into batch-norm running statistics; skipping
        # the optimiser step cannot undo that, so such a model is not trained on.
        model = loop.objective.model
        bad = [n for n, t in model.named_buffers() if t.is_floating_point() and not t.isfinite().all()]
        if distributed.any_process(bool(bad)):
            where = f"the model's buffer {bad[0]!r}" if bad else "a model buffer on another process"
            raise NonFiniteLoss(f"{exc}; the batch was skipped but its forward pass left non-finite values in "
                                f"{where}, so the run cannot go on")
        if self.skipped > self.max_skipped:
            raise NonFiniteLoss(f"{exc}; {self.skipped} batches skipped, more than "
                                f"train.max_skipped_batches={self.max_skipped}")
        log.warning("%s: batch skipped (train.on_nonfinite=skip; %d skipped so far, at most %d)", exc,
                    self.skipped, self.max_skipped)

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": self.skipped}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.skipped = int(state.get("skipped", 0))
