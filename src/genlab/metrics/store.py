"""metrics.json: each entry is a group of values with the protocol that produced them.

An entry is stored flat (its values and protocol side by side, as earlier versions wrote it, so scripts
that read `metrics.json["fd_randconv"]["fd_randconv"]` keep working) with one more key, `score_keys`,
that names the values. Entries written before `score_keys` existed are split by the rule those versions
followed (numbers are values unless named like a count or a setting).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genlab import __version__
from genlab.io import atomic_write
from genlab.metrics.metric import Score

SCORE_KEYS = "score_keys"
# How genlab 0.1 told them apart: numeric, yet not scores. Counts are named n_* and are protocol too.
_LEGACY_PROTOCOL_KEYS = {"step", "epoch", "seed", "threshold", "checkpoint", "genlab_version", "pr_k", "kid_subsets",
                         "kid_subset_size", "tp", "fp", "tn", "fn", "bins", "batch_size"}


def read_metrics(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def update_metrics(path: Path, key: str, score: Score, **protocol: Any) -> dict[str, Any]:
    """Merge one entry into the run's metrics.json (atomic rewrite) and return the whole document."""
    doc = read_metrics(path)
    doc[key] = {**score.values, **score.protocol, **protocol, "genlab_version": __version__,
                SCORE_KEYS: list(score.values)}
    atomic_write(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return doc


def split_entry(entry: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numeric values, protocol) of one metrics.json entry. Per-class dicts of values are left in the
    protocol half, where tables do not look (the mean and worst class are values of their own)."""
    entry = entry if isinstance(entry, dict) else {"value": entry}
    if SCORE_KEYS in entry:
        named = set(entry[SCORE_KEYS])
        values = {k: v for k, v in entry.items() if k in named and _number(v)}
    else:
        values = {k: v for k, v in entry.items() if _number(v) and k not in _LEGACY_PROTOCOL_KEYS
                  and not k.startswith("n_")}
    return values, {k: v for k, v in entry.items() if k not in values and k != SCORE_KEYS}


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
