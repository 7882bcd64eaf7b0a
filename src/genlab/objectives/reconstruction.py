"""Reconstruction objective: AE, denoising AE, VAE, β-VAE, capacity-annealed β-VAE, β-TCVAE, FactorVAE and
IWAE in one place.

Whether a KL term exists is decided by the model's posterior (a plain AE has no variance), so one
objective covers the whole autoencoder family without dispatching on model types. Its section is
`objective: {kind: reconstruction, ...}`; its checks look at the settings together (the scale the KL
weight is given in, ramps longer than the run).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from genlab import distributed
from genlab.data import Batch, Normalizer
from genlab.data.registry import channels_of
from genlab.errors import GenlabError
from genlab.losses import add_gaussian_noise, capacity, kl_decomposition, kl_divergence, reconstruction_loss
from genlab.models.latent import Posterior
from genlab.objectives.code_prior import CodePriorFit, fittable_prior
from genlab.objectives.codebook_monitor import CodebookMonitor
from genlab.objectives.contract import BuildContext, Objective, ObjectiveEntry, Plan
from genlab.objectives.factor_tc import FactorTC
from genlab.objectives.latent_monitor import LatentUsageMonitor
from genlab.objectives.likelihood import decoder_likelihood, iw_bound, log_weights
from genlab.objectives.optim import Stepper, build_optimizer
from genlab.sections import OptimConfig, Section

if TYPE_CHECKING:
    from genlab.engine.hook import Hook

DEFAULT_CAPACITY_STEPS = 10000


class ReconstructionConfig(Section):
    kind: Literal["reconstruction"] = "reconstruction"
    recon_loss: Literal["mse", "bce"] = "mse"
    reduction: Literal["mean", "sum"] = Field(
        "sum",
        description="mean: averaged over every pixel (PyTorch-VAE, the β-VAE experiment); "
        "sum: summed over each image's pixels, averaged over the batch (Kingma & Welling)",
    )
    # mse only: the squared error divided by 2·std², i.e. the negative log-likelihood of a Gaussian decoder
    # with this fixed std in data units (constant dropped). null keeps the plain squared error (std 1/√2).
    likelihood_std: float | None = Field(None, gt=0.0)
    beta: float = Field(1.0, ge=0.0)
    kld_weight: float = Field(1.0, ge=0.0)
    noise_std: float = Field(0.0, ge=0.0)
    noise_clip: bool = False
    capacity_max: float | None = Field(None, ge=0.0)
    # The capacity ramp and the KL warm-up, in optimiser steps or in epochs (one of the two).
    capacity_steps: int | None = Field(None, ge=1, description=f"default {DEFAULT_CAPACITY_STEPS}")
    capacity_epochs: float | None = Field(None, gt=0.0)
    gamma: float = Field(1000.0, ge=0.0)
    kl_warmup_steps: int = Field(0, ge=0)
    kl_warmup_epochs: float | None = Field(None, gt=0.0)
    # β-TCVAE (Chen et al. 2018): the KL split into index-code MI, total correlation and dimension-wise KL,
    # weighted α, β, γ; tc_beta is β. null keeps the plain KL.
    tc_beta: float | None = Field(None, ge=0.0)
    mi_weight: float = Field(1.0, ge=0.0)
    dim_kl_weight: float = Field(1.0, ge=0.0)
    # FactorVAE (Kim & Mnih 2018): γ times a discriminator's estimate of the total correlation, on top of the
    # ELBO; the discriminator (factor_d_*) trains with its own Adam after each VAE step. null: no penalty.
    factor_gamma: float | None = Field(None, ge=0.0)
    factor_d_lr: float = Field(1e-4, gt=0.0)
    factor_d_betas: tuple[float, float] = (0.5, 0.9)
    factor_d_hidden: int = Field(1000, ge=1)
    factor_d_layers: int = Field(6, ge=1)
    iw_samples: int = Field(
        1, ge=1, le=5000, description="k > 1: the importance-weighted bound of IWAE (Burda et al. 2016) over k "
        "posterior draws per image, decoder constants included; 1 is the VAE's ELBO with its closed-form KL")

    @model_validator(mode="after")
    def _settings_fit(self) -> ReconstructionConfig:
        if self.likelihood_std is not None and (self.recon_loss != "mse" or self.reduction != "sum"):
            raise ValueError("objective.likelihood_std sets the std of a Gaussian decoder, a per-image likelihood: "
                             "it needs recon_loss: mse and reduction: sum "
                             f"(got recon_loss: {self.recon_loss}, reduction: {self.reduction})")
        if self.kl_warmup_steps and self.kl_warmup_epochs is not None:
            raise ValueError("give the KL warm-up as objective.kl_warmup_steps or objective.kl_warmup_epochs, "
                             f"not both (got {self.kl_warmup_steps} steps and {self.kl_warmup_epochs} epochs)")
        if self.capacity_steps is not None and self.capacity_epochs is not None:
            raise ValueError("give the capacity ramp as objective.capacity_steps or objective.capacity_epochs, "
                             f"not both (got {self.capacity_steps} steps and {self.capacity_epochs} epochs)")
        if self.tc_beta is not None:
            clash = [f"{k} = {v:g}" for k, v in (("beta", self.beta), ("kld_weight", self.kld_weight)) if v != 1.0]
            if clash:
                raise ValueError(f"objective.tc_beta weighs the total correlation of β-TCVAE, which splits the KL "
                                 f"into terms with their own weights (mi_weight, tc_beta, dim_kl_weight); "
                                 f"{' and '.join(clash)} would weigh the whole KL as well: leave them at 1")
            other = "capacity_max" if self.capacity_max is not None else "iw_samples > 1" if self.iw_samples > 1 \
                else None
            if other:
                raise ValueError(f"objective.tc_beta (β-TCVAE) and objective.{other} are different objectives; "
                                 "set one of them")
        if self.factor_gamma is not None:
            other = next((k for k, on in (("tc_beta", self.tc_beta is not None),
                                          ("capacity_max", self.capacity_max is not None),
                                          ("iw_samples > 1", self.iw_samples > 1)) if on), None)
            if other:
                raise ValueError(f"objective.factor_gamma (FactorVAE) and objective.{other} are different "
                                 "objectives; set one of them")
        if self.iw_samples > 1 and self.reduction != "sum":
            raise ValueError(f"objective.iw_samples = {self.iw_samples} weighs per-image likelihoods: it needs "
                             "reduction: sum (got reduction: mean)")
        if self.iw_samples > 1 and self.capacity_max is not None:
            raise ValueError("objective.iw_samples > 1 and objective.capacity_max are two different objectives: "
                             "the importance-weighted bound has no KL term to hold at a capacity; set one of them")
        return self


def warmup_steps(cfg: ReconstructionConfig, plan: Plan) -> int:
    """The KL warm-up in optimiser steps, however it was given."""
    return plan.steps(cfg.kl_warmup_epochs) if cfg.kl_warmup_epochs is not None else cfg.kl_warmup_steps


def capacity_steps(cfg: ReconstructionConfig, plan: Plan) -> int:
    if cfg.capacity_epochs is not None:
        return plan.steps(cfg.capacity_epochs)
    return cfg.capacity_steps or DEFAULT_CAPACITY_STEPS


def ramp_steps(cfg: ReconstructionConfig, plan: Plan) -> int:
    """Steps before the KL term weighs what the config says: the capacity ramp, else the warm-up."""
    return capacity_steps(cfg, plan) if cfg.capacity_max is not None else warmup_steps(cfg, plan)


def with_encoder_terms(terms: dict[str, torch.Tensor], post: Posterior) -> dict[str, torch.Tensor]:
    """The encoder's own weighted losses (a VQ-VAE's commitment term) added to the loss and logged by name,
    and its stats (codebook perplexity) logged beside them: whatever the model regularises itself with
    trains under this objective without a kind of its own."""
    clash = sorted((set(post.losses) | set(post.stats)) & set(terms))
    if clash:
        raise ValueError(f"the encoder's terms {clash} share names with the objective's own {sorted(terms)}")
    loss = terms["loss"]
    for value in post.losses.values():
        loss = loss + value
    return {**terms, "loss": loss, **post.losses, **post.stats}


class Reconstruction(Objective):
    def __init__(self, model: nn.Module, cfg: ReconstructionConfig, optim: OptimConfig, normalizer: Normalizer,
                 plan: Plan | None = None, monitor: Hook | None = None, prior_fit: Hook | None = None):
        if cfg.recon_loss == "bce" and normalizer.kind != "zero_one":
            raise GenlabError(f"objective.recon_loss 'bce' needs targets in [0, 1]: set data.normalize: zero_one "
                              f"(now {normalizer.kind!r}) and model.output_activation: sigmoid.")
        self.model = model
        self.cfg = cfg
        self.noise_clip = normalizer.output_range() if cfg.noise_clip else None
        self.optimizers = {"model": build_optimizer(model.parameters(), optim)}
        if plan is None:  # without a plan, ramps must be given in steps
            if cfg.kl_warmup_epochs is not None or cfg.capacity_epochs is not None:
                raise ValueError("a ramp given in epochs needs the run's plan (steps per epoch)")
            plan = Plan(1, 1)
        self.warmup = warmup_steps(cfg, plan)
        self.capacity_steps = capacity_steps(cfg, plan)
        self.likelihood = decoder_likelihood(cfg) if cfg.iw_samples > 1 else None
        if cfg.tc_beta is not None and not plan.train_images:
            raise ValueError("objective.tc_beta estimates q(z) over the training set: it needs the run's plan "
                             "with the training set's size")
        self.train_images = plan.train_images
        self.factor: FactorTC | None = None
        if cfg.factor_gamma is not None:
            device = next(model.parameters()).device  # the autoencoder family's flat code of latent_dim
            self.factor = FactorTC(model.latent_dim, device, cfg.factor_d_lr, cfg.factor_d_betas, cfg.factor_d_hidden,
                                   cfg.factor_d_layers)
            self.optimizers["tc_discriminator"] = self.factor.optimizer
        # Objective hooks run before the loop's best-checkpoint hook: the best checkpoint holds a prior
        # fitted to its own encoder.
        self._hooks = [h for h in (prior_fit, monitor) if h is not None]

    def hooks(self) -> list[Hook]:
        return list(self._hooks)

    def state_dict(self) -> dict:
        return {"tc_discriminator": self.factor.discriminator.state_dict()} if self.factor else {}

    def load_state_dict(self, state: dict) -> None:
        if self.factor is not None:
            if "tc_discriminator" not in state:
                raise GenlabError("this checkpoint has no FactorVAE discriminator: it was written by a run "
                                  "without objective.factor_gamma")
            self.factor.discriminator.load_state_dict(state["tc_discriminator"])

    def corrupt(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The denoising input: x plus Gaussian noise of std `noise_std` in normalised units."""
        if self.cfg.noise_std <= 0:
            return x
        return add_gaussian_noise(x, self.cfg.noise_std, self.noise_clip, generator)

    def kl_weight(self, step: int) -> float:
        """β · kld_weight, ramped linearly from 0 over the warm-up (Bowman et al. 2016)."""
        w = self.cfg.beta * self.cfg.kld_weight
        if self.warmup:
            w *= min(1.0, step / self.warmup)
        return w

    def _terms(self, batch: Batch, step: int, generator: torch.Generator | None) -> dict[str, torch.Tensor]:
        x = batch.images
        post = self.model.encode(self.corrupt(x, generator))
        if self.likelihood is not None:
            if post.logvar is None:
                raise GenlabError(f"objective.iw_samples = {self.cfg.iw_samples} needs a variational model (an "
                                  "encoder with a variance); this model's codes are points: set iw_samples: 1")
            return self._iw_terms(x, post, step, generator)
        return with_encoder_terms(self._elbo_terms(x, post, step, generator), post)

    def _elbo_terms(self, x: torch.Tensor, post: Posterior, step: int, generator: torch.Generator | None
                    ) -> dict[str, torch.Tensor]:
        z = post.rsample(generator)
        recon = reconstruction_loss(self.model.decode(z), x, self.cfg.recon_loss, self.cfg.reduction)
        if self.cfg.likelihood_std is not None:
            recon = recon / (2 * self.cfg.likelihood_std ** 2)
        if post.logvar is None:
            if self.factor is not None:
                raise GenlabError("objective.factor_gamma (FactorVAE) needs a variational model (an encoder with "
                                  "a variance); this model's codes are points: remove factor_gamma")
            return {"loss": recon, "recon": recon}
        kl = kl_divergence(post.mean, post.logvar)
        if self.factor is not None:
            tc = self.factor.tc(z)
            loss = recon + self.kl_weight(step) * kl + self.cfg.factor_gamma * tc
            return {"loss": loss, "recon": recon, "kl": kl, "tc": tc, self.CODES: z}
        if self.cfg.capacity_max is not None:
            c = capacity(step, self.cfg.capacity_max, self.capacity_steps)
            # |KL - C| of the global batch's mean KL: with several processes each one's |KL_rank - C| would
            # pull in opposite directions near C. The value is global, the gradient stays this shard's.
            kl_global = kl + (distributed.all_reduce_mean(kl.detach()) - kl.detach())
            loss = recon + self.cfg.gamma * (kl_global - c).abs()
            return {"loss": loss, "recon": recon, "kl": kl, "capacity": kl.new_tensor(c)}
        if self.cfg.tc_beta is not None:
            parts = kl_decomposition(z, post.mean, post.logvar, self.train_images)
            weighted = (self.cfg.mi_weight * parts["mi"] + self.cfg.tc_beta * parts["tc"]
                        + self.cfg.dim_kl_weight * parts["dim_kl"])
            return {"loss": recon + self.kl_weight(step) * weighted, "recon": recon, "kl": kl, **parts}
        return {"loss": recon + self.kl_weight(step) * kl, "recon": recon, "kl": kl}

    def _iw_terms(self, x: torch.Tensor, post, step: int, generator: torch.Generator | None
                  ) -> dict[str, torch.Tensor]:
        """IWAE: loss = -log (1/k) Σ w_k; the KL weight (β, warm-up) tempers log p(z) - log q(z | x) in w_k."""
        lw = log_weights(self.model, x, post, self.cfg.iw_samples, self.likelihood, generator)
        loss = -iw_bound(lw.total(self.kl_weight(step))).float().mean()
        return {"loss": loss, "recon": -lw.log_px.mean(), "kl": (lw.log_qz - lw.log_pz).mean()}

    CODES = "_codes"  # FactorVAE's codes, for the discriminator's step; not a loss term

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]:
        terms = self._terms(batch, step, None)
        codes = terms.pop(self.CODES, None)
        stepper.step(terms["loss"], self.optimizers["model"], terms)
        if self.factor is not None:  # Algorithm 2's order: the VAE's update, then the discriminator's
            terms.update(self.factor.step(codes, stepper))
        return {k: v.detach() for k, v in terms.items()}

    @torch.no_grad()
    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        terms = self._terms(batch, 10**12, generator)
        codes = terms.pop(self.CODES, None)
        if self.factor is not None:
            terms.update(self.factor.terms(codes, generator))
        return terms


