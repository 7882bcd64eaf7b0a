"""The figures a run gets at the end of training, drawn from the model's public API alone."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from genlab.data import Normalizer
from genlab.losses import add_gaussian_noise
from genlab.models.latent import LEARNED_PRIOR, prior_phrase
from genlab.viz.grids import save_grid, save_rows


@torch.no_grad()
def reconstruction_figure(model: nn.Module, images: torch.Tensor, normalizer: Normalizer, path: Path,
                          noise_std: float = 0.0, seed: int = 0, noise_clip: bool = False) -> Path:
    """Originals above reconstructions; with noise_std > 0, clean / noisy / denoised rows."""
    model.eval()
    unit = normalizer.to_unit
    if noise_std > 0:
        gen = torch.Generator(device=images.device).manual_seed(seed)
        clip = normalizer.output_range() if noise_clip else None
        noisy = add_gaussian_noise(images, noise_std, clip=clip, generator=gen)
        rows = [("clean", unit(images)), (f"noisy\n(std {noise_std:g})", unit(noisy)),
                ("denoised", unit(model.reconstruct(noisy)))]
        title = "Denoising: clean inputs, noisy inputs, reconstructions from the noisy inputs"
    else:
        rows = [("original", unit(images)), ("reconstruction", unit(model.reconstruct(images)))]
        title = "Held-out images (top) and their reconstructions from the posterior mean (bottom)"
    return save_rows(rows, path, title)


MAX_CLASS_ROWS = 20


@torch.no_grad()
def fixed_samples(model: nn.Module, normalizer: Normalizer, n: int = 32, seed: int = 0, num_classes: int = 0
                  ) -> tuple[torch.Tensor, int]:
    """The same noise every call, in [0, 1]; conditional models (num_classes > 0): `per_row` samples of each
    class in turn (the first MAX_CLASS_ROWS classes). Returns (samples, per_row)."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    classes = num_classes
    if classes:
        per_row = 10
        labels = torch.arange(min(classes, MAX_CLASS_ROWS), device=device).repeat_interleave(per_row)
        return normalizer.to_unit(model.sample(len(labels), generator=gen, labels=labels)), per_row
    return normalizer.to_unit(model.sample(n, generator=gen)), 8


def sample_figure(model: nn.Module, normalizer: Normalizer, path: Path, n: int = 32, seed: int = 0,
                  num_classes: int = 0, class_names: list[str] | None = None, title: str | None = None,
                  flat_prior: bool = True) -> Path:
    """Samples from a fixed seed; conditional models (num_classes > 0) get one row per class. flat_prior: the
    samples decode codes of the prior `prior_phrase` names (else the model's learned prior draws them)."""
    samples, per_row = fixed_samples(model, normalizer, n, seed, num_classes)
    classes = num_classes
    if classes:
        shown = len(samples) // per_row
        names = class_names or [str(c) for c in range(classes)]
        rows = [(names[c], samples[c * per_row:(c + 1) * per_row]) for c in range(shown)]
        more = f" (first {shown} of {classes} classes)" if shown < classes else ""
        return save_rows(rows, path, title or f"Samples per class{more}, fixed noise (seed {seed})")
    source = prior_phrase(model) if flat_prior else LEARNED_PRIOR
    return save_grid(samples, path, title or f"Samples from {source}, seed {seed}")


def trajectory_figure(model: nn.Module, normalizer: Normalizer, path: Path, n: int = 6, columns: int = 8,
                      seed: int = 0, num_classes: int = 0) -> Path:
    """A diffusion model's DDIM path, one row per sample: its prediction of the clean image at `columns` steps
    from pure noise to the last one, so a reader sees where coarse layout and fine detail are decided."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    noise = torch.randn(n, *model.image_shape, generator=gen, device=device)
    labels = torch.arange(n, device=device) % num_classes if num_classes else None
    final, kept = model.denoise(noise, labels, keep=columns)
    steps = model.sample_steps
    rows = [(f"class {int(labels[i])}" if labels is not None else f"sample {i + 1}",
             normalizer.to_unit(torch.stack([k[i] for k in kept]).float()).cpu()) for i in range(n)]
    return save_rows(rows, path, f"Denoising trajectory (seed {seed}): predicted clean image\nat {len(kept)} of "
                                 f"{steps} DDIM steps, from noise (left) to sample (right)")
