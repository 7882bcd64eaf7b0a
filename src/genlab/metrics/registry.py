"""Metric registry: every `METRIC` declared by a module of genlab.metrics (or a sub-package), by name.

Imported by `genlab eval` and the end of training, not by the metric modules themselves, so a metric
module can be imported alone (the training objectives use some of their functions).
"""

from __future__ import annotations

import genlab.metrics as _package
from genlab.errors import GenlabError
from genlab.metrics.metric import Metric
from genlab.models import Capabilities
from genlab.registries import collect

METRICS: dict[str, Metric] = dict(sorted(collect(_package, "METRIC", lambda m: m.name,
                                                 skip=("registry", "metric")).items()))


def names() -> list[str]:
    return list(METRICS)


def get_metrics(requested: list[str]) -> list[Metric]:
    unknown = [m for m in requested if m not in METRICS]
    if unknown:
        raise GenlabError(f"unknown metric(s) {', '.join(map(repr, unknown))}; valid: {', '.join(METRICS)}.")
    return [METRICS[m] for m in requested]


def end_of_training(caps: Capabilities) -> list[str]:
    """The metrics a training run of this model ends with (those of them that apply; the rest are
    `genlab eval`'s)."""
    return [name for name, m in METRICS.items() if m.runs_at_train_end(caps)]
