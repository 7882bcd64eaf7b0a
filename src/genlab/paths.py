"""Where genlab finds things outside a run: bundled configs, the data folder, and its cache.

The cache is one root, $GENLAB_CACHE, else $XDG_CACHE_HOME/genlab, else ~/.cache/genlab, so a lab can
point every machine at one shared, pre-filled folder and work offline. The data folder is
$GENLAB_DATA, made absolute here and nowhere else, so a relative value means the same folder to every
caller however they join paths to it.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "GENLAB_CACHE"
DATA_ENV = "GENLAB_DATA"
PACKAGED_CONFIGS = Path(__file__).parent / "configs"


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.path.expanduser(os.environ[CACHE_ENV]))
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "genlab"


def weights_dir() -> Path:
    return cache_dir() / "weights"


def classifiers_dir() -> Path:
    return cache_dir() / "classifiers"


def data_root() -> Path | None:
    """$GENLAB_DATA as an absolute path (relative values are taken from the working directory), or None."""
    value = os.environ.get(DATA_ENV)
    return Path(os.path.expanduser(value)).absolute() if value else None


def packaged_configs() -> list[str]:
    """Names of the configs shipped with genlab (`genlab configs` lists them)."""
    return sorted(q.stem for q in PACKAGED_CONFIGS.glob("*.yaml"))
