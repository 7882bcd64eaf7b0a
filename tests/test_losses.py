"""Loss terms against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.losses import add_gaussian_noise, capacity, kl_divergence, kl_per_dimension, reconstruction_loss


def test_mse_reductions_by_hand():
    x = torch.zeros(2, 1, 2, 2)
    x_hat = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    # per-image sums of squared error: 1 and 4 -> batch mean 2.5; pixel mean: 5 / 8
    assert reconstruction_loss(x_hat, x, "mse", "sum").item() == 2.5
    assert reconstruction_loss(x_hat, x, "mse", "mean").item() == 5 / 8


def test_bce_by_hand():
    x = torch.tensor([[[[1.0, 0.0]]]])
    x_hat = torch.tensor([[[[0.8, 0.4]]]])
    expected = -(math.log(0.8) + math.log(0.6))
    assert abs(reconstruction_loss(x_hat, x, "bce", "sum").item() - expected) < 1e-5
    assert abs(reconstruction_loss(x_hat, x, "bce", "mean").item() - expected / 2) < 1e-5


def test_kl_closed_form_by_hand():
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    # 0.5*(1 + 1 - 1 - 0) + 0.5*(0 + 4 - 1 - ln 4)
    expected = 0.5 + 0.5 * (3 - math.log(4.0))
    assert abs(kl_divergence(mu, logvar).item() - expected) < 1e-6


def test_kl_zero_at_prior_and_never_negative():
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).item() == 0.0
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(1000, 8, generator=g) * 3, torch.randn(1000, 8, generator=g) * 3
    assert (kl_per_dimension(mu, logvar) >= 0).all()


def test_kl_averages_over_batch_and_sums_over_dimensions():
    mu = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    logvar = torch.zeros(2, 2)
    assert kl_divergence(mu, logvar).item() == 1.0  # (0.5*4 + 0) / 2 images


def test_capacity_rises_linearly_then_holds():
    assert capacity(0, 25.0, 100) == 0.0
    assert capacity(50, 25.0, 100) == 12.5
    assert capacity(1000, 25.0, 100) == 25.0


def test_noise_has_the_requested_std_and_clip():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(200, 1, 16, 16)
    noisy = add_gaussian_noise(x, 0.3, generator=g)
    assert abs(noisy.std().item() - 0.3) < 0.01
    clipped = add_gaussian_noise(x, 5.0, clip=(-1.0, 1.0), generator=g)
    assert clipped.min() >= -1 and clipped.max() <= 1


def test_the_kl_decomposition_sums_to_the_sampled_kl_and_matches_gaussian_closed_forms():
    """MI + TC + dimension-wise KL = E[log q(z|x) - log p(z)] (Chen et al. 2018, Eq. 2). With codes whose means
    are N(0, I) and posterior std s, the aggregate posterior is nearly Gaussian with variance 1 + s²: the MI is
    Σ_d ½ log((1 + s²) / s²), and when both dimensions share one mean their correlation is ρ = 1 / (1 + s²) and
    the total correlation -½ log(1 - ρ²); for independent means it is 0."""
    from genlab.losses import gaussian_log_density, kl_decomposition

    g = torch.Generator().manual_seed(0)
    m, s = 512, 0.2
    independent = torch.randn(m, 2, generator=g)
    logvar = torch.full((m, 2), math.log(s ** 2))
    rho = 1 / (1 + s ** 2)
    for mean, tc, mi in ((independent, 0.0, math.log((1 + s ** 2) / s ** 2)),
                         (independent[:, :1].repeat(1, 2), -0.5 * math.log(1 - rho ** 2), None)):
        z = mean + s * torch.randn(m, 2, generator=g)
        for n in (m, 60_000):  # the batch as the whole set, and as a sample of a larger one
            parts = kl_decomposition(z, mean, logvar, dataset_size=n)
            sampled_kl = (gaussian_log_density(z, mean, logvar) - gaussian_log_density(z)).mean()
            assert float(parts["mi"] + parts["tc"] + parts["dim_kl"]) == pytest.approx(float(sampled_kl), abs=1e-3)
            assert float(parts["tc"]) == pytest.approx(tc, abs=0.12), (n, parts)
            if mi is not None:
                assert float(parts["mi"]) == pytest.approx(mi, abs=0.25), (n, parts)
