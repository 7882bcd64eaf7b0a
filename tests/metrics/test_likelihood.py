"""The importance-sampled log-likelihood against models whose likelihood is known in closed form: probabilistic
PCA (a linear-Gaussian VAE) and a Bernoulli decoder that ignores its code; the bound is exact with the exact
posterior and tightens towards log p(x) as k grows with a wrong one; dequantisation's change of variables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genlab.data import Normalizer
from genlab.metrics.likelihood import dequantised, importance_sampled, log_likelihood
from genlab.models.latent import Posterior
from genlab.objectives.likelihood import DecoderLikelihood, decoder_likelihood
from genlab.objectives.reconstruction import ReconstructionConfig

SIGMA = 0.5


class LinearGaussian(nn.Module):
    """x = W z + b + σ ε with orthogonal columns of W, so the exact posterior is a diagonal Gaussian:
    mean M⁻¹ Wᵀ (x - b), variance σ² M⁻¹ with M = WᵀW + σ² I (Tipping & Bishop 1999). `shift` and `var_scale`
    make it wrong on purpose."""

    def __init__(self, shift: float = 0.0, var_scale: float = 1.0):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64))
        self.register_buffer("w", (q * torch.tensor([2.0, 1.0], dtype=torch.float64)).float())
        self.register_buffer("b", torch.linspace(-1, 1, 6))
        self.m = (self.w.T @ self.w).diagonal() + SIGMA ** 2
        self.shift, self.var_scale, self.latent_dim = shift, var_scale, 2

    def encode(self, x: torch.Tensor) -> Posterior:
        mean = (x.flatten(1) - self.b) @ self.w / self.m + self.shift
        return Posterior(mean, torch.log(SIGMA ** 2 / self.m * self.var_scale).expand_as(mean))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return (z @ self.w.T + self.b).view(-1, 1, 2, 3)

    def true_log_likelihood(self, x: torch.Tensor) -> torch.Tensor:
        cov = (self.w @ self.w.T + SIGMA ** 2 * torch.eye(6)).double()
        return torch.distributions.MultivariateNormal(self.b.double(), cov).log_prob(x.flatten(1).double())


def data(n: int = 300) -> torch.Tensor:
    model = LinearGaussian()
    g = torch.Generator().manual_seed(1)
    z = torch.randn(n, 2, generator=g)
    return model.decode(z) + SIGMA * torch.randn(n, 1, 2, 3, generator=g)


GAUSS = DecoderLikelihood("gaussian", SIGMA)


def estimate(model, x, k, chunk=4096, seed=0):
    return importance_sampled(model, x, GAUSS, k, chunk, torch.Generator().manual_seed(seed))


def test_with_the_exact_posterior_every_weight_is_the_likelihood_itself():
    model, x = LinearGaussian(), data()
    bound, elbo = estimate(model, x, 1)
    truth = model.true_log_likelihood(x)
    assert torch.allclose(bound, truth, atol=1e-4) and torch.allclose(elbo, truth, atol=1e-4)
    assert torch.allclose(estimate(model, x, 37, chunk=50)[0], truth, atol=1e-4)


def test_with_a_wrong_posterior_the_bound_tightens_towards_the_likelihood_as_k_grows():
    model, x = LinearGaussian(shift=0.4, var_scale=3.0), data()
    truth = float(LinearGaussian().true_log_likelihood(x).mean())
    means = {k: float(estimate(model, x, k)[0].mean()) for k in (1, 10, 100, 3000)}
    assert means[1] < means[10] < means[100] < means[3000] <= truth + 1e-3, (means, truth)
    assert truth - means[1] > 0.3  # the wrong posterior leaves a real gap at k = 1 ...
    assert truth - means[3000] < 0.01  # ... that thousands of samples close
    # the mean log weight estimates the ELBO: log p(x) - KL(q || the exact posterior), in closed form here
    q, exact = model.encode(x), LinearGaussian().encode(x)
    kl = 0.5 * (q.logvar.exp() / exact.logvar.exp() + (q.mean - exact.mean) ** 2 / exact.logvar.exp() - 1
                + exact.logvar - q.logvar).sum(1)
    _, elbo = estimate(model, x, 3000)
    assert float(elbo.mean()) == pytest.approx(truth - float(kl.mean()), abs=0.02)


def test_chunks_of_any_size_hold_memory_flat_and_cover_all_k_samples():
    model, x = LinearGaussian(shift=0.4, var_scale=3.0), data(40)
    big = float(estimate(model, x, 1000, chunk=10**6)[0].mean())
    small = float(estimate(model, x, 1000, chunk=40 * 7)[0].mean())  # 7 draws per chunk: 143 chunks, last of 6
    assert abs(big - small) < 0.02


class ConstantBernoulli(nn.Module):
    """Every pixel is on with probability 0.3 whatever the code: log p(x) is known exactly at any k."""

    latent_dim = 3

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))

    def encode(self, x):
        return Posterior(torch.zeros(len(x), 3), torch.zeros(len(x), 3))

    def decode(self, z):
        return torch.full((len(z), 1, 4, 4), 0.3)


def test_binary_images_are_scored_as_they_are_in_nats_per_image():
    images = (np.random.default_rng(0).random((10, 4, 4, 1)) < 0.5).astype(np.uint8) * 255
    bound, elbo = log_likelihood(ConstantBernoulli(), images, Normalizer("zero_one", 1),
                                 DecoderLikelihood("bernoulli"), k=5, binary=True, seed=0)
    on = (images == 255).reshape(10, -1).sum(1)
    expected = on * math.log(0.3) + (16 - on) * math.log(0.7)
    assert np.allclose(bound, expected, atol=1e-4) and np.allclose(elbo, expected, atol=1e-4)


@pytest.mark.parametrize("kind, log_std", [("zero_one", 0.0), ("minus_one_one", math.log(0.5))])
def test_dequantised_pixels_stay_in_their_bin_and_carry_the_normalisations_jacobian(kind, log_std):
    v = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 3, 4, 4), dtype=np.uint8))
    norm = Normalizer(kind, 3)
    y, log_jacobian = dequantised(v, norm, torch.Generator().manual_seed(0))
    unit = y * norm.std + norm.mean
    assert bool(((unit * 256 >= v.float()) & (unit * 256 < v.float() + 1)).all())
    dims = 3 * 4 * 4
    assert log_jacobian == pytest.approx(-dims * math.log(256) - dims * log_std)


def test_the_likelihood_is_the_one_the_objective_trains_or_it_says_why_not():
    assert decoder_likelihood(ReconstructionConfig(recon_loss="bce")) == DecoderLikelihood("bernoulli")
    assert decoder_likelihood(ReconstructionConfig(likelihood_std=0.05)) == DecoderLikelihood("gaussian", 0.05)
    assert decoder_likelihood(ReconstructionConfig()).std == pytest.approx(1 / math.sqrt(2))
    assert "reduction: sum" in decoder_likelihood(ReconstructionConfig(reduction="mean"))
    x, x_hat = torch.rand(4, 1, 2, 3), torch.rand(4, 1, 2, 3)
    exact = torch.distributions.Normal(x_hat.flatten(1), 0.05).log_prob(x.flatten(1)).sum(1)
    assert torch.allclose(DecoderLikelihood("gaussian", 0.05).log_prob(x_hat, x), exact, atol=1e-3)


BINARY_RUN = {"model": {"name": "mlp_vae", "hidden_dims": [16], "latent_dim": 4},
              "objective": {"recon_loss": "bce", "iw_samples": 3},
              "data": {"normalize": "zero_one", "binarize": "dynamic", "hflip": False}}


def test_an_iwae_on_binarised_digits_trains_and_genlab_eval_scores_its_likelihood_only_when_asked(tmp_path,
                                                                                                   capsys):
    from genlab.cli import main
    from genlab.metrics.store import read_metrics
    from genlab.training import train
    from helpers import one_thread, tiny_config

    with one_thread():
        run = train(tiny_config(**BINARY_RUN, train={"epochs": 1}), out=tmp_path).run.path
    assert "nll" not in read_metrics(run / "metrics.json")
    main(["eval", str(run), "--checkpoint", "last"])
    assert "nll" not in read_metrics(run / "metrics.json")  # k decodes per image: run only when named
    main(["eval", str(run), "--checkpoint", "last", "--metrics", "nll", "--nll-samples", "20", "--nll-images", "10"])
    entry = read_metrics(run / "metrics.json")["nll"]
    assert entry["importance_samples"] == 20 and entry["n_images"] == 10
    assert "dynamic" in entry["binarisation"] and entry["likelihood"].startswith("Bernoulli")
    # an upper bound on the NLL at most the negative ELBO, and between 0 and the 144 bits of a coin per pixel
    assert 0 < entry["nll_nats"] <= entry["neg_elbo_nats"] + 1e-6
    assert entry["bits_per_dim"] == pytest.approx(entry["nll_nats"] / (144 * math.log(2)))


def test_a_bernoulli_likelihood_of_gray_images_is_refused_with_the_setting_that_fixes_it(tmp_path, capsys):
    from genlab.cli import main
    from genlab.training import train
    from helpers import one_thread, tiny_config

    gray = {**BINARY_RUN, "data": {"normalize": "zero_one", "hflip": False}}
    with one_thread():
        run = train(tiny_config(**gray, train={"epochs": 1, "max_steps": 2}), out=tmp_path).run.path
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "nll"]) != 0
    err = " ".join(capsys.readouterr().err.split())
    assert "'nll' does not apply" in err and "data.binarize: dynamic" in err and "Traceback" not in err
