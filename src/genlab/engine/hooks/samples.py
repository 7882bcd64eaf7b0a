"""Fixed-noise samples after every finished epoch (figures/epochs/), so grids compare across epochs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genlab import distributed
from genlab.engine.hook import Hook

if TYPE_CHECKING:
    from genlab.data import Normalizer
    from genlab.engine.loop import Loop


class EpochSamples(Hook):
    name = "epoch_samples"

    def __init__(self, normalizer: Normalizer, seed: int, num_classes: int, class_names: list[str] | None):
        self.normalizer, self.seed = normalizer, seed
        self.num_classes, self.class_names = num_classes, class_names

    def on_epoch_end(self, loop: Loop) -> None:
        if not distributed.is_main():
            return
        from genlab.viz.figures import sample_figure  # plotting libraries load only when first needed

        epoch = loop.progress.epoch
        model = loop.objective.model
        sample_figure(model, self.normalizer, loop.run.figures / "epochs" / f"samples_{epoch:03d}.png", n=32,
                      seed=self.seed, num_classes=self.num_classes, class_names=self.class_names,
                      title=f"Epoch {epoch}: fixed-noise samples (seed {self.seed})")
        model.train()
