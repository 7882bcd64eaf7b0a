"""Checkpoint files: atomic writes, hash-checked loads, refusal of pickled code."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from genlab import checkpoint
from genlab.errors import GenlabError


def test_round_trip(tmp_path):
    state = {"model": {"w": torch.arange(6.0).view(2, 3)}, "progress": {"step": 7}, "config": {"a": [1, 2]}}
    checkpoint.save_atomic(state, tmp_path / "c.pt")
    back = checkpoint.load(tmp_path / "c.pt")
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["progress"]["step"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp files left behind


def test_failed_write_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"v": torch.tensor(1)}, path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.os, "replace", boom)
    with pytest.raises(OSError):
        checkpoint.save_atomic({"v": torch.tensor(2)}, path)
    assert checkpoint.load(path)["v"].item() == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_flipped_byte_is_reported_as_corruption(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"w": torch.zeros(1000)}, path)
    wrapper = torch.load(path, weights_only=True)
    wrapper["blob"][len(wrapper["blob"]) // 2] ^= 0xFF
    torch.save(wrapper, path)
    with pytest.raises(GenlabError, match="corrupt"):
        checkpoint.load(path)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "c.pt"
    checkpoint.save_atomic({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(GenlabError, match="truncated, corrupt or not a checkpoint"):
        checkpoint.load(path)


def test_newer_format_is_refused_with_upgrade_hint(tmp_path):
    path = tmp_path / "c.pt"
    torch.save({"format_version": checkpoint.FORMAT_VERSION + 1, "blob": torch.zeros(1, dtype=torch.uint8),
                "genlab_version": "9.0", "sha256": ""}, path)
    with pytest.raises(GenlabError, match="Upgrade genlab"):
        checkpoint.load(path)


class _Evil:
    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_pickled_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = str(marker)
    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        pickle.dump({"format_version": 1, "blob": evil}, f)
    with pytest.raises(GenlabError, match="refused"):
        checkpoint.load(path)
    assert not marker.exists()
