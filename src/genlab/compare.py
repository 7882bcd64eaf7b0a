"""`genlab compare`: one table of every stored score across runs (the β-VAE experiment's Tables 2 and 3 are this table).

Rows are `entry / metric`, columns are runs, so adding a run never widens the terminal beyond reason;
a mean with its std shows as one cell. The protocol stays in metrics.json and the report; here only
values, and a run that lacks a score shows a dash rather than hiding the row.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from genlab.metrics.store import split_entry
from genlab.report import read_run


def _cells(entry: Any) -> dict[str, str]:
    values, _ = split_entry(entry)
    out: dict[str, str] = {}
    for name, v in values.items():
        if name.endswith("_std") and f"{name[:-4]}_mean" in values:
            continue
        text = f"{v:.4g}" if isinstance(v, float) else str(v)
        if name.endswith("_mean") and f"{name[:-5]}_std" in values:
            name, text = name[:-5], f"{text} ± {values[name[:-5] + '_std']:.2g}"
        out[name] = text
    return out


def _checkpoint(entry: Any) -> str:
    """Each entry says which weights it scored: training ends on `last`, `genlab eval` defaults to `best`."""
    if not isinstance(entry, dict):
        return "—"
    return f"{entry.get('checkpoint', '?')} @ step {entry.get('step', '?')}"


def compare_table(run_dirs: list[Path]) -> tuple[list[str], list[list[str]]]:
    runs = [read_run(Path(p)) for p in run_dirs]
    labels = [r.label for r in runs]
    labels = [f"{lab} ({r.run.path})" if labels.count(lab) > 1 else lab for lab, r in zip(labels, runs)]
    per_run = [{f"{key} / {m}": c for key, e in r.metrics.items()
                for m, c in {"checkpoint": _checkpoint(e), **_cells(e)}.items()} for r in runs]
    names = list(dict.fromkeys(n for cells in per_run for n in cells))
    rows = [[n, *(cells.get(n, "—") for cells in per_run)] for n in names]
    return ["metric", *labels], rows


def render(header: list[str], rows: list[list[str]], fmt: str = "text") -> str:
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows])
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt_row = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt_row(header), fmt_row(["-" * w for w in widths]), *map(fmt_row, rows)]) + "\n"
