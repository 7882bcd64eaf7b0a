"""FactorVAE: the permutation keeps each code dimension's marginal and breaks their dependence, the
discriminator's logits estimate the total correlation, it learns to tell dependent codes apart and not
independent ones, and the objective trains, logs, checkpoints and resumes its discriminator."""

from __future__ import annotations

import pytest
import torch

from genlab import checkpoint
from genlab.config import OptimConfig, validate
from genlab.data import Batch, Normalizer
from genlab.errors import GenlabError
from genlab.models import build_model
from genlab.objectives import Stepper
from genlab.objectives.factor_tc import FactorTC, permute_dims, tc_estimate
from genlab.objectives.reconstruction import Reconstruction, ReconstructionConfig
from genlab.training import train
from helpers import one_thread, tiny_config


def test_permuting_keeps_marginals_and_breaks_dependence():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 1, generator=g)
    z = torch.cat([x, x + 0.01 * torch.randn(2000, 1, generator=g)], 1)  # two almost equal dimensions
    p = permute_dims(z, torch.Generator().manual_seed(1))
    assert torch.equal(p.sort(0).values, z.sort(0).values)
    assert torch.corrcoef(z.T)[0, 1] > 0.99 and abs(torch.corrcoef(p.T)[0, 1]) < 0.1


def test_the_estimate_is_the_log_density_ratio():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5]])  # log D/(1-D) = l0 - l1 for a two-class softmax
    assert tc_estimate(logits).item() == pytest.approx((3.0 + 0.0) / 2)


def _train_d(z: torch.Tensor, steps: int = 100) -> dict[str, float]:
    torch.manual_seed(0)
    factor = FactorTC(z.shape[1], torch.device("cpu"), lr=1e-3, hidden=64, layers=2)
    stepper = Stepper()
    for _ in range(steps):
        factor.step(z, stepper)
    with torch.no_grad():
        t = factor.terms(z, torch.Generator().manual_seed(3))
        return {"accuracy": t["tc_d_accuracy"].item(), "tc": factor.tc(z).item()}


def test_the_discriminator_tells_dependent_codes_from_permuted_ones_and_not_independent_ones():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 1, generator=g)
    dependent = torch.cat([x, x + 0.05 * torch.randn(256, 1, generator=g)], 1)
    independent = torch.randn(256, 2, generator=g)
    d, i = _train_d(dependent), _train_d(independent)
    assert d["accuracy"] > 0.8 and d["tc"] > 0.5
    assert i["accuracy"] < 0.65 and abs(i["tc"]) < 0.3


def _objective(gamma: float = 10.0) -> Reconstruction:
    torch.manual_seed(0)
    model = build_model("vae", {"hidden_dims": [4, 8], "latent_dim": 3}, image_size=12, channels=1)
    return Reconstruction(model, ReconstructionConfig(factor_gamma=gamma, factor_d_hidden=16, factor_d_layers=2),
                          OptimConfig(), Normalizer("minus_one_one", 1))


def test_the_vae_pays_gamma_times_the_estimate_and_the_discriminator_steps_after_it():
    obj = _objective(gamma=10.0)
    batch = Batch(torch.rand(16, 1, 12, 12) * 2 - 1, None)
    before = [p.detach().clone() for p in obj.factor.discriminator.parameters()]
    t = obj.train_step(batch, 0, Stepper())
    assert {"tc", "tc_d_loss", "tc_d_accuracy"} <= set(t) and "_codes" not in t
    assert t["loss"].item() == pytest.approx((t["recon"] + t["kl"] + 10.0 * t["tc"]).item(), rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, obj.factor.discriminator.parameters()))
    assert set(obj.optimizers) == {"model", "tc_discriminator"}
    e = obj.eval_step(batch, torch.Generator().manual_seed(0))
    assert {"tc", "tc_d_loss", "tc_d_accuracy"} <= set(e) and "_codes" not in e


@pytest.mark.parametrize("bad", [{"tc_beta": 6.0}, {"capacity_max": 5.0}, {"iw_samples": 5}])
def test_other_kl_objectives_with_it_are_refused(bad):
    with pytest.raises(GenlabError, match="different objectives"):
        validate({"model": {"name": "vae"}, "data": {"name": "digits"},
                  "objective": {"factor_gamma": 10.0, **bad}})


def test_a_model_without_a_posterior_is_refused(tmp_path):
    cfg = tiny_config(model={"name": "ae", "hidden_dims": [4, 8], "latent_dim": 3}, objective={"factor_gamma": 5.0})
    with pytest.raises(GenlabError, match="no variational posterior"):
        train(cfg, out=tmp_path)


def test_an_interrupted_factorvae_run_resumes_exactly(tmp_path):
    """The discriminator and its optimiser are in the checkpoint: a resumed run equals an uninterrupted one."""
    extra = {"objective": {"factor_gamma": 5.0, "factor_d_hidden": 16, "factor_d_layers": 2}}
    with one_thread():
        full = train(tiny_config(name="full", **extra), out=tmp_path)
        train(tiny_config(name="part", **extra), out=tmp_path, stop_after_steps=7)
        resumed = train(None, resume=tmp_path / "part")
    assert resumed.result.progress.step == full.result.progress.step
    a = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")
    b = checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")
    assert a["objective"]["tc_discriminator"].keys() == b["objective"]["tc_discriminator"].keys()
    for k, v in a["objective"]["tc_discriminator"].items():
        assert torch.equal(v, b["objective"]["tc_discriminator"][k]), k
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
