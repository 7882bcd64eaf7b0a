"""Model registry: every `ModelEntry` declared by a module of this package, built by name.

Models are plain `nn.Module`s with their family's API (see `registry.FAMILY_API`); they know nothing of
losses, optimisers, files or plots. A model module declares `ENTRIES` next to its code and is found
here by its presence in the package: nothing else lists model names. `image_size` and `channels` come
from the data section, so a config cannot describe one image shape to the loader and another to the model.
"""

from __future__ import annotations

import difflib
import inspect
import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from genlab.errors import GenlabError
from genlab.models.latent import Posterior
from genlab.models.registry import Capabilities, LatentSpec, ModelEntry
from genlab.registries import collect, lookup

_FROM_DATA = ("image_size", "channels", "num_classes")


MODELS: dict[str, ModelEntry] = collect(sys.modules[__name__], "ENTRIES", lambda e: e.name)

__all__ = ["MODELS", "Capabilities", "LatentSpec", "ModelEntry", "Posterior", "build_model", "capabilities",
           "get_entry", "model_arguments", "output_activation"]


def get_entry(name: str) -> ModelEntry:
    return lookup(MODELS, name, "model")


def model_arguments(name: str) -> dict[str, Any]:
    """The keyword arguments a registered model accepts, with their defaults (data-derived ones left out)."""
    sig = inspect.signature(get_entry(name).build)
    return {k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items() if k not in _FROM_DATA}


def output_activation(name: str, kwargs: dict[str, Any]) -> str | None:
    """The last activation a config gives a registered model (its fixed one, else its argument, else the
    constructor's default); None for an unknown model name, which build_model reports."""
    if name not in MODELS:
        return None
    entry = MODELS[name]
    if entry.output_activation is not None:
        return entry.output_activation
    value = kwargs.get("output_activation", model_arguments(name).get("output_activation"))
    return value if isinstance(value, str) else None


def capabilities(name: str, kwargs: dict[str, Any], num_classes: int | None = None) -> Capabilities:
    """What a model built from these arguments on data with `num_classes` labels can do."""
    entry = get_entry(name)
    conditional = entry.conditional({**model_arguments(name), **kwargs})
    return Capabilities(entry, conditional, int(num_classes or 0) if conditional else 0,
                        output_activation(name, kwargs))


def check_arguments(name: str, kwargs: dict[str, Any]) -> None:
    """Unknown, data-derived and out-of-range arguments, each a GenlabError naming the key."""
    entry, valid = get_entry(name), model_arguments(name)
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
    for key in entry.sizes:
        value = kwargs.get(key, valid.get(key))
        if not _positive_sizes(value):
            what = "a list of positive integers" if isinstance(value, (list, tuple)) else "a positive integer"
            raise GenlabError(f"model.{key} must be {what} (a size of the {name} model; got {value!r}); its "
                              f"default is {valid.get(key)!r}.")


def _positive_sizes(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(_positive_sizes(v) for v in value)
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def build_model(name: str, kwargs: dict[str, Any], *, image_size: int, channels: int,
                num_classes: int | None = None) -> nn.Module:
    """Build a registered model; `num_classes` reaches only models built conditional."""
    check_arguments(name, kwargs)
    entry: ModelEntry = MODELS[name]
    factory: Callable[..., nn.Module] = entry.build
    caps = capabilities(name, kwargs, num_classes)
    if "num_classes" in inspect.signature(factory).parameters:
        kwargs = {**kwargs, "num_classes": caps.num_classes if caps.conditional else 0}
    try:
        return factory(image_size=image_size, channels=channels, **kwargs)
    except (TypeError, ValueError, IndexError, RuntimeError) as exc:
        # Bad argument values surface from inside torch (a negative width): name the model and the
        # arguments rather than show torch's internals.
        raise GenlabError(f"cannot build model {name!r} at {image_size}x{image_size}x{channels} with "
                          f"{kwargs or 'its defaults'}: {exc}.") from None
