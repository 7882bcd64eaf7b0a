"""Where a source's files are: data.root, absolute, or relative to $GENLAB_DATA (else the working directory)."""

from __future__ import annotations

import os
from pathlib import Path

from genlab.errors import GenlabError
from genlab.paths import DATA_ENV, data_root
from genlab.sections import DataConfig


def root_path(cfg: DataConfig) -> Path:
    """Absolute roots as given; relative ones under $GENLAB_DATA when set, else the working directory."""
    if not cfg.root:
        raise GenlabError(f"data.root is required for data set {cfg.name!r}: set it to the folder that holds "
                          f"the data, absolute or relative to ${DATA_ENV}.")
    root = Path(os.path.expanduser(cfg.root))
    base = data_root()
    if not root.is_absolute() and base is not None:
        root = base / root
    return root


def resolve_root(cfg: DataConfig) -> Path:
    root = root_path(cfg)
    if not root.exists():
        env = os.environ.get(DATA_ENV)
        where = f"${DATA_ENV}={env}" if env else f"${DATA_ENV} is not set"
        raise GenlabError(f"data.root {cfg.root!r} does not exist (looked for {root.resolve()}; {where}). "
                          f"Point data.root at the data folder or set ${DATA_ENV} to its parent.")
    return root
