"""`genlab eval`: every score a run supports, recomputed from the run folder alone, each with its protocol.

Which scores exist, when each applies and how it is computed is the metric registry's business
(genlab.metrics.registry); this module only runs them. A metric the user names must run or fail with a
clear error; a metric chosen by default that cannot run here (no Inception weights on this machine, a
held-out split too small for 2048-d covariances, no labels to train a domain classifier on) is skipped
with the reason in the log, so `genlab eval RUN` always gives what can be measured.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from genlab.device import select_device
from genlab.errors import GenlabError
from genlab.metrics.context import Context, EvalSettings
from genlab.metrics.metric import Score
from genlab.metrics.provenance import checkpoint_hash, making
from genlab.metrics.registry import METRICS, get_metrics
from genlab.metrics.store import SCORE_KEYS, split_entry, update_metrics
from genlab.run import LoadedRun, load_run

log = logging.getLogger("genlab.eval")

__all__ = ["EvalSettings", "evaluate_loaded", "evaluate_run", "not_applicable", "summary"]


def not_applicable(name: str, ctx: Context) -> str | None:
    """Why a metric does not fit this run, or None when it does."""
    return METRICS[name].applies(ctx)


def evaluate_loaded(loaded: LoadedRun, metrics: list[str] | None = None, *, which: str = "best",
                    settings: EvalSettings | None = None, device: str = "auto",
                    strict: bool | None = None, store: bool = True) -> dict[str, dict[str, Any]]:
    """strict (default: when metrics are named): a metric that cannot run is an error, not a skip.
    Returns each entry as stored in metrics.json (values and protocol, without the checkpoint fields).
    store False leaves metrics.json alone (the explorer scores the checkpoint it shows, which may not be
    the one the stored entries were made on, and must not replace them)."""
    s = settings or EvalSettings()
    chosen = get_metrics(metrics if metrics is not None else [n for n, m in METRICS.items() if m.by_default])
    ctx = Context(loaded, s, select_device(device))
    explicit = metrics is not None if strict is None else strict
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for metric in chosen:  # every named metric is checked before any is computed
        reason = metric.applies(ctx)
        if reason and explicit:
            raise GenlabError(f"metric {metric.name!r} does not apply to run {loaded.run.path}: {reason}.")
        if reason:
            log.debug("%s skipped: %s", metric.name, reason)
        else:
            todo.append(metric)
    if metrics is None:
        for m in METRICS.values():
            if not m.by_default and m.applies(ctx) is None:
                log.info("%s applies but runs only when named: genlab eval RUN --metrics %s", m.name, m.name)
    sha = checkpoint_hash(loaded.run.checkpoint(which)) if todo else None
    for metric in todo:
        try:
            entries = metric.compute(ctx)
        except GenlabError as exc:
            if explicit:
                raise
            log.warning("%s skipped: %s", metric.name, exc)
            continue
        for key, score in entries.items():
            score = Score(score.values, {**making(ctx, metric, score.values, sha), **score.protocol})
            if store:
                update_metrics(loaded.run.metrics, key, score, checkpoint=which, step=loaded.step, seed=s.seed)
            results[key] = {**score.flat(), SCORE_KEYS: list(score.values)}
            log.info("%s: %s", key, summary(results[key]))
    return results


def evaluate_run(path: Path, metrics: list[str] | None = None, *, which: str = "best",
                 settings: EvalSettings | None = None, device: str = "auto") -> dict[str, dict[str, Any]]:
    return evaluate_loaded(load_run(Path(path), which), metrics, which=which, settings=settings, device=device)


def summary(values: dict[str, Any]) -> str:
    nums, _ = split_entry(values)
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in nums.items())
