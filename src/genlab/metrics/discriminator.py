"""How well the trained discriminator tells held-out real images from fresh samples (the anime-faces DCGAN
experiment's table).

Real images are the positive class; D's logit > 0 (sigmoid > 0.5) means "real". These are
classification scores of D, not the distribution precision/recall of Kynkäänniemi et al. 2019,
which describe the generator's samples; the keys say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from genlab.data import BatchLoader
from genlab.metrics.metric import Metric, Score
from genlab.models.gan import GAN

if TYPE_CHECKING:
    from genlab.metrics.context import Context

THRESHOLD = 0.5


@torch.no_grad()
def discriminator_classification(model: GAN, loader: BatchLoader, seed: int) -> dict[str, float | int | str]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

    model.eval()
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    real_p, fake_p, n = [], [], 0
    for batch in loader.batches():
        x, y = batch.images, batch.labels if model.conditional else None
        real_p.append(torch.sigmoid(model.discriminate(x, y).float()).cpu())
        fake = model.sample(x.shape[0], generator=gen, labels=y)
        fake_p.append(torch.sigmoid(model.discriminate(fake, y).float()).cpu())
        n += x.shape[0]
    probs = torch.cat(real_p + fake_p).numpy()
    truth = np.concatenate([np.ones(n, int), np.zeros(n, int)])
    pred = (probs > THRESHOLD).astype(int)
    tn, fp, fn, tp = confusion_matrix(truth, pred, labels=[0, 1]).ravel()
    return {
        "d_accuracy": float(accuracy_score(truth, pred)),
        "d_precision_real": float(precision_score(truth, pred, zero_division=0)),
        "d_recall_real": float(recall_score(truth, pred, zero_division=0)),
        "d_f1_real": float(f1_score(truth, pred, zero_division=0)),
        "n_real": int(n), "n_fake": int(n), "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        "threshold": THRESHOLD, "positive_class": "real",
        "protocol": "discriminator classification of held-out real images vs an equal number of fresh "
                    "samples (conditional models: sampled with the real images' labels; models with "
                    "ema_decay: from the weight-averaged generator, the one users sample); scikit-learn",
    }


SCORES = ("d_accuracy", "d_precision_real", "d_recall_real", "d_f1_real")


def _applies(ctx: Context) -> str | None:
    return None if ctx.caps.has_discriminator else "the model has no discriminator"


def _compute(ctx: Context) -> dict[str, Score]:
    loader = BatchLoader(ctx.data.val.images, ctx.data.val.labels, batch_size=ctx.s.batch_size, shuffle=False,
                         seed=ctx.s.seed, normalizer=ctx.data.normalizer, device=ctx.device)
    out = discriminator_classification(ctx.model, loader, ctx.s.seed)
    values = {k: out.pop(k) for k in SCORES}
    return {"discriminator_real_vs_fake": Score(values, {**out, "real_split": "validation"})}


METRIC = Metric(name="discriminator", summary="the discriminator's accuracy, precision, recall and F1 on held-out "
                "real vs generated images", compute=_compute, applies=_applies, at_train_end=True)
