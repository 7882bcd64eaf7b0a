"""The progress bar: step, epoch, each loss term, images/s, ETA, and what hooks put in `loop.status`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genlab import distributed
from genlab.engine.hook import Hook, StepRecord

if TYPE_CHECKING:
    from genlab.engine.loop import Loop


class ProgressBar(Hook):
    name = "progress"

    def __init__(self, enabled: bool, epochs: int):
        self.enabled = enabled and distributed.is_main()
        self.epochs = epochs
        self.bar = None

    def _open(self, loop: Loop):
        from tqdm.auto import tqdm  # notebook-aware

        self.bar = tqdm(total=loop.total_steps, initial=loop.progress.step - 1,
                        unit="step", dynamic_ncols=True, mininterval=0.5, leave=True)
        return self.bar

    def on_step(self, loop: Loop, record: StepRecord) -> None:
        if not self.enabled:
            return
        bar = self.bar or self._open(loop)
        bar.update(1)
        bar.set_description(f"epoch {record.epoch + 1}/{loop.cfg.train.epochs}", refresh=False)
        if record.values is None:
            return
        postfix = {**{k: f"{v:.4g}" for k, v in record.values.items()},
                   "img/s": f"{record.images / max(record.seconds, 1e-9):.0f}",
                   **{k: v for k, v in loop.status.items() if v and not k.endswith("_warning")}}
        if any(v for k, v in loop.status.items() if k.endswith("_warning")):  # a hook's warning stands
            postfix["warning"] = "see log"
        bar.set_postfix(postfix, refresh=False)

    def close(self, loop: Loop) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
