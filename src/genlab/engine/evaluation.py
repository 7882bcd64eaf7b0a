"""One validation pass: the image-weighted mean of each eval term, plus the objective's whole-set scores."""

from __future__ import annotations

import torch

from genlab import distributed
from genlab.data import BatchLoader
from genlab.device import autocast
from genlab.objectives.contract import Objective


def evaluate(objective: Objective, loader: BatchLoader, seed: int, device: torch.device, precision: str,
             whole: BatchLoader | None = None) -> dict[str, float]:
    """All drawn with a fixed seed, so evaluations compare across the run.

    Under torchrun `loader` holds this process's share (at least one image, which preflight checks) and
    the sums are added across processes; the whole-set scores are computed by rank 0 on `whole`, the
    unsharded loader, and broadcast (they need every image in one place)."""
    objective.model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, float] = {}
    n = 0
    with torch.no_grad():
        with autocast(device, precision):
            for batch in loader.batches():
                terms = objective.eval_step(batch, gen)
                b = batch.images.shape[0]
                values = torch.stack([v.detach().float().reshape(()) for v in terms.values()]).tolist()
                for k, v in zip(terms, values):
                    sums[k] = sums.get(k, 0.0) + v * b
                n += b
        if distributed.world_size() > 1:
            totals = distributed.all_reduce_sum(torch.tensor([*sums.values(), n], dtype=torch.float64))
            sums, n = dict(zip(sums, totals[:-1].tolist())), totals[-1].item()
        out = {k: v / n for k, v in sums.items()}
        if objective.score_names:  # whole-set scores in full precision (their numpy side needs it)
            scores = objective.scores(whole or loader, gen) if distributed.is_main() else None
            out.update(distributed.broadcast_object(scores))
    objective.model.train()
    return out
