"""The reconstruction objective: which terms, which weights, what the denoiser sees."""

from __future__ import annotations

import pytest
import torch

from genlab.config import OptimConfig
from genlab.data import Batch, Normalizer
from genlab.errors import GenlabError
from genlab.losses import kl_divergence, reconstruction_loss
from genlab.models import build_model
from genlab.models.latent import Posterior
from genlab.objectives import Stepper
from genlab.objectives.reconstruction import Reconstruction, ReconstructionConfig


class Recorder(torch.nn.Module):
    """A fake model that records what it was given and returns a fixed posterior."""

    def __init__(self, variational=True):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.variational = variational
        self.seen = None

    def encode(self, x):
        self.seen = x.clone()
        mu = torch.ones(x.shape[0], 2) + self.w
        return Posterior(mu, torch.zeros_like(mu) if self.variational else None)

    def decode(self, z):
        return torch.zeros(z.shape[0], 1, 4, 4) + self.w


def _obj(model, **cfg):
    return Reconstruction(model, ReconstructionConfig(**cfg), OptimConfig(), Normalizer("minus_one_one", 1))


def _batch():
    return Batch(torch.full((3, 1, 4, 4), 0.5), None)


def test_denoising_corrupts_input_but_targets_clean_image():
    model = Recorder(variational=False)
    terms = _obj(model, noise_std=0.3, reduction="mean").train_step(_batch(), 0, Stepper())
    assert not torch.equal(model.seen, _batch().images)
    assert abs((model.seen - 0.5).std().item() - 0.3) < 0.1
    # decoder outputs 0, clean target 0.5 everywhere -> MSE 0.25 exactly (noise would change it)
    assert terms["recon"].item() == pytest.approx(0.25)
    assert set(terms) == {"loss", "recon"}


def test_vae_loss_is_recon_plus_beta_times_kld_weight_times_kl():
    torch.manual_seed(0)
    model = Recorder()
    terms = _obj(model, beta=10.0, kld_weight=0.0025).train_step(_batch(), 0, Stepper())
    assert terms["kl"].item() == pytest.approx(1.0)  # mu = (1, 1), var 1 -> 0.5 * 2
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 10.0 * 0.0025 * 1.0)


def test_kl_warmup_scales_the_weight_linearly():
    obj = _obj(Recorder(), beta=2.0, kl_warmup_steps=100)
    assert obj.kl_weight(0) == 0.0 and obj.kl_weight(50) == 1.0 and obj.kl_weight(500) == 2.0


def test_capacity_objective_penalises_distance_to_the_target_kl():
    obj = _obj(Recorder(), capacity_max=10.0, capacity_steps=10, gamma=100.0)
    terms = obj.train_step(_batch(), 5, Stepper())
    assert terms["capacity"].item() == 5.0
    assert terms["loss"].item() == pytest.approx(terms["recon"].item() + 100.0 * abs(1.0 - 5.0))


def test_eval_step_is_reproducible_with_a_generator_and_does_not_train():
    model = build_model("vae", {"hidden_dims": [4, 8], "latent_dim": 3}, image_size=12, channels=1).eval()
    obj = _obj(model, noise_std=0.1)
    batch = Batch(torch.rand(4, 1, 12, 12) * 2 - 1, None)
    before = [p.clone() for p in model.parameters()]
    a = obj.eval_step(batch, torch.Generator().manual_seed(0))
    b = obj.eval_step(batch, torch.Generator().manual_seed(0))
    assert {k: v.item() for k, v in a.items()} == {k: v.item() for k, v in b.items()}
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_eval_terms_match_the_loss_functions_on_a_real_model():
    torch.manual_seed(0)
    model = build_model("vae", {"hidden_dims": [4, 8], "latent_dim": 3}, image_size=12, channels=1)
    x = torch.rand(4, 1, 12, 12) * 2 - 1
    obj = _obj(model, beta=4.0)
    terms = obj.eval_step(Batch(x, None), torch.Generator().manual_seed(1))
    post = model.encode(x)
    assert terms["kl"].item() == pytest.approx(kl_divergence(post.mean, post.logvar).item(), rel=1e-5)
    eps = torch.randn(post.mean.shape, generator=torch.Generator().manual_seed(1))
    x_hat = model.decode(post.mean + torch.exp(0.5 * post.logvar) * eps)
    assert terms["recon"].item() == pytest.approx(reconstruction_loss(x_hat, x).item(), rel=1e-5)


def test_bce_with_wrong_normalisation_is_refused():
    with pytest.raises(GenlabError, match="zero_one"):
        _obj(Recorder(), recon_loss="bce")


def test_likelihood_std_is_the_gaussian_negative_log_likelihood():
    """Summed squared error / (2 std²) = -log N(x; x̂, std² I) up to a constant, per image."""
    model = Recorder(variational=False)
    terms = _obj(model, reduction="sum", likelihood_std=0.1).train_step(_batch(), 0, Stepper())
    x_hat, x = torch.zeros(1, 1, 4, 4), torch.full((1, 1, 4, 4), 0.5)
    nll = -torch.distributions.Normal(x_hat, 0.1).log_prob(x).sum()
    constant = 16 * 0.5 * torch.log(torch.tensor(2 * torch.pi * 0.1 ** 2))
    assert terms["recon"].item() == pytest.approx((nll - constant).item(), rel=1e-5)
    assert terms["recon"].item() == pytest.approx(16 * 0.25 / (2 * 0.01), rel=1e-5)


