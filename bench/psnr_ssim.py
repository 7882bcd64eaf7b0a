"""PSNR/SSIM of the end-of-training reconstruction score in float32 (what genlab computes) against float64.

    python bench/psnr_ssim.py            # 750 64x64 RGB images, the cat-faces validation split's shape

Prints the seconds of each and the largest per-image difference, from one run (a ratio, not a time, is
what carries over between machines).
"""

from __future__ import annotations

import time

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from genlab.metrics.reconstruction import DATA_RANGE, SSIM_SETTINGS, psnr_ssim


def float64_reference(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    p, t = pred.double(), target.double()
    return (peak_signal_noise_ratio(p, t, data_range=DATA_RANGE, reduction="none", dim=(1, 2, 3)),
            structural_similarity_index_measure(p, t, data_range=DATA_RANGE, reduction="none", **SSIM_SETTINGS))


def main(n: int = 750, size: int = 64) -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(n, 3, size, size, generator=gen)
    pred = (target + 0.1 * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    t = time.perf_counter()
    p32, s32 = psnr_ssim(pred, target)
    t32 = time.perf_counter() - t
    t = time.perf_counter()
    p64, s64 = float64_reference(pred, target)
    t64 = time.perf_counter() - t
    print(f"{n} images {size}x{size}x3: float32 {t32:.2f} s, float64 {t64:.2f} s, ratio {t64 / t32:.1f}x; "
          f"max |PSNR diff| {(p32.double() - p64).abs().max():.2e} dB, max |SSIM diff| "
          f"{(s32.double() - s64).abs().max():.2e}")


if __name__ == "__main__":
    main()
