"""Settings that are each valid but do not fit together, found before any data is read.

The schema checks one key at a time; these rules look at several. A combination that cannot train
at all is a GenlabError; one that trains but not as its keys suggest is a warning (`genlab train`
logs it before it starts, and into the run's train.log), so a seed's deliberate choices stay runnable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from genlab.config import RunConfig
from genlab.data.loader import NORMALIZATION
from genlab.data.sources import channels_of
from genlab.errors import GenlabError
from genlab.models import FIXED_OUTPUT_ACTIVATION, VARIATIONAL, output_activation

# The open interval each output activation can produce; `none` is unbounded and never checked.
ACTIVATION_RANGE = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
# Learning rates outside these are rarely what anyone meant (inclusive bounds are fine).
USUAL_LR = {"adam": (1e-6, 1e-2), "adamw": (1e-6, 1e-2), "sgd": (1e-5, 1.0)}


def check_consistency(cfg: RunConfig) -> list[str]:
    """Warnings for this config, one sentence group each; raises GenlabError for a run that cannot work."""
    return [*_output_range(cfg), *_reduction(cfg), *_learning_rates(cfg)]


@dataclass(frozen=True)
class RangeFit:
    unreachable: float  # share of the [0, 1] pixel range the activation cannot produce (channel mean)
    wasted: float  # share of the activation's own range that no pixel value maps to (channel mean)
    data_range: tuple[float, float]  # normalised values of black and white, widest channel
    reachable_pixels: tuple[float, float]  # the pixel values (in [0, 1]) it can produce, channel mean


def range_fit(activation: str, normalize: str, channels: int) -> RangeFit:
    """How an activation's output interval covers the normalised pixel range x' = (x - mean) / std."""
    lo, hi = ACTIVATION_RANGE[activation]
    mean, std = NORMALIZATION[normalize]
    if len(mean) == 3 and channels == 1:  # as the Normalizer does for gray images
        mean, std = (sum(mean) / 3,), (sum(std) / 3,)
    unreachable, wasted, pix_lo, pix_hi, data_lo, data_hi = [], [], [], [], [], []
    for m, s in zip(mean, std):
        a, b = max(0.0, m + lo * s), min(1.0, m + hi * s)  # pixel values the activation reaches
        unreachable.append(1.0 - max(0.0, b - a))
        black, white = -m / s + 0.0, (1 - m) / s  # + 0.0: no "-0.00" in messages
        wasted.append(1.0 - max(0.0, min(hi, white) - max(lo, black)) / (hi - lo))
        pix_lo.append(a)
        pix_hi.append(b)
        data_lo.append(black)
        data_hi.append(white)
    n = len(mean)
    return RangeFit(sum(unreachable) / n, sum(wasted) / n, (min(data_lo), max(data_hi)),
                    (sum(pix_lo) / n, sum(pix_hi) / n))


def _output_range(cfg: RunConfig) -> list[str]:
    name = cfg.model.name
    activation = output_activation(name, cfg.model.kwargs())
    if activation not in ACTIVATION_RANGE:
        return []
    normalize = cfg.data.normalize
    fit = range_fit(activation, normalize, channels_of(cfg.data))
    lo, hi = ACTIVATION_RANGE[activation]
    key = (f"the {name} generator's fixed {activation.capitalize()} output" if name in FIXED_OUTPUT_ACTIVATION
           else f"model.output_activation {activation!r}")
    where = (f"{key} produces values in ({lo:g}, {hi:g}), but data.normalize {normalize!r} puts pixels in "
             f"[{fit.data_range[0]:.2f}, {fit.data_range[1]:.2f}]")
    if fit.unreachable > 0.01:
        low, high = fit.reachable_pixels
        sides = [f"darker than about {low:.2f}" if low > 0.005 else "",
                 f"brighter than about {high:.2f}" if high < 0.995 else ""]
        cannot = (f"{where}: it cannot produce {fit.unreachable:.0%} of the pixel range, so pixels "
                  f"{' or '.join(x for x in sides if x)} (in [0, 1] units) are clipped in every output")
        if activation == "sigmoid":
            raise GenlabError(f"{cannot}, and the run cannot learn them. Set data.normalize: zero_one with a "
                              f"sigmoid, or model.output_activation: tanh with data.normalize: minus_one_one.")
        fix = ("data.normalize: minus_one_one" if name in FIXED_OUTPUT_ACTIVATION
               else "data.normalize: minus_one_one with tanh, or model.output_activation: none")
        return [f"{cannot}. Use {fix}."]
    if fit.wasted > 0.01:
        fix = ("data.normalize: minus_one_one" if name in FIXED_OUTPUT_ACTIVATION
               else "data.normalize: minus_one_one, or model.output_activation: sigmoid")
        return [f"{where}: {fit.wasted:.0%} of its output range is never a pixel value, and an output there "
                f"is clipped to black. Use {fix}."]
    return []


def _reduction(cfg: RunConfig) -> list[str]:
    o = cfg.objective
    if cfg.model.name not in VARIATIONAL or o.kind != "reconstruction" or o.reduction != "mean":
        return []
    c, s = channels_of(cfg.data), cfg.data.image_size
    d = c * s * s
    scale = (f"objective.reduction 'mean' averages the reconstruction error over the C·H·W = {c}·{s}·{s} = {d:,} "
             f"values of an image while the KL stays a per-image sum, so the KL weighs {d:,} times more than")
    if o.capacity_max is not None:
        return [f"{scale} objective.gamma = {o.gamma:g} says: in the per-image scale of Burgess et al. 2018 "
                f"(reduction: sum) this is gamma = {o.gamma * d:.4g}. For gamma as in the paper, use "
                f"objective.reduction: sum."]
    weight = o.beta * o.kld_weight
    effective = weight * d
    if math.isclose(effective, 1.0, rel_tol=1e-6):  # the textbook VAE, divided by C·H·W
        return []
    return [f"{scale} beta · kld_weight = {o.beta:g} · {o.kld_weight:g} = {weight:.4g} says: in the per-image "
            f"scale of Higgins et al. 2017 (reduction: sum) this is beta = {effective:.4g}. For beta as in the "
            f"paper, use objective.reduction: sum and set objective.beta with kld_weight 1."]


def _learning_rates(cfg: RunConfig) -> list[str]:
    o = cfg.optim
    low, high = USUAL_LR[o.name]
    keys: dict[str, float] = {}
    if cfg.objective.kind == "adversarial":
        keys.update({k: v for k, v in (("optim.lr_g", o.lr_g), ("optim.lr_d", o.lr_d)) if v is not None})
        if o.lr_g is None or o.lr_d is None:  # lr is the rate of G or D
            keys["optim.lr"] = o.lr
    else:
        keys["optim.lr"] = o.lr
    out = []
    for key, lr in keys.items():
        if low <= lr <= high:
            continue
        effect = ("steps this large usually diverge (a NaN loss) or wreck what was learnt" if lr > high
                  else "steps this small barely move the weights")
        out.append(f"{key} = {lr:g} is far outside the usual range for optim.name {o.name!r} ({low:g} to {high:g}): "
                   f"{effect}. Check for a misplaced exponent.")
    return out
