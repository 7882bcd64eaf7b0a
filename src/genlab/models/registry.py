"""What a model *is*, declared once beside its code: the entry every other part of genlab reads.

A model module ends with `ENTRIES = (ModelEntry(...), ...)`; `genlab.models` collects them. Objectives,
metrics, figures, the explorer, export and config checks ask an entry (or the `Capabilities` of a
built model) instead of testing types, name sets or attributes, so a new model is one module and the
tests parametrized over the registry cover it the day it is added.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

Family = Literal["autoencoder", "gan", "diffusion"]

# What each family's modules must offer; tests/models/test_model_registry.py holds every entry to it.
FAMILY_API: dict[str, tuple[str, ...]] = {
    "autoencoder": ("encode", "decode", "reconstruct", "sample", "latent_dim", "image_shape"),
    "gan": ("decode", "sample", "discriminate", "discriminate_with_classes", "generator", "discriminator",
            "sampling_generator", "update_average", "latent_dim", "num_classes", "image_shape"),
    # latent_dim: the flattened noise x_T that decode maps to an image (deterministic DDIM)
    "diffusion": ("decode", "sample", "denoise", "predict_noise", "training_scheduler", "sampling_scheduler",
                  "unet", "sampling_unet", "update_average", "latent_dim", "num_classes", "image_shape"),
}


@dataclass(frozen=True)
class LatentSpec:
    """The latent space a model exposes, so a figure or tool can tell whether it applies.

    layout: "vector" is a flat (latent_dim,) code; "noise" is a sampler's image-shaped starting noise, drawn
    flat from N(0, I) and decoded deterministically (a diffusion model's DDIM), so sample metrics apply but
    one coordinate means nothing alone; "grid" is a VQ code grid. Only vectors get sliders or traversals.
    prior: what `sample` draws codes from. posterior: what `encode` returns, "gaussian" (mean and
    log-variance: a VAE), "point" (a deterministic code: an autoencoder), "quantized" (each cell of the
    code is the nearest vector of a codebook: a VQ-VAE) or "none" (no encoder: a GAN's z is only ever drawn
    from the prior).

    A "quantized" posterior's `encode` fills `Posterior.indices` (the code chosen per cell), and its model
    offers `num_codes`, `codebook` ((num_codes, code_dim)) and `grid_shape` ((code_dim, h, w), what the flat
    code unflattens to), so code-usage monitors, figures and export need no model-specific code.
    """

    layout: Literal["vector", "grid", "noise"] = "vector"
    prior: Literal["standard_normal", "learned"] = "standard_normal"
    posterior: Literal["gaussian", "point", "quantized", "none"] = "gaussian"

    @property
    def quantized(self) -> bool:
        return self.posterior == "quantized"

    @property
    def flat_prior(self) -> bool:
        """Samples are `decode` of flat codes drawn from N(0, I) (or a fitted mixture: genlab.models.priors);
        otherwise a model that samples draws through its own learned prior (`sample`)."""
        return self.layout in ("vector", "noise") and self.prior == "standard_normal"

    @property
    def traversable(self) -> bool:
        """Coordinates of a flat code under N(0, I): sweeping one over [-3, 3] means something."""
        return self.layout == "vector" and self.prior == "standard_normal"


def never(kwargs: dict[str, Any]) -> bool:
    return False


def always(kwargs: dict[str, Any]) -> bool:
    return True


def when(argument: str) -> Callable[[dict[str, Any]], bool]:
    """Conditional when a boolean constructor argument says so (dcgan's `conditional`)."""

    def conditional(kwargs: dict[str, Any]) -> bool:
        return bool(kwargs.get(argument, False))

    conditional.__name__ = f"when_{argument}"
    return conditional


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    build: the constructor or a preset of it; `image_size`, `channels` (and `num_classes` for conditional
    models) come from the data section, every other keyword from the config's model section.
    trains_with: objective kinds that can train it; the first is the default when a config names none.
    output_activation: a fixed last activation (GAN generators), or None when the `output_activation`
    argument sets it. conditional: from the model arguments, whether it takes class labels. spectral_d: whether
    its discriminator is spectrally normalised (a Wasserstein critic then needs no gradient penalty).
    sizes: size-like arguments (widths, depths, latent sizes), which must be positive integers (or tuples
    of them); a value of 0 would build a model with nothing in it.
    tiny / tiny_image_sizes: arguments and image sizes that build it in milliseconds, for the tests.
    cannot_sample: None when `sample` draws images; otherwise why it cannot, in words a user can act on (a
    VQ-VAE needs a prior learned over its codes first). `genlab sample`, the sample metrics, sample figures
    and the explorer refuse or skip with this reason instead of calling `sample`.
    builds_on: None, or the posterior ("quantized") of a finished run's model that this model is trained over
    (a learned prior over a VQ-VAE's codes). Its config names that run (`prior.run`); run set-up
    (genlab.prior_run) fills the constructor's `base` argument ({name: ..., arguments}) and its
    `output_activation` from that run, and loads that run's weights through the model's `load_base(state)`.
    A model with a learned prior that samples (`latent.prior == "learned"`, `cannot_sample` None) offers
    `prior_logits(indices)`, (B, K, h, w) logits of each cell's code given the cells before it, which its
    objective trains and export writes as the `prior` graph.
    """

    name: str
    build: Callable[..., nn.Module]
    family: Family
    trains_with: tuple[str, ...]
    summary: str
    latent: LatentSpec
    tiny: dict[str, Any]
    tiny_image_sizes: tuple[int, ...] = (16, 32)
    output_activation: str | None = None
    conditional: Callable[[dict[str, Any]], bool] = never
    sizes: tuple[str, ...] = ()
    spectral_d: Callable[[dict[str, Any]], bool] = never  # from the arguments: D spectrally normalised
    presets: dict[str, Any] = field(default_factory=dict)  # the arguments a preset fixes (its defaults)
    cannot_sample: str | None = None
    builds_on: str | None = None  # the posterior of another run's model this one is built over (see above)

    @property
    def variational(self) -> bool:
        """The encoder returns a distribution, so an objective has a KL term and latent usage can be measured."""
        return self.latent.posterior == "gaussian"

    @property
    def has_encoder(self) -> bool:
        return self.latent.posterior != "none"


@dataclass(frozen=True)
class Capabilities:
    """An entry seen through one built model's arguments and data: what the code that uses it may ask."""

    entry: ModelEntry
    conditional: bool
    num_classes: int  # 0 unless conditional
    output_activation: str | None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def family(self) -> str:
        return self.entry.family

    @property
    def variational(self) -> bool:
        return self.entry.variational

    @property
    def has_encoder(self) -> bool:
        return self.entry.has_encoder

    @property
    def can_sample(self) -> bool:
        return self.entry.cannot_sample is None

    @property
    def cannot_sample(self) -> str | None:
        """Why `sample` cannot draw images from this model (None when it can)."""
        return self.entry.cannot_sample

    @property
    def has_discriminator(self) -> bool:
        return self.entry.family == "gan"

    @property
    def latent(self) -> LatentSpec:
        return self.entry.latent
