"""DCGAN and cGAN: shapes at several sizes, conditioning, initialisation, size errors."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models import build_model, capabilities
from genlab.models.gan import GAN

TINY = {"dcgan": {"g_width": 4, "d_width": 4, "latent_dim": 8},
        "cgan": {"g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4}}


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("conditional", [False, True])
def test_dcgan_shapes(size, channels, conditional):
    m = build_model("dcgan", {**TINY["dcgan"], "conditional": conditional}, image_size=size, channels=channels,
                    num_classes=5)
    assert isinstance(m, GAN) and m.conditional == conditional
    assert capabilities("dcgan", {"conditional": conditional}, 5).conditional == conditional
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
    ("dcgan", {"d_norm": "instance"}, 64, None, "batch, none, layer"),
])
def test_impossible_builds_are_clear_errors(name, kwargs, size, classes, match):
    with pytest.raises(GenlabError, match=match):
        build_model(name, kwargs, image_size=size, channels=1, num_classes=classes)


@pytest.mark.parametrize("d_norm, spectral, norm_type, biased", [
    (None, False, torch.nn.BatchNorm2d, False), ("batch", False, torch.nn.BatchNorm2d, False),
    ("layer", False, torch.nn.GroupNorm, False), ("none", False, None, True), (None, True, None, True)])
def test_discriminator_norm_choices(d_norm, spectral, norm_type, biased):
    m = build_model("dcgan", {**TINY["dcgan"], "d_norm": d_norm, "d_spectral_norm": spectral}, image_size=32,
                    channels=3)
    norms = [x for x in m.discriminator.modules() if isinstance(x, (torch.nn.BatchNorm2d, torch.nn.GroupNorm))]
    assert {type(x) for x in norms} == ({norm_type} if norm_type else set())
    convs = [x for x in m.discriminator.modules() if isinstance(x, torch.nn.Conv2d)]
    assert (convs[1].bias is not None) == biased  # a bias only where no norm follows to cancel it
    if norm_type is torch.nn.GroupNorm:  # one image's output does not depend on the rest of its batch
        x = torch.randn(4, 3, 32, 32)
        m.discriminator.train()
        assert torch.allclose(m.discriminate(x)[:1], m.discriminate(x[:1]), atol=1e-5)


def _gen_state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("name", ["dcgan", "cgan"])
def test_weight_average_starts_as_the_generator_and_follows_it(name):
    m = build_model(name, {**TINY[name], "ema_decay": 0.9}, image_size=16, channels=1, num_classes=3)
    live, avg = _gen_state(m.generator), _gen_state(m.generator_ema)
    assert all(torch.equal(live[k], avg[k]) for k in live)  # init reached the copy, then it was reset
    assert not any(p.requires_grad for p in m.generator_ema.parameters())
    before = _gen_state(m.generator_ema)
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(1.0)
    for _ in range(3):  # ramp: decay min(0.9, (1+t)/(10+t)) = 0.1, 0.1818..., 0.25
        m.update_average()
    kept = 0.1 * (2 / 11) * 0.25  # share of the old weights left after three updates
    for k, p in m.generator.named_parameters():
        expected = before[k] * kept + p.detach() * (1 - kept)
        assert torch.allclose(m.generator_ema.state_dict()[k], expected, atol=1e-5), k
    assert int(m.ema_updates) == 3


def test_sampling_uses_the_average_and_training_the_live_generator():
    m = build_model("cgan", {**TINY["cgan"], "ema_decay": 0.99}, image_size=16, channels=1, num_classes=3).eval()
    assert m.sampling_generator is m.generator_ema
    z, y = torch.randn(4, 8), torch.arange(4) % 3
    with torch.no_grad():
        for p in m.generator.parameters():
            p.mul_(-1.0)
        assert torch.equal(m.decode(z, y), m.generator_ema(z, y))
        assert not torch.equal(m.decode(z, y), m.generator(z, y))
    plain = build_model("cgan", TINY["cgan"], image_size=16, channels=1, num_classes=3)
    assert plain.sampling_generator is plain.generator and plain.generator_ema is None
    plain.update_average()  # no average: nothing to do


def test_weight_average_round_trips_and_adopts_older_checkpoints():
    kw = {**TINY["dcgan"], "ema_decay": 0.99}
    m = build_model("dcgan", kw, image_size=16, channels=1)
    with torch.no_grad():
        for p in m.generator.parameters():
            p.add_(0.5)
    m.update_average()
    again = build_model("dcgan", kw, image_size=16, channels=1)
    again.load_state_dict(m.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(again.generator_ema.state_dict().values(),
                                                 m.generator_ema.state_dict().values()))
    assert int(again.ema_updates) == 1
    older = build_model("dcgan", TINY["dcgan"], image_size=16, channels=1)  # trained without the average
    again.load_state_dict(older.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(again.generator_ema.state_dict().values(),
                                                 older.generator.state_dict().values()))
    assert int(again.ema_updates) == 0


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5])
def test_weight_average_decay_out_of_range_is_a_clear_error(decay):
    with pytest.raises(GenlabError, match=r"ema_decay must be in \[0, 1\)"):
        build_model("dcgan", {**TINY["dcgan"], "ema_decay": decay}, image_size=16, channels=1)