def build(ctx: BuildContext) -> Reconstruction:
    cfg = ctx.cfg.objective
    if cfg.factor_gamma is not None and not ctx.caps.variational:
        raise GenlabError(f"objective.factor_gamma (FactorVAE) penalises the total correlation of a VAE's codes; "
                          f"model {ctx.caps.name!r} has no variational posterior. Use a VAE model (vae, beta_vae, "
                          f"mlp_vae, ...) or remove factor_gamma")
    monitor: Hook | None = None
    if ctx.caps.variational:
        monitor = LatentUsageMonitor(ctx.cfg, ramp_steps(cfg, ctx.plan))
    elif ctx.caps.latent.quantized:
        from genlab.models import model_arguments

        monitor = CodebookMonitor({**model_arguments(ctx.cfg.model.name), **ctx.cfg.model.kwargs()})
    prior_fit = CodePriorFit(ctx.cfg.train.seed) if fittable_prior(ctx.model) is not None else None
    return Reconstruction(ctx.model, cfg, ctx.cfg.optim, ctx.normalizer, ctx.plan, monitor, prior_fit)


# ---------------------------------------------------------------- settings checked together


def check_reduction(cfg) -> list[str]:
    """reduction: mean with a KL term weighs the KL C·H·W times more than β says: give the β it amounts to."""
    from genlab.models import MODELS

    o, entry = cfg.objective, MODELS.get(cfg.model.name)
    if entry is not None and entry.latent.quantized and o.reduction == "sum":
        c, s = channels_of(cfg.data), cfg.data.image_size
        return [f"objective.reduction 'sum' adds up the reconstruction error over the C·H·W = {c * s * s:,} values "
                f"of an image, while the model's commitment loss is a mean over the code grid's elements (as in "
                f"the VQ-VAE paper's released code), so the commitment weight (model.commitment_beta) counts "
                f"for about {c * s * s:,} times less than it says. Use objective.reduction: mean."]
    if entry is None or not entry.variational or o.reduction != "mean":
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


