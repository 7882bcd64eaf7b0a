"""Adversarial objective for every GAN, in the textbook order of Goodfellow et al. 2014, alg. 1:

1. D on a real batch (target `real_target`, < 1 for one-sided label smoothing, Salimans et al. 2016);
2. D on generated images detached from G (target `fake_target`), then D's optimiser steps;
3. G through the updated D with the non-saturating loss -log D(G(z)) (Goodfellow et al. 2014, sec. 3).

`loss` picks the game (gan_losses: bce, hinge, wasserstein). `gradient_penalty` adds λ·E[(||∇D(x̂)|| - 1)²]
on interpolates to D's loss, and `n_critic` > 1 steps D on that many batches (each fresh real images and
fresh z) per G step, G stepping after the last of them on that batch's z (Algorithm 1 draws a fresh batch
for G; reusing the last one saves a generator pass and changes nothing in expectation): WGAN-GP
(Gulrajani et al. 2017) is `loss: wasserstein, gradient_penalty: 10, n_critic: 5` with Adam(0, 0.9). The
penalty is on D itself, in fp32, without DiffAugment's transforms. An epoch is still one pass
over the real images, so it holds 1/n_critic as many G steps. With n_critic > 1, the logged loss_g is
G's loss on every step's samples as D scored them before its update (the same definition on the
steps where G does not move).

`diffaugment` (Zhao et al. 2020) puts differentiable transforms in front of D for real and generated
images alike, in training only: validation terms and D's own scores judge the images themselves.

A discriminator with an auxiliary classifier (AC-GAN, Odena et al. 2017) adds class cross-entropy,
weighted by `class_loss_weight`, to both losses: D's on real images with their labels and on G's
(detached) images with the labels they were drawn for, G's on its images with those labels. Trained
on real images only, the head is a fixed target G can fool with images no other classifier would
call that class; with G's images in its training, G gains most by drawing unambiguous members of
the class (the bias towards easily classified samples that Shu et al. 2017 describe).

In a bf16 run D's own step stays in fp32 (`d_fp32: own_step`): with D in bf16 the conditional GAN's
generator stopped using its noise (one image per class, recall near 0), while G in bf16 changed nothing,
and D in fp32 on either of its passes restored the variety (README, "Devices"). Its own step is the one
that shapes D's weights; the pass on G's step only carries G's gradient, so it keeps the run's precision.

Split learning rates (optim.lr_g, optim.lr_d) give G and D their own Adam (the anime-faces DCGAN
experiment: G 1e-4, D 2e-4). Generated images for a conditional model use labels drawn uniformly over
the classes. Its section is `objective: {kind: adversarial, ...}`.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from genlab.data import Batch, BatchLoader, Normalizer
from genlab.engine.hook import Hook, StepRecord
from genlab.errors import GenlabError
from genlab.metrics.proxy import NAME as PROXY
from genlab.metrics.proxy import proxy_score
from genlab.models.gan import GAN
from genlab.models.norm_modes import batch_norms, batch_statistics
from genlab.objectives import diffaugment, gan_losses
from genlab.objectives.contract import BuildContext, Objective, ObjectiveEntry
from genlab.objectives.optim import Stepper, build_optimizer
from genlab.sections import OptimConfig, Section

if TYPE_CHECKING:
    from genlab.engine.loop import Loop


class AdversarialConfig(Section):
    kind: Literal["adversarial"] = "adversarial"
    loss: gan_losses.LossName = "bce"
    gradient_penalty: float = Field(0.0, ge=0.0, description="λ of WGAN-GP's penalty on interpolates; 0 is off")
    n_critic: int = Field(1, ge=1, le=100, description="D steps (batches) per G step")
    diffaugment: str = Field("", description="comma-separated DiffAugment policies: color, translation, cutout")
    real_target: float = Field(1.0, gt=0.0, le=1.0, description="one-sided label smoothing: D's target for real")
    fake_target: float = Field(0.0, ge=0.0, lt=1.0)
    # Weight of the auxiliary classifier's cross-entropy (AC-GAN) in D's and G's losses, for a
    # discriminator built with aux_classifier: true; ignored otherwise.
    class_loss_weight: float = Field(1.0, ge=0.0)
    proxy_samples: int = Field(1000, ge=2)
    collapse_check_every: int = Field(50, ge=1)
    collapse_patience: int = Field(5, ge=1)
    d_loss_floor: float = Field(0.01, ge=0.0)
    g_loss_ceiling: float = Field(20.0, gt=0.0)
    stop_on_collapse: bool = False
    # Which of D's passes stay in fp32 in a bf16/fp16 run: "own_step" keeps D's own update (its forward on
    # real and generated images and its backward) out of autocast, "always" also D's pass on G's step,
    # "never" leaves D in the run's precision. The same in fp32 runs. The module's docstring says why.
    d_fp32: Literal["own_step", "always", "never"] = "own_step"

    @field_validator("diffaugment")
    @classmethod
    def _policies(cls, policy: str) -> str:
        try:
            diffaugment.parse(policy)
        except GenlabError as exc:
            raise ValueError(str(exc).removeprefix("objective.diffaugment: ")) from None
        return policy

    @model_validator(mode="after")
    def _targets_need_bce(self) -> AdversarialConfig:
        if self.loss != "bce" and (self.real_target != 1.0 or self.fake_target != 0.0):
            raise ValueError(
                f"real_target / fake_target (label smoothing) are targets of the bce loss; loss {self.loss!r} "
                f"has none (got real_target {self.real_target:g}, fake_target {self.fake_target:g}). "
                f"Leave them at 1 and 0, or use loss: bce")
        return self


def check_lipschitz(cfg) -> list[str]:
    """A Wasserstein critic with nothing keeping it 1-Lipschitz estimates no distance and can grow unbounded."""
    from genlab.models import MODELS

    o, entry = cfg.objective, MODELS.get(cfg.model.name)
    normalised = entry is not None and entry.spectral_d({**cfg.model.kwargs()})
    if o.loss != "wasserstein" or o.gradient_penalty or normalised:
        return []
    return ["objective.loss 'wasserstein' with gradient_penalty 0 and no spectral norm in D: nothing keeps the "
            "critic 1-Lipschitz, so its scores can grow without bound and G's gradient means little. Set "
            "objective.gradient_penalty: 10 (WGAN-GP) or model.d_spectral_norm: true"]


COLLAPSE_WARNING = "possible GAN failure"  # how the warning starts
WARNING_KIND = "gan_collapse"


class CollapseMonitor(Hook):
    """Flags K consecutive checks with D's loss near its minimum (D wins outright) or G's loss exploding.

    With smoothed targets D's BCE cannot reach 0: its floor is the targets' entropy (0.098 nats for a
    real target of 0.98), so "near the minimum" is measured above that floor; the hinge loss's floor is 0.
    A Wasserstein critic's scores have no fixed level (adding a constant changes nothing), so neither its
    loss nor G's says anything here and the monitor stays silent. As a loop hook it warns
    (each new finding once), and stops the run on it when objective.stop_on_collapse is set.
    """

    name = "gan_collapse"

    def __init__(self, cfg: AdversarialConfig):
        self.cfg = cfg
        self.d_min = gan_losses.d_loss_floor(cfg.loss, cfg.real_target, cfg.fake_target)
        self.streak = 0
        self.warning: str | None = None  # the current finding; cleared by a check that finds nothing

    def on_step(self, loop: Loop, record: StepRecord) -> None:
        if record.values is None:
            return
        message = self.check(record.step, record.values)
        if message and message != self.warning:
            loop.warn(WARNING_KIND, message)
        if message or record.step % self.cfg.collapse_check_every == 0:
            self.warning = message
        loop.status["gan_collapse_warning"] = "see log" if self.warning else ""  # while the finding stands

    def stop_reason(self, loop: Loop) -> str | None:
        return self.warning if self.cfg.stop_on_collapse else None

    def state_dict(self) -> dict[str, Any]:
        return {"streak": self.streak, "warning": self.warning}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.streak, self.warning = int(state.get("streak", 0)), state.get("warning")

    def check(self, step: int, values: dict[str, float]) -> str | None:
        if step % self.cfg.collapse_check_every:
            return None
        if self.cfg.loss == "wasserstein":  # a critic's scores drift freely: neither loss has a level to watch
            return None
        d, g = values.get("loss_d", math.nan), values.get("loss_g", math.nan)
        d_saturated = self.d_min is not None and d - self.d_min < self.cfg.d_loss_floor
        bad = d_saturated or g > self.cfg.g_loss_ceiling
        self.streak = self.streak + 1 if bad else 0
        if self.streak < self.cfg.collapse_patience:
            return None
        floor = "" if self.d_min is None else f" (within {self.cfg.d_loss_floor:g} of its minimum {self.d_min:.3g}?)"
        return (f"{COLLAPSE_WARNING} at step {step}: D loss {d:.3g}{floor}, "
                f"G loss {g:.3g} (ceiling {self.cfg.g_loss_ceiling:g}) for {self.streak} consecutive checks; "
                f"D may be saturated or G collapsed. Try a lower optim.lr_d, real_target < 1, or check samples")


class Adversarial(Objective):
    score_names = (PROXY,)
    min_val_images = 2  # a covariance for the proxy score

    def __init__(self, model: GAN, cfg: AdversarialConfig, optim: OptimConfig, normalizer: Normalizer):
        self.model = model
        self.cfg = cfg
        self.normalizer = normalizer
        self.policies = diffaugment.parse(cfg.diffaugment)
        if cfg.gradient_penalty and batch_norms(model.discriminator):
            raise GenlabError(
                "objective.gradient_penalty needs a discriminator without BatchNorm: the penalty is on each "
                "image's gradient, and BatchNorm makes D's output for one image depend on the rest of its batch "
                "(Gulrajani et al. 2017, sec. 4). Set model.d_norm: none (or layer), or gradient_penalty: 0")
        self.optimizers = {
            "discriminator": build_optimizer(model.discriminator.parameters(), optim, optim.lr_d),
            "generator": build_optimizer(model.generator.parameters(), optim, optim.lr_g),
        }
        self.monitor = CollapseMonitor(cfg)

    def hooks(self) -> list[Hook]:
        return [self.monitor]

    def _fake_labels(self, n: int, device, generator=None) -> torch.Tensor | None:
        if not self.model.conditional:
            return None
        return torch.randint(0, self.model.num_classes, (n,), device=device, generator=generator)

    def _real_labels(self, batch: Batch) -> torch.Tensor | None:
        return batch.labels if self.model.conditional else None

    def _d(self, x: torch.Tensor, labels: torch.Tensor | None, own_step: bool
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D in training: behind DiffAugment's transforms when the config names any, and outside autocast
        where `d_fp32` says."""
        if self.policies:
            x = diffaugment.augment(x, self.policies)
        if self.cfg.d_fp32 == "never" or (self.cfg.d_fp32 == "own_step" and not own_step) \
                or not torch.is_autocast_enabled(x.device.type):
            return self.model.discriminate_with_classes(x, labels)
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.model.discriminate_with_classes(x.float(), labels)

    def _score_terms(self, out_real: torch.Tensor, out_fake: torch.Tensor) -> dict[str, torch.Tensor]:
        """What D's outputs say: its mean probability of real for BCE, its mean raw score otherwise."""
        real, fake = out_real.detach().float(), out_fake.detach().float()
        if self.cfg.loss == "bce":
            return {"d_real": torch.sigmoid(real).mean(), "d_fake": torch.sigmoid(fake).mean()}
        terms = {"critic_real": real.mean(), "critic_fake": fake.mean()}
        if self.cfg.loss == "wasserstein":
            terms["wasserstein_estimate"] = terms["critic_real"] - terms["critic_fake"]
        return terms

    def _g_terms(self, out: torch.Tensor, cls: torch.Tensor | None, labels: torch.Tensor | None
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss = gan_losses.g_loss(self.cfg.loss, out)
        if cls is None:
            return loss, {}
        class_loss = F.cross_entropy(cls.float(), labels)
        return loss + self.cfg.class_loss_weight * class_loss, {"loss_g_class": class_loss}

    def train_step(self, batch: Batch, step: int, stepper: Stepper) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        real, n = batch.images, batch.images.shape[0]
        y_real = self._real_labels(batch)
        # The penalty pairs each real image with a fake of its class, so the interpolate has one label.
        y_fake = y_real if cfg.gradient_penalty and y_real is not None else self._fake_labels(n, real.device)
        z = torch.randn(n, self.model.latent_dim, device=real.device)
        g_step = (step + 1) % cfg.n_critic == 0
        with contextlib.nullcontext() if g_step else torch.no_grad():  # no graph through G that G won't use
            fake = self.model.generator(z, y_fake)

        out_real, cls_real = self._d(real, y_real, own_step=True)
        out_fake, cls_fake = self._d(fake.detach(), y_fake, own_step=True)
        loss_d_real, loss_d_fake = gan_losses.d_terms(cfg.loss, out_real, out_fake, cfg.real_target,
                                                      cfg.fake_target)
        loss_d = loss_d_real + loss_d_fake
        extra: dict[str, torch.Tensor] = {}
        if cfg.gradient_penalty:
            # on D itself, not D behind DiffAugment: the 1-Lipschitz constraint is D's
            extra["gradient_penalty"] = gan_losses.gradient_penalty(
                lambda x: self.model.discriminate_with_classes(x, y_real)[0], real, fake)
            loss_d = loss_d + cfg.gradient_penalty * extra["gradient_penalty"]
        if cls_real is not None:
            extra["loss_d_class"] = F.cross_entropy(torch.cat([cls_real, cls_fake]).float(),
                                                    torch.cat([y_real, y_fake]))
            loss_d = loss_d + cfg.class_loss_weight * extra["loss_d_class"]
        stepper.step(loss_d, self.optimizers["discriminator"],
                     {"loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake, **extra})

        if g_step:
            out_g, cls_g = self._d(fake, y_fake, own_step=False)
            loss_g, g_class = self._g_terms(out_g, cls_g, y_fake)
            stepper.step(loss_g, self.optimizers["generator"], {"loss_g": loss_g, **g_class})
            self.model.update_average()
        if cfg.n_critic > 1:  # the same definition on every step (the module's docstring says why)
            loss_g, g_class = self._g_terms(out_fake.detach(), None if cls_fake is None else cls_fake.detach(),
                                            y_fake)
        extra.update(g_class)
        return {
            "loss_d": loss_d.detach(), "loss_d_real": loss_d_real.detach(), "loss_d_fake": loss_d_fake.detach(),
            "loss_g": loss_g.detach(), **self._score_terms(out_real, out_fake),
            **{k: v.detach() for k, v in extra.items()},
        }

    @torch.no_grad()
    def eval_step(self, batch: Batch, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """D's validation terms on batch statistics of the real-only and the fake-only batch, as its training
        terms are computed: in eval mode its running statistics (which blend both kinds) would make the
        validation d_real describe another function than the training one (docs/evaluation.md)."""
        real, n = batch.images, batch.images.shape[0]
        y_fake = self._fake_labels(n, real.device, generator)
        z = torch.randn(n, self.model.latent_dim, device=real.device, generator=generator)
        fake = self.model.generator(z, y_fake)
        y_real = self._real_labels(batch)
        # A batch of one image has no batch statistics (BatchNorm1d refuses it): running statistics then.
        with batch_statistics(self.model.discriminator) if n > 1 else contextlib.nullcontext():
            out_real, cls_real = self.model.discriminate_with_classes(real, y_real)
            out_fake, cls_fake = self.model.discriminate_with_classes(fake, y_fake)
        cfg = self.cfg
        loss_d_real, loss_d_fake = gan_losses.d_terms(cfg.loss, out_real, out_fake, cfg.real_target,
                                                      cfg.fake_target)
        terms = {"loss_d": loss_d_real + loss_d_fake, "loss_d_real": loss_d_real, "loss_d_fake": loss_d_fake,
                 **self._score_terms(out_real, out_fake)}
        terms["loss_g"], g_class = self._g_terms(out_fake, cls_fake, y_fake)
        terms.update(g_class)
        if cls_real is not None:
            terms["loss_d_class"] = F.cross_entropy(torch.cat([cls_real, cls_fake]).float(),
                                                    torch.cat([y_real, y_fake]))
            terms["loss_d"] = terms["loss_d"] + cfg.class_loss_weight * terms["loss_d_class"]
        return terms

    @torch.no_grad()
    def scores(self, loader: BatchLoader, generator: torch.Generator) -> dict[str, float]:
        """FD-randconv between up to `proxy_samples` held-out images and as many fresh samples."""
        return {PROXY: proxy_score(self.model, self.normalizer, loader, generator, self.cfg.proxy_samples)}


def _learning_rates(optim: OptimConfig) -> dict[str, float]:
    """G's and D's rates: lr_g and lr_d where set, optim.lr for the network that has none."""
    rates = {k: v for k, v in (("optim.lr_g", optim.lr_g), ("optim.lr_d", optim.lr_d)) if v is not None}
    if optim.lr_g is None or optim.lr_d is None:
        rates["optim.lr"] = optim.lr
    return rates


def build(ctx: BuildContext) -> Adversarial:
    return Adversarial(ctx.model, ctx.cfg.objective, ctx.cfg.optim, ctx.normalizer)


def term_units(o: AdversarialConfig) -> dict[str, str]:
    loss = {"bce": "nats (binary cross-entropy, batch mean)", "hinge": "hinge loss (batch mean)",
            "wasserstein": "critic score units (batch mean)"}[o.loss]
    return {"loss_d": loss, "loss_d_real": loss, "loss_d_fake": loss, "loss_g": loss,
            "d_real": "probability", "d_fake": "probability", "critic_real": "critic score",
            "critic_fake": "critic score", "wasserstein_estimate": "critic score",
            "gradient_penalty": "(‖∇D‖ − 1)², batch mean", "loss_d_class": "nats", "loss_g_class": "nats"}


def training_note(o: AdversarialConfig) -> str | None:
    notes = []
    if o.diffaugment:
        notes.append(f"training terms score D on DiffAugment's transforms ({o.diffaugment}) of every image; "
                     "validation terms on the images themselves")
    if o.gradient_penalty:
        notes.append(f"training loss_d includes the gradient penalty (λ {o.gradient_penalty:g}); validation "
                     "loss_d does not")
    return "; ".join(notes) + "." if notes else None


ENTRY = ObjectiveEntry(
    kind="adversarial", config=AdversarialConfig, build=build, default_best_metric=PROXY,
    summary="GAN training in the textbook order (D on real, D on detached fakes, then G), label smoothing, AC-GAN",
    checks=check_lipschitz, learning_rates=_learning_rates, resumable=frozenset({"stop_on_collapse"}),
    units=term_units, train_note=training_note,
    # the bce game with D's own step in fp32: cgan_mnist_recommended and dcgan_anime64_recommended, 2 seeds each
    # against fp32 (README, "Devices"); hinge (SNGAN) and Wasserstein (WGAN-GP) not yet
    cpu_bf16=lambda o: o.loss == "bce",
)
