"""The GAN losses as functions of D's outputs, and the gradient penalty on a critic with a known gradient."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.objectives import gan_losses


def test_hinge_terms_match_the_definition():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    lr, lf = gan_losses.d_terms("hinge", real, fake)
    assert lr.item() == pytest.approx((0 + 0.5 + 2.0) / 3)
    assert lf.item() == pytest.approx((0 + 1.0 + 2.0) / 3)
    assert gan_losses.g_loss("hinge", fake).item() == pytest.approx(-fake.mean().item())


def test_wasserstein_terms_are_the_critics_means():
    real, fake = torch.tensor([3.0, 1.0]), torch.tensor([0.5, -0.5])
    lr, lf = gan_losses.d_terms("wasserstein", real, fake)
    assert (lr + lf).item() == pytest.approx(-(2.0 - 0.0))
    assert gan_losses.g_loss("wasserstein", fake).item() == pytest.approx(0.0)


def test_bce_with_smoothing_and_its_floor():
    logits = torch.zeros(4)
    lr, lf = gan_losses.d_terms("bce", logits, logits, 0.9, 0.0)
    assert lr.item() == pytest.approx(math.log(2)) and lf.item() == pytest.approx(math.log(2))
    assert gan_losses.d_loss_floor("bce", 0.9, 0.0) == pytest.approx(gan_losses.binary_entropy(0.9))
    assert gan_losses.d_loss_floor("hinge", 1, 0) == 0.0
    assert gan_losses.d_loss_floor("wasserstein", 1, 0) is None


@pytest.mark.parametrize("slope, expected", [(1.0, 0.0), (3.0, 4.0), (0.0, 1.0)])
def test_gradient_penalty_of_a_linear_critic(slope, expected):
    """A linear critic w·x has gradient w everywhere, so the penalty is (||w|| - 1)^2 exactly."""
    torch.manual_seed(0)
    w = torch.randn(1, 2, 4, 4)
    w = w / w.norm() * slope
    w.requires_grad_(True)
    real, fake = torch.rand(6, 2, 4, 4), torch.rand(6, 2, 4, 4)
    gp = gan_losses.gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake)
    assert gp.item() == pytest.approx(expected, abs=1e-5)
    if slope:
        gp.backward()  # the penalty keeps its graph: it trains the critic
        assert w.grad is not None


def test_gradient_penalty_is_per_image_on_interpolates():
    """A critic ||x||^2 / 2 has gradient x: the penalty depends on where between real and fake x_hat is."""
    torch.manual_seed(0)
    real, fake = torch.full((64, 1, 2, 2), 2.0), torch.zeros(64, 1, 2, 2)
    gp = gan_losses.gradient_penalty(lambda x: 0.5 * x.flatten(1).square().sum(1), real, fake)
    # ||grad|| = ||eps * real|| = 4 eps with eps ~ U(0, 1): E[(4 eps - 1)^2] = 16/3 - 4 + 1 = 7/3
    assert gp.item() == pytest.approx(7 / 3, rel=0.25)
