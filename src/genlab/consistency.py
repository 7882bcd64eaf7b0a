"""Settings that are each valid but do not fit together, found before any data is read (and, for what
depends on the run's length in steps, as soon as the data is loaded).

The schema checks one key at a time; these rules look at several. A combination that cannot train
at all is a GenlabError; one that trains but not as its keys suggest is a warning (`genlab train`
logs it before it starts, and into the run's train.log), so an original experiment's deliberate choices
stay runnable. Rules that belong to one objective kind live in its module (ObjectiveEntry.checks); the
ones here hold for every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from genlab.config import RunConfig
from genlab.data.loader import NORMALIZATION
from genlab.data.registry import channels_of
from genlab.errors import GenlabError
from genlab.models import MODELS, output_activation
from genlab.objectives import OBJECTIVES, Plan

# The open interval each output activation can produce; `none` is unbounded and never checked.
ACTIVATION_RANGE = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
# Learning rates outside these are rarely what anyone meant (inclusive bounds are fine).
USUAL_LR = {"adam": (1e-6, 1e-2), "adamw": (1e-6, 1e-2), "sgd": (1e-5, 1.0)}


def check_consistency(cfg: RunConfig) -> list[str]:
    """Warnings for this config, one sentence group each; raises GenlabError for a run that cannot work."""
    return [*_output_range(cfg), *OBJECTIVES[cfg.objective.kind].checks(cfg), *_learning_rates(cfg)]


def check_plan(cfg: RunConfig, plan: Plan) -> list[str]:
    """Warnings that need the run's length in steps (known once the data is loaded): ramps longer than the run."""
    return OBJECTIVES[cfg.objective.kind].plan_checks(cfg, plan)


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
    if cfg.data is None:  # a prior run before set-up: its data section is the first run's, not yet read
        return []
    name = cfg.model.name
    activation = output_activation(name, cfg.model.kwargs())
    if activation not in ACTIVATION_RANGE:
        return []
    normalize = cfg.data.normalize
    fit = range_fit(activation, normalize, channels_of(cfg.data))
    lo, hi = ACTIVATION_RANGE[activation]
    fixed = name in MODELS and MODELS[name].output_activation is not None
    key = (f"the {name} generator's fixed {activation.capitalize()} output" if fixed
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
        fix = ("data.normalize: minus_one_one" if fixed
               else "data.normalize: minus_one_one with tanh, or model.output_activation: none")
        return [f"{cannot}. Use {fix}."]
    if fit.wasted > 0.01:
        fix = ("data.normalize: minus_one_one" if fixed
               else "data.normalize: minus_one_one, or model.output_activation: sigmoid")
        return [f"{where}: {fit.wasted:.0%} of its output range is never a pixel value, and an output there "
                f"is clipped to black. Use {fix}."]
    return []


def _learning_rates(cfg: RunConfig) -> list[str]:
    o = cfg.optim
    low, high = USUAL_LR[o.name]
    keys = OBJECTIVES[cfg.objective.kind].learning_rates(o)
    out = []
    for key, lr in keys.items():
        if low <= lr <= high:
            continue
        effect = ("steps this large usually diverge (a NaN loss) or wreck what was learnt" if lr > high
                  else "steps this small barely move the weights")
        out.append(f"{key} = {lr:g} is far outside the usual range for optim.name {o.name!r} ({low:g} to {high:g}): "
                   f"{effect}. Check for a misplaced exponent.")
    return out
