"""history.csv: one row per logged step and per epoch, train and validation, every loss term.

Rows are appended and flushed as training goes, so a killed run keeps its history; on resume the
rows past the checkpoint's step are dropped first, so no step is lost or counted twice.
"""

from __future__ import annotations

import csv
from pathlib import Path

from genlab.io import atomic_write

FIXED = ["scope", "split", "epoch", "step", "images", "seconds"]


class History:
    def __init__(self, path: Path):
        self.path = path
        self.columns: list[str] | None = None
        self._file = None
        self._writer = None
        # Called with write()'s arguments after each row is on disk (e.g. a live TensorBoard view).
        self.listeners: list = []

    def _read_header(self) -> None:
        """The file is only read once it is used, so a History can be made before its run folder."""
        if self.columns is None and self.path.is_file() and self.path.stat().st_size:
            with self.path.open(newline="") as f:
                self.columns = next(csv.reader(f), None)

    def truncate_after(self, step: int, ended_step: int, reopened_epoch: int | None = None) -> None:
        """Keep the rows a checkpoint at `step` already covers (epoch rows: up to the last end-of-epoch
        evaluation it recorded, `ended_step`, except those of an epoch that is being reopened);
        rewrite atomically."""
        if not self.path.is_file():
            return
        self._read_header()
        with self.path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        keep = [r for r in rows if _covered(r, step, ended_step)
                and not (r["scope"] == "epoch" and reopened_epoch is not None and int(r["epoch"]) == reopened_epoch)]
        def write(tmp: Path) -> None:
            with tmp.open("w", newline="") as f:
                if self.columns:
                    w = csv.DictWriter(f, self.columns)
                    w.writeheader()
                    w.writerows(keep)

        atomic_write(self.path, write)

    def write(self, scope: str, split: str, epoch: int, step: int, images: int, seconds: float,
              terms: dict[str, float]) -> None:
        row = {"scope": scope, "split": split, "epoch": epoch, "step": step, "images": images,
               "seconds": round(seconds, 3), **{k: f"{v:.6g}" for k, v in terms.items()}}
        self._read_header()
        if self.columns is not None and not set(row) <= set(self.columns):
            self._add_columns([k for k in row if k not in self.columns])
        if self._writer is None:
            new = self.columns is None or not self.path.is_file() or self.path.stat().st_size == 0
            if self.columns is None:
                self.columns = FIXED + list(terms)
            self._file = self.path.open("a", newline="")
            self._writer = csv.DictWriter(self._file, self.columns, extrasaction="ignore")
            if new:
                self._writer.writeheader()
        self._writer.writerow(row)
        self._file.flush()
        for listener in self.listeners:
            listener(scope, split, epoch, step, images, seconds, terms)

    def _add_columns(self, new: list[str]) -> None:
        """A term seen for the first time (e.g. a validation-only score): widen the header once."""
        self.close()
        rows = read_history(self.path) if self.path.is_file() else []
        self.columns = [*self.columns, *new]
        def write(tmp: Path) -> None:
            with tmp.open("w", newline="") as f:
                w = csv.DictWriter(f, self.columns)
                w.writeheader()
                w.writerows(rows)

        atomic_write(self.path, write)

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = self._writer = None


def _covered(row: dict[str, str], step: int, ended_step: int) -> bool:
    if row["scope"] == "epoch":  # written by an end-of-epoch evaluation, before its checkpoint
        return int(row["step"]) <= ended_step
    return int(row["step"]) <= step


def read_history(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
