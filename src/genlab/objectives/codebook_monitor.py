"""The loop hook for models with a quantized posterior (a VQ-VAE): codebook usage and the dead-code warning.

The per-step `perplexity` and `codes_used` describe one batch; a codebook is healthy or not over the data. At
each epoch end this hook counts, over the whole validation set with the model in eval mode (no EMA step),
how many cells chose each code, adds `codes_used` (codes chosen at least once) and `code_perplexity`
(exp of the entropy of the usage, K when all K codes are used alike) to the validation row, shows
`codes N/K` in the progress line, and warns once when DEAD_PATIENCE epoch ends in a row found fewer than
DEAD_FRACTION of the codes in use: "codebook collapse", the VQ-VAE's counterpart of posterior collapse
(objectives/latent_monitor.py), after which most of the model's capacity is unused. Rank 0 measures; every
process gets the numbers, so all agree on the warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from genlab import distributed
from genlab.engine.hook import Hook
from genlab.models.latent import code_perplexity

if TYPE_CHECKING:
    from collections.abc import Iterable

    from torch import nn

    from genlab.engine.loop import Loop

WARNING_KIND = "codebook_collapse"
DEAD_FRACTION = 0.10
DEAD_PATIENCE = 2


@dataclass
class CodeUsage:
    counts: list[int]  # cells of the validation set's code grids that chose each code
    n_images: int

    @property
    def num_codes(self) -> int:
        return len(self.counts)

    @property
    def used(self) -> int:
        return sum(1 for c in self.counts if c > 0)

    @property
    def perplexity(self) -> float:
        return float(code_perplexity(torch.tensor(self.counts, dtype=torch.float64)))

    def history_terms(self) -> dict[str, float]:
        return {"codes_used": float(self.used), "code_perplexity": self.perplexity}


@torch.no_grad()
def measure(model: nn.Module, images: Iterable[torch.Tensor]) -> CodeUsage:
    """How often each code is chosen over these images (the model's mode is the caller's)."""
    counts = torch.zeros(model.num_codes, dtype=torch.long)
    n = 0
    for x in images:
        indices = model.encode(x).indices
        counts += torch.bincount(indices.flatten().cpu(), minlength=model.num_codes)
        n += x.shape[0]
    return CodeUsage([int(c) for c in counts], n)


def dead_code_warning(usage: CodeUsage, settings: dict[str, Any], epoch: int, streak: int = 1) -> str | None:
    """A message when fewer than DEAD_FRACTION of the codes were chosen over the validation set, with the
    settings to try (`settings`: the model's arguments, defaults filled in); `streak` is the number of epoch
    ends in a row (this one included) with that finding."""
    if usage.used >= DEAD_FRACTION * usage.num_codes:
        return None
    when = f"after epoch {epoch + 1}" + (f" ({streak} epoch ends in a row)" if streak > 1 else "")
    remedies = []
    if "dead_code_threshold" in settings:
        threshold = settings["dead_code_threshold"]
        remedies.append(f"raise model.dead_code_threshold (now {threshold:g}) so that rarely chosen codes are "
                        f"restarted from encoder outputs sooner" if threshold else
                        "turn dead-code restarts on with model.dead_code_threshold: 1 (now 0)")
    size = f" (model.num_codes, now {settings['num_codes']})" if "num_codes" in settings else ""
    remedies += [f"a smaller codebook{size}", "a lower optim.lr"]
    return (f"codebook collapse {when}: only {usage.used} of {usage.num_codes} codes were chosen over the "
            f"{usage.n_images} validation images (fewer than {DEAD_FRACTION:.0%}; code perplexity "
            f"{usage.perplexity:.3g}), so most of the codebook is dead and the code grid carries little. Try "
            f"{', or '.join(remedies)}.")


class CodebookMonitor(Hook):
    name = "codebook_usage"

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings = dict(settings or {})  # the model's arguments, for the warning's remedies
        self.warning: str | None = None  # given once, then kept: the summary and report show it
        self.flags: list[bool] = []  # per epoch: did its end find most codes dead
        self.used: str | None = None  # "used/K" for the progress line

    def on_step(self, loop: Loop, record) -> None:
        if self.used:
            loop.status["codes"] = self.used
        loop.status["codebook_warning"] = "see log" if self.warning else ""

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        if scope != "epoch":
            return
        model = loop.objective.model
        model.eval()  # no EMA step, no restarts: the codebook as it stands
        images = (batch.images for batch in loop.val_whole.batches())
        usage = distributed.broadcast_object(measure(model, images) if distributed.is_main() else None)
        model.train()
        epoch = loop.progress.epoch
        self.record(loop, usage, epoch)
        values.update(usage.history_terms())

    def record(self, loop: Loop | None, usage: CodeUsage, epoch: int) -> str | None:
        """Flag this epoch end, and warn (once) when DEAD_PATIENCE epoch ends in a row found most codes dead."""
        self.used = f"{usage.used}/{usage.num_codes}"
        if loop is not None:
            loop.status["codes"] = self.used
        # One flag per epoch: the end of an epoch reopened on resume (train.max_steps) replaces its flag.
        flags = self.flags[:epoch]
        flags += [False] * (epoch - len(flags))
        streak = next((i for i, flag in enumerate(reversed(flags)) if not flag), len(flags)) + 1
        found = dead_code_warning(usage, self.settings, epoch, streak)
        self.flags = [*flags, found is not None]
        if found and self.warning is None and streak >= DEAD_PATIENCE:
            self.warning = found
            if loop is not None:
                loop.warn(WARNING_KIND, found)
        return self.warning

    def state_dict(self) -> dict[str, Any]:
        return {"warning": self.warning, "flags": list(self.flags), "used": self.used}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warning, self.used = state.get("warning"), state.get("used")
        self.flags = list(state.get("flags", []))
