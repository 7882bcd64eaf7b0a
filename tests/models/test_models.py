"""Every registered model, at several sizes and channel counts: shapes, API, gradients, save/load."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models import FIXED_OUTPUT_ACTIVATION, MODELS, VARIATIONAL, build_model, is_gan, output_activation

SMALL = {  # tiny widths so the whole grid runs in seconds; the architecture is the same
    "ae": {"hidden_dims": [4, 8, 8], "latent_dim": 4},
    "vae": {"hidden_dims": [4, 8, 8], "latent_dim": 4},
    "beta_vae": {"hidden_dims": [4, 4, 8, 8, 8], "latent_dim": 4},
    "res_vae": {"hidden_dims": [4, 4, 8, 8, 8], "latent_dim": 4},
}
AUTOENCODERS = sorted(SMALL)
GANS = sorted(n for n in MODELS if n not in SMALL)


def test_every_registered_model_is_tested():
    assert set(AUTOENCODERS) | set(GANS) == set(MODELS)
    assert not any(is_gan(build_model(n, SMALL[n], image_size=32, channels=1)) for n in AUTOENCODERS)


@pytest.mark.parametrize("name", AUTOENCODERS)
@pytest.mark.parametrize("size", [28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_round_trip(name, size, channels):
    model = build_model(name, SMALL[name], image_size=size, channels=channels).eval()
    x = torch.rand(2, channels, size, size) * 2 - 1
    post = model.encode(x)
    assert post.mean.shape == (2, 4)
    assert model.decode(post.mean).shape == x.shape
    assert model.reconstruct(x).shape == x.shape
    assert model.sample(3).shape == (3, channels, size, size)


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_variance_only_for_variational_models(name):
    model = build_model(name, SMALL[name], image_size=32, channels=1)
    post = model.encode(torch.zeros(2, 1, 32, 32))
    assert (post.logvar is not None) == (name != "ae") == (name in VARIATIONAL)  # what config checks rely on


def test_output_activation_a_config_gives_each_model():
    assert output_activation("vae", {}) == output_activation("ae", {}) == "tanh"
    assert output_activation("res_vae", {"output_activation": "sigmoid"}) == "sigmoid"
    assert output_activation("nope", {}) is None
    assert set(FIXED_OUTPUT_ACTIVATION) == set(GANS)
    for name in GANS:  # the generators' last layer really is the activation the registry states
        gan = build_model(name, {"g_width": 8, "d_width": 8}, image_size=32, channels=1, num_classes=3)
        last = list(gan.generator.modules())[-1]
        assert type(last).__name__.lower() == FIXED_OUTPUT_ACTIVATION[name] == output_activation(name, {})


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_every_parameter_gets_a_gradient(name):
    model = build_model(name, SMALL[name], image_size=32, channels=3)
    x = torch.rand(4, 3, 32, 32)
    model.decode(model.encode(x).mean).pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    if name != "ae":
        missing = [n for n in missing if "logvar" not in n]  # unused when decoding the mean
    assert missing == []


@pytest.mark.parametrize("name", AUTOENCODERS)
def test_state_dict_round_trip_reproduces_outputs(name):
    a = build_model(name, SMALL[name], image_size=28, channels=1).eval()
    b = build_model(name, SMALL[name], image_size=28, channels=1).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(a.reconstruct(x), b.reconstruct(x))


def test_sample_is_reproducible_with_a_generator():
    m = build_model("vae", SMALL["vae"], image_size=28, channels=1).eval()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(m.sample(4, generator=g1), m.sample(4, generator=g2))


def test_output_activation_bounds_the_output():
    m = build_model("vae", {**SMALL["vae"], "output_activation": "sigmoid"}, image_size=28, channels=1)
    y = m.decode(torch.randn(8, 4) * 10)
    assert y.min() >= 0 and y.max() <= 1


def test_seed_presets_match_the_seed_architectures():
    beta = build_model("beta_vae", {}, image_size=64, channels=3)
    convs = [m for m in beta.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256, 512]
    assert all(c.stride == (2, 2) and c.kernel_size == (3, 3) for c in convs)
    assert beta.latent_dim == 128
    ae = build_model("ae", {}, image_size=28, channels=1)
    assert ae.latent_dim == 128 and ae.fc.out_features == 128


def test_too_small_image_is_a_clear_error():
    with pytest.raises(GenlabError, match="at least 17"):
        build_model("beta_vae", {}, image_size=8, channels=3)
