"""`genlab results`: the seed settings against the recommended configs, one table, read from run folders.

Each experiment names its two run folders (the `name:` of its seed and recommended configs), the
figures that judge it and the target the recommended config must reach. Every value is read from
what training and `genlab eval` stored (history.csv, metrics.json, train.log); nothing is recomputed,
so the table is exactly as trustworthy as the run folders, and a run that is absent shows a dash.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from genlab.objectives.adversarial import COLLAPSE_WARNING
from genlab.report import RunInfo, read_run

GAN_WARNING = re.compile(re.escape(COLLAPSE_WARNING))

Value = Callable[[RunInfo], float | None]


def _last_epoch_row(run: RunInfo, split: str) -> dict | None:
    rows = [r for r in run.history if r.get("scope") == "epoch" and r.get("split") == split]
    return rows[-1] if rows else None


def _number(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def history_value(column: str, split: str = "val") -> Value:
    """The last end-of-epoch value of a history column."""
    def get(run: RunInfo) -> float | None:
        row = _last_epoch_row(run, split)
        return _number(row.get(column)) if row else None
    return get


def metric_value(entry: str, key: str) -> Value:
    def get(run: RunInfo) -> float | None:
        e = run.metrics.get(entry)
        return _number(e.get(key)) if isinstance(e, dict) else None
    return get


def first_of(*getters: Value) -> Value:
    """The first getter that finds a value: e.g. a stored score, else the history's last epoch."""
    def get(run: RunInfo) -> float | None:
        return next((v for v in (g(run) for g in getters) if v is not None), None)
    return get


def wall_seconds(run: RunInfo) -> float | None:
    """Training wall time as the history recorded it (cumulative over resumptions)."""
    return max((_number(r.get("seconds")) or 0.0 for r in run.history), default=None)


def epochs_done(run: RunInfo) -> float | None:
    row = _last_epoch_row(run, "val")
    return _number(row["epoch"]) + 1 if row else None


def warning_count(pattern: re.Pattern) -> Value:
    def get(run: RunInfo) -> float | None:
        log = run.run.log
        return float(len(pattern.findall(log.read_text(errors="replace")))) if log.is_file() else None
    return get


@dataclass(frozen=True)
class Measure:
    label: str
    value: Value
    fmt: str = "{:.4g}"
    # A check of the recommended run's value, and the target in words; None: reported, not judged.
    target: Callable[[float], bool] | None = None
    target_text: str = ""
    # A check of the recommended run's value against the seed run's (both needed to judge).
    beats_seed: Callable[[float, float], bool] | None = None


@dataclass(frozen=True)
class Experiment:
    title: str
    seed_run: str
    recommended_run: str
    measures: tuple[Measure, ...]


COMMON = (Measure("epochs", epochs_done, "{:.0f}"), Measure("training wall time (s)", wall_seconds, "{:.0f}"))

EXPERIMENTS = (
    Experiment("β-VAE, cat faces 64×64", "betavae_cats_b10", "betavae_cats_recommended", COMMON + (
        Measure("held-out SSIM", metric_value("reconstruction_heldout", "ssim_mean"), "{:.3f}",
                lambda v: v >= 0.50, "≥ 0.50"),
        Measure("held-out PSNR (dB)", metric_value("reconstruction_heldout", "psnr_mean"), "{:.2f}"),
        Measure("active units", first_of(metric_value("latent_usage", "active_units"),
                                         history_value("active_units")), "{:.0f}", lambda v: v >= 10, "≥ 10"),
        Measure("KL per image (nats)", first_of(metric_value("latent_usage", "kl_total"), history_value("kl")),
                "{:.1f}"),
    )),
    Experiment("Denoising AE, Fashion-MNIST", "dae_fashion_mnist", "dae_fashion_mnist_recommended", COMMON + (
        Measure("test MSE, noisy → clean, [-1, 1]", history_value("recon"), "{:.5f}",
                lambda v: v <= 0.0186, "≤ 0.0186"),
    )),
    Experiment("Conditional GAN, MNIST", "cgan_mnist", "cgan_mnist_recommended", COMMON + (
        Measure("mean class accuracy", metric_value("class_accuracy", "class_accuracy_mean"), "{:.4f}",
                lambda v: v >= 0.98, "≥ 0.98"),
        Measure("worst class accuracy", metric_value("class_accuracy", "worst_class_accuracy"), "{:.4f}",
                lambda v: v >= 0.95, "≥ 0.95"),
        Measure("FD-mnist-classifier", metric_value("fd_mnist_classifier", "fd"), "{:.2f}"),
    )),
    Experiment("DCGAN, anime faces 64×64", "dcgan_anime64", "dcgan_anime64_recommended", COMMON + (
        Measure("fd_randconv (lower is better)", metric_value("fd_randconv", "fd_randconv"), "{:.3f}",
                beats_seed=lambda rec, seed: rec < seed, target_text="below the seed's"),
        Measure("collapse warnings", warning_count(GAN_WARNING), "{:.0f}", lambda v: v == 0, "0"),
    )),
)


def _read(root: Path, name: str) -> RunInfo | None:
    path = root / name
    return read_run(path) if (path / "config.yaml").is_file() else None


def results_rows(root: Path) -> tuple[list[str], list[list[str]]]:
    """One row per experiment and measure: seed value, recommended value, target, reached or not."""
    header = ["experiment", "measure", "seed settings", "recommended", "target", "reached"]
    rows: list[list[str]] = []
    for exp in EXPERIMENTS:
        seed, rec = _read(root, exp.seed_run), _read(root, exp.recommended_run)
        for m in exp.measures:
            sv = m.value(seed) if seed else None
            rv = m.value(rec) if rec else None
            if m.beats_seed is not None:
                reached = "—" if rv is None or sv is None else ("yes" if m.beats_seed(rv, sv) else "no")
            else:
                reached = "" if m.target is None else ("—" if rv is None else ("yes" if m.target(rv) else "no"))
            rows.append([exp.title, m.label, "—" if sv is None else m.fmt.format(sv),
                         "—" if rv is None else m.fmt.format(rv), m.target_text, reached])
    return header, rows
