"""Ex-post priors: the mixture recovers a known density, rides in checkpoints, and every sampler uses it."""

from __future__ import annotations

import pytest
import torch

from genlab import checkpoint
from genlab.errors import GenlabError
from genlab.models import build_model
from genlab.models.latent import decode_prior_samples, draw_codes, prior_description
from genlab.models.priors import GaussianMixturePrior, StandardNormal, build_prior
from genlab.run import load_model
from genlab.sampling import draw
from genlab.training import train
from helpers import one_thread, tiny_config


def two_blobs(n: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0, 0.0], [-4.0, 1.0, 0.0]])
    mix = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.0, 0.3]])  # correlated, one narrow axis
    which = (torch.rand(n, generator=g) < 0.3).long()
    return centres[which] + torch.randn(n, 3, generator=g) @ mix.T, centres


def test_mixture_recovers_a_known_density_and_samples_from_it():
    codes, centres = two_blobs()
    prior = GaussianMixturePrior(3, components=2)
    prior.fit(codes, seed=0)
    order = prior.means[:, 0].argsort(descending=True)
    assert torch.allclose(prior.means[order].float(), centres, atol=0.1)
    assert prior.weights[order][0] == pytest.approx(0.7, abs=0.03)
    drawn = prior.sample(20_000, torch.Generator().manual_seed(1))
    assert torch.allclose(drawn.mean(0), codes.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(drawn.T), torch.cov(codes.T), atol=0.15)
    # N(0, I) codes are nowhere near these: the mixture's draws are what makes the difference
    assert (drawn[:, 2].std() - 0.3).abs() < 0.03


def test_seeded_draws_repeat_and_an_unfitted_mixture_is_the_standard_normal():
    prior = GaussianMixturePrior(4, components=3)
    a = prior.sample(5, torch.Generator().manual_seed(3))
    b = StandardNormal(4).sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    prior.fit(torch.randn(300, 4, generator=torch.Generator().manual_seed(0)) * 2 + 1, seed=0)
    c = prior.sample(5, torch.Generator().manual_seed(3))
    assert torch.equal(c, prior.sample(5, torch.Generator().manual_seed(3)))
    assert not torch.equal(a, c)
    assert "3-component" in prior.describe() and "300 training images" in prior.describe()


def test_bad_prior_settings_are_named():
    with pytest.raises(ValueError, match="prior must be one of standard_normal, gmm"):
        build_prior("flow", 4, 3)
    with pytest.raises(GenlabError, match="prior must be one of"):
        build_model("res_vae", {"hidden_dims": [4, 8], "latent_dim": 4, "prior": "flow"}, image_size=16, channels=1)
    with pytest.raises(GenlabError, match="model.prior_components must be a positive integer"):
        build_model("vae", {"prior": "gmm", "prior_components": 0}, image_size=16, channels=1)
    with pytest.raises(ValueError, match="needs at least 20 codes"):
        GaussianMixturePrior(2, components=10).fit(torch.randn(5, 2), seed=0)


@pytest.mark.parametrize("name", ["vae", "beta_vae", "res_vae"])
def test_every_sampler_draws_from_the_models_prior(name):
    tiny = {"vae": {"hidden_dims": [4, 8]}, "beta_vae": {"hidden_dims": [4, 4, 8, 8, 8]},
            "res_vae": {"hidden_dims": [4, 8]}}[name]
    model = build_model(name, {**tiny, "latent_dim": 3, "prior": "gmm", "prior_components": 2},
                        image_size=32, channels=1).eval()
    codes, _ = two_blobs(400)
    model.prior.fit(codes, seed=0)
    z = draw_codes(model, 64, torch.Generator().manual_seed(0))
    assert z[:, 0].abs().min() > 1.0  # two blobs at x = ±4, none near 0 as N(0, I) would give
    first = torch.cat(list(decode_prior_samples(model, 8, seed=5, batch_size=3)))
    with torch.no_grad():
        assert torch.allclose(first, model.decode(draw_codes(model, 8, torch.Generator().manual_seed(5))), atol=1e-6)
    assert "mixture" in prior_description(model, short=True)


@pytest.fixture(scope="module")
def gmm_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("prior_runs")
    cfg = tiny_config(name="gmm", model={"name": "res_vae", "hidden_dims": [4, 8], "latent_dim": 3, "prior": "gmm",
                                         "prior_components": 2}, train={"epochs": 2})
    with one_thread():
        train(cfg, out=out)
    return out / "gmm"


def test_training_fits_the_prior_into_every_checkpoint(gmm_run):
    for which in ("last", "best"):
        state = checkpoint.load(gmm_run / "checkpoints" / f"{which}.pt")
        assert bool(state["model"]["prior.fitted"]), which
        assert int(state["model"]["prior.fitted_on"]) == 96  # every training image (data.limit), once
    trained = load_model(gmm_run)
    assert bool(trained.model.prior.fitted)
    drawn = draw(trained, 6, seed=2)
    assert "mixture" in drawn.source
    assert torch.allclose(drawn.images, draw(trained, 6, seed=2, batch_size=4).images, atol=1e-6)


def test_export_carries_the_fitted_mixture(gmm_run, tmp_path):
    import json

    import numpy as np

    from genlab.export import export_run

    written = export_run(gmm_run, ["torchscript"], out=tmp_path)
    assert tmp_path / "prior.npz" in written
    manifest = json.loads((tmp_path / "model.json").read_text())
    assert "prior.npz" in manifest["files"] and "mixture" in manifest["model"]["prior"]
    assert "mixture" in (tmp_path / "README.md").read_text()
    arrays = np.load(tmp_path / "prior.npz")
    trained = load_model(gmm_run)
    assert np.allclose(arrays["means"], trained.model.prior.means.numpy())
    # what a consumer without genlab does: draw from the arrays, decode with decoder.pt
    rng = np.random.default_rng(0)
    k = rng.choice(len(arrays["weights"]), 4, p=arrays["weights"])
    z = arrays["means"][k] + np.einsum("nij,nj->ni", arrays["scale_tril"][k], rng.standard_normal((4, 3)))
    images = torch.jit.load(tmp_path / "decoder.pt")(torch.from_numpy(z).float())
    assert images.shape == (4, 1, 12, 12) and images.min() >= 0 and images.max() <= 1
