"""FID and KID (with precision/recall) against held-out images, from the standard FID Inception weights in a
local, hash-checked file; the weights are never downloaded inside a metric (`genlab weights fetch inception`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from genlab.metrics.context import distribution_scores, distribution_tolerance, needs_samples
from genlab.metrics.metric import Metric, Score

if TYPE_CHECKING:
    from genlab.metrics.context import Context


def _compute(ctx: Context) -> dict[str, Score]:
    from genlab.metrics.inception import InceptionFeatures

    return {"fid_inception": distribution_scores(ctx, InceptionFeatures(ctx.device), fd_name="fid")}


METRIC = Metric(name="fid", summary="FID, KID and precision/recall in Inception-v3 features (local weights)",
                compute=_compute, applies=needs_samples,
                higher_is_better={"fid": False, "kid_mean": False, "precision": True, "recall": True},
                tolerance=distribution_tolerance("fid"))
