"""The one protocol of everything the training loop does besides stepping the objective.

A hook is called at the loop's few moments (after each step, after each evaluation, after each finished
epoch, when training ends) and may ask the loop to stop. Its state, if it has any, rides in every
checkpoint under its `name`, so a resumed run continues each hook exactly where it was. Hooks run in the
order the loop lists them: the non-finite policy first, then the objective's own hooks (which may add
values to an evaluation, such as a VAE's active units), then history, best checkpoint and progress, so
that what is written and ranked includes what earlier hooks added.

Subclass `Hook` (a Protocol with do-nothing defaults) and write only the methods a hook needs; an object
that implements every method itself works too. The loop refuses anything else, and two hooks of one name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from genlab.engine.loop import Loop
    from genlab.errors import NonFiniteLoss


@dataclass(frozen=True)
class StepRecord:
    """One training step as the hooks see it. `values` are the loss terms as means over the global
    batch; None when the step was not taken because a term or gradient was not finite (`error` says which)."""

    step: int
    epoch: int
    images: int  # images in this step's global batch
    seconds: float  # wall time of the step, data loading included
    values: dict[str, float] | None
    error: NonFiniteLoss | None = None


@runtime_checkable
class Hook(Protocol):
    name: str

    def on_step(self, loop: Loop, record: StepRecord) -> None:
        """After every step (taken or skipped), before any checkpoint of that step is written."""

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        """After a validation pass: scope "epoch" at each epoch end, "eval" every train.eval_every_steps.
        `values` may be added to; later hooks see the additions."""

    def on_epoch_end(self, loop: Loop) -> None:
        """After a finished epoch's evaluation, with `loop.progress.epoch` already counting it."""

    def stop_reason(self, loop: Loop) -> str | None:
        """Why training should stop now (checked after every step), or None."""
        return None

    def close(self, loop: Loop) -> None:
        """Training ended, normally or not: release files and displays."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what state_dict returned; an empty dict means the checkpoint had nothing for this hook."""
