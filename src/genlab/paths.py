"""Where genlab keeps files that outlive a run: verified weights and trained evaluation classifiers.

One root, $GENLAB_CACHE, else $XDG_CACHE_HOME/genlab, else ~/.cache/genlab, so a lab can point every
machine at one shared, pre-filled folder and work offline.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GENLAB_CACHE"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.path.expanduser(os.environ[CACHE_ENV]))
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "genlab"


def weights_dir() -> Path:
    return cache_dir() / "weights"


def classifiers_dir() -> Path:
    return cache_dir() / "classifiers"
