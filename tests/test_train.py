"""Data loading under torchrun: which processes load in turns, so that only one writes a machine's files."""

from __future__ import annotations

import pytest

from genlab import distributed
from genlab import training as train
from helpers import tiny_config


def _record_turns(monkeypatch, rank: int, local_rank: int) -> list[str]:
    events: list[str] = []
    monkeypatch.setattr(distributed, "world_size", lambda: 4)
    monkeypatch.setattr(distributed, "launch_from_env", lambda: distributed.Launch(rank, 4, local_rank))
    monkeypatch.setattr(distributed, "barrier", lambda: events.append("barrier"))
    monkeypatch.setattr(train, "load_data", lambda cfg: events.append("load") or "data")
    return events


@pytest.mark.parametrize(("rank", "local_rank", "turn"), [(0, 0, 0), (2, 0, 1), (1, 1, 2), (3, 1, 2)])
def test_cached_folder_data_loads_in_turns(monkeypatch, rank, local_rank, turn):
    events = _record_turns(monkeypatch, rank, local_rank)
    cfg = tiny_config(data={"name": "image_folder", "root": "faces", "cache": True})
    assert train._load_data(cfg) == "data"
    expected = ["barrier"] * 3
    expected.insert(turn, "load")  # this process's turn comes after `turn` barriers
    assert events == expected


@pytest.mark.parametrize("data", [{"name": "image_folder", "root": "faces", "cache": False}, {"name": "digits"}])
def test_data_without_files_to_write_loads_at_once(monkeypatch, data):
    events = _record_turns(monkeypatch, 1, 1)
    assert train._load_data(tiny_config(data=data)) == "data"
    assert events == ["load"]