@pytest.mark.parametrize("cfg", [{"reduction": "mean", "likelihood_std": 0.1},
                                 {"recon_loss": "bce", "reduction": "sum", "likelihood_std": 0.1}])
def test_likelihood_std_needs_a_per_image_gaussian(cfg):
    from genlab.config import validate
    with pytest.raises(GenlabError, match="likelihood_std .*needs recon_loss: mse and reduction: sum"):
        validate({"model": {"name": "vae"}, "data": {"name": "digits"}, "objective": cfg})


def _binary_batch(n=8):
    return Batch((torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(2)) < 0.3).float(), None)


class CodeDependent(torch.nn.Module):
    """q(z | x) = N(0, I) and a decoder whose pixel probabilities swing with z: one sample is a poor guess of
    p(x), so more importance samples visibly tighten the bound."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Linear(3, 144)
        self.enc = torch.nn.Parameter(torch.zeros(3))
        torch.nn.init.normal_(self.head.weight, std=2.0, generator=torch.Generator().manual_seed(0))

    def encode(self, x):
        mu = self.enc.expand(len(x), 3)
        return Posterior(mu, torch.zeros_like(mu))

    def decode(self, z):
        return torch.sigmoid(self.head(z)).view(-1, 1, 12, 12)


def _bernoulli_vae():
    return CodeDependent()


def _bce(model, **cfg):
    return Reconstruction(model, ReconstructionConfig(recon_loss="bce", **cfg), OptimConfig(),
                          Normalizer("zero_one", 1))


def test_iwae_bound_is_the_log_mean_weight_and_tightens_with_k():
    """IWAE's loss is -log (1/k) Σ w_k (Burda et al. 2016, Eq. 8): below the VAE's loss on average, and lower
    still at larger k, on one model and batch."""
    model, batch = _bernoulli_vae(), _binary_batch()

    def loss(k, seeds=range(20)):
        return sum(_bce(model, iw_samples=k).eval_step(batch, torch.Generator().manual_seed(s))["loss"].item()
                   for s in seeds) / len(seeds)

    vae, iw5, iw50 = loss(1), loss(5), loss(50)
    assert iw50 < iw5 < vae, (vae, iw5, iw50)
    # k = 1 through the importance-weighted path is the ELBO with a sampled KL: the same number on average
    from genlab.objectives.likelihood import decoder_likelihood, iw_bound, log_weights

    post = model.encode(batch.images)
    one = [iw_bound(log_weights(model, batch.images, post, 1, decoder_likelihood(ReconstructionConfig(
        recon_loss="bce")), torch.Generator().manual_seed(s)).total()).mean().item() for s in range(400)]
    assert -sum(one) / len(one) == pytest.approx(loss(1, range(400)), rel=0.01)


def test_iwae_trains_through_the_stepper_and_reports_its_terms():
    model = _bernoulli_vae().train()
    obj = _bce(model, iw_samples=4)
    before = [p.clone() for p in model.parameters()]
    terms = obj.train_step(_binary_batch(), 0, Stepper())
    assert set(terms) == {"loss", "recon", "kl"} and all(torch.isfinite(v) for v in terms.values())
    assert any(not torch.equal(p, q) for p, q in zip(before, model.parameters()))


def test_iwae_needs_a_variance_and_per_image_likelihoods():
    with pytest.raises(GenlabError, match="needs a variational model"):
        Reconstruction(Recorder(variational=False), ReconstructionConfig(iw_samples=3), OptimConfig(),
                       Normalizer("minus_one_one", 1)).train_step(_batch(), 0, Stepper())
    from genlab.config import validate
    for bad, match in (({"iw_samples": 3, "reduction": "mean"}, "needs reduction: sum"),
                       ({"iw_samples": 3, "capacity_max": 5.0}, "two different objectives")):
        with pytest.raises(GenlabError, match=match):
            validate({"model": {"name": "vae"}, "data": {"name": "digits"}, "objective": bad})


def test_tcvae_weighs_the_three_kl_parts_and_logs_them():
    from genlab.objectives.contract import Plan

    torch.manual_seed(0)
    model = build_model("vae", {"hidden_dims": [4, 8], "latent_dim": 3}, image_size=12, channels=1).eval()
    batch = Batch(torch.rand(16, 1, 12, 12) * 2 - 1, None)
    obj = Reconstruction(model, ReconstructionConfig(tc_beta=6.0, mi_weight=0.5), OptimConfig(),
                         Normalizer("minus_one_one", 1), Plan(10, 100, 10, train_images=160))
    t = obj.eval_step(batch, torch.Generator().manual_seed(0))
    assert {"mi", "tc", "dim_kl", "kl"} <= set(t)
    weighted = 0.5 * t["mi"] + 6.0 * t["tc"] + t["dim_kl"]
    assert t["loss"].item() == pytest.approx((t["recon"] + weighted).item(), rel=1e-5)


@pytest.mark.parametrize("bad, match", [({"tc_beta": 6.0, "beta": 4.0}, "leave them at 1"),
                                        ({"tc_beta": 6.0, "capacity_max": 5.0}, "different objectives"),
                                        ({"tc_beta": 6.0, "iw_samples": 5}, "different objectives")])
def test_tcvae_settings_that_contradict_it_are_refused(bad, match):
    from genlab.config import validate
    with pytest.raises(GenlabError, match=match):
        validate({"model": {"name": "vae"}, "data": {"name": "digits"}, "objective": bad})
