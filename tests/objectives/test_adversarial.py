"""The adversarial objective: textbook step order, detached fakes, label smoothing, collapse warnings."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.config import OptimConfig
from genlab.data import Batch, Normalizer
from genlab.errors import GenlabError
from genlab.models import build_model
from genlab.objectives import Stepper
from genlab.objectives.adversarial import Adversarial, AdversarialConfig, CollapseMonitor


def _setup(real_target=1.0, conditional=False):
    torch.manual_seed(0)
    kwargs = {"g_width": 4, "d_width": 4, "latent_dim": 8, "conditional": conditional}
    model = build_model("dcgan", kwargs, image_size=16, channels=1, num_classes=3)
    cfg = AdversarialConfig(real_target=real_target)
    obj = Adversarial(model, cfg, OptimConfig(lr_g=1e-4, lr_d=2e-4), Normalizer("minus_one_one", 1))
    batch = Batch(torch.rand(6, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2]))
    return model, obj, batch


def _snapshot(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_step_order_d_real_d_fake_detached_then_g_through_updated_d():
    model, obj, batch = _setup()
    d0, g0 = _snapshot(model.discriminator), _snapshot(model.generator)
    calls = []
    original = model.discriminate_with_classes

    def spy(x, labels=None):
        calls.append({"d": _snapshot(model.discriminator), "g": _snapshot(model.generator),
                      "grad_to_g": x.requires_grad, "is_real": x is batch.images})
        return original(x, labels)

    model.discriminate_with_classes = spy
    obj.train_step(batch, 0, Stepper())
    assert [c["is_real"] for c in calls] == [True, False, False]
    assert not calls[1]["grad_to_g"] and calls[2]["grad_to_g"]  # D's fake pass is detached from G
    assert torch.equal(calls[0]["d"], d0) and torch.equal(calls[1]["d"], d0)
    assert not torch.equal(calls[2]["d"], d0)  # G's loss sees the updated D
    assert torch.equal(calls[2]["g"], g0)  # D's update did not touch G
    assert not torch.equal(_snapshot(model.generator), g0)  # then G stepped
    assert torch.equal(_snapshot(model.discriminator), calls[2]["d"])  # and G's step left D alone


def test_split_learning_rates_reach_the_optimisers():
    _, obj, _ = _setup()
    assert obj.optimizers["generator"].param_groups[0]["lr"] == 1e-4
    assert obj.optimizers["discriminator"].param_groups[0]["lr"] == 2e-4


@pytest.mark.parametrize("target", [1.0, 0.98, 0.9])
def test_smoothed_real_target_is_used_in_the_d_loss(target):
    model, obj, batch = _setup(real_target=target)
    logits = model.discriminate(batch.images).detach()
    p = torch.sigmoid(logits.double())
    expected = -(target * torch.log(p) + (1 - target) * torch.log1p(-p)).mean().item()
    terms = obj.train_step(batch, 0, Stepper())
    assert terms["loss_d_real"].item() == pytest.approx(expected, rel=1e-4)


def test_terms_logged_and_consistent():
    _, obj, batch = _setup(conditional=True)
    t = obj.train_step(batch, 0, Stepper())
    assert set(t) == {"loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake"}
    assert t["loss_d"].item() == pytest.approx(t["loss_d_real"].item() + t["loss_d_fake"].item(), rel=1e-6)
    assert 0 <= t["d_real"].item() <= 1 and 0 <= t["d_fake"].item() <= 1


def test_collapse_monitor_needs_k_consecutive_bad_checks():
    mon = CollapseMonitor(AdversarialConfig(collapse_check_every=10, collapse_patience=3,
                                          d_loss_floor=0.01, g_loss_ceiling=20))
    bad, good = {"loss_d": 0.001, "loss_g": 9.0}, {"loss_d": 0.5, "loss_g": 2.0}
    assert mon.check(10, bad) is None and mon.check(20, bad) is None
    assert mon.check(25, bad) is None  # not a check step
    assert mon.check(30, bad) is not None
    assert mon.check(40, good) is None and mon.streak == 0
    assert all(mon.check(s, {"loss_d": 0.5, "loss_g": math.inf}) is None for s in (50, 60))
    assert "G loss inf" in mon.check(70, {"loss_d": 0.5, "loss_g": math.inf})


def test_auxiliary_classifier_adds_class_cross_entropy_to_both_losses():
    """AC-GAN (Odena et al. 2017): D classifies real images and G's, G is pushed towards its labels."""
    torch.manual_seed(0)
    model = build_model("cgan", {"g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4,
                                 "aux_classifier": True}, image_size=8, channels=1, num_classes=3)
    cfg = AdversarialConfig(class_loss_weight=0.5)
    obj = Adversarial(model, cfg, OptimConfig(), Normalizer("minus_one_one", 1))
    batch = Batch(torch.rand(6, 1, 8, 8) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2]))
    seen = []
    original = model.discriminate_with_classes

    def spy(x, labels=None):
        out = original(x, labels)
        seen.append((out[1].detach(), labels))
        return out

    model.discriminate_with_classes = spy
    t = obj.train_step(batch, 0, Stepper())
    (cls_real, y_real), (cls_fake, y_fake) = seen[0], seen[1]
    expected = torch.nn.functional.cross_entropy(torch.cat([cls_real, cls_fake]), torch.cat([y_real, y_fake]))
    assert t["loss_d_class"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert t["loss_d"].item() == pytest.approx(
        t["loss_d_real"].item() + t["loss_d_fake"].item() + 0.5 * t["loss_d_class"].item(), rel=1e-5)
    cls_g, y_g = seen[2]
    assert torch.equal(y_g, y_fake)
    assert t["loss_g_class"].item() == pytest.approx(
        torch.nn.functional.cross_entropy(cls_g, y_g).item(), rel=1e-5)
    v = obj.eval_step(batch, torch.Generator().manual_seed(0))
    assert {"loss_d_class", "loss_g_class"} <= set(v)


def test_without_auxiliary_classifier_no_class_terms():
    _, obj, batch = _setup(conditional=True)
    assert "loss_d_class" not in obj.train_step(batch, 0, Stepper())


def test_generator_step_updates_the_weight_average():
    torch.manual_seed(0)
    model = build_model("dcgan", {"g_width": 4, "d_width": 4, "latent_dim": 8, "ema_decay": 0.99},
                        image_size=16, channels=1)
    obj = Adversarial(model, AdversarialConfig(), OptimConfig(), Normalizer("minus_one_one", 1))
    avg0 = _snapshot(model.generator_ema)
    obj.train_step(Batch(torch.rand(6, 1, 16, 16) * 2 - 1, None), 0, Stepper())
    assert int(model.ema_updates) == 1
    live, avg = _snapshot(model.generator), _snapshot(model.generator_ema)
    assert torch.allclose(avg, 0.1 * avg0 + 0.9 * live, atol=1e-6)  # first update: decay 0.1
    assert all(p.grad is None for p in model.generator_ema.parameters())  # never trained directly


def _game(loss="bce", gp=0.0, n_critic=1, diffaugment="", d_norm="none", conditional=False, **cfg):
    torch.manual_seed(0)
    kwargs = {"g_width": 4, "d_width": 4, "latent_dim": 8, "conditional": conditional, "d_norm": d_norm}
    model = build_model("dcgan", kwargs, image_size=16, channels=1, num_classes=3)
    config = AdversarialConfig(loss=loss, gradient_penalty=gp, n_critic=n_critic, diffaugment=diffaugment, **cfg)
    obj = Adversarial(model, config, OptimConfig(lr_g=1e-4, lr_d=2e-4, betas=(0.0, 0.9)),
                      Normalizer("minus_one_one", 1))
    batch = Batch(torch.rand(6, 1, 16, 16) * 2 - 1, torch.tensor([0, 1, 2, 0, 1, 2]))
    return model, obj, batch


@pytest.mark.parametrize("loss", ["hinge", "wasserstein"])
def test_critic_losses_log_raw_scores(loss):
    model, obj, batch = _game(loss)
    scores = model.discriminate(batch.images).detach().float()
    t = obj.train_step(batch, 0, Stepper())
    assert t["critic_real"].item() == pytest.approx(scores.mean().item(), rel=1e-5)
    if loss == "hinge":
        assert t["loss_d_real"].item() == pytest.approx(torch.relu(1 - scores).mean().item(), rel=1e-5)
        assert "wasserstein_estimate" not in t
    else:
        assert t["wasserstein_estimate"].item() == pytest.approx(
            t["critic_real"].item() - t["critic_fake"].item(), rel=1e-5)
    assert "d_real" not in t
    v = obj.eval_step(batch, torch.Generator().manual_seed(0))
    assert set(v) == set(t)  # the same terms in validation, so history columns line up


def test_gradient_penalty_enters_d_loss_with_its_weight():
    _, obj, batch = _game("wasserstein", gp=10.0)
    t = obj.train_step(batch, 0, Stepper())
    assert t["gradient_penalty"].item() >= 0
    assert t["loss_d"].item() == pytest.approx(
        t["loss_d_real"].item() + t["loss_d_fake"].item() + 10 * t["gradient_penalty"].item(), rel=1e-5)


def test_gradient_penalty_refuses_a_batchnorm_discriminator():
    with pytest.raises(GenlabError, match="model.d_norm: none"):
        _game("wasserstein", gp=10.0, d_norm="batch")


@pytest.mark.parametrize("d_norm", ["none", "layer"])
def test_gradient_penalty_trains_with_per_image_norms(d_norm):
    _, obj, batch = _game("wasserstein", gp=10.0, d_norm=d_norm)
    t = obj.train_step(batch, 0, Stepper())
    assert all(torch.isfinite(v) for v in t.values())


def test_n_critic_steps_g_once_per_n_d_steps():
    model, obj, batch = _game("wasserstein", gp=10.0, n_critic=3)
    g_moves, d_moves = [], []
    for step in range(6):
        g0, d0 = _snapshot(model.generator), _snapshot(model.discriminator)
        t = obj.train_step(batch, step, Stepper())
        g_moves.append(not torch.equal(_snapshot(model.generator), g0))
        d_moves.append(not torch.equal(_snapshot(model.discriminator), d0))
        assert "loss_g" in t  # every step logs the same terms
    assert d_moves == [True] * 6
    assert g_moves == [False, False, True, False, False, True]


def _record_d_inputs(model) -> list[torch.Tensor]:
    """The images each call of D receives, in order (the list fills as the model runs)."""
    seen: list[torch.Tensor] = []
    original = model.discriminate_with_classes

    def spy(x, labels=None):
        seen.append(x)
        return original(x, labels)

    model.discriminate_with_classes = spy
    return seen


def test_diffaugment_reaches_d_in_training_only_and_g_gets_its_gradient():
    model, obj, batch = _game(diffaugment="translation,cutout")
    seen = _record_d_inputs(model)
    obj.train_step(batch, 0, Stepper())
    assert len(seen) == 3 and not torch.equal(seen[0], batch.images)  # real images augmented too
    assert seen[2].requires_grad  # G's pass goes through the augmentation with its graph
    seen.clear()
    obj.eval_step(batch, torch.Generator().manual_seed(0))
    assert seen[0] is batch.images  # validation scores the images themselves


def test_label_smoothing_is_refused_outside_bce():
    with pytest.raises(ValueError, match="targets of the bce loss"):
        AdversarialConfig(loss="hinge", real_target=0.9)


def test_unconstrained_wasserstein_critic_warns():
    from types import SimpleNamespace

    from genlab.objectives.adversarial import check_lipschitz

    cfg = lambda o, sn=False: SimpleNamespace(  # noqa: E731
        objective=o, model=SimpleNamespace(name="dcgan", kwargs=lambda: {"d_spectral_norm": sn}))
    assert "1-Lipschitz" in check_lipschitz(cfg(AdversarialConfig(loss="wasserstein")))[0]
    assert check_lipschitz(cfg(AdversarialConfig(loss="wasserstein", gradient_penalty=10))) == []
    assert check_lipschitz(cfg(AdversarialConfig(loss="wasserstein"), sn=True)) == []
    assert check_lipschitz(cfg(AdversarialConfig(loss="hinge"))) == []
    from genlab.config import validate

    sn = validate({"model": {"name": "sngan"}, "data": {"name": "digits", "image_size": 16},
                   "objective": {"kind": "adversarial", "loss": "wasserstein"}})
    assert check_lipschitz(sn) == []  # every layer of its D is spectrally normalised


def test_collapse_monitor_stays_silent_for_a_critic_and_floors_hinge_at_zero():
    mon = CollapseMonitor(AdversarialConfig(loss="wasserstein", collapse_check_every=1, collapse_patience=1))
    assert mon.d_min is None
    assert mon.check(0, {"loss_d": -1e6, "loss_g": 1.0}) is None
    assert mon.check(1, {"loss_d": -1e6, "loss_g": 50.0}) is None
    hinge = CollapseMonitor(AdversarialConfig(loss="hinge", collapse_check_every=1, collapse_patience=1))
    assert hinge.d_min == 0.0 and "minimum 0" in hinge.check(1, {"loss_d": 0.001, "loss_g": 1.0})


def test_the_penalty_is_on_d_itself_not_behind_diffaugment():
    model, obj, batch = _game("wasserstein", gp=10.0, diffaugment="cutout")
    seen = _record_d_inputs(model)
    obj.train_step(batch, 0, Stepper())
    interpolate = seen[2]  # real, fake, then the penalty's x_hat
    assert interpolate.requires_grad and (interpolate == 0).float().mean() < 0.05  # no cutout square in it


@pytest.mark.parametrize(("d_fp32", "expected"), [("own_step", [True, True, False]),
                                                   ("always", [True, True, True]),
                                                   ("never", [False, False, False])])
def test_d_fp32_takes_the_chosen_passes_of_d_out_of_a_bf16_autocast(d_fp32, expected):
    """D in bf16 collapsed the cGAN's noise (README, "Devices"); each setting keeps the passes it names in
    fp32: D's real and fake passes on its own step, and its pass on G's step."""
    model, obj, batch = _game(d_fp32=d_fp32)
    seen = []
    original = model.discriminate_with_classes

    def spy(x, labels=None):
        seen.append((not torch.is_autocast_enabled("cpu"), x.dtype))
        return original(x, labels)

    model.discriminate_with_classes = spy
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = obj.train_step(batch, 0, Stepper())
    assert [fp32 for fp32, _ in seen] == expected
    assert all(dtype == torch.float32 for fp32, dtype in seen if fp32)  # G's bf16 images cast up for D
    assert all(math.isfinite(v.item()) for v in terms.values())
    seen.clear()
    obj.train_step(batch, 1, Stepper())  # outside autocast every pass is fp32 whatever the setting
    assert [fp32 for fp32, _ in seen] == [True, True, True]
