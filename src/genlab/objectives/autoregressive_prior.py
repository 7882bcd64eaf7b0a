"""An autoregressive prior over a frozen quantized encoder's code grids (van den Oord et al. 2017, sec. 3.1, 4.2):
maximum likelihood of each training image's code grid, -log p(k) = -sum_i log p(k_i | k_<i), under the model's
`prior_logits` (a gated PixelCNN, van den Oord et al. 2016).

The codes are recomputed for every batch by the frozen encoder (`code_indices`: eval mode, no gradient), which
costs one encoder pass per step, small beside the PixelCNN's forward and backward; it also keeps augmented
images (data.hflip) their own codes. Only the prior's parameters are optimised (those that require gradients:
the model freezes the rest).

Logged terms: `loss`, the cross-entropy in nats per code (with label smoothing in training when
objective.label_smoothing > 0; validation never smooths, so its loss is the held-out negative log-likelihood),
`bits_per_code` (loss / ln 2) and `bits_per_image` (bits per code times the h * w cells of a grid).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from genlab.data import Batch
from genlab.objectives.contract import BuildContext, Objective, ObjectiveEntry
from genlab.objectives.optim import Stepper, build_optimizer
from genlab.sections import OptimConfig, Section


class AutoregressivePriorConfig(Section):
    kind: Literal["autoregressive_prior"] = "autoregressive_prior"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="cross-entropy label smoothing in training "
                                   "(a regulariser for small data sets); validation loss never smooths")


class AutoregressivePrior(Objective):
    def __init__(self, model: torch.nn.Module, cfg: AutoregressivePriorConfig, optim: OptimConfig):
        self.model, self.cfg = model, cfg
        trained = [p for p in model.parameters() if p.requires_grad]
        self.optimizers = {"model": build_optimizer(trained, optim)}

    def _terms(self, x: torch.Tensor, smoothing: float) -> dict[str, torch.Tensor]:
        codes = self.model.code_indices(x)
        logits = self.model.prior_logits(codes).float()
        loss = F.cross_entropy(logits, codes, label_smoothing=smoothing)
        nll = loss if smoothing == 0 else F.cross_entropy(logits.detach(), codes)
        bits = nll.detach() / math.log(2)
        return {"loss": loss, "bits_per_code": bits, "bits_per_image": bits * codes[0].numel()}

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]:
        terms = self._terms(batch.images, self.cfg.label_smoothing)
        stepper.step(terms["loss"], self.optimizers["model"], terms)
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self._terms(batch.images, 0.0)


def build(ctx: BuildContext) -> AutoregressivePrior:
    return AutoregressivePrior(ctx.model, ctx.cfg.objective, ctx.cfg.optim)


def term_units(o: AutoregressivePriorConfig) -> dict[str, str]:
    return {"loss": "nats per code (cross-entropy of each cell's code given the cells before it)",
            "bits_per_code": "bits per code (−log2 p, no label smoothing)",
            "bits_per_image": "bits per image (a code grid's −log2 p)"}


def smoothing_note(o: AutoregressivePriorConfig) -> str | None:
    if not o.label_smoothing:
        return None
    return (f"training loss is the cross-entropy with label smoothing {o.label_smoothing:g}, which never reaches "
            "the negative log-likelihood; validation loss and both bits columns are the unsmoothed likelihood.")


ENTRY = ObjectiveEntry(
    kind="autoregressive_prior", config=AutoregressivePriorConfig, build=build, default_best_metric="loss",
    summary="maximum likelihood of a frozen encoder's code grids under an autoregressive prior (vqvae_prior)",
    units=term_units, train_note=smoothing_note,
)
