"""Per-phase wall time, CPU and page faults: nested phases counted once, and a real run's phases adding up."""

from __future__ import annotations

import json
import mmap
import sys

import pytest

from genlab.engine.phases import Phases, mark
from genlab.training import train
from helpers import tiny_config


def _touch_pages(n: int) -> None:
    """n minor faults: fresh anonymous pages (no huge pages without madvise), one byte written in each."""
    size = mmap.PAGESIZE
    with mmap.mmap(-1, n * size) as m:
        for i in range(n):
            m[i * size] = 1  # a bytes-like item: one int byte


posix_only = pytest.mark.skipif(sys.platform == "win32", reason="getrusage is POSIX only")


@posix_only
def test_a_nested_phase_is_not_counted_in_its_parent_too():
    phases = Phases()
    with phases.span("outer"):
        _touch_pages(1_000)
        with phases.span("inner"):
            _touch_pages(4_000)
    record = phases.record()
    inner, outer = record["inner"]["minor_faults"], record["outer"]["minor_faults"]
    assert 4_000 <= inner < 4_500 and 1_000 <= outer < 1_500, (inner, outer)
    assert record["inner"]["count"] == record["outer"]["count"] == 1 and record["inner"]["seconds"] > 0


@posix_only
def test_since_chains_phases_without_a_gap():
    phases = Phases()
    start = mark()
    middle = phases.since("a", start)
    end = phases.since("b", middle)
    u = phases.usage
    assert u["a"].seconds + u["b"].seconds == pytest.approx(end.wall - start.wall)


def test_a_run_summary_splits_its_wall_time_into_phases_that_add_up(tmp_path):
    out = train(tiny_config(), out=tmp_path)
    summary = json.loads((out.run.path / "summary.json").read_text())
    phases, wall = summary["phases"], summary["timings_seconds"]["wall"]
    assert {"startup", "data", "steps", "step_hooks", "validation", "checkpoints", "training_rest",
            "end_of_training_scores"} <= set(phases)
    assert phases["steps"]["count"] == summary["progress"]["steps"]
    assert phases["validation"]["count"] == summary["progress"]["epochs_completed"]
    total = sum(p["seconds"] for p in phases.values())
    assert total == pytest.approx(wall, abs=0.05)  # startup is timed from the same moment as the wall time
    assert all(p["seconds"] >= -0.005 for p in phases.values()), phases
