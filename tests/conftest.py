"""Shared test settings: few threads, and the real-data folder from $GENLAB_DATA when it exists."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    """Each test gets its own empty $GENLAB_CACHE, so no test reads weights or classifiers another left."""
    path = tmp_path_factory.mktemp("genlab-cache")
    monkeypatch.setenv("GENLAB_CACHE", str(path))
    return path


@pytest.fixture
def real_data() -> Path:
    """Folder of the real data sets (../shared/data in this project's CI); skips when absent."""
    root = os.environ.get("GENLAB_DATA")
    if not root:
        pytest.skip("GENLAB_DATA is not set: end-to-end tests on real data need it (see README, Testing)")
    path = Path(root).absolute()  # resolved once, so a relative value is never joined to itself again
    if not path.is_dir():
        pytest.skip(f"GENLAB_DATA={root} is not a folder")
    return path


@pytest.fixture
def genlab_log(caplog):
    """caplog for the "genlab" logger, which the CLI stops from propagating to the root logger."""
    logger = logging.getLogger("genlab")
    propagate = logger.propagate
    logger.propagate = False  # records reach caplog once, whatever other tests did to logging
    logger.addHandler(caplog.handler)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.propagate = propagate
