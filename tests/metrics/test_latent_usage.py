"""Latent usage: KL per dimension and active units on hand-made posteriors; the collapse message; the stats file."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import GenlabError
from genlab.metrics.latent_usage import (
    COLLAPSE_PATIENCE,
    LatentUsage,
    collapse_warning,
    latent_usage,
    measure,
    read_stats,
    write_stats,
)
from genlab.models import build_model
from helpers import tiny_config


def _alternating(amplitudes: list[float], offsets: list[float], n: int = 10) -> torch.Tensor:
    """(n, D) means that alternate between offset ± amplitude: population variance amplitude², exactly."""
    sign = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(n)], dtype=torch.float64).unsqueeze(1)
    return torch.tensor(offsets, dtype=torch.float64) + sign * torch.tensor(amplitudes, dtype=torch.float64)


def test_active_units_count_the_dimensions_whose_mean_varies_above_the_threshold():
    # variances 0.04 and 0.0121 (active), 0.0081 and 0 (inactive); offsets move means, not their variance
    means = _alternating([0.2, 0.11, 0.09, 0.0], [0.0, 3.0, -1.0, 2.0])
    usage = latent_usage(means, torch.zeros_like(means))
    assert usage.mean_variance == pytest.approx([0.04, 0.0121, 0.0081, 0.0], abs=1e-12)
    assert usage.active_units == 2 and usage.latent_dim == 4 and usage.n_images == 10
    assert usage.history_terms()["active_units"] == 2


def test_kl_per_dimension_is_the_mean_analytic_kl():
    means = _alternating([0.5, 0.0, 1.0], [0.0, 0.0, 1.0])  # |mu| = 0.5, 0, and alternately 2 and 0
    logvars = torch.tensor([[0.0, math.log(0.25), 0.0]]).expand_as(means)
    usage = latent_usage(means, logvars)
    expected = [0.5 * 0.25,  # 0.5 (mu² + σ² - 1 - log σ²) with σ² = 1
                0.5 * (0.25 - 1 - math.log(0.25)),  # mu = 0, σ² = 1/4
                0.5 * (4.0 + 0.0) / 2]  # mu² is 4 for half the images, 0 for the rest
    assert usage.kl_per_dim == pytest.approx(expected)
    assert usage.kl_total == pytest.approx(sum(expected))
    assert usage.history_terms()["kl_dims_max"] == pytest.approx(max(expected))


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        latent_usage(torch.zeros(4, 3), torch.zeros(4, 2))


def test_measure_over_batches_equals_one_pass_and_skips_a_plain_autoencoder():
    torch.manual_seed(0)
    vae = build_model("vae", {"hidden_dims": [4, 8], "latent_dim": 3}, image_size=12, channels=1).eval()
    x = torch.randn(10, 1, 12, 12)
    whole, parts = measure(vae, [x]), measure(vae, [x[:4], x[4:]])
    assert whole.kl_per_dim == pytest.approx(parts.kl_per_dim) and whole.n_images == parts.n_images == 10
    post = vae.encode(x)
    assert whole.mean_variance == pytest.approx(post.mean.double().var(0, correction=0).tolist(), rel=1e-5)
    ae = build_model("ae", {"hidden_dims": [4, 8], "latent_dim": 3}, image_size=12, channels=1).eval()
    assert measure(ae, [x]) is None


def _usage(active: int, dims: int = 4) -> LatentUsage:
    return LatentUsage(kl_per_dim=[0.5] * active + [0.001] * (dims - active),
                       mean_variance=[1.0] * active + [0.0] * (dims - active), active_units=active, n_images=8)


def test_collapse_warning_below_half_of_the_units_with_the_remedies_for_this_config():
    seedlike = tiny_config(objective={"reduction": "mean", "beta": 10.0, "kld_weight": 0.0025})
    assert collapse_warning(_usage(2), seedlike, epoch=3, step=40) is None  # half active: no warning
    message = collapse_warning(_usage(1), seedlike, epoch=3, step=40, streak=COLLAPSE_PATIENCE)
    assert message.startswith("posterior collapse after epoch 4 (2 epoch ends in a row): only 1 of 4 latent "
                              "dimensions are active")
    assert "KL 0.503 nats per image in all" in message
    assert message.index("objective.reduction: sum") < message.index("objective.kl_warmup_steps")
    textbook = tiny_config(objective={"reduction": "sum", "kl_warmup_steps": 5},
                           model={"output_activation": "sigmoid"}, data={"normalize": "zero_one"})
    message = collapse_warning(_usage(0), textbook, epoch=0, step=40)
    assert "reduction" not in message and "data.normalize" not in message
    assert "a longer objective.kl_warmup_steps (now 5)" in message
    mismatched = tiny_config(data={"normalize": "zero_one"})  # the tiny VAE ends in tanh
    assert "data.normalize: minus_one_one to match model.output_activation 'tanh'" in collapse_warning(
        _usage(0), mismatched, epoch=0, step=40)


def test_collapse_warning_when_units_pass_the_test_but_the_code_carries_almost_nothing():
    """The β-VAE experiment's original settings: ~100 of 128 units pass Burda's test, all 128 together carry ~5 nats."""
    seedlike = tiny_config(objective={"reduction": "mean", "beta": 10.0, "kld_weight": 0.0025})
    weak = LatentUsage(kl_per_dim=[0.04] * 128, mean_variance=[0.03] * 100 + [0.001] * 28, active_units=100,
                       n_images=750)
    message = collapse_warning(weak, seedlike, epoch=20, step=700)
    assert message.startswith("posterior collapse after epoch 21: KL 5.12 nats per image in all")
    assert "less than 0.1 nats per dimension on average, although 100 of 128 latent dimensions are active" in message
    healthy = LatentUsage(kl_per_dim=[4.4] * 128, mean_variance=[0.5] * 128, active_units=128, n_images=750)
    assert collapse_warning(healthy, seedlike, epoch=20, step=700) is None


def test_no_collapse_warning_while_the_kl_schedule_still_ramps():
    warmup = tiny_config(objective={"kl_warmup_steps": 100})
    assert collapse_warning(_usage(0), warmup, epoch=1, step=99) is None
    assert collapse_warning(_usage(0), warmup, epoch=1, step=100) is not None
    capacity = tiny_config(objective={"capacity_max": 5.0, "capacity_steps": 50})
    assert collapse_warning(_usage(0), capacity, epoch=1, step=49) is None
    assert "objective.capacity_max (now 5)" in collapse_warning(_usage(0), capacity, epoch=1, step=50)


def test_stats_file_round_trip_and_unreadable_files(tmp_path):
    path = tmp_path / "latent_stats.json"
    assert read_stats(path) is None
    write_stats(path, _usage(1), epoch=2, step=30, warning="posterior collapse ...")
    doc = read_stats(path)
    assert (doc["epoch"], doc["step"], doc["active_units"], doc["latent_dim"]) == (2, 30, 1, 4)
    assert doc["kl_per_dim"] == [0.5, 0.001, 0.001, 0.001] and doc["warning"] == "posterior collapse ..."
    path.write_text("{not json")
    with pytest.raises(GenlabError, match="cannot be read as JSON"):
        read_stats(path)
    path.write_text("[1, 2]")
    with pytest.raises(GenlabError, match="kl_per_dim list"):
        read_stats(path)
