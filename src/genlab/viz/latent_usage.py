"""kl_per_dim.png: how many latent dimensions a VAE uses, from its run folder alone (latent_stats.json and
history.csv), so the figure shows what training measured and needs no model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from genlab.viz.grids import save_figure  # noqa: E402

LABELLED_DIMS = 32  # above this many bars, dimension indices would not be readable


def active_units_per_epoch(rows: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """(1-based epoch, active units) of every end-of-epoch validation row that has the count."""
    epochs, counts = [], []
    for r in rows:
        if r["scope"] == "epoch" and r["split"] == "val" and r.get("active_units") not in (None, ""):
            epochs.append(int(r["epoch"]) + 1)
            counts.append(round(float(r["active_units"])))
    return epochs, counts


def kl_per_dim_figure(stats: dict[str, Any], rows: list[dict[str, str]], path: Path, title: str = "") -> Path:
    """Left: the KL of each latent dimension, sorted, active ones (A_u above the threshold) in colour.
    Right: active units at each epoch end, against the latent size and the warning line at half of it."""
    kl, variance = stats["kl_per_dim"], stats["mean_variance"]
    threshold, d = stats.get("threshold", 0.01), len(kl)
    order = sorted(range(d), key=lambda i: -kl[i])
    active = [variance[i] > threshold for i in order]
    fig, (bars, counts) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [3, 2]})
    bars.bar(range(d), [kl[i] for i in order], width=0.85,
             color=["tab:blue" if a else "tab:gray" for a in active])
    if d <= LABELLED_DIMS:
        bars.set_xticks(range(d), [str(i) for i in order], fontsize=7)
    bars.set_xlabel(f"latent dimension, sorted by KL (blue: active, A_u > {threshold:g}; gray: inactive)")
    bars.set_ylabel("KL (nats, mean over images)")
    bars.set_title(f"KL per dimension after epoch {stats.get('epoch', 0) + 1} (step {stats.get('step', '?')}): "
                   f"{sum(active)} of {d} active, {sum(kl):.3g} nats in all", fontsize=10)
    bars.grid(axis="y", alpha=0.3)
    epochs, units = active_units_per_epoch(rows)
    if epochs:
        counts.plot(epochs, units, "o-", color="tab:blue", ms=4, label="active units")
    else:
        counts.text(0.5, 0.5, "no end-of-epoch counts in history.csv", ha="center", va="center",
                    transform=counts.transAxes, fontsize=9, color="gray")
    counts.axhline(d, color="gray", ls="--", lw=1, label=f"latent_dim = {d}")
    counts.axhline(d / 2, color="tab:red", ls=":", lw=1.2, label="warning below half")
    counts.set_ylim(-0.5, d + max(0.5, d * 0.05))
    counts.xaxis.set_major_locator(MaxNLocator(integer=True))
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    counts.set_xlabel("epoch")
    counts.set_ylabel("active units")
    counts.set_title("Active units at each epoch end (validation set)", fontsize=10)
    counts.grid(alpha=0.3)
    counts.legend(fontsize=7, loc="best")
    fig.suptitle(title or "Latent usage", fontsize=11)
    return save_figure(fig, path)
