"""Model registry behaviour beyond what tests/models/test_registry.py checks for every entry: presets,
capabilities, argument errors."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models import MODELS, build_model, capabilities

TINY_VAE = MODELS["vae"].tiny


def test_unknown_model_name_suggests_the_closest():
    with pytest.raises(GenlabError, match="unknown model 'vea'; did you mean 'vae'"):
        build_model("vea", {}, image_size=32, channels=1)


def test_capabilities_follow_the_arguments():
    assert capabilities("dcgan", {}, 10).conditional is False
    assert capabilities("dcgan", {"conditional": True}, 10).num_classes == 10
    assert capabilities("cgan", {}, 10).num_classes == 10
    assert capabilities("vae", {}, 10).num_classes == 0  # labels in the data do not make a VAE conditional
    assert capabilities("vae", {}).variational and not capabilities("ae", {}).variational
    assert capabilities("res_vae", {"output_activation": "sigmoid"}).output_activation == "sigmoid"


def test_latent_dim_zero_is_refused_before_anything_is_built():
    with pytest.raises(GenlabError, match=r"model\.latent_dim must be a positive integer .*got 0.*default is 32"):
        build_model("vae", {"latent_dim": 0}, image_size=32, channels=1)
    with pytest.raises(GenlabError, match=r"model\.hidden_dims must be a list of positive integers.*\[8, -1\]"):
        build_model("vae", {"hidden_dims": [8, -1]}, image_size=32, channels=1)


def test_sample_is_reproducible_with_a_generator():
    m = build_model("vae", TINY_VAE, image_size=28, channels=1).eval()
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    torch.testing.assert_close(m.sample(4, generator=g1), m.sample(4, generator=g2))


def test_output_activation_bounds_the_output():
    m = build_model("vae", {**TINY_VAE, "output_activation": "sigmoid"}, image_size=28, channels=1)
    y = m.decode(torch.randn(8, 4) * 10)
    assert y.min() >= 0 and y.max() <= 1


def test_presets_match_the_original_experiments_architectures():
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


def test_res_vae_spatial_bottleneck_keeps_each_code_cell_local():
    """A spatial code is flat to the outside, (C, h, w) inside: a cell of the top-left corner changes the
    top-left of the image and cannot reach the far corner (eval mode, so batch norm is per-channel affine)."""
    tiny = {**MODELS["res_vae"].tiny, "hidden_dims": [4, 4, 8], "latent_dim": 128}
    m = build_model("res_vae", {**tiny, "bottleneck": "spatial"}, image_size=64, channels=1).eval()
    z = torch.randn(1, 128)
    assert m.encode(torch.rand(2, 1, 64, 64)).mean.shape == (2, 128)
    corner = torch.arange(0, 128, 64)  # cell (0, 0) of each of the 2 channels on the 8x8 grid
    moved = z.clone()
    moved[0, corner] += 3.0
    with torch.no_grad():
        a, b = m.decode(z), m.decode(moved)
    assert (a[..., :8, :8] - b[..., :8, :8]).abs().max() > 1e-4
    torch.testing.assert_close(a[..., -16:, -16:], b[..., -16:, -16:])

    dense = build_model("res_vae", tiny, image_size=64, channels=1).eval()
    with torch.no_grad():
        c, d = dense.decode(z), dense.decode(moved)
    assert (c[..., -16:, -16:] - d[..., -16:, -16:]).abs().max() > 1e-6  # a dense code reaches everywhere


def test_res_vae_spatial_bottleneck_needs_latent_dim_to_fill_the_grid():
    with pytest.raises(GenlabError, match=r"multiple of 64 \(got 100; e\.g\. 256, 512, 1024\)"):
        build_model("res_vae", {**MODELS["res_vae"].tiny, "hidden_dims": [4, 4, 8], "latent_dim": 100,
                                "bottleneck": "spatial"}, image_size=64, channels=1)
