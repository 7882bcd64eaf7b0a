"""Live view of a long run in TensorBoard: every history row as scalars, fixed-noise samples per epoch.

Optional (`train.tensorboard: true`, `pip install "genlab[tensorboard]"`): history.csv and the figures
stay the record of a run; TensorBoard only lets a user watch one, or several side by side, while
they train. Event files go to RUN_DIR/tensorboard, so `tensorboard --logdir runs` shows every run.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from genlab.data import Normalizer
from genlab.errors import GenlabError

SUBDIR = "tensorboard"


def require_tensorboard() -> None:
    """Checked before a run starts, so a missing extra never costs a training run."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise GenlabError('train.tensorboard is true but the tensorboard package is not installed: install it '
                          'with pip install "genlab[tensorboard]" (or pip install tensorboard), or set '
                          'train.tensorboard: false.') from None


class TensorBoardLog:
    def __init__(self, run_path: Path, resumed_at: int | None = None):
        """resumed_at: the first step after the checkpoint; events logged from it on before the interruption
        are purged, as history.csv drops its rows past the checkpoint, so the curves show each step once."""
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = run_path / SUBDIR
        self.writer = SummaryWriter(str(self.logdir), purge_step=resumed_at)

    def scalars(self, scope: str, split: str, epoch: int, step: int, images: int, seconds: float,
                terms: dict[str, float]) -> None:
        """Same signature as History.write, so it can listen to it. Tags group a term's curves:
        `loss/train` (per logged step), `loss/train_epoch`, `loss/val_epoch`, `loss/val_step`."""
        suffix = "" if (scope, split) == ("step", "train") else f"_{scope}"
        for name, value in terms.items():
            self.writer.add_scalar(f"{name}/{split}{suffix}", value, step)
        self.writer.flush()

    @torch.no_grad()
    def samples(self, model: nn.Module, normalizer: Normalizer, step: int, seed: int, num_classes: int = 0) -> None:
        from torchvision.utils import make_grid

        from genlab.viz.figures import fixed_samples

        was_training = model.training
        samples, per_row = fixed_samples(model, normalizer, 32, seed, num_classes)
        self.writer.add_image("samples (fixed noise)", make_grid(samples.float().cpu(), nrow=per_row), step)
        self.writer.flush()
        model.train(was_training)

    def close(self) -> None:
        self.writer.close()
