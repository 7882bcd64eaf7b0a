"""The diffusion model on diffusers' parts: DDIM is a deterministic map from noise, guidance mixes the two
predictions as stated, the weight average samples, and a missing diffusers is a clear error."""

from __future__ import annotations

import builtins

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models import MODELS, build_model

TINY = MODELS["ddpm"].tiny


def _model(conditional=False, **extra):
    torch.manual_seed(0)
    return build_model("ddpm", {**TINY, "conditional": conditional, **extra}, image_size=16, channels=1,
                       num_classes=3).eval()


def test_fixed_noise_gives_the_same_images_and_other_noise_others():
    m = _model()
    z = torch.randn(2, m.latent_dim, generator=torch.Generator().manual_seed(1))
    a, b = m.decode(z), m.decode(z)
    assert torch.equal(a, b) and a.shape == (2, 1, 16, 16)
    assert not torch.allclose(a, m.decode(torch.randn_like(z)))


def test_the_sampler_runs_the_steps_asked_for():
    m = _model()
    calls = []
    original = m.unet.forward

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    m.unet.forward = counting
    m.sample(2, generator=torch.Generator().manual_seed(0))
    assert len(calls) == TINY["sample_steps"]
    calls.clear()
    m.denoise(torch.randn(2, 1, 16, 16), steps=5)
    assert len(calls) == 5


def test_guidance_mixes_conditional_and_unconditional_predictions():
    m = _model(conditional=True)
    x, t, y = torch.randn(2, 1, 16, 16), torch.tensor(7), torch.tensor([0, 2])
    with torch.no_grad():
        cond = m.predict_noise(x, t, y, m.sampling_unet)
        uncond = m.predict_noise(x, t, torch.full_like(y, m.null_label), m.sampling_unet)
        for w in (0.0, 1.0, 3.0):
            torch.testing.assert_close(m._guided(x, t, y, w), uncond + w * (cond - uncond), atol=1e-5, rtol=1e-4)
    assert m.null_label == 3 and m.unet.config.num_class_embeds == 4
    assert "guidance 2" in m.sampler_description and "3 steps" in m.sampler_description


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_every_step_count_starts_from_pure_noise(steps):
    """Trailing spacing: the first DDIM step is the last training step whatever the count (Lin et al. 2024)."""
    m = _model()
    timesteps = m.sampling_scheduler(steps).timesteps.tolist()
    assert timesteps[0] == TINY["timesteps"] - 1 and len(timesteps) == steps
    assert timesteps == sorted(timesteps, reverse=True)


def test_clip_sample_reaches_the_sampler_and_changes_the_samples():
    """Off, a step's predicted x_0 is left unclipped: the same weights and noise give other images, and the
    score protocol says so (on a small MNIST model the clip drew guided 1s as other digits)."""
    clipped, free = _model(conditional=True), _model(conditional=True, clip_sample=False)
    assert clipped.sampling_scheduler(3).config.clip_sample and not free.sampling_scheduler(3).config.clip_sample
    assert "not clipped" in free.sampler_description and "clipped" not in clipped.sampler_description
    for m in (clipped, free):  # a loud network: its x_0 predictions leave [-1, 1] at every step
        m.sampling_unet.forward = _louder(m.sampling_unet.forward, 5.0)
    z, y = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 1, 2, 0])
    a, b = clipped.denoise(z, y)[0], free.denoise(z, y)[0]
    assert a.abs().max() <= 1 and b.abs().max() <= 1  # the final image is clamped either way
    assert not torch.allclose(a, b, atol=1e-3)


def _louder(forward, gain: float):
    def wrapped(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.sample = out.sample * gain
        return out
    return wrapped


def test_trajectory_keeps_predictions_from_noise_to_sample():
    m = _model()
    final, kept = m.denoise(torch.randn(2, 1, 16, 16), steps=6, keep=4)
    assert len(kept) == 4 and all(k.shape == final.shape for k in kept)
    assert torch.allclose(kept[-1], final, atol=1e-5)  # the last prediction of x_0 is the sample


def test_the_weight_average_is_what_samples():
    m = _model(ema_decay=0.9)
    assert m.sampling_unet is m.unet_ema and not any(p.requires_grad for p in m.unet_ema.parameters())
    with torch.no_grad():
        for p in m.unet.parameters():
            p.add_(0.1)
    before = [p.clone() for p in m.unet_ema.parameters()]
    m.update_average()
    assert int(m.ema_updates) == 1
    moved = [not torch.equal(a, b) for a, b in zip(before, m.unet_ema.parameters())]
    assert all(moved)


def test_a_checkpoint_without_the_average_starts_it_from_its_network():
    plain = _model()
    averaged = _model(ema_decay=0.99)
    averaged.load_state_dict(plain.state_dict())
    for a, b in zip(averaged.unet_ema.parameters(), plain.unet.parameters()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("kwargs, says", [
    ({"widths": (8, 10)}, "multiple of norm_groups 4"),
    ({"attention": (True,)}, "one true/false per level"),
    ({"sample_steps": 50}, "sample_steps must be between 1 and timesteps"),
    ({"beta_schedule": "sigmoid"}, "beta_schedule must be one of linear, scaled_linear, squaredcos_cap_v2"),
    ({"widths": ()}, "model.widths must be a list of positive integers"),
    ({"clip_sample": "no"}, "clip_sample must be true or false"),
])
def test_impossible_builds_are_clear_errors(kwargs, says):
    with pytest.raises(GenlabError, match=says):
        _model(**kwargs)


def test_an_image_size_the_unet_cannot_halve_is_a_clear_error():
    with pytest.raises(GenlabError, match="multiple of 4"):
        build_model("ddpm", {**TINY, "widths": (8, 8, 8), "attention": None}, image_size=18, channels=1)


def test_without_diffusers_the_error_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_diffusers(name, *args, **kwargs):
        if name == "diffusers" or name.startswith("diffusers."):
            raise ImportError("No module named 'diffusers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_diffusers)
    with pytest.raises(GenlabError, match=r'pip install "genlab\[diffusion\]"'):
        build_model("ddpm", TINY, image_size=16, channels=1)
