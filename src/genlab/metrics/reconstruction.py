"""PSNR and SSIM of reconstructions, per image on floating-point images in [0, 1] (data range 1).

Both are computed by torchmetrics on de-normalised, clamped float images, never on uint8 arrays: a
squared error of uint8 arrays wraps around modulo 256 and gives about 28 dB even between unrelated
images (how the original β-VAE experiment's PSNR column came out near 29 dB beside SSIM of 0.0 to 0.3).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from genlab.data import Normalizer
from genlab.errors import GenlabError
from genlab.losses import add_gaussian_noise
from genlab.metrics.metric import Metric, Score

if TYPE_CHECKING:
    from genlab.metrics.context import Context

log = logging.getLogger("genlab.eval")

DATA_RANGE = 1.0
SSIM_SETTINGS = {"gaussian_kernel": True, "sigma": 1.5, "kernel_size": 11, "k1": 0.01, "k2": 0.03}


def psnr_ssim(pred_unit: torch.Tensor, target_unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM of float images in [0, 1], shape (N, C, H, W).

    In float32: SSIM's Gaussian window is a conv2d, which has no fast CPU kernel in float64 (`python
    bench/psnr_ssim.py`: 750 64x64 RGB images, 20x faster than float64 on this project's 2-core machine, at
    most 2.2e-6 dB and 2.1e-7 SSIM apart; tests/metrics/test_reconstruction_quality.py holds them to 1e-4)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    pred, target = pred_unit.float(), target_unit.float()
    psnr = peak_signal_noise_ratio(pred, target, data_range=DATA_RANGE, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(pred, target, data_range=DATA_RANGE, reduction="none",
                                               **SSIM_SETTINGS)
    return psnr, ssim


def _summary(name: str, values: torch.Tensor) -> dict[str, float]:
    v = values.double()
    finite = v[torch.isfinite(v)]  # a perfect reconstruction has infinite PSNR; counted separately
    return {f"{name}_mean": float(finite.mean()) if len(finite) else float("nan"),
            f"{name}_std": float(finite.std(unbiased=False)) if len(finite) else float("nan")}


def reconstruction_quality(model: nn.Module, images: np.ndarray, normalizer: Normalizer, **kwargs: Any
                           ) -> dict[str, Any]:
    """`quality` as one flat dict (values and protocol together), as metrics.json stores it."""
    return quality(model, images, normalizer, **kwargs).flat()


@torch.no_grad()
def quality(model: nn.Module, images: np.ndarray, normalizer: Normalizer, *, noise_std: float = 0.0,
            noise_clip: bool = False, seed: int = 0, batch_size: int = 128,
            device: torch.device | str = "cpu") -> Score:
    """Reconstruct uint8 NHWC images from the posterior mean (model.reconstruct) and score them.

    For a denoising model (noise_std > 0) the input is the noised image and the target the clean one,
    which is what the model was trained to do."""
    if len(images) == 0:
        raise GenlabError("PSNR/SSIM need at least one image; the image set is empty.")
    size = min(images.shape[1], images.shape[2])
    if size < SSIM_SETTINGS["kernel_size"]:
        raise GenlabError(f"SSIM with an {SSIM_SETTINGS['kernel_size']}x{SSIM_SETTINGS['kernel_size']} Gaussian "
                          f"window needs images of at least that size; these are {size} pixels.")
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    psnr, ssim = [], []
    for start in range(0, len(images), batch_size):
        x = normalizer(torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).to(device))
        clip = normalizer.output_range() if noise_clip else None
        inp = add_gaussian_noise(x, noise_std, clip=clip, generator=gen) if noise_std > 0 else x
        rec = model.reconstruct(inp).float()
        p, s = psnr_ssim(normalizer.to_unit(rec), normalizer.to_unit(x))
        psnr.append(p.cpu())
        ssim.append(s.cpu())
    p, s = torch.cat(psnr), torch.cat(ssim)
    values = {**_summary("psnr", p), **_summary("ssim", s)}
    return Score(values, {
        "n_images": len(p), "n_perfect": int(torch.isinf(p).sum()),
        "data_range": "[0, 1] after de-normalisation, clamped; data_range=1.0", "ssim_settings": SSIM_SETTINGS,
        "input": f"noised (noise_std {noise_std}) -> clean target" if noise_std > 0
        else "clean image; posterior mean decoded",
        "implementation": "torchmetrics.functional.image in float32, per image, mean and population std over "
                          "images"})


def _applies(ctx: Context) -> str | None:
    return None if ctx.caps.has_encoder else "the model has no encoder to reconstruct with"


def _compute(ctx: Context) -> dict[str, Score]:
    from genlab.data.folder import decode_files, list_images
    from genlab.objectives import input_noise

    std, clip = input_noise(ctx.cfg.objective)  # a denoising model is scored on what it was trained for
    kw = {"noise_std": std, "noise_clip": clip, "seed": ctx.s.seed,
          "batch_size": ctx.s.batch_size, "device": ctx.device}
    held_out = quality(ctx.model, ctx.data.val.images, ctx.data.normalizer, **kw)
    held_out.protocol["reference_split"] = f"the whole validation split ({len(ctx.data.val)} images)"
    out = {"reconstruction_heldout": held_out}
    if ctx.s.images is not None:
        folder = Path(ctx.s.images)
        if not folder.is_dir():
            raise GenlabError(f"--images {folder} is not a folder; give a folder of image files.")
        files = list_images(folder)
        cfg = ctx.cfg.data.model_copy(update={"random_crops": None})
        images, _ = decode_files(files, cfg, crop_seed=0, channels=ctx.data.channels)
        if len(images) == 0:
            raise GenlabError(f"--images {folder} holds no readable images ({len(files)} files tried).")
        for path, why in images.skipped:
            log.warning("skipped %s: %s", path, why)
        outside = quality(ctx.model, images.images, ctx.data.normalizer, **kw)
        outside.protocol.update({"images": str(folder), "n_skipped": len(images.skipped),
                                 "resize": f"shorter side to {cfg.image_size}, centre crop (as training images)"})
        out["reconstruction_external"] = outside
    return out


METRIC = Metric(
    name="reconstruction", summary="PSNR and SSIM of reconstructions from the posterior mean (held out; --images)",
    compute=_compute, applies=_applies, at_train_end=True,
    higher_is_better={"psnr_mean": True, "ssim_mean": True}, units={"psnr_mean": "dB", "psnr_std": "dB"},
)
