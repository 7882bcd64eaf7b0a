"""Which prior to sample a trained VAE from: N(0, I) against Gaussian mixtures fitted to its training codes.

One trained run, one decoder: only the distribution the codes are drawn from changes, so the difference in
sample quality is the prior's alone. For each prior it prints `genlab eval`'s fd_randconv (samples against
the held-out images, same count, same seed and extractor) and the mixture's mean log-likelihood of the
held-out images' codes (higher: the mixture describes codes of images it never saw; a mixture that only
memorised the training codes scores low here).

    python bench/prior_choice.py RUN_DIR                 # N(0, I), 1, 4 and 10 components
    python bench/prior_choice.py RUN_DIR --components 1,10 --samples 750

Nothing in the run folder changes: scores are computed in memory and not written to metrics.json.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch

from genlab.data.loader import BatchLoader
from genlab.device import select_device
from genlab.metrics.context import Context, EvalSettings
from genlab.metrics.registry import METRICS
from genlab.models.priors import GaussianMixturePrior, StandardNormal
from genlab.objectives.code_prior import training_codes
from genlab.run import load_run


def heldout_loglik(prior: torch.nn.Module, codes: torch.Tensor) -> float:
    """Mean log-density of codes under the prior, per code."""
    if isinstance(prior, GaussianMixturePrior) and bool(prior.fitted):
        from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

        dist = MixtureSameFamily(Categorical(probs=prior.weights.double()),
                                 MultivariateNormal(prior.means.double(), scale_tril=prior.scale_tril.double()))
    else:
        from torch.distributions import Independent, Normal

        dist = Independent(Normal(torch.zeros(codes.shape[1], dtype=torch.float64), 1.0), 1)
    return float(dist.log_prob(codes.double()).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--components", default="1,4,10", help="mixture sizes to compare with N(0, I)")
    ap.add_argument("--samples", type=int, default=2400, help="generated and held-out images (fewer if fewer)")
    ap.add_argument("--which", default="best", choices=["best", "last"])
    args = ap.parse_args()
    loaded = load_run(args.run, args.which)
    device = select_device("auto")
    model = loaded.model.to(device).eval()
    data = loaded.data

    def codes_of(images) -> torch.Tensor:
        loader = BatchLoader(images, None, batch_size=128, shuffle=False, seed=0, normalizer=data.normalizer,
                             device=device)
        return training_codes(model, loader)

    train_codes, val_codes = codes_of(data.train.images), codes_of(data.val.images)
    print(f"{args.run}: {len(train_codes)} training codes, {len(val_codes)} held-out codes, "
          f"latent {train_codes.shape[1]}; samples {min(args.samples, len(data.val))}\n")
    print(f"{'prior':24s} {'fd_randconv':>11s} {'held-out log p(z)':>18s} {'fit s':>6s}")
    priors: list[tuple[str, torch.nn.Module]] = [("N(0, I)", StandardNormal(int(model.latent_dim)))]
    priors += [(f"mixture, {k} component{'s' if k > 1 else ''}", GaussianMixturePrior(int(model.latent_dim), k))
               for k in (int(c) for c in args.components.split(","))]
    for label, prior in priors:
        t = time.perf_counter()
        if isinstance(prior, GaussianMixturePrior):
            prior.fit(train_codes, seed=0)
        fit_s = time.perf_counter() - t
        variant = copy.copy(loaded)
        trial = copy.deepcopy(model)
        trial.prior = prior.to(device)
        variant.model = trial
        ctx = Context(variant, EvalSettings(samples=args.samples), device)
        fd = METRICS["fd_randconv"].compute(ctx)["fd_randconv"].values["fd_randconv"]
        print(f"{label:24s} {fd:11.4f} {heldout_loglik(prior, val_codes):18.1f} {fit_s:6.1f}")


if __name__ == "__main__":
    main()
