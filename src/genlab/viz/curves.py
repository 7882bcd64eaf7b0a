"""Loss curves and the per-epoch loss table, read from a run's history.csv alone."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from genlab.history import FIXED, read_history  # noqa: E402
from genlab.io import atomic_write
from genlab.viz.grids import save_figure  # noqa: E402

LABELS = {"d_real": "mean D(x)", "d_fake": "mean D(G(z))", "loss_d": "D loss", "loss_g": "G loss",
          "loss_d_real": "D loss on real", "loss_d_fake": "D loss on fake", "recon": "reconstruction",
          "kl": "KL divergence (nats)", "fd_randconv": "FD-randconv (proxy)",
          "active_units": "active latent units (A_u > 0.01)", "kl_dims_max": "largest KL of one dimension (nats)"}


def terms_of(rows: list[dict[str, str]]) -> list[str]:
    return [k for k in rows[0] if k not in FIXED] if rows else []


def _series(rows, scope: str, split: str, term: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        if r["scope"] == scope and r["split"] == split and r.get(term) not in (None, ""):
            xs.append(int(r["step"]))
            ys.append(float(r[term]))
    return xs, ys


def loss_curves_figure(history: Path, path: Path, title: str = "") -> Path:
    """One panel per logged term: train per step (thin), train and validation per epoch (markers)."""
    rows = read_history(history)
    terms = terms_of(rows)
    cols = min(3, len(terms))
    nrows = math.ceil(len(terms) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, term in zip(axes.flat, terms):
        xs, ys = _series(rows, "step", "train", term)
        if xs:
            ax.plot(xs, ys, lw=0.6, alpha=0.45, color="tab:blue", label="train (per step)")
        for scope, split, style, label in (("epoch", "train", "o-", "train (epoch mean)"),
                                           ("epoch", "val", "s-", "validation (epoch)"),
                                           ("eval", "val", "^", "validation (every N steps)")):
            xs, ys = _series(rows, scope, split, term)
            if xs:
                ax.plot(xs, ys, style, ms=3.5, lw=1.2, label=label,
                        color="tab:blue" if split == "train" else "tab:orange")
        ax.set_title(LABELS.get(term, term), fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel(term)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(terms):]:
        ax.axis("off")
    fig.suptitle(title or f"Loss terms from {history.name}", fontsize=11)
    return save_figure(fig, path)


def epoch_rows(rows: list[dict[str, str]]) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and per-epoch rows (train_<term>, val_<term>) from history rows; shared with the report."""
    terms = terms_of(rows)
    table: dict[int, dict[str, str]] = {}
    for r in rows:
        if r["scope"] == "epoch":
            e = table.setdefault(int(r["epoch"]), {"epoch": str(int(r["epoch"]) + 1), "step": r["step"]})
            e.update({f"{r['split']}_{t}": r[t] for t in terms if r.get(t) not in (None, "")})
    cols = ["epoch", "step"] + [f"{s}_{t}" for s in ("train", "val") for t in terms
                                if any(f"{s}_{t}" in e for e in table.values())]
    return cols, [table[k] for k in sorted(table)]


def epoch_table(history: Path, csv_path: Path, md_path: Path) -> tuple[Path, Path]:
    """Per-epoch train and validation means of every term (the denoising-AE experiment's loss table), as CSV
    and Markdown."""
    columns, ordered = epoch_rows(read_history(history))

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, columns)
            w.writeheader()
            w.writerows(ordered)

    atomic_write(csv_path, write_csv, fsync=False)  # redrawn from history.csv at will: no need to sync
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(e.get(c, "") for c in columns) + " |" for e in ordered]
    atomic_write(md_path, "\n".join(lines) + "\n", fsync=False)
    return csv_path, md_path
