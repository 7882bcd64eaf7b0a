"""Classification Accuracy Score (Ravuri & Vinyals 2019): train a classifier on generated images only, labelled
with the classes they were drawn for, and test it on real held-out images.

Class accuracy asks whether each sample looks like its class to a classifier trained on real data; a
generator that draws one perfect prototype per class passes it. CAS asks whether the samples carry
enough of each class's variety to teach a classifier the real data: mode dropping and missing variety
lower it. It is read against the same recipe trained on as many real training images (the real-data
baseline beside it), as in the paper's tables.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genlab.data import BatchLoader, Normalizer
from genlab.data.loader import to_uint8
from genlab.metrics.metric import Metric, Score
from genlab.progress import counted

if TYPE_CHECKING:
    from genlab.metrics.classifier.network import Recipe, SmallCNN
    from genlab.metrics.context import Context


def _fit_on(images: np.ndarray, labels: np.ndarray, num_classes: int, rec: Recipe, device: torch.device
            ) -> SmallCNN:
    from genlab.metrics.classifier.training import fit_network

    loader = BatchLoader(images, labels, batch_size=rec.batch_size, shuffle=True, seed=rec.seed,
                         normalizer=Normalizer("minus_one_one", images.shape[-1]),
                         drop_last=len(images) >= rec.batch_size, device=device)
    net, _, _ = fit_network(loader, images.shape[-1], num_classes, rec, device)
    return net


@torch.no_grad()
def _accuracy(net: SmallCNN, images: np.ndarray, labels: np.ndarray, num_classes: int, device: torch.device
              ) -> tuple[float, list[float]]:
    norm = Normalizer("minus_one_one", images.shape[-1])
    pred = []
    for start in range(0, len(images), 512):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + 512])).permute(0, 3, 1, 2).to(device)
        pred.append(net(norm(x)).argmax(1).cpu().numpy())
    p = np.concatenate(pred)
    per_class = [float((p[labels == c] == c).mean()) if (labels == c).any() else float("nan")
                 for c in range(num_classes)]
    return float((p == labels).mean()), per_class


@torch.no_grad()
def generated_set(model: Any, normalizer: Normalizer, num_classes: int, per_class: int, seed: int,
                  batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """per_class uint8 samples for each class, drawn with that label, quantised as if saved to PNG."""
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    images, labels = [], []

    def batches():
        for c in range(num_classes):
            for start in range(0, per_class, batch_size):
                n = min(batch_size, per_class - start)
                y = torch.full((n,), c, dtype=torch.long, device=device)
                labels.append(np.full(n, c, dtype=np.int64))
                yield model.sample(n, generator=gen, labels=y)

    for x in counted(batches(), num_classes * per_class, "drawing samples per class"):
        images.append(to_uint8(normalizer.to_unit(x.float())))
    return np.concatenate(images), np.concatenate(labels)


def _applies(ctx: Context) -> str | None:
    if not ctx.caps.conditional:
        return "the model is not class-conditional (CAS trains on samples labelled with their requested class)"
    if ctx.data.train.labels is None:
        return f"data set {ctx.cfg.data.name!r} has no labels to test on"
    return None


def _compute(ctx: Context) -> dict[str, Score]:
    from dataclasses import asdict

    from genlab.metrics.classifier.identity import classifier_data_config
    from genlab.metrics.classifier.network import make_recipe
    from genlab.metrics.classifier.training import labelled_splits

    real_train, test, k, names = labelled_splits(classifier_data_config(ctx.cfg.data))
    rec = make_recipe(**{"seed": ctx.s.seed, **ctx.s.cas_recipe})
    per_class = ctx.s.class_samples
    fake, fake_labels = generated_set(ctx.model, ctx.data.normalizer, k, per_class, ctx.s.seed, ctx.s.batch_size)
    cas, cas_per_class = _accuracy(_fit_on(fake, fake_labels, k, rec, ctx.device), test.images, test.labels, k,
                                   ctx.device)
    n_real = min(len(real_train), len(fake))
    idx = np.sort(np.random.default_rng(ctx.s.seed).choice(len(real_train), n_real, replace=False))
    base, _ = _accuracy(_fit_on(real_train.images[idx], real_train.labels[idx], k, rec, ctx.device), test.images,
                        test.labels, k, ctx.device)
    values = {"cas": cas, "cas_real_baseline": base, "cas_worst_class_accuracy": min(cas_per_class)}
    protocol = {"cas_per_class": dict(zip(names, cas_per_class)), "n_per_class": per_class,
                "n_train_real_baseline": n_real, "n_test": len(test), "test_split": "the domain classifier's "
                "held-out split (official test split where the set has one)", "recipe": asdict(rec),
                "classifier": "genlab SmallCNN (metrics.classifier), the domain classifier's recipe",
                "protocol": f"Ravuri & Vinyals 2019: a classifier trained only on {per_class} samples per class "
                            f"(drawn with that label, quantised to uint8), tested on {len(test)} real held-out "
                            f"images; cas_real_baseline: the same recipe on {n_real} real training images drawn "
                            f"with the seed, on the same test images"}
    return {"cas": Score(values, protocol)}


METRIC = Metric(name="cas", summary="Classification Accuracy Score: a classifier trained on samples, tested on "
                "real held-out images, beside the same classifier trained on real images",
                compute=_compute, applies=_applies,
                higher_is_better={"cas": True, "cas_real_baseline": True, "cas_worst_class_accuracy": True},
                tolerance=1e-2)  # it trains two classifiers: another machine's summation order moves them
