"""How well the trained discriminator tells held-out real images from fresh samples (seed 004's table).

Real images are the positive class; D's logit > 0 (sigmoid > 0.5) means "real". These are
classification scores of D, not the distribution precision/recall of Kynkäänniemi et al. 2019,
which describe the generator's samples; the keys say so.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

from genlab.data import BatchLoader
from genlab.models.gan import GAN

THRESHOLD = 0.5


@torch.no_grad()
def discriminator_classification(model: GAN, loader: BatchLoader, seed: int) -> dict[str, float | int | str]:
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
