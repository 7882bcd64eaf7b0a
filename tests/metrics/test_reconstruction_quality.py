"""PSNR/SSIM on hand-computed cases, and the uint8 wrap-around mistake they must not repeat."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genlab.data import Normalizer
from genlab.errors import GenlabError
from genlab.metrics.reconstruction import psnr_ssim, reconstruction_quality


def test_psnr_of_a_constant_offset_is_the_closed_form():
    target = torch.full((2, 3, 16, 16), 0.5, dtype=torch.float64)
    psnr, _ = psnr_ssim(target + 0.1, target)  # MSE 0.01 with data range 1 -> 20 dB
    assert psnr.tolist() == pytest.approx([20.0, 20.0], abs=1e-4)  # float32 (see psnr_ssim)


def test_ssim_of_constant_images_is_the_luminance_term():
    x, y = torch.full((1, 1, 16, 16), 0.5), torch.full((1, 1, 16, 16), 0.25)
    c1 = (0.01 * 1.0) ** 2
    expected = (2 * 0.5 * 0.25 + c1) / (0.5**2 + 0.25**2 + c1)  # no variance: contrast/structure terms are 1
    _, ssim = psnr_ssim(x, y)
    assert ssim.item() == pytest.approx(expected, rel=1e-6)
    assert psnr_ssim(x, x)[1].item() == pytest.approx(1.0)


def uint8_wraparound_psnr(a: np.ndarray, b: np.ndarray) -> float:
    """The computation behind the original β-VAE experiment's PSNR column: squared error of uint8 arrays,
    wrapping modulo 256."""
    mse = float(((a - b) ** 2).mean())
    return 10 * math.log10(255.0**2 / mse)


def test_genlab_psnr_differs_from_the_uint8_wraparound_computation():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    b = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)  # unrelated images
    wrapped = uint8_wraparound_psnr(a, b)
    to_t = lambda x: torch.from_numpy(x).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    psnr, _ = psnr_ssim(to_t(a), to_t(b))
    correct = 10 * math.log10(1.0 / float((((a.astype(float) - b.astype(float)) / 255) ** 2).mean()))
    assert wrapped > 27.0  # looks like a fine reconstruction
    assert psnr.item() == pytest.approx(correct, abs=1e-5)
    assert psnr.item() < 10.0  # what unrelated images really score


class Shift(nn.Module):
    """A 'model' whose reconstruction is its input plus a constant, so the scores are known."""

    def __init__(self, shift: float):
        super().__init__()
        self.shift = shift
        self.p = nn.Parameter(torch.zeros(()))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.shift


def test_reconstruction_quality_is_computed_in_unit_range_and_independent_of_batch_size():
    images = np.full((10, 16, 16, 1), 100, np.uint8)
    norm = Normalizer("minus_one_one", 1)
    shift = 0.2  # in [-1, 1] units = 0.1 in [0, 1] units -> 20 dB
    a = reconstruction_quality(Shift(shift), images, norm, batch_size=3)
    b = reconstruction_quality(Shift(shift), images, norm, batch_size=10)
    assert a["psnr_mean"] == pytest.approx(20.0, abs=1e-6) and a["psnr_std"] == pytest.approx(0.0, abs=1e-9)
    assert (a["psnr_mean"], a["ssim_mean"]) == pytest.approx((b["psnr_mean"], b["ssim_mean"]))
    assert a["n_images"] == 10 and "data_range=1.0" in a["data_range"]


def test_reconstruction_quality_of_a_perfect_model_counts_infinite_psnr_apart():
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    out = reconstruction_quality(Shift(0.0), images, Normalizer("zero_one", 3))
    assert out["n_perfect"] == 4 and out["ssim_mean"] == pytest.approx(1.0)


def test_denoising_scores_compare_the_output_with_the_clean_image():
    images = np.full((6, 16, 16, 1), 128, np.uint8)
    norm = Normalizer("minus_one_one", 1)
    clean = reconstruction_quality(Shift(0.0), images, norm)
    noisy = reconstruction_quality(Shift(0.0), images, norm, noise_std=0.5, seed=1)
    assert clean["n_perfect"] == 6 and noisy["psnr_mean"] < 20  # identity on a noised input is not perfect


def test_too_small_images_and_empty_sets_are_refused():
    norm = Normalizer("zero_one", 1)
    with pytest.raises(GenlabError, match="at least that size"):
        reconstruction_quality(Shift(0.0), np.zeros((2, 8, 8, 1), np.uint8), norm)
    with pytest.raises(GenlabError, match="empty"):
        reconstruction_quality(Shift(0.0), np.zeros((0, 16, 16, 1), np.uint8), norm)


@pytest.mark.parametrize("noise", [0.3, 0.05, 1e-3])
def test_float32_scores_agree_with_float64_to_1e4(noise):
    """psnr_ssim works in float32 for speed; the same torchmetrics functions in float64 are the reference,
    from unrelated-looking reconstructions to near-perfect ones (PSNR near 60 dB)."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    from genlab.metrics.reconstruction import SSIM_SETTINGS

    gen = torch.Generator().manual_seed(0)
    target = torch.rand(24, 3, 32, 32, generator=gen)
    pred = (target + noise * torch.randn(target.shape, generator=gen)).clamp(0, 1)
    psnr, ssim = psnr_ssim(pred, target)
    assert psnr.dtype == torch.float32
    p64 = peak_signal_noise_ratio(pred.double(), target.double(), data_range=1.0, reduction="none", dim=(1, 2, 3))
    s64 = structural_similarity_index_measure(pred.double(), target.double(), data_range=1.0, reduction="none",
                                              **SSIM_SETTINGS)
    assert torch.allclose(psnr.double(), p64, atol=1e-4, rtol=0)
    assert torch.allclose(ssim.double(), s64, atol=1e-4, rtol=0)
