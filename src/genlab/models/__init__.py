"""Model registry: name -> constructor or preset, checked against the constructor's own signature.

Models are plain `nn.Module`s with `encode`, `decode`, `sample` and `reconstruct`; they know
nothing of losses, optimisers, files or plots. `image_size` and `channels` come from the data
section, so a config cannot describe one image shape to the loader and another to the model.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from genlab.errors import GenlabError
from genlab.models.autoencoder import AutoEncoder
from genlab.models.gan import GAN, cgan, dcgan
from genlab.models.latent import Posterior
from genlab.models.vae import VAE, ResVAE

MODELS: dict[str, Callable[..., nn.Module]] = {
    "ae": AutoEncoder,
    "vae": partial(VAE, hidden_dims=(32, 64, 128), latent_dim=32),
    # Seed 001 (PyTorch-VAE's BetaVAE): 32-64-128-256-512 conv blocks, latent 128.
    "beta_vae": partial(VAE, hidden_dims=(32, 64, 128, 256, 512), latent_dim=128),
    "res_vae": ResVAE,
    "dcgan": dcgan,
    "cgan": cgan,
}

_FROM_DATA = ("image_size", "channels", "num_classes")

# Registry facts that config checks need before anything is built (tests build each model to hold them
# to the truth): which encoders return a log-variance, so that the objective has a KL term, and the fixed
# last activation of the GAN generators, which have no output_activation argument.
VARIATIONAL = frozenset({"vae", "beta_vae", "res_vae"})
FIXED_OUTPUT_ACTIVATION = {"dcgan": "tanh", "cgan": "tanh"}

__all__ = ["FIXED_OUTPUT_ACTIVATION", "GAN", "MODELS", "Posterior", "VARIATIONAL", "build_model", "is_gan",
           "model_arguments", "output_activation"]


def model_arguments(name: str) -> dict[str, Any]:
    """The keyword arguments a registered model accepts, with their defaults (data-derived ones left out)."""
    sig = inspect.signature(_factory(name))
    return {k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items() if k not in _FROM_DATA}


def output_activation(name: str, kwargs: dict[str, Any]) -> str | None:
    """The last activation a config gives a registered model (its argument, else the constructor's
    default, else a GAN's fixed one); None for an unknown model name, which build_model reports."""
    if name not in MODELS:
        return None
    if name in FIXED_OUTPUT_ACTIVATION:
        return FIXED_OUTPUT_ACTIVATION[name]
    value = kwargs.get("output_activation", model_arguments(name).get("output_activation"))
    return value if isinstance(value, str) else None


def is_gan(model: nn.Module) -> bool:
    return isinstance(model, GAN)


def build_model(name: str, kwargs: dict[str, Any], *, image_size: int, channels: int,
                num_classes: int | None = None) -> nn.Module:
    """Build a registered model; `num_classes` reaches only models that take it (the GANs)."""
    factory = _factory(name)
    valid = model_arguments(name)
    for key in kwargs:
        if key in _FROM_DATA:
            raise GenlabError(f"model.{key} is set by the data section (data.image_size, data.grayscale, "
                              f"the data set's labels); remove it from the model section.")
        if key not in valid:
            hint = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
            raise GenlabError(
                f"model {name!r} has no argument {key!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else ".")
                + f" Valid arguments: {', '.join(f'{k}={v!r}' for k, v in valid.items())}."
            )
    if "num_classes" in inspect.signature(factory).parameters:
        kwargs = {**kwargs, "num_classes": num_classes or 0}
    try:
        return factory(image_size=image_size, channels=channels, **kwargs)
    except (TypeError, ValueError, IndexError, RuntimeError) as exc:
        # Bad argument values surface from inside torch (an empty hidden_dims, a negative width): name the
        # model and the arguments rather than show torch's internals.
        raise GenlabError(f"cannot build model {name!r} at {image_size}x{image_size}x{channels} with "
                          f"{kwargs or 'its defaults'}: {exc}.") from None


def _factory(name: str) -> Callable[..., nn.Module]:
    if name not in MODELS:
        hint = difflib.get_close_matches(name, list(MODELS), n=1)
        raise GenlabError(f"unknown model {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ".")
                          + f" Registered models: {', '.join(sorted(MODELS))}.")
    return MODELS[name]