def check_ramps(cfg, plan: Plan) -> list[str]:
    """A warm-up or capacity ramp longer than the run means the run never trains the objective it states."""
    o = cfg.objective
    # the length the config plans: a train.max_steps cut is a deliberate truncation (a smoke test), not a plan
    total, per_epoch = plan.planned_steps, plan.steps_per_epoch
    run = f"the {total:,} steps this run trains ({total / per_epoch:.3g} epochs of {per_epoch:,} steps)"
    out = []
    ramps = [("kl_warmup", warmup_steps(o, plan), o.kl_warmup_epochs, "the KL weight reaches",
              f"of beta · kld_weight = {o.beta * o.kld_weight:g}")]
    if o.capacity_max is not None:
        ramps = [("capacity", capacity_steps(o, plan), o.capacity_epochs, "the capacity C reaches",
                  f"of capacity_max = {o.capacity_max:g}")]
    for key, steps, epochs, what, of in ramps:
        if steps <= total:
            continue
        given = (f"objective.{key}_epochs = {epochs:g} ({steps:,} steps)" if epochs is not None
                 else f"objective.{key}_steps = {steps:,}")
        suggestion = max(0.1, round(0.2 * total / per_epoch, 1))
        out.append(f"{given} is longer than {run}: {what} only {total / steps:.0%} {of} by the end, so the run "
                   f"never trains the objective its config states. Shorten it, e.g. objective.{key}_epochs: "
                   f"{suggestion:g} (a fifth of the run), or train longer.")
    return out


