"""The autoregressive_prior objective beyond what the registry tests check: it optimises only the prior, never
moves the frozen VQ-VAE (not even its EMA codebook, though the loop puts the model in training mode), logs the
likelihood in nats and bits, and smooths labels in training only."""

from __future__ import annotations

import math

import torch

from genlab.config import validate
from genlab.data import Batch
from genlab.models import MODELS, build_model, capabilities
from genlab.objectives import Plan, Stepper, build_objective
from genlab.objectives.autoregressive_prior import smoothing_note, term_units

SIZE = 16


def objective(**section):
    tiny = MODELS["vqvae_prior"].tiny
    cfg = validate({"model": {"name": "vqvae_prior", **tiny}, "data": {"name": "digits", "image_size": SIZE},
                    "objective": {"kind": "autoregressive_prior", **section}, "optim": {"lr": 0.01}})
    torch.manual_seed(0)
    model = build_model("vqvae_prior", cfg.model.kwargs(), image_size=SIZE, channels=1)
    from genlab.data import Normalizer

    return build_objective(cfg, model, Normalizer("minus_one_one", 1), capabilities("vqvae_prior", tiny),
                           Plan(4, 8, 2))


def batch(seed: int = 0) -> Batch:
    x = torch.rand(8, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return Batch(x, None)


def test_only_the_prior_is_optimised_and_the_frozen_vqvae_never_moves():
    obj = objective()
    model = obj.model
    optimised = {id(p) for group in obj.optimizers["model"].param_groups for p in group["params"]}
    assert optimised == {id(p) for p in model.pixelcnn.parameters()}
    before = {k: v.clone() for k, v in model.vqvae.state_dict().items()}
    model.train()  # what the loop does; the frozen part stays in eval mode, so no codebook EMA step
    assert not model.vqvae.training
    for step in range(3):
        obj.train_step(batch(step), step, Stepper())
    assert all(torch.equal(v, before[k]) for k, v in model.vqvae.state_dict().items())


def test_terms_are_nats_per_code_and_bits_per_code_and_image():
    obj = objective()
    with torch.no_grad():
        terms = obj.eval_step(batch(), torch.Generator().manual_seed(0))
        codes = obj.model.code_indices(batch().images)
        want = torch.nn.functional.cross_entropy(obj.model.prior_logits(codes), codes)
    torch.testing.assert_close(terms["loss"], want)
    torch.testing.assert_close(terms["bits_per_code"], want / math.log(2))
    torch.testing.assert_close(terms["bits_per_image"], want / math.log(2) * codes[0].numel())
    assert set(term_units(obj.cfg)) == set(terms)


def test_label_smoothing_changes_the_training_loss_only():
    smoothed = objective(label_smoothing=0.2)
    plain = objective()
    with torch.no_grad():
        a = smoothed._terms(batch().images, 0.2)
        b = plain._terms(batch().images, 0.0)
        evaluated = smoothed.eval_step(batch(), torch.Generator().manual_seed(0))
    assert not torch.allclose(a["loss"], b["loss"])
    torch.testing.assert_close(a["bits_per_code"], b["bits_per_code"])  # the unsmoothed likelihood
    torch.testing.assert_close(evaluated["loss"], b["loss"])
    assert smoothing_note(smoothed.cfg) and smoothing_note(plain.cfg) is None
