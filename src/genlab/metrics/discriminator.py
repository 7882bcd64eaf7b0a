"""How well the trained discriminator tells real images from fresh samples (the anime-faces DCGAN
experiment's table), in the BatchNorm mode D was trained in and in eval mode, on held-out and on
training images.

Real images are the positive class; D's logit > 0 (sigmoid > 0.5) means "real", and so does a hinge-loss
D's score > 0, the middle of its margin. A Wasserstein critic's scores have no zero (adding a constant
changes nothing in its game), so its threshold is the midpoint of its mean scores on the two sets scored,
which the score's protocol states. These are
classification scores of D, not the distribution precision/recall of Kynkäänniemi et al. 2019,
which describe the generator's samples; the keys say so.

Why two modes: D trains on real-only and fake-only batches, each normalised by its own BatchNorm
statistics, while its running statistics blend all of them (one real batch to two fake ones per
step). In eval mode those blended statistics meet a batch of only real faces, an input D never saw,
and it can call nearly every held-out face fake while separating them well on batch statistics.
The default entry scores D the way it was trained (each real-only and fake-only batch of the training
batch size normalised by its own statistics; running statistics left untouched); the `_eval_mode`
entries score it on the running statistics. Why two splits: a D that separates training faces but not
held-out ones has memorised the training set, a different failure with the same low held-out score.

What the numbers say about G: little. They measure one classifier's decision on one sample, at a
threshold the adversarial game pushes towards chance; a strong G and a D that lost the game, or a weak
G and a D that memorised the faces, can give the same accuracy. Judge G by fd_randconv, FID or KID.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genlab.data import BatchLoader
from genlab.metrics.context import SHARE_TOLERANCE
from genlab.metrics.metric import Metric, Score
from genlab.metrics.provenance import EVAL_MODE, MODEL_MODE
from genlab.models.gan import GAN
from genlab.models.norm_modes import batch_norms, batch_statistics

if TYPE_CHECKING:
    from genlab.metrics.context import Context

THRESHOLD = 0.5
SCORES = ("d_accuracy", "d_precision_real", "d_recall_real", "d_f1_real")
ENTRY = "discriminator_real_vs_fake"


def batch_mode(batch_size: int) -> str:
    return (f"batch statistics: D's BatchNorm normalises each real-only and each fake-only batch of up to "
            f"{batch_size} images by its own statistics, as D trained (running statistics untouched)")


@torch.no_grad()
def discriminator_classification(model: GAN, loader: BatchLoader, seed: int, *, batch_stats: bool = False,
                                 loss: str = "bce") -> dict[str, float | int | str]:
    """D's classification of the loader's real images against as many fresh samples, one fake batch per real
    batch (conditional models: sampled with the real images' labels), in eval or batch-statistics mode."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

    model.eval()
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    real_p, fake_p, n = [], [], 0
    for batch in loader.batches():
        x, y = batch.images, batch.labels if model.conditional else None
        fake = model.sample(x.shape[0], generator=gen, labels=y)
        if batch_stats:
            with batch_statistics(model.discriminator):
                real_logit, fake_logit = model.discriminate(x, y), model.discriminate(fake, y)
        else:
            real_logit, fake_logit = model.discriminate(x, y), model.discriminate(fake, y)
        real_p.append(real_logit.float().cpu())
        fake_p.append(fake_logit.float().cpu())
        n += x.shape[0]
    scores = torch.cat(real_p + fake_p).numpy()
    truth = np.concatenate([np.ones(n, int), np.zeros(n, int)])
    if loss == "wasserstein":  # a rule the same in every run (compared as such), its value beside it
        cut = float((torch.cat(real_p).mean() + torch.cat(fake_p).mean()) / 2)
        threshold: dict[str, Any] = {"threshold": "midpoint of the mean critic scores on real and generated",
                                     "threshold_value": cut}
    else:  # bce's logit and a hinge D's score alike: above 0, i.e. sigmoid above 0.5
        cut, threshold = 0.0, {"threshold": THRESHOLD}
    pred = (scores > cut).astype(int)
    tn, fp, fn, tp = confusion_matrix(truth, pred, labels=[0, 1]).ravel()
    return {
        "d_accuracy": float(accuracy_score(truth, pred)),
        "d_precision_real": float(precision_score(truth, pred, zero_division=0)),
        "d_recall_real": float(recall_score(truth, pred, zero_division=0)),
        "d_f1_real": float(f1_score(truth, pred, zero_division=0)),
        "n_real": int(n), "n_fake": int(n), "tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn),
        **threshold, "positive_class": "real",
        "protocol": "discriminator classification of real images vs an equal number of fresh samples, one "
                    "fake batch per real batch (conditional models: sampled with the real images' labels; "
                    "models with ema_decay: from the weight-averaged generator, the one users sample); "
                    "scikit-learn",
    }


def _applies(ctx: Context) -> str | None:
    return None if ctx.caps.has_discriminator else "the model has no discriminator"


def _images(ctx: Context, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """All held-out images; as many training images, drawn with the evaluation seed."""
    val = ctx.data.val
    if split == "validation":
        return val.images, val.labels
    train = ctx.data.train
    idx = np.sort(np.random.default_rng(ctx.s.seed).choice(len(train), min(len(val), len(train)), replace=False))
    return train.images[idx], None if train.labels is None else train.labels[idx]


def _compute(ctx: Context) -> dict[str, Score]:
    batch = ctx.cfg.train.batch_size  # the batch D was trained on: its batch statistics depend on it
    has_bn = bool(batch_norms(ctx.model.discriminator))
    modes = [(True, "", batch_mode(batch)), (False, "_eval_mode", EVAL_MODE)] if has_bn else \
        [(False, "", "eval (D has no BatchNorm: eval and training modes compute the same function)")]
    out: dict[str, Score] = {}
    for split, split_suffix in (("validation", ""), ("train", "_training_images")):
        images, labels = _images(ctx, split)
        for batch_stats, mode_suffix, mode in modes:
            # A last batch of one image has no batch statistics to speak of (BatchNorm1d refuses it): left out.
            loader = BatchLoader(images, labels, batch_size=batch, shuffle=False, seed=ctx.s.seed,
                                 normalizer=ctx.data.normalizer, device=ctx.device,
                                 drop_last=batch_stats and len(images) % batch == 1)
            result: dict[str, Any] = discriminator_classification(
                ctx.model, loader, ctx.s.seed, batch_stats=batch_stats, loss=getattr(ctx.cfg.objective, "loss", "bce"))
            values = {k: result.pop(k) for k in SCORES}
            real = "held-out" if split == "validation" else f"{len(images)} training images drawn with the seed"
            out[ENTRY + mode_suffix + split_suffix] = Score(values, {**result, "real_split": split,
                                                                     "real_images": real, MODEL_MODE: mode,
                                                                     "batch_size": batch})
    return out


METRIC = Metric(name="discriminator", summary="the discriminator's accuracy, precision, recall and F1 on real vs "
                "generated images, in its training BatchNorm mode and in eval mode, on validation and training images",
                compute=_compute, applies=_applies, at_train_end=True,
                tolerance=SHARE_TOLERANCE)  # shares of images: one crossing the threshold on another machine
