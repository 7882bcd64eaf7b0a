"""What a metric is: `Metric`, declared by the module that computes it, and `Score`, what it produces.

A metric module ends with `METRIC = Metric(...)`; genlab.metrics.registry finds it, and `genlab eval`, its
help text, the end-of-training scores, the report, `compare` and `results` are driven from there. A metric
says when it applies (and why not, when it does not), whether it is cheap enough to run at the end of
every training run, and returns its numbers and the protocol that produced them as two separate dicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genlab.metrics.context import Context
    from genlab.models import Capabilities


@dataclass
class Score:
    """values: the numbers (floats and ints, or a dict of numbers per class); protocol: how they were made."""

    values: dict[str, Any]
    protocol: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, Any]:
        return {**self.values, **self.protocol}


DEFAULT_TOLERANCE = 1e-5  # deterministic arithmetic: only summation order differs between machines


def always(ctx: Context) -> str | None:
    return None


@dataclass(frozen=True)
class Metric:
    """name: what `genlab eval --metrics` calls it. applies(ctx): None when it fits the run, else why not.
    compute(ctx): {metrics.json entry name: Score}. at_train_end: run at the end of every training run
    (then it must be cheap: seconds), or a predicate on the model's capabilities saying for which runs.
    higher_is_better: per value name, where a direction is meaningful. units: per value name that has one
    (dB, nats per image), for the report's rows; a value without one is a ratio, a share or a distance in
    its own features. tolerance: how far a recomputation
    from the same checkpoint and settings may move each value (relative, of max(1, |value|)) before
    `genlab eval --verify` fails it, one number or one per value name; deterministic computations differ
    only by floating-point summation order across machines and thread counts, shares of images by one
    image crossing a threshold, metrics that train something on the way by more. by_default: part of
    `genlab eval` without --metrics; a metric whose cost grows with a setting the user should choose (the
    likelihood's k decodes per image) runs only when named."""

    name: str
    summary: str
    compute: Callable[[Context], dict[str, Score]]
    applies: Callable[[Context], str | None] = always
    at_train_end: bool | Callable[[Capabilities], bool] = False
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    tolerance: float | dict[str, float] = 1e-5
    by_default: bool = True

    def tolerance_of(self, value: str) -> float:
        """The tolerance of one value: per value name when the metric states them, else the metric's own."""
        if isinstance(self.tolerance, dict):
            return self.tolerance.get(value, DEFAULT_TOLERANCE)
        return self.tolerance

    def runs_at_train_end(self, caps: Capabilities) -> bool:
        return self.at_train_end(caps) if callable(self.at_train_end) else self.at_train_end
