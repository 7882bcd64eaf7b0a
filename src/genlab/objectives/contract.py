"""What an objective is to the rest of genlab: the `Objective` protocol and the registry's `ObjectiveEntry`.

An objective wraps a model with its loss and its update order; the loop calls only what `Objective`
declares. An objective kind is one module that defines its config section (a pydantic model with
`kind: Literal["..."]`), its objective class and `ENTRY = ObjectiveEntry(...)`; `genlab.objectives` finds
it, and `genlab.config` puts its section in the union chosen by `objective.kind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

if TYPE_CHECKING:
    from genlab.data import Batch, BatchLoader, Normalizer
    from genlab.engine.hook import Hook
    from genlab.models.registry import Capabilities
    from genlab.objectives.optim import Stepper
    from genlab.sections import OptimConfig, Section


@dataclass(frozen=True)
class Plan:
    """How long a run trains, known once the data is loaded: what ramps given in epochs become in steps.
    total_steps honours train.max_steps; epochs * steps_per_epoch is the length the config plans."""

    steps_per_epoch: int
    total_steps: int
    epochs: int = 1
    train_images: int = 0  # the training set's size (0: unknown); estimators of q(z) over the data set need it

    @property
    def planned_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def steps(self, epochs: float) -> int:
        return max(1, round(epochs * self.steps_per_epoch))


class Objective(Protocol):
    """The loop's whole view of an objective. Explicit subclasses inherit the defaults below."""

    model: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    # Names of what `scores` returns, known before any is computed (the best-metric check needs them),
    # and the validation images those scores need at least.
    score_names: tuple[str, ...] = ()
    min_val_images: int = 1

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]:
        """Compute, back-propagate and step (through `stepper`); return the detached loss terms."""
        ...

    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Loss terms of one validation batch, without gradients; averaged over the validation set."""
        ...

    def scores(self, loader: BatchLoader, generator: torch.Generator) -> dict[str, float]:
        """Whole-set scores added to each evaluation (e.g. a sample distance); none by default."""
        return {}

    def hooks(self) -> list[Hook]:
        """Loop hooks this objective needs (monitors); none by default."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """Trained state the objective owns beside the model and its optimisers (FactorVAE's discriminator),
        saved in every checkpoint; none by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned, from a checkpoint."""


@dataclass(frozen=True)
class BuildContext:
    """What an objective is built from: the model, the run's config, and facts known once data is loaded."""

    model: nn.Module
    cfg: Any  # genlab.config.RunConfig (not imported here: config imports this package)
    normalizer: Normalizer
    caps: Capabilities
    plan: Plan


def no_checks(*args: Any) -> list[str]:
    return []


def main_learning_rate(optim: OptimConfig) -> dict[str, float]:
    return {"optim.lr": optim.lr}


def no_input_noise(section: Any) -> tuple[float, bool]:
    return 0.0, False


def no_units(section: Any) -> dict[str, str]:
    return {}


def no_note(section: Any) -> str | None:
    return None


@dataclass(frozen=True)
class ObjectiveEntry:
    """One objective kind.

    checks(cfg): warnings about settings that do not fit together, before any data is read (errors
    raise GenlabError). plan_checks(cfg, plan): the same once the run's length in steps is known.
    learning_rates(optim): the learning rates this kind uses, by config key (for the range check).
    input_noise(section): (std, clip) of the noise the model's input gets in training, so that figures and
    reconstruction scores feed a denoising model what it was trained on.
    resumable: keys of its section that a resumed run may change (they alter what happens next, such as
    whether a warning stops the run, never what was computed up to the checkpoint).
    units(section): the unit of each logged loss term under these settings (a summed squared error and a
    log-likelihood in nats differ by orders of magnitude, and a reader of a curve or a table cannot tell
    which without it). train_note(section): how the training terms differ from the validation ones, when
    they do (a KL warm-up weight, augmentation), so a training loss that rises is not read as a fault.
    cpu_bf16: whether `train.precision: auto` may pick bf16 autocast on a CPU with native bf16 for this kind,
    or a function of its section saying it for these settings. bf16 is 1.1-2× the fp32 step there, but it
    changed what some families learn, so a kind says yes only for the settings whose recommended configs
    scored within the fp32 runs' spread in bf16 (README, "Devices").
    """

    kind: str
    config: type[Section]
    build: Callable[[BuildContext], Objective]
    default_best_metric: str
    summary: str
    checks: Callable[[Any], list[str]] = no_checks
    plan_checks: Callable[[Any, Plan], list[str]] = no_checks
    learning_rates: Callable[[OptimConfig], dict[str, float]] = main_learning_rate
    input_noise: Callable[[Any], tuple[float, bool]] = no_input_noise
    resumable: frozenset[str] = frozenset()
    units: Callable[[Any], dict[str, str]] = no_units
    train_note: Callable[[Any], str | None] = no_note
    cpu_bf16: bool | Callable[[Any], bool] = False
