"""DCGAN and cGAN: shapes at several sizes, conditioning, initialisation, size errors."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models import build_model, is_gan

TINY = {"dcgan": {"g_width": 4, "d_width": 4, "latent_dim": 8},
        "cgan": {"g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4}}


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("conditional", [False, True])
def test_dcgan_shapes(size, channels, conditional):
    m = build_model("dcgan", {**TINY["dcgan"], "conditional": conditional}, image_size=size, channels=channels,
                    num_classes=5)
    assert is_gan(m) and m.conditional == conditional
    labels = torch.arange(3) if conditional else None
    x = m.sample(3, labels=labels)
    assert x.shape == (3, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # Tanh output
    assert m.discriminate(x, labels).shape == (3,)


def test_dcgan_64_has_the_seed_layer_counts():
    m = build_model("dcgan", {}, image_size=64, channels=3)
    g = [mod for mod in m.generator.modules() if isinstance(mod, torch.nn.ConvTranspose2d)]
    d = [mod for mod in m.discriminator.modules() if isinstance(mod, torch.nn.Conv2d) and mod.stride == (2, 2)]
    assert len(g) == 4 and len(d) == 4
    assert g[0].in_channels == 100
    leaky = [mod for mod in m.discriminator.modules() if isinstance(mod, torch.nn.LeakyReLU)]
    assert leaky and all(mod.negative_slope == 0.2 for mod in leaky)


def test_dcgan_initialisation():
    torch.manual_seed(0)
    m = build_model("dcgan", {}, image_size=64, channels=3)
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    w = torch.cat([mod.weight.flatten() for mod in m.modules() if isinstance(mod, convs)])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = torch.cat([mod.weight for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)])
    assert abs(bn.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize("size", [28, 32, 64])
def test_cgan_shapes(size):
    m = build_model("cgan", TINY["cgan"], image_size=size, channels=1, num_classes=10)
    y = torch.arange(4)
    x = m.sample(4, labels=y)
    assert x.shape == (4, 1, size, size)
    assert m.discriminate(x, y).shape == (4,)


@pytest.mark.parametrize("conditioning", ["label_map", "projection"])
def test_cgan_output_depends_on_label(conditioning):
    m = build_model("cgan", {**TINY["cgan"], "d_conditioning": conditioning}, image_size=28, channels=1,
                    num_classes=10).eval()
    z = torch.randn(1, 8).repeat(10, 1)
    out = m.decode(z, torch.arange(10))
    assert not torch.allclose(out[0], out[1])
    d = m.discriminate(out[:1].repeat(2, 1, 1, 1), torch.tensor([0, 1]))
    assert d[0] != d[1]


def test_spectral_norm_discriminator_bounds_each_layer():
    """Miyato et al. 2018: each conv's weight has spectral norm ~1 once the power iteration has run."""
    m = build_model("dcgan", {**TINY["dcgan"], "d_spectral_norm": True}, image_size=32, channels=3)
    d = m.discriminator
    assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in d.modules())
    x = torch.randn(4, 3, 32, 32)
    for _ in range(30):  # power iterations happen in training-mode forward passes
        d(x)
    convs = [mod for mod in d.net if isinstance(mod, torch.nn.Conv2d)]
    assert len(convs) == 4
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    plain = build_model("dcgan", TINY["dcgan"], image_size=32, channels=3).discriminator
    assert any(isinstance(mod, torch.nn.BatchNorm2d) for mod in plain.modules())


def test_projection_discriminator_has_no_label_channel():
    """Miyato & Koyama 2018: the label enters through an inner product with the features, not the input."""
    m = build_model("cgan", {**TINY["cgan"], "d_conditioning": "projection"}, image_size=28, channels=1,
                    num_classes=10)
    assert m.discriminator.net[0].in_channels == 1
    assert m.discriminator.class_embed.weight.shape == (10, m.discriminator.net[-1].in_features)
    with pytest.raises(GenlabError, match="d_conditioning must be"):
        build_model("cgan", {**TINY["cgan"], "d_conditioning": "concat"}, image_size=28, channels=1,
                    num_classes=10)


def test_conditional_models_require_labels():
    m = build_model("cgan", TINY["cgan"], image_size=28, channels=1, num_classes=10)
    with pytest.raises(ValueError, match="labels"):
        m.decode(torch.randn(2, 8))


@pytest.mark.parametrize("name,kwargs,size,classes,match", [
    ("cgan", {}, 28, None, "labelled data set"),
    ("dcgan", {"conditional": True}, 64, None, "labelled data set"),
    ("dcgan", {}, 48, None, "one of"),
    ("cgan", {}, 30, 10, "multiple of 4"),
])
def test_impossible_builds_are_clear_errors(name, kwargs, size, classes, match):
    with pytest.raises(GenlabError, match=match):
        build_model(name, kwargs, image_size=size, channels=1, num_classes=classes)
