"""Objective registry: every `ObjectiveEntry` declared by a module of this package, found by its presence.

An objective kind is one module (its config section, its objective, its ENTRY); genlab.config joins the
sections into the union chosen by `objective.kind`, and `build_objective` builds the kind a config names
for a model whose registry entry says it can be trained that way.
"""

from __future__ import annotations

import sys

from torch import nn

from genlab.errors import GenlabError
from genlab.objectives.contract import BuildContext, Objective, ObjectiveEntry, Plan
from genlab.objectives.optim import Stepper, build_optimizer
from genlab.registries import collect

OBJECTIVES: dict[str, ObjectiveEntry] = collect(sys.modules[__name__], "ENTRY", lambda e: e.kind)

__all__ = ["OBJECTIVES", "BuildContext", "Objective", "ObjectiveEntry", "Plan", "Stepper", "build_objective",
           "build_optimizer", "default_best_metric"]


def default_best_metric(kind: str) -> str:
    return OBJECTIVES[kind].default_best_metric


def cpu_bf16(objective) -> bool:
    """Whether `train.precision: auto` may train this objective section in bf16 on a CPU with native bf16."""
    checked = OBJECTIVES[objective.kind].cpu_bf16
    return bool(checked(objective) if callable(checked) else checked)


def input_noise(objective) -> tuple[float, bool]:
    """(std, clip) of the training input noise an objective section states (0 for all but denoising)."""
    return OBJECTIVES[objective.kind].input_noise(objective)


def build_objective(cfg, model: nn.Module, normalizer, caps, plan: Plan) -> Objective:
    """The objective `cfg.objective.kind` names, refused for a model whose entry does not train with it."""
    kind = cfg.objective.kind
    if kind not in caps.entry.trains_with:
        kinds = " or ".join(f"objective.kind: {k}" for k in caps.entry.trains_with)
        raise GenlabError(f"model {cfg.model.name!r} ({caps.family}) is not trained by objective.kind {kind!r}; "
                          f"set {kinds}.")
    return OBJECTIVES[kind].build(BuildContext(model, cfg, normalizer, caps, plan))
