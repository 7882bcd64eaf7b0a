"""Shared test settings: few threads, and the real-data folder from $GENLAB_DATA when it exists."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture
def real_data() -> Path:
    """Folder of the real data sets (../shared/data in this project's CI); skips when absent."""
    root = os.environ.get("GENLAB_DATA")
    if not root:
        pytest.skip("GENLAB_DATA is not set: end-to-end tests on real data need it (see README, Testing)")
    path = Path(root)
    if not path.is_dir():
        pytest.skip(f"GENLAB_DATA={root} is not a folder")
    return path
