"""A Fréchet distance in the features of a classifier genlab trains once on the labelled data set itself
(reported as FD-<set>-classifier, never as FID), with that classifier's own test accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genlab.metrics.context import distribution_scores, distribution_tolerance, needs_samples
from genlab.metrics.metric import Metric, Score

if TYPE_CHECKING:
    from genlab.metrics.context import Context


def needs_labels(ctx: Context) -> str | None:
    if ctx.data.train.labels is None:
        from genlab.metrics.classifier.training import labelled_sets

        return (f"data set {ctx.cfg.data.name!r} has no labels to train a domain classifier on "
                f"(labelled sets: {labelled_sets()})")
    return needs_samples(ctx)


def _compute(ctx: Context) -> dict[str, Score]:
    from genlab.metrics.classifier import get_classifier

    clf = get_classifier(ctx.cfg.data)
    score = distribution_scores(ctx, clf)
    score.values["classifier_test_accuracy"] = clf.test_accuracy  # a number tables show, as genlab 0.1 did
    return {clf.name.lower().replace("-", "_"): score}


METRIC = Metric(name="fd_classifier", summary="Fréchet distance in a domain classifier's features (labelled sets)",
                compute=_compute, applies=needs_labels,
                higher_is_better={"fd": False, "kid_mean": False, "precision": True, "recall": True},
                tolerance={**distribution_tolerance("fd"), "classifier_test_accuracy": 1e-5})
