"""best.pt: the checkpoint with the best validation value of train.best_metric so far."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from genlab.engine.hook import Hook

if TYPE_CHECKING:
    from genlab.engine.loop import Loop


class BestCheckpoint(Hook):
    """Runs on every process (saving is collective under torchrun); the values it ranks are global."""

    name = "best"

    def __init__(self, metric: str, mode: str):
        self.metric, self.mode = metric, mode
        self.value: float | None = None
        self.epoch = self.step = -1

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        value = values[self.metric]
        better = self.value is None or (value < self.value if self.mode == "min" else value > self.value)
        if math.isfinite(value) and better:
            self.value, self.epoch, self.step = value, loop.progress.epoch, loop.progress.step
            loop.save("best")

    def record(self) -> dict[str, Any] | None:
        return None if self.value is None else {"value": self.value, "epoch": self.epoch, "step": self.step}

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value, "epoch": self.epoch, "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = state.get("value")
        self.epoch, self.step = int(state.get("epoch", -1)), int(state.get("step", -1))