def term_units(o: ReconstructionConfig) -> dict[str, str]:
    """Units of the logged terms: the reconstruction term is a density in nats only for a stated likelihood."""
    nats = "nats per image"
    if o.iw_samples > 1:
        return {"loss": f"{nats} (the IWAE bound, k = {o.iw_samples})", "recon": f"{nats} (−log p(x | z))",
                "kl": nats}
    if o.reduction == "mean":
        recon = f"mean {'squared error' if o.recon_loss == 'mse' else 'binary cross-entropy'} per pixel value"
    elif o.recon_loss == "bce":
        recon = f"{nats} (Bernoulli −log p(x | z))"
    elif o.likelihood_std is not None:
        recon = f"{nats} (Gaussian σ {o.likelihood_std:g}, constant dropped)"
    else:
        recon = "summed squared error per image"
    in_nats = recon.startswith(nats)
    loss = recon if in_nats else f"{recon} + weighted KL"
    units = {"loss": loss, "recon": recon, "kl": nats, "mi": nats, "tc": nats, "dim_kl": nats, "capacity": nats,
             "active_units": "latent dimensions", "kl_dims_max": nats, "tc_d_loss": "nats (cross-entropy)",
             "tc_d_accuracy": "share of codes told apart",
             # a quantized posterior's own terms (Posterior.losses / stats) and its monitor's columns
             "commitment": "β · mean squared distance of encoder outputs to their codes, per element",
             "perplexity": "codes (exp entropy of one batch's code usage)", "codes_in_batch": "codes",
             "codes_used": "codes (chosen at least once over the validation set)",
             "codes_restarted": "codes", "code_perplexity": "codes (exp entropy of the validation set's usage)"}
    return units


