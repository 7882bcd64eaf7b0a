"""Loss terms against values computed by hand."""

from __future__ import annotations

import math

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
