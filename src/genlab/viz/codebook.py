"""code_usage.png: how often each code of a quantized posterior's codebook (a VQ-VAE's) is chosen over
held-out images, sorted, with the codes never chosen counted, so a reader sees at once whether the codebook
is used evenly, by a few codes, or mostly dead."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from genlab.viz.grids import save_figure  # noqa: E402


def code_usage_figure(counts: list[int], perplexity: float, n_images: int, path: Path, title: str = "") -> Path:
    """Bars: the share of grid cells that chose each code, most chosen first; dead codes (never chosen) grey
    at the end. The caption gives codes used, the perplexity and how many images the counts cover."""
    total = max(1, sum(counts))
    order = sorted(range(len(counts)), key=lambda k: -counts[k])
    shares = [counts[k] / total for k in order]
    used = sum(1 for c in counts if c > 0)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    ax.bar(range(len(order)), shares, width=1.0,
           color=["tab:blue" if counts[k] > 0 else "tab:gray" for k in order])
    if used < len(counts):  # dead codes have no bar to see: shade where they are
        ax.axvspan(used - 0.5, len(counts) - 0.5, color="tab:gray", alpha=0.25,
                   label=f"{len(counts) - used} dead codes (never chosen)")
    ax.axhline(1 / len(counts), color="tab:red", lw=0.8, ls="--", label="uniform use (1/K)")
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_xlabel("codes, most chosen first")
    ax.set_ylabel("share of grid cells")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{title + ': ' if title else ''}{used} of {len(counts)} codes used over {n_images} held-out "
                 f"images, perplexity {perplexity:.3g}", fontsize=10)
    return save_figure(fig, path)
