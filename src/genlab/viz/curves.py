"""Loss curves and the per-epoch loss table, read from a run's history.csv alone."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from genlab.history import FIXED, read_history  # noqa: E402
from genlab.io import atomic_write
from genlab.viz.grids import save_figure  # noqa: E402

LABELS = {"d_real": "mean D(x)", "d_fake": "mean D(G(z))", "loss_d": "D loss", "loss_g": "G loss",
          "loss_d_real": "D loss on real", "loss_d_fake": "D loss on fake", "recon": "reconstruction",
          "kl": "KL divergence (nats)", "fd_randconv": "FD-randconv (proxy)",
          "active_units": "active latent units (A_u > 0.01)", "kl_dims_max": "largest KL of one dimension (nats)",
          "critic_real": "mean critic score, real", "critic_fake": "mean critic score, generated",
          "wasserstein_estimate": "critic's Wasserstein-1 estimate", "gradient_penalty": "gradient penalty"}


def terms_of(rows: list[dict[str, str]]) -> list[str]:
    return [k for k in rows[0] if k not in FIXED] if rows else []


def _series(rows, scope: str, split: str, term: str) -> tuple[list[int], list[float]]:
    xs, ys = [], []
    for r in rows:
        if r["scope"] == scope and r["split"] == split and r.get(term) not in (None, ""):
            xs.append(int(r["step"]))
            ys.append(float(r[term]))
    return xs, ys


def y_axis(values: list[float]) -> tuple[str, tuple[float, float] | None]:
    """How a panel shows a term over the whole run: a linear axis, or a log axis when the term is positive and
    spans more than two decades (a reconstruction sum that starts at 230,000 and settles near 2,000 flattens
    every later step on a linear axis), or a linear axis limited to the 2nd-98th percentile when a few early
    values dwarf the rest of a term that is not positive (a ylim; the clipped points are off the panel)."""
    finite = sorted(v for v in values if math.isfinite(v))
    if len(finite) < 3:
        return "linear", None
    lo, hi = finite[0], finite[-1]
    if lo > 0 and hi / lo > 100:
        return "log", None
    p2, p98 = finite[int(0.02 * (len(finite) - 1))], finite[int(math.ceil(0.98 * (len(finite) - 1)))]
    spread = p98 - p2
    if spread > 0 and (hi - p98 > 3 * spread or p2 - lo > 3 * spread):
        pad = 0.1 * spread
        return "linear", (p2 - pad, p98 + pad)
    return "linear", None


def loss_curves_figure(history: Path, path: Path, title: str = "", units: dict[str, str] | None = None,
                       note: str | None = None) -> Path:
    """One panel per logged term: train per step (thin), train and validation per epoch (markers).
    units: each term's unit, on its y axis; note: how training terms differ from validation ones, under the
    panels (the objective's train_note), so a reader does not take a warm-up's rise for a fault."""
    import textwrap

    units = units or {}
    rows = read_history(history)
    terms = terms_of(rows)
    cols = min(3, len(terms))
    nrows = math.ceil(len(terms) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, term in zip(axes.flat, terms):
        xs, ys = _series(rows, "step", "train", term)
        every = [float(r[term]) for r in rows if r.get(term) not in (None, "")]
        if xs:
            ax.plot(xs, ys, lw=0.6, alpha=0.45, color="tab:blue", label="train (per step)")
        for scope, split, style, label in (("epoch", "train", "o-", "train (epoch mean)"),
                                           ("epoch", "val", "s-", "validation (epoch)"),
                                           ("eval", "val", "^", "validation (every N steps)")):
            xs, ys = _series(rows, scope, split, term)
            if xs:
                ax.plot(xs, ys, style, ms=3.5, lw=1.2, label=label,
                        color="tab:blue" if split == "train" else "tab:orange")
        scale, limits = y_axis(every)
        panel = LABELS.get(term, term)
        if scale == "log":
            ax.set_yscale("log")
            panel += "\n(log scale)"
        elif limits is not None:
            ax.set_ylim(*limits)
            panel += "\n(2nd-98th percentile; early outliers cut)"
        if every and all(float(v).is_integer() for v in every):
            if max(every) - min(every) < 2:  # a constant count: matplotlib would pad it with fractional ticks
                ax.set_ylim(min(every) - 1, max(every) + 1)
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts (active units) get whole ticks
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("training step")
        ax.set_ylabel("\n".join(textwrap.wrap(f"{term} ({units[term]})" if term in units else term, 34)),
                      fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(terms):]:
        ax.axis("off")
    fig.suptitle(title or f"Loss terms from {history.name}", fontsize=11)
    if note:
        lines = textwrap.wrap(note, 50 * cols)
        height = fig.get_size_inches()[1]
        fig.text(0.01, 0.04 / height, "\n".join(lines), fontsize=9, color="#333", va="bottom", ha="left")
        return save_figure(fig, path, rect=(0, (0.18 * len(lines) + 0.1) / height, 1, 1))
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
