"""`genlab results`: each original experiment's settings against its recommended config, read from run folders.

Which experiments there are, which run folders hold them, what judges them and the targets live in a
data file beside the bundled configs (configs/experiments/recommended.yaml), not here. Every value is read
from what training and `genlab eval` stored (history.csv, metrics.json, summary.json); nothing is
recomputed, so the table is exactly as trustworthy as the run folders, and a run that is absent shows a dash.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from genlab.errors import GenlabError
from genlab.metrics.comparable import mismatches
from genlab.paths import PACKAGED_CONFIGS
from genlab.reporting import RunInfo, read_run

EXPERIMENTS_FILE = PACKAGED_CONFIGS / "experiments" / "recommended.yaml"
HEADER = ["experiment", "measure", "original settings", "recommended", "target", "reached"]
_OPS = {">=": (operator.ge, "≥"), "<=": (operator.le, "≤"), "==": (operator.eq, ""), ">": (operator.gt, ">"),
        "<": (operator.lt, "<")}

Value = Callable[[RunInfo], float | None]


def _number(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _last_epoch_row(run: RunInfo, split: str) -> dict | None:
    rows = [r for r in run.history if r.get("scope") == "epoch" and r.get("split") == split]
    return rows[-1] if rows else None


def _source(spec: str) -> Value:
    """One value source of the experiments file (see its header)."""
    kind, _, rest = spec.partition(":")
    if kind == "metric":
        entry, _, key = rest.partition(".")
        return lambda run: _number(run.metrics.get(entry, {}).get(key)) if isinstance(run.metrics.get(entry),
                                                                                     dict) else None
    if kind == "history":
        return lambda run: _number((_last_epoch_row(run, "val") or {}).get(rest))
    if kind == "warnings":
        return lambda run: (None if not run.summary else
                            float(sum(w.get("kind") == rest for w in run.summary.get("warnings", []))))
    if spec == "epochs":
        return lambda run: (_number(row["epoch"]) + 1) if (row := _last_epoch_row(run, "val")) else None
    if spec == "wall_seconds":
        return lambda run: max((_number(r.get("seconds")) or 0.0 for r in run.history), default=None)
    raise GenlabError(f"{EXPERIMENTS_FILE}: unknown value source {spec!r}; use metric:ENTRY.KEY, history:COLUMN, "
                      f"warnings:KIND, epochs or wall_seconds.")


def _first_of(specs: str | list[str]) -> Value:
    getters = [_source(s) for s in ([specs] if isinstance(specs, str) else specs)]
    return lambda run: next((v for v in (g(run) for g in getters) if v is not None), None)


def _entries(specs: str | list[str]) -> tuple[str, ...]:
    """The metrics.json entries a measure reads, whose protocols must agree between the two runs."""
    return tuple(s.partition(":")[2].partition(".")[0] for s in ([specs] if isinstance(specs, str) else specs)
                 if s.startswith("metric:"))


@dataclass(frozen=True)
class Measure:
    label: str
    value: Value
    fmt: str = "{:.4g}"
    target: str | None = None  # ">= 0.50", judged on the recommended run
    beats_original: str | None = None  # "lower" / "higher": judged against the original-settings run
    entries: tuple[str, ...] = ()  # metrics.json entries it reads

    def target_text(self) -> str:
        if self.beats_original:
            return "below the original's" if self.beats_original == "lower" else "above the original's"
        if not self.target:
            return ""
        op, number = _parse_target(self.target)
        return f"{_OPS[op][1]} {number}".strip()

    def reached(self, original: float | None, recommended: float | None) -> str:
        if self.beats_original:
            if original is None or recommended is None:
                return "—"
            better = recommended < original if self.beats_original == "lower" else recommended > original
            return "yes" if better else "no"
        if not self.target:
            return ""
        if recommended is None:
            return "—"
        op, number = _parse_target(self.target)
        return "yes" if _OPS[op][0](recommended, float(number)) else "no"


def _parse_target(text: str) -> tuple[str, str]:
    found = re.fullmatch(r"\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*", text)
    if not found:
        raise GenlabError(f"{EXPERIMENTS_FILE}: target {text!r} must be a comparison such as '>= 0.98'.")
    return found.group(1), found.group(2)


@dataclass(frozen=True)
class Experiment:
    title: str
    original_run: str
    recommended_run: str
    measures: tuple[Measure, ...]


COMMON = (Measure("epochs", _source("epochs"), "{:.0f}"),
          Measure("training wall time (s)", _source("wall_seconds"), "{:.0f}"))


def load_experiments(path: Path = EXPERIMENTS_FILE) -> list[Experiment]:
    doc = yaml.safe_load(path.read_text())
    out = []
    for e in doc["experiments"]:
        measures = tuple(Measure(m["label"], _first_of(m["value"]), m.get("format", "{:.4g}"), m.get("target"),
                                 m.get("beats_original"), _entries(m["value"])) for m in e["measures"])
        out.append(Experiment(e["title"], e["original_run"], e["recommended_run"], COMMON + measures))
    return out


def _read(root: Path, name: str) -> RunInfo | None:
    path = root / name
    return read_run(path) if (path / "config.yaml").is_file() else None


def row_key(row: list[str]) -> str:
    return f"{row[0]} / {row[1]}"


def results_rows(root: Path) -> tuple[list[str], list[list[str]], dict[str, list[str]]]:
    """One row per experiment and measure: original value, recommended value, target, reached or not; and
    {row_key(row): why the two runs' scores of it were made differently}."""
    rows: list[list[str]] = []
    flags: dict[str, list[str]] = {}
    for exp in load_experiments():
        original, rec = _read(root, exp.original_run), _read(root, exp.recommended_run)
        for m in exp.measures:
            ov = m.value(original) if original else None
            rv = m.value(rec) if rec else None
            reasons = [r for entry in m.entries if original and rec
                       for r in mismatches({exp.original_run: original.metrics.get(entry),
                                            exp.recommended_run: rec.metrics.get(entry)})]
            if reasons:
                flags[row_key([exp.title, m.label])] = reasons
            rows.append([exp.title, m.label, "—" if ov is None else m.fmt.format(ov),
                         "—" if rv is None else m.fmt.format(rv), m.target_text(), m.reached(ov, rv)])
    return list(HEADER), rows, flags
