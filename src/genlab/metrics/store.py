"""metrics.json: each entry is a group of values with the protocol that produced them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genlab import __version__
from genlab.run import write_text_atomic

# Numeric, yet not scores. Counts are named n_* and are protocol too.
PROTOCOL_KEYS = {"step", "epoch", "seed", "threshold", "checkpoint", "genlab_version", "pr_k", "kid_subsets",
                 "kid_subset_size", "tp", "fp", "tn", "fn", "bins", "batch_size"}


def update_metrics(path: Path, key: str, values: dict[str, Any], **protocol: Any) -> dict[str, Any]:
    """Merge one entry into the run's metrics.json (atomic rewrite) and return the whole document."""
    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc[key] = {**values, **protocol, "genlab_version": __version__}
    write_text_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return doc


def split_entry(entry: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(values, protocol) of one metrics.json entry: numeric scores versus how they were obtained."""
    entry = entry if isinstance(entry, dict) else {"value": entry}
    values = {k: v for k, v in entry.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
              and k not in PROTOCOL_KEYS and not k.startswith("n_")}
    return values, {k: v for k, v in entry.items() if k not in values}
