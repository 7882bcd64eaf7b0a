"""How a score was made, stored beside it: which weights (checkpoint file hash and step, live or
weight-averaged generator), in which model mode, on which device, with which library versions and
evaluation settings.

The same checkpoint can score 4.37 or 25.86 depending on BatchNorm's mode, and a score computed during
training can differ from the standalone one; a reader can only tell which is which when the score
says. The settings are stored whole so `genlab eval --verify` can recompute the score exactly as made.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.io import sha256_of

if TYPE_CHECKING:
    from genlab.metrics.context import Context, EvalSettings
    from genlab.metrics.metric import Metric

LIBRARIES = ("torch", "torchvision", "torchmetrics", "torch-fidelity", "scikit-learn", "numpy", "scipy")
EVAL_MODE = "eval (BatchNorm running statistics, dropout off)"
# Keys a metric's own protocol may set to override what evaluation records by default.
MODEL_MODE = "model_mode"


@functools.cache
def library_versions() -> dict[str, str]:
    """Installed versions; torch's own string, which names its CUDA build (2.14.1+cu130). Read once per
    process: every stored entry carries them."""
    import torch

    out = {"torch": torch.__version__}
    for name in LIBRARIES[1:]:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def generator_weights(model: Any) -> str:
    """Which weights made the samples: GANs with ema_decay sample from the average, the rest from the model."""
    decay = getattr(model, "ema_decay", 0.0)
    if getattr(model, "generator_ema", None) is not None:
        return f"weight-averaged generator (ema_decay {decay})"
    if getattr(model, "unet_ema", None) is not None:
        return f"weight-averaged U-Net (ema_decay {decay})"
    return "live weights (no weight average)"


def settings_record(settings: EvalSettings) -> dict[str, Any]:
    doc = dataclasses.asdict(settings)
    doc["images"] = None if settings.images is None else str(settings.images)
    return doc


def settings_from_record(doc: dict[str, Any]) -> EvalSettings:
    from genlab.metrics.context import EvalSettings

    known = {f.name for f in dataclasses.fields(EvalSettings)}
    kwargs = {k: v for k, v in doc.items() if k in known}
    if kwargs.get("images") is not None:
        kwargs["images"] = Path(kwargs["images"])
    return EvalSettings(**kwargs)


def checkpoint_hash(path: Path) -> str | None:
    return sha256_of(path) if path.is_file() else None


def making(ctx: Context, metric: Metric, values: dict[str, Any], checkpoint_sha256: str | None) -> dict[str, Any]:
    """The record every stored score carries (a metric's own `model_mode` takes precedence)."""
    from genlab.data.binarize import describe

    binarised = describe(ctx.cfg.data.binarize, ctx.cfg.data.split_seed)
    pixels = {"binarisation": binarised} if binarised else {}
    sampler = getattr(ctx.model, "sampler_description", None)  # a diffusion model's steps and guidance
    if sampler:
        pixels["sampler"] = sampler
    return {"metric": metric.name, MODEL_MODE: EVAL_MODE, **pixels, "generator_weights": generator_weights(ctx.model),
            "checkpoint_sha256": checkpoint_sha256, "device": str(ctx.device), "versions": dict(library_versions()),
            "eval_settings": settings_record(ctx.s),
            "verify_tolerance": {name: metric.tolerance_of(name) for name in values}}
