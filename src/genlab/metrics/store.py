"""metrics.json: each entry is a group of values with the protocol that produced them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from genlab import __version__
from genlab.run import write_text_atomic


def update_metrics(path: Path, key: str, values: dict[str, Any], **protocol: Any) -> dict[str, Any]:
    """Merge one entry into the run's metrics.json (atomic rewrite) and return the whole document."""
    doc = json.loads(path.read_text()) if path.is_file() else {}
    doc[key] = {**values, **protocol, "genlab_version": __version__}
    write_text_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return doc
