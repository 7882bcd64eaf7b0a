"""`genlab compare`: one table of every stored score across runs (the β-VAE experiment's Tables 2 and 3 are this table).

Rows are `entry / metric`, columns are runs, so adding a run never widens the terminal beyond reason;
a mean with its std shows as one cell. The protocol stays in metrics.json and the report; here only
values, and a run that lacks a score shows a dash rather than hiding the row. A row whose runs made the
score differently (sample count, reference split, resizer, feature weights, k, model mode: see
genlab.metrics.comparable) is marked ⚠ and explained under the table.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from genlab.metrics.comparable import table_flags
from genlab.metrics.store import split_entry
from genlab.reporting import read_run


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


FLAG = "⚠ "


def compare_table(run_dirs: list[Path], *, per_run: bool = False
                  ) -> tuple[list[str], list[list[str]], dict[str, list[str]]]:
    """(header, rows, {entry: why its runs' scores are not comparable}). A sweep folder stands for its runs;
    runs that differ only in the seed share a column of mean ± std over seeds unless `per_run`."""
    from genlab.seed_groups import group_by_seed, group_scores, grouped
    from genlab.sweeps import expand_run_dirs

    runs = [read_run(p) for p in expand_run_dirs([Path(p) for p in run_dirs])]
    labels = [r.label for r in runs]
    labels = [f"{lab} ({r.run.path})" if labels.count(lab) > 1 else lab for lab, r in zip(labels, runs)]
    for r, label in zip(runs, labels):
        r.label = label
    flags = table_flags({r.label: r.metrics for r in runs})
    groups = group_by_seed(runs)
    if grouped(groups) and not per_run:
        per_column = [{("checkpoint", ""): _agreed([_checkpoint(e) for r in g.runs for e in r.metrics.values()]),
                       **{(k, m): c for (k, m), c in group_scores(g).items()}} for g in groups]
        names = list(dict.fromkeys(n for cells in per_column for n in cells if n != ("checkpoint", "")))
        rows = [["checkpoints", *(c[("checkpoint", "")] for c in per_column)]]
        rows += [[f"{key} / {m}", *(cells.get((key, m), "—") for cells in per_column)] for key, m in names]
        return ["metric", *(g.label for g in groups)], rows, flags
    per_run_cells = [{(key, m): c for key, e in r.metrics.items()
                      for m, c in {"checkpoint": _checkpoint(e), **_cells(e)}.items()} for r in runs]
    names = list(dict.fromkeys(n for cells in per_run_cells for n in cells))
    rows = [[f"{key} / {m}", *(cells.get((key, m), "—") for cells in per_run_cells)] for key, m in names]
    return ["metric", *labels], rows, flags


def _agreed(texts: list[str]) -> str:
    distinct = list(dict.fromkeys(texts))
    return "—" if not distinct else distinct[0] if len(distinct) == 1 else f"{len(distinct)} different"


def row_entry(row: list[str]) -> str:
    """The metrics.json entry a compare row shows (the key of its flags)."""
    return row[0].split(" / ")[0]


def with_flags(header: list[str], rows: list[list[str]], flags: dict[str, list[str]], key_of, column: int,
               fmt: str) -> tuple[list[str], list[list[str]]]:
    """Rows whose scores were made differently: marked ⚠ in text and markdown; in CSV, whose row names scripts
    look up, a last column `protocol_mismatch` with the reasons instead."""
    if fmt == "csv":
        return [*header, "protocol_mismatch"], [[*r, "; ".join(flags.get(key_of(r), []))] for r in rows]
    marked = [list(r) for r in rows]
    for r in marked:
        if key_of(r) in flags:
            r[column] = FLAG + r[column]
    return header, marked


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
