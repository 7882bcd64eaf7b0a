"""Class accuracy of a conditional model: the share of samples drawn *for* class c that the independent
domain classifier (genlab.metrics.classifier) puts in class c, per class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from genlab.data import Normalizer
from genlab.data.loader import to_uint8
from genlab.errors import GenlabError
from genlab.metrics.classifier import DomainClassifier, get_classifier
from genlab.metrics.metric import Metric, Score
from genlab.progress import counted

if TYPE_CHECKING:
    from genlab.metrics.context import Context


def _model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


@torch.no_grad()
def class_accuracy(classifier: DomainClassifier, model: Any, normalizer: Normalizer, *, per_class: int = 1000,
                   seed: int = 0, batch_size: int = 250) -> dict[str, Any]:
    """Share of samples drawn *for* class c that the independent classifier puts in class c, per class.

    Per class rather than overall, because a conditional model that ignores one label hides behind the
    others in a pooled number; the worst class is named for the same reason.
    """
    if not getattr(model, "conditional", False):
        raise GenlabError("class accuracy needs a class-conditional model (a GAN built with conditional: true); "
                          "this model does not take labels.")
    k_model, k_clf = int(getattr(model, "num_classes", 0)), classifier.num_classes
    if k_model != k_clf:
        raise GenlabError(f"the model generates {k_model} classes but {classifier.name} "
                          f"({classifier.weights_path.name}) knows {k_clf}; both must come from the same "
                          f"labelled data set.")
    if per_class < 1 or batch_size < 1:
        raise GenlabError(f"class accuracy needs per_class >= 1 and batch_size >= 1; got {per_class} and "
                          f"{batch_size}.")
    device = _model_device(model)
    was_training = bool(getattr(model, "training", False))
    if isinstance(model, nn.Module):
        model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    names = classifier.class_names
    try:
        def drawn():
            for c in range(k_clf):
                for start in range(0, per_class, batch_size):
                    n = min(batch_size, per_class - start)
                    labels = torch.full((n,), c, dtype=torch.long, device=device)
                    yield c, model.sample(n, generator=gen, labels=labels)

        correct = dict.fromkeys(range(k_clf), 0)
        for c, x in counted(drawn(), k_clf * per_class, "drawing samples per class", size=lambda b: len(b[1])):
            correct[c] += int((classifier.predict(to_uint8(normalizer.to_unit(x)), batch_size) == c).sum())
        accs = {names[c]: correct[c] / per_class for c in range(k_clf)}
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)
    worst = min(accs, key=accs.get)
    return {"class_accuracy_mean": float(np.mean(list(accs.values()))), "class_accuracy": accs,
            "worst_class": worst, "worst_class_accuracy": accs[worst], "n_per_class": per_class, "seed": seed,
            "classifier": classifier.identity(), "classifier_test_accuracy": classifier.test_accuracy,
            "protocol": f"for each of the {k_clf} classes, {per_class} samples drawn with that label "
                        f"(torch.Generator seeded with {seed}), mapped to [0, 1] by the data normaliser, quantised "
                        f"to uint8 and labelled by {classifier.name} (its own test accuracy "
                        f"{classifier.test_accuracy:.4f}); accuracy is the share given the requested class, the "
                        f"mean is unweighted over classes."}




def _applies(ctx: Context) -> str | None:
    return None if ctx.caps.conditional else "the model is not class-conditional"


def _compute(ctx: Context) -> dict[str, Score]:
    out = class_accuracy(get_classifier(ctx.cfg.data), ctx.model, ctx.data.normalizer,
                         per_class=ctx.s.class_samples, seed=ctx.s.seed)
    values = {k: out.pop(k) for k in ("class_accuracy_mean", "class_accuracy", "worst_class_accuracy",
                                      "classifier_test_accuracy")}
    return {"class_accuracy": Score(values, out)}


METRIC = Metric(name="class_accuracy", summary="share of samples drawn for each class that a domain classifier "
                "puts in that class (conditional models)", compute=_compute, applies=_applies,
                higher_is_better={"class_accuracy_mean": True, "worst_class_accuracy": True},
                tolerance=5e-3)  # shares of images: one crossing a decision boundary on another machine