def warmup_note(o: ReconstructionConfig) -> str | None:
    """Training runs step by step under the warm-up's weight, validation at the full one (eval_step's step)."""
    weight = o.beta * o.kld_weight
    if o.capacity_max is not None:
        return ("training loss pulls the KL towards a capacity C that grows over the ramp (Burgess et al. 2018); "
                "validation loss uses the final capacity throughout.")
    ramp = (f"{o.kl_warmup_epochs:g} epochs" if o.kl_warmup_epochs is not None
            else f"{o.kl_warmup_steps:,} steps" if o.kl_warmup_steps else "")
    if not ramp:
        return None
    return (f"training loss weighs the KL by the warm-up's weight, rising from 0 to β·kld_weight = {weight:g} "
            f"over the first {ramp}; validation loss weighs it by {weight:g} throughout. While the warm-up runs, "
            f"a training loss that rises is the weight growing, not the model getting worse.")


ENTRY = ObjectiveEntry(
    kind="reconstruction", config=ReconstructionConfig, build=build, default_best_metric="loss",
    summary="reconstruction error (+ β·KL for VAEs, capacity annealing, denoising noise): the autoencoder family",
    checks=check_reduction, plan_checks=check_ramps,
    input_noise=lambda section: (section.noise_std, section.noise_clip), units=term_units, train_note=warmup_note,
    cpu_bf16=True,  # betavae_cats_recommended and dae_fashion_mnist_recommended, 2 seeds each: README, "Devices"
)
