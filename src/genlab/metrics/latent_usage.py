"""Which latent dimensions a VAE uses: KL per dimension and active units (Burda et al. 2016, sec. 5.2).

A collapsed dimension has a posterior equal to the prior for every image: its KL is ~0 and its
posterior mean does not move with the input. Burda et al. count a unit u as active when
A_u = Var_x(E_q[z_u | x]) > 0.01, the variance over the data of the posterior mean. The total KL
alone cannot tell "a few dimensions carry everything" from "all carry a little"; these two can.

Only models whose posterior has a log-variance have a KL to split; a plain AE gets None.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from genlab import __version__
from genlab.errors import GenlabError
from genlab.io import atomic_write
from genlab.losses import kl_per_dimension
from genlab.metrics.metric import Metric, Score
from genlab.models import output_activation

if TYPE_CHECKING:
    from genlab.config import RunConfig
    from genlab.metrics.context import Context

ACTIVE_THRESHOLD = 0.01  # Burda et al. 2016's threshold on Var_x(E_q[z_u|x])
# Epoch ends in a row with most units inactive before the warning: early on, before the encoder has
# learnt much, a healthy VAE's posterior means vary little too.
COLLAPSE_PATIENCE = 2
# Below this many nats per latent dimension on average, the code says almost nothing about the image
# even when many units pass Burda's test: the β-VAE experiment's original settings keep ~100 of 128 units
# "active" (their means vary by a little more than 0.01) while the KL of all 128 together is ~5 nats.
MIN_KL_PER_DIM = 0.1


@dataclass
class LatentUsage:
    kl_per_dim: list[float]  # mean over the images of each dimension's analytic KL, nats
    mean_variance: list[float]  # A_u: variance over the images of each dimension's posterior mean
    active_units: int
    n_images: int
    threshold: float = ACTIVE_THRESHOLD

    @property
    def latent_dim(self) -> int:
        return len(self.kl_per_dim)

    @property
    def kl_total(self) -> float:
        """The per-image KL summed over dimensions: the `kl` term of the objective, on clean inputs."""
        return sum(self.kl_per_dim)

    def history_terms(self) -> dict[str, float]:
        """The columns this adds to a validation row of history.csv."""
        return {"active_units": self.active_units, "kl_dims_max": max(self.kl_per_dim, default=0.0)}


def latent_usage(means: torch.Tensor, logvars: torch.Tensor, threshold: float = ACTIVE_THRESHOLD) -> LatentUsage:
    """From (N, D) posterior means and log-variances of N images. The variance is the population one
    (divided by N), in float64 so that a large validation set does not lose the small ones."""
    if means.ndim != 2 or means.shape != logvars.shape or means.shape[0] < 1:
        raise ValueError(f"expected (N, D) means and log-variances, N >= 1; got {tuple(means.shape)} and "
                         f"{tuple(logvars.shape)}")
    means64 = means.double()
    variance = means64.var(0, correction=0)
    kl = kl_per_dimension(means64, logvars.double()).mean(0)
    return LatentUsage(kl_per_dim=kl.tolist(), mean_variance=variance.tolist(),
                       active_units=int((variance > threshold).sum()), n_images=means.shape[0], threshold=threshold)


@torch.no_grad()
def measure(model: nn.Module, images: Iterable[torch.Tensor]) -> LatentUsage | None:
    """Posterior statistics of clean (normalised) image batches; None when the posterior has no variance.
    The caller puts the model in eval mode, so batch norm uses its running statistics."""
    means, logvars = [], []
    for x in images:
        post = model.encode(x)
        if post.logvar is None:
            return None
        means.append(post.mean.float().cpu())
        logvars.append(post.logvar.float().cpu())
    if not means:
        return None
    return latent_usage(torch.cat(means), torch.cat(logvars))


def collapse_warning(usage: LatentUsage, cfg: RunConfig, epoch: int, step: int, streak: int = 1, *,
                     ramp_steps: int | None = None) -> str | None:
    """A message when fewer than half the latent dimensions are active, or when the whole code carries
    less than MIN_KL_PER_DIM nats per dimension, with what to try for this config; `streak` is the
    number of epoch ends in a row (this one included) with that finding.

    None for the first `ramp_steps` steps, while the KL weight is still ramping up (the warm-up) or the
    capacity still rising: inactive units are then the schedule's doing, not yet a collapse. Without
    `ramp_steps` the ramp is read from the config's step counts (a ramp given in epochs needs the run's plan)."""
    o = cfg.objective
    if ramp_steps is None:
        ramp_steps = (o.capacity_steps or 10000) if o.capacity_max is not None else o.kl_warmup_steps
    ramp = ramp_steps
    few_active = usage.active_units < usage.latent_dim / 2
    little_information = usage.kl_total < MIN_KL_PER_DIM * usage.latent_dim
    if step < ramp or not (few_active or little_information):
        return None
    when = f"after epoch {epoch + 1}" + (f" ({streak} epoch ends in a row)" if streak > 1 else "")
    active = (f"{usage.active_units} of {usage.latent_dim} latent dimensions are active (variance of the "
              f"posterior mean over {usage.n_images} validation images > {usage.threshold:g})")
    kl = (f"KL {usage.kl_total:.4g} nats per image in all, largest single dimension "
          f"{max(usage.kl_per_dim):.3g}")
    if few_active:
        finding = f"only {active}; {kl}"
    else:
        finding = (f"{kl}: less than {MIN_KL_PER_DIM:g} nats per dimension on average, although {active}; "
                   f"their means vary far less than the posterior's own noise")
    remedies = "; ".join(_remedies(cfg))
    return f"posterior collapse {when}: {finding}. The decoder ignores most of z. Try {remedies}."


def _remedies(cfg: RunConfig) -> list[str]:
    """What to try: first what this config does that favours collapse, then the general remedies."""
    o, activation = cfg.objective, output_activation(cfg.model.name, cfg.model.kwargs())
    first, then = [], []
    if o.reduction == "mean":
        first.append("objective.reduction: sum (per-image likelihood) instead of mean, which weighs the KL C·H·W "
                     "times more than beta says")
    if o.capacity_max is not None:
        then.append(f"a larger objective.capacity_max (now {o.capacity_max:g}) or a smaller objective.gamma "
                    f"(now {o.gamma:g})")
    else:
        (first if o.beta * o.kld_weight > 1 else then).append(
            f"a smaller objective.beta or objective.kld_weight (now {o.beta:g} and {o.kld_weight:g})")
        warm = o.kl_warmup_steps or o.kl_warmup_epochs
        key, now = (("kl_warmup_epochs", f"{o.kl_warmup_epochs:g}") if o.kl_warmup_epochs is not None
                    else ("kl_warmup_steps", str(o.kl_warmup_steps)))
        (first if not warm else then).append(
            f"{'a longer ' if warm else ''}objective.{key} (now {now}), so the decoder learns to use z before the "
            f"KL weighs in")
    matching = {"tanh": "minus_one_one", "sigmoid": "zero_one"}.get(activation or "")
    if matching and cfg.data.normalize != matching:
        first.append(f"data.normalize: {matching} to match model.output_activation {activation!r} (now "
                     f"{cfg.data.normalize})")
    return first + then


# ---------------------------------------------------------------- the run folder's latent_stats.json


def write_stats(path: Path, usage: LatentUsage, *, epoch: int, step: int, warning: str | None) -> None:
    """The latest measurement (per-dimension vectors included) and the warning, if one was given."""
    doc = {**asdict(usage), "latent_dim": usage.latent_dim, "kl_total": usage.kl_total, "epoch": epoch,
           "step": step, "warning": warning, "genlab_version": __version__}
    atomic_write(path, json.dumps(doc, indent=2) + "\n")


def read_stats(path: Path) -> dict[str, Any] | None:
    """latent_stats.json of a run, None when there is none (AE and GAN runs, runs before genlab wrote it)."""
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GenlabError(f"{path} cannot be read as JSON ({exc}); delete it (the next epoch of the run "
                          f"writes it again).") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("kl_per_dim"), list):
        raise GenlabError(f"{path} must hold a JSON object with a kl_per_dim list; delete it (the next epoch "
                          f"of the run writes it again).")
    return doc


# ---------------------------------------------------------------- as a metric of a stored checkpoint


def _applies(ctx: Context) -> str | None:
    return None if ctx.caps.variational else "the model's encoder has no posterior variance (not a VAE)"


def _compute(ctx: Context) -> dict[str, Score]:
    """Active units and KL per dimension of a stored checkpoint, so runs trained before these were logged
    (or another checkpoint than the last epoch's) can be checked for posterior collapse too."""
    from genlab.data import BatchLoader

    loader = BatchLoader(ctx.data.val.images, None, batch_size=ctx.s.batch_size, shuffle=False, seed=ctx.s.seed,
                         normalizer=ctx.data.normalizer, device=ctx.device)
    usage = measure(ctx.model, (b.images for b in loader.batches()))
    if usage is None:
        raise GenlabError("the model's posterior has no variance, so there is no KL to split into dimensions.")
    return {"latent_usage": Score(
        {"active_units": usage.active_units, "latent_dim": usage.latent_dim, "kl_total": usage.kl_total,
         "kl_dims_max": max(usage.kl_per_dim)},
        {"n_images": usage.n_images,
         "protocol": f"posterior means and log-variances of the clean validation images ({usage.n_images}); "
                     f"a unit is active when the variance of its mean over the images exceeds {usage.threshold:g} "
                     f"(Burda et al. 2016); KL per image summed over dimensions, nats"})}


METRIC = Metric(name="latent_usage", summary="active latent units and KL per dimension (posterior collapse)",
                compute=_compute, applies=_applies, at_train_end=True, higher_is_better={"active_units": True},
                units={"kl_total": "nats per image", "kl_dims_max": "nats per image", "active_units": "dimensions",
                       "latent_dim": "dimensions"})
