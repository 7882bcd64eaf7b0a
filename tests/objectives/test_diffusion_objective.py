"""The DDPM objective: the noise it regresses on, label dropout for guidance, and a loss that falls."""

from __future__ import annotations

import pytest
import torch

from genlab.data import Batch, Normalizer
from genlab.models import MODELS, build_model
from genlab.objectives import Stepper
from genlab.objectives.diffusion import Diffusion, DiffusionConfig
from genlab.sections import OptimConfig


def _objective(conditional=False, **cfg):
    torch.manual_seed(0)
    model = build_model("ddpm", {**MODELS["ddpm"].tiny, "conditional": conditional}, image_size=16, channels=1,
                        num_classes=3)
    return Diffusion(model, DiffusionConfig(**cfg), OptimConfig(lr=2e-3), Normalizer("minus_one_one", 1))


def _batch(n=16):
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(n, 1, 16, 16)
    x[:, :, 4:12, 4:12] = 1.0  # one clean square: a data set a tiny U-Net can learn
    return Batch(x * 2 - 1 + 0.0 * torch.rand(x.shape, generator=gen), torch.arange(n) % 3)


def test_the_target_is_the_noise_added_by_the_schedule():
    obj = _objective()
    seen = {}
    original = obj.model.predict_noise

    def spy(x_t, t, labels=None, unet=None):
        seen.update(x_t=x_t, t=t)
        return original(x_t, t, labels, unet)

    obj.model.predict_noise = spy
    batch = _batch(4)
    gen = torch.Generator().manual_seed(3)
    loss = obj._loss(batch.images, None, gen)
    gen = torch.Generator().manual_seed(3)
    noise = torch.randn(batch.images.shape, generator=gen)
    t = torch.randint(0, obj.timesteps, (4,), generator=gen)
    abar = obj.noise_schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(seen["x_t"], abar.sqrt() * batch.images + (1 - abar).sqrt() * noise)
    assert torch.equal(seen["t"], t) and loss.item() > 0


def test_labels_are_dropped_to_the_null_label_at_the_configured_rate():
    obj = _objective(conditional=True, class_dropout=0.3)
    batch = Batch(torch.zeros(4000, 1, 1, 1), torch.arange(4000) % 3)
    labels = obj._labels(batch, 0.3, torch.Generator().manual_seed(0))
    dropped = (labels == obj.model.null_label).float().mean().item()
    assert dropped == pytest.approx(0.3, abs=0.03)
    kept = labels != obj.model.null_label
    assert torch.equal(labels[kept], batch.labels[kept])
    assert obj._labels(batch, 0.0) is batch.labels


def test_training_lowers_the_denoising_loss():
    obj = _objective()
    batch = _batch()
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    before = obj.eval_step(batch, gen())["loss"].item()
    for step in range(60):
        obj.train_step(batch, step, Stepper())
    after = obj.eval_step(batch, gen())["loss"].item()
    assert after < 0.7 * before, (before, after)


def test_validation_scores_the_average_and_sample_scores_are_opt_in():
    torch.manual_seed(0)
    model = build_model("ddpm", {**MODELS["ddpm"].tiny, "ema_decay": 0.999}, image_size=16, channels=1)
    obj = Diffusion(model, DiffusionConfig(), OptimConfig(lr=2e-3), Normalizer("minus_one_one", 1))
    batch = _batch(4)
    before = obj.eval_step(batch, torch.Generator().manual_seed(0))["loss"]
    with torch.no_grad():
        for p in model.unet.parameters():  # the live network only
            p.add_(torch.randn_like(p))
    assert torch.equal(obj.eval_step(batch, torch.Generator().manual_seed(0))["loss"], before)
    assert obj.score_names == ()
    assert _objective(proxy_samples=8).score_names == ("fd_randconv",)


def test_guidance_without_label_dropout_is_refused():
    from genlab.errors import GenlabError

    with pytest.raises(GenlabError, match="class_dropout 0 never trains"):
        _objective(conditional=True, class_dropout=0.0)
    _objective(conditional=False, class_dropout=0.0)  # nothing to guide: fine
