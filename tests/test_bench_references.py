"""The references bench/side_by_side.py times genlab against: their networks are the published ones, and
every reference's step and every seed config it is paired with runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import references  # noqa: E402


def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_the_dcgan_is_pytorch_examples_own():
    """nz 100, ngf = ndf = 64, nc 3: the parameter counts pytorch/examples' dcgan/main.py prints."""
    g, d = references.examples_dcgan()
    assert (_params(g), _params(d)) == (3_576_704, 2_765_568)
    assert g(torch.randn(2, 100, 1, 1)).shape == (2, 3, 64, 64)
    assert d(torch.randn(2, 3, 64, 64)).view(-1).shape == (2,)


def test_the_reference_networks_map_their_shapes():
    vae = references.PyTorchVAEBetaVAE()
    recons, mu, log_var = vae(torch.randn(2, 3, 64, 64))
    assert recons.shape == (2, 3, 64, 64) and mu.shape == log_var.shape == (2, 128)
    assert references.TutorialDAE()(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)
    gen = references.TutorialCGANGenerator()
    assert gen(torch.randn(2, 100), torch.tensor([1, 2])).shape == (2, 1, 28, 28)


@pytest.mark.parametrize("make", [references.betavae_step, references.dcgan_step, references.tutorial_cgan_step,
                                  references.plain_cgan_step, references.tutorial_dae_step,
                                  references.plain_dae_step])
def test_each_reference_step_trains(make):
    torch.manual_seed(0)
    step = make(0, batch=4)
    step()
    step()


def test_every_benchmark_shape_has_references_and_a_seed_config():
    import side_by_side

    from genlab.config import load

    assert set(side_by_side.SEED_CONFIGS) == set(references.REFERENCES)
    for name, _, _ in side_by_side.SEED_CONFIGS.values():
        load(name)
