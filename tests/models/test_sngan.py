"""SNGAN: start grids, residual blocks at each size, spectral norm on every weight of D, both conditionings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.models import build_model
from genlab.models.sngan import start_size

TINY = {"g_width": 4, "d_width": 4, "latent_dim": 8}


@pytest.mark.parametrize("size, start", [(16, 4), (28, 7), (32, 4), (48, 6), (64, 4), (128, 4)])
def test_start_grid(size, start):
    assert start_size(size) == start


@pytest.mark.parametrize("size, blocks", [(32, 3), (64, 4), (128, 5)])
def test_one_residual_block_per_doubling(size, blocks):
    m = build_model("sngan", TINY, image_size=size, channels=3)
    assert len(m.generator.blocks) == blocks
    assert len(m.discriminator.blocks) == blocks + 1  # and one more at the start grid
    assert m.sample(2).shape == (2, 3, size, size)


def test_widths_of_the_papers_64px_generator():
    m = build_model("sngan", {"g_width": 64, "d_width": 64}, image_size=64, channels=3)
    assert [b.conv1.out_channels for b in m.generator.blocks] == [512, 256, 128, 64]
    assert m.generator.c0 == 1024


def test_every_weight_of_d_is_spectrally_normalised():
    torch.manual_seed(0)
    m = build_model("sngan", {**TINY, "conditional": True}, image_size=32, channels=3, num_classes=4)
    d = m.discriminator
    layers = [x for x in d.modules() if isinstance(x, nn.Conv2d | nn.Linear | nn.Embedding)]
    assert layers and all(nn.utils.parametrize.is_parametrized(x, "weight") for x in layers)
    d.train()
    for _ in range(30):  # power iteration converges during training forwards
        d(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))
    d.eval()
    for x in layers:
        w = x.weight.detach().flatten(1) if not isinstance(x, nn.Embedding) else x.weight.detach()
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)
    assert not any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in d.modules())


def test_conditioning_reaches_both_networks():
    torch.manual_seed(0)
    m = build_model("sngan", {**TINY, "conditional": True}, image_size=16, channels=1, num_classes=3)
    with torch.no_grad():  # make the class parameters differ from their neutral initialisation
        for name, p in m.named_parameters():
            if "scale" in name or "shift" in name:
                p.add_(torch.randn_like(p))
    m.eval()
    z = torch.randn(2, 8)
    a, b = m.generator(z, torch.tensor([0, 0])), m.generator(z, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)  # conditional BatchNorm
    x = torch.randn(2, 1, 16, 16)
    assert not torch.allclose(m.discriminate(x, torch.tensor([0, 0])), m.discriminate(x, torch.tensor([2, 2])))


def test_unconditional_networks_have_no_class_parameters():
    m = build_model("sngan", TINY, image_size=16, channels=1, num_classes=3)
    assert not m.conditional
    assert not any("embed" in n or "scale" in n for n, _ in m.named_parameters())


@pytest.mark.parametrize("size", [7, 9, 18, 36, 100])
def test_sizes_without_a_small_start_grid_are_clear_errors(size):
    with pytest.raises(GenlabError, match="image_size must be 4 to 7 times"):
        build_model("sngan", TINY, image_size=size, channels=1)


def test_conditional_needs_labels():
    with pytest.raises(GenlabError, match="labelled data set"):
        build_model("sngan", {**TINY, "conditional": True}, image_size=16, channels=1)
