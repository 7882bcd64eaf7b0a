"""Every figure of a run, from the model and the run folder: at the end of `train` and by `genlab figures`.

    samples.png          fixed-seed samples (one row per class for conditional models)
    reconstructions.png  held-out originals and reconstructions (clean / noisy / denoised for a DAE)
    traversal.png        the most informative latent dimensions swept over [-3, 3] from a held-out image
    traversal_prior.png  the same from z = 0
    interpolation.png    linear and spherical paths between two held-out images' codes
    tsne.png             t-SNE of held-out posterior means, coloured by label when there are labels
    kl_per_dim.png       VAEs: KL per latent dimension (sorted) and active units per epoch, as training measured
    loss_curves.png      every logged term, train and validation, per step and per epoch
    loss_table.csv/.md   per-epoch train and validation means
    trajectory.png       diffusion models: the predicted clean image along the DDIM steps, noise to sample
    code_usage.png       quantized posteriors (VQ-VAE): how often each codebook entry is chosen on held-out images

A figure that does not fit the model (samples from a model that cannot sample, traversals of a code grid) is
skipped with the reason logged, so `genlab figures --only NAME` says why nothing was drawn.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genlab.config import RunConfig
from genlab.data import DataBundle
from genlab.history import read_history
from genlab.metrics.latent_usage import read_stats
from genlab.models import Capabilities, capabilities
from genlab.objectives import OBJECTIVES, input_noise
from genlab.run import RunDir
from genlab.viz import FIGURES
from genlab.viz.curves import epoch_table, loss_curves_figure
from genlab.viz.figures import reconstruction_figure, sample_figure, trajectory_figure
from genlab.viz.latent import (
    dimension_ranking,
    encode_all,
    interpolation_figure,
    traversal_figure,
    traversal_values,
    tsne_figure,
)
from genlab.viz.latent_usage import kl_per_dim_figure

log = logging.getLogger("genlab.figures")


_NOT_FOR_GRIDS = {
    "traversal": "sweeping one coordinate of it shows nothing a reader can name",
    "interpolation": "the points between two codes are not codes the decoder was trained on",
    "tsne": "a map of its flattened grids says little about the images",
}


@torch.no_grad()
def _code_usage(model: nn.Module, val: torch.Tensor, path: Path, title: str) -> Path:
    """The codebook's usage over the held-out images, measured on this checkpoint in eval mode."""
    from genlab.objectives.codebook_monitor import measure
    from genlab.viz.codebook import code_usage_figure

    usage = measure(model, (val[i:i + 256] for i in range(0, len(val), 256)))
    return code_usage_figure(usage.counts, usage.perplexity, usage.n_images, path, title)


@dataclass
class FigureSettings:
    traversal_dims: int = 8
    traversal_steps: int = 7
    traversal_limit: float = 3.0
    interpolation_steps: int = 8
    tsne_points: int = 2000


__all__ = ["FIGURES", "FigureSettings", "render"]


def render(model: nn.Module, data: DataBundle, cfg: RunConfig, run: RunDir,
           only: tuple[str, ...] = FIGURES, settings: FigureSettings | None = None,
           caps: Capabilities | None = None) -> list[Path]:
    """The figures that fit the model (its registry entry says which): samples and curves for every model,
    the latent figures for models with an encoder, traversals only where the latent is a flat N(0, I) code."""
    s = settings or FigureSettings()
    caps = caps or capabilities(cfg.model.name, cfg.model.kwargs(), data.num_classes)
    out = run.figures
    seed = cfg.train.seed
    paths: list[Path] = []
    model.eval()
    if "samples" in only and not caps.can_sample:
        log.info("samples.png skipped: the model cannot draw samples: %s", caps.cannot_sample)
    elif "samples" in only:
        paths.append(sample_figure(model, data.normalizer, out / "samples.png", seed=seed,
                                   num_classes=caps.num_classes, class_names=data.train.class_names,
                                   flat_prior=caps.latent.flat_prior))
    if "loss_curves" in only and run.history.is_file():
        entry = OBJECTIVES[cfg.objective.kind]
        paths.append(loss_curves_figure(run.history, out / "loss_curves.png", title=f"{cfg.name}: loss terms",
                                        units=entry.units(cfg.objective), note=entry.train_note(cfg.objective)))
        paths.extend(epoch_table(run.history, out / "loss_table.csv", out / "loss_table.md"))
    if "trajectory" in only and caps.family == "diffusion":
        paths.append(trajectory_figure(model, data.normalizer, out / "trajectory.png", seed=seed,
                                       num_classes=caps.num_classes))
    if not caps.has_encoder:
        return paths
    device = next(model.parameters()).device
    held_out = data.val.images[: s.tsne_points]  # the latent figures never need more than the t-SNE sample
    val = data.normalizer(torch.from_numpy(held_out).permute(0, 3, 1, 2)).to(device)
    noise_std, noise_clip = input_noise(cfg.objective)
    if "reconstructions" in only:
        paths.append(reconstruction_figure(model, val[:8], data.normalizer, out / "reconstructions.png",
                                           noise_std=noise_std, seed=seed, noise_clip=noise_clip))
    if "code_usage" in only and caps.latent.quantized:
        paths.append(_code_usage(model, val, out / "code_usage.png", f"{cfg.name}"))
    if caps.latent.layout != "vector":  # a code grid or noise: one coordinate, or a path between codes, means nothing
        for name in ("traversal", "interpolation", "tsne"):
            if name in only:
                log.info("%s.png skipped: the model's latent is a %s, not a flat code vector, so %s", name,
                         caps.latent.layout, _NOT_FOR_GRIDS[name])
        return paths
    means, logvars = encode_all(model, val)
    if "traversal" in only and not caps.latent.traversable:
        log.info("traversal.png skipped: the code's prior is %s, not N(0, I), so a sweep over [-3, 3] has no "
                 "meaning", caps.latent.prior)
    if "traversal" in only and caps.latent.traversable:
        order, scores = dimension_ranking(means, logvars)
        k = min(s.traversal_dims, len(order))
        name, ranked = ("KL", "mean KL") if logvars is not None else ("var", "variance of the code")
        values = traversal_values(s.traversal_limit, s.traversal_steps)
        for base, file, where in ((means[:1], "traversal.png", "a held-out image's code"),
                                  (torch.zeros_like(means[:1]), "traversal_prior.png", "z = 0")):
            paths.append(traversal_figure(model, data.normalizer, out / file, base, order[:k], scores[:k], values,
                                          score_name=name, title=f"Latent traversals from {where}: the {k} "
                                                                 f"dimensions with the highest {ranked}"))
    if "interpolation" in only and len(means) >= 2:
        paths.append(interpolation_figure(model, data.normalizer, out / "interpolation.png", means[0], means[1],
                                          steps=s.interpolation_steps))
    if "tsne" in only and len(means) >= 5:
        labels = None if data.val.labels is None else data.val.labels[: len(means)]
        paths.append(tsne_figure(means, labels, data.val.class_names, out / "tsne.png", seed=seed,
                                 max_points=s.tsne_points))
    stats = read_stats(run.latent_stats) if "kl_per_dim" in only else None
    if stats is not None:  # VAEs, once an epoch has ended (what training measured, not this checkpoint)
        rows = read_history(run.history) if run.history.is_file() else []
        paths.append(kl_per_dim_figure(stats, rows, out / "kl_per_dim.png", title=f"{cfg.name}: latent usage"))
    return paths
