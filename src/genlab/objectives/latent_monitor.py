"""The VAE objective's loop hook: latent usage at every epoch end and the posterior-collapse warning.

At each epoch end it measures, over the whole validation set with batch norm in eval mode, the KL of each
latent dimension and the active units (genlab.metrics.latent_usage), adds `active_units` and
`kl_dims_max` to the validation row, shows `active N/D` in the progress line, writes latent_stats.json,
and warns once when COLLAPSE_PATIENCE epoch ends in a row found most units inactive. Rank 0 measures;
every process gets the numbers, so all agree on the warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from genlab import distributed
from genlab.engine.hook import Hook
from genlab.metrics.latent_usage import COLLAPSE_PATIENCE, collapse_warning, measure, write_stats

if TYPE_CHECKING:
    from genlab.engine.loop import Loop

WARNING_KIND = "posterior_collapse"


class LatentUsageMonitor(Hook):
    name = "latent_usage"

    def __init__(self, cfg: Any, ramp_steps: int):
        self.cfg = cfg
        self.ramp_steps = ramp_steps
        self.warning: str | None = None  # given once, then kept: the summary and report show it
        self.flags: list[bool] = []  # per epoch: did its end find most units inactive
        self.active: str | None = None  # "active/latent_dim" for the progress line

    def on_step(self, loop: Loop, record) -> None:
        if self.active:  # also after a resume, before the next epoch end measures again
            loop.status["active"] = self.active
        loop.status["latent_usage_warning"] = "see log" if self.warning else ""  # once given, kept

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        if scope != "epoch":
            return
        model = loop.objective.model
        model.eval()  # batch norm from its running statistics, as at test time
        images = (batch.images for batch in loop.val_whole.batches())
        usage = distributed.broadcast_object(measure(model, images) if distributed.is_main() else None)
        model.train()
        if usage is None:  # the posterior has no variance after all: nothing to split
            return
        p = loop.progress
        self.active = f"{usage.active_units}/{usage.latent_dim}"
        loop.status["active"] = self.active
        # One flag per epoch: the end of an epoch reopened on resume (train.max_steps) replaces its flag.
        flags = self.flags[:p.epoch]
        flags += [False] * (p.epoch - len(flags))
        streak = next((i for i, flag in enumerate(reversed(flags)) if not flag), len(flags)) + 1
        found = collapse_warning(usage, self.cfg, p.epoch, p.step, streak, ramp_steps=self.ramp_steps)
        self.flags = [*flags, found is not None]
        if found and self.warning is None and streak >= COLLAPSE_PATIENCE:
            self.warning = found
            loop.warn(WARNING_KIND, found)
        if distributed.is_main():
            write_stats(loop.run.latent_stats, usage, epoch=p.epoch, step=p.step, warning=self.warning)
        values.update(usage.history_terms())

    def state_dict(self) -> dict[str, Any]:
        return {"warning": self.warning, "flags": list(self.flags), "active": self.active}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.warning, self.active = state.get("warning"), state.get("active")
        self.flags = list(state.get("flags", []))
