"""Runs that differ only in their seed, as one result: mean ± std over the seeds of every score.

A result worth reporting is a mean over seeds, so `genlab compare` and `genlab report` put runs whose
resolved configs agree in everything but `train.seed` (and the settings that cannot change a number:
name, output folder, progress bar, thread count, live views) into one column. The std is the sample
standard deviation over seeds (ddof 1), the spread a reader should expect from one more seed; a score
stored as a per-image mean ± std counts by its mean. A score missing from some seeds is averaged over
the seeds that have it, and the cell says how many that was.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from genlab.metrics.store import split_entry
from genlab.reporting import RunInfo

# Keys that never change what a run computes, so runs differing only here (and in the seed) are seeds of one result.
COSMETIC = {"name", "train.seed", "output.root", "train.progress", "train.threads", "train.tensorboard",
            "train.mlflow", "train.mlflow_uri", "train.figures", "train.epoch_samples", "train.log_every_steps",
            "train.checkpoint_every_steps", "data.cache"}


@dataclass
class Group:
    label: str
    runs: list[RunInfo]

    @property
    def seeds(self) -> list[Any]:
        return [(r.config.get("train") or {}).get("seed", 0) for r in self.runs]


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = repr(v)
    return out


def group_by_seed(runs: list[RunInfo]) -> list[Group]:
    """Groups in the order their first run was given; a run alone is a group of one."""
    groups: dict[tuple, list[RunInfo]] = {}
    for r in runs:
        key = tuple(sorted((k, v) for k, v in _flat(r.config).items() if k not in COSMETIC))
        groups.setdefault(key, []).append(r)
    out = []
    for members in groups.values():
        seeds = [(m.config.get("train") or {}).get("seed", 0) for m in members]
        if len(members) > 1 and len(set(map(repr, seeds))) < len(seeds):
            out.extend(Group(m.label, [m]) for m in members)  # the same seed twice: not seeds of one result
        else:
            out.append(Group(_label(members), members))
    return out


def _label(members: list[RunInfo]) -> str:
    if len(members) == 1:
        return members[0].label
    stems = {re.sub(r"[_-]?seed\d+$", "", m.label) for m in members}
    base = stems.pop() if len(stems) == 1 else members[0].label
    return f"{base} ({len(members)} seeds)"


def grouped(groups: list[Group]) -> bool:
    return any(len(g.runs) > 1 for g in groups)


def score_values(info: RunInfo) -> dict[tuple[str, str], float | str]:
    """(entry, value name) -> value, a per-image `x_mean` standing as `x` (its std is not a seed spread)."""
    out: dict[tuple[str, str], float | str] = {}
    for key, entry in info.metrics.items():
        values, _ = split_entry(entry)
        for name, v in values.items():
            if name.endswith("_std") and f"{name[:-4]}_mean" in values:
                continue
            if name.endswith("_mean") and f"{name[:-5]}_std" in values:
                name = name[:-5]
            out[(key, name)] = v
    return out


def mean_std(values: list[float]) -> tuple[float, float | None]:
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, None
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def cell(values: list[Any], seeds: int) -> str:
    """One group's cell: mean ± std (n = seeds that have the score)."""
    nums = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values:
        return "—"
    if len(nums) < len(values):  # text values: shown when all agree
        distinct = list(dict.fromkeys(map(str, values)))
        return distinct[0] if len(distinct) == 1 else " / ".join(distinct)
    m, s = mean_std(nums)
    if seeds == 1:
        return f"{m:.4g}"
    return f"{m:.4g} ± {s:.2g} (n={len(nums)})" if s is not None else f"{m:.4g} (n=1 of {seeds})"


def group_scores(group: Group) -> dict[tuple[str, str], str]:
    per_run = [score_values(r) for r in group.runs]
    names = list(dict.fromkeys(n for s in per_run for n in s))
    return {n: cell([s[n] for s in per_run if n in s], len(group.runs)) for n in names}
