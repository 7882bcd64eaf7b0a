"""Where a run's time, CPU and page faults go, per phase of this process.

A run that is slow is rarely slow in its steps alone: validation, checkpoints, end-of-run scores and
figures, or page faults from memory handed back to the system between steps, can take as much. The
training summary records each phase's wall seconds, user and system CPU seconds and minor page faults
(getrusage of this process, every thread), so `bench/whole_run.py` and a user reading summary.json see
which part to look at without a profiler. Two getrusage calls per phase cost about a microsecond each.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

try:
    import resource
except ImportError:  # Windows: wall time only
    resource = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Mark:
    wall: float
    user: float
    system: float
    minor_faults: int


def mark() -> Mark:
    if resource is None:
        return Mark(time.perf_counter(), 0.0, 0.0, 0)
    r = resource.getrusage(resource.RUSAGE_SELF)
    return Mark(time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt)


@dataclass
class Usage:
    seconds: float = 0.0
    user_seconds: float = 0.0
    system_seconds: float = 0.0
    minor_faults: int = 0
    count: int = 0

    def add(self, start: Mark, end: Mark, less: Usage | None = None) -> None:
        """Add the span from start to end, minus `less` (the spans nested in it, counted on their own)."""
        less = less or Usage()
        self.seconds += end.wall - start.wall - less.seconds
        self.user_seconds += end.user - start.user - less.user_seconds
        self.system_seconds += end.system - start.system - less.system_seconds
        self.minor_faults += end.minor_faults - start.minor_faults - less.minor_faults
        self.count += 1


@dataclass
class Phases:
    """Accumulates usage by phase name, each phase exclusive of those nested in it (a best checkpoint written
    during validation counts as checkpoints, not validation), so the phases add up to the process's total.
    `since(name, start)` adds the span from `start` to now and returns now, so consecutive phases chain
    without a gap; `span(name)` is a context manager."""

    usage: dict[str, Usage] = field(default_factory=dict)
    _open: list[Usage] = field(default_factory=list)  # per open span: the total of the spans nested in it

    def since(self, name: str, start: Mark, less: Usage | None = None) -> Mark:
        end = mark()
        self.usage.setdefault(name, Usage()).add(start, end, less)
        if self._open:
            self._open[-1].add(start, end)
        return end

    def span(self, name: str) -> _Span:
        return _Span(self, name)

    def record(self) -> dict[str, dict[str, float]]:
        """Rounded, for summary.json: {phase: {seconds, user_seconds, system_seconds, minor_faults, count}}."""
        return {name: {"seconds": round(u.seconds, 3), "user_seconds": round(u.user_seconds, 3),
                       "system_seconds": round(u.system_seconds, 3), "minor_faults": u.minor_faults,
                       "count": u.count} for name, u in self.usage.items()}


class _Span:
    def __init__(self, phases: Phases, name: str):
        self.phases, self.name = phases, name

    def __enter__(self) -> None:
        self.phases._open.append(Usage())
        self.start = mark()

    def __exit__(self, *exc) -> None:
        nested = self.phases._open.pop()
        self.phases.since(self.name, self.start, nested)
