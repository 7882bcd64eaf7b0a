"""VQ-VAE behaviour the registry entry cannot express: the EMA codebook, the straight-through and commitment
gradients, dead-code restarts, perplexity, the codebook-collapse warning, and a tiny run through train, eval
and export (tests/models/test_model_registry.py covers the family API, shapes, state dicts and graph export)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.models import build_model, model_arguments
from genlab.models.latent import code_perplexity
from genlab.models.vqvae import NEEDS_PRIOR, VectorQuantizer
from genlab.objectives.codebook_monitor import CodebookMonitor, CodeUsage, dead_code_warning, measure

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")
TINY = {"hidden_channels": 8, "residual_channels": 4, "num_codes": 32, "code_dim": 4}


def tiny_model(**extra) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("vqvae", {**TINY, **extra}, image_size=16, channels=1)


def line(values: list[float]) -> torch.Tensor:
    """Scalar encoder outputs as a (1, D=1, 1, W) grid."""
    return torch.tensor(values).view(1, 1, 1, -1)


def two_codes(decay: float = 0.5, eps: float = 1e-5) -> VectorQuantizer:
    q = VectorQuantizer(2, 1, decay=decay, eps=eps, dead_code_threshold=0.0)
    q.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    q.code_sum.copy_(q.codebook)
    return q


def test_ema_update_matches_a_hand_computation():
    eps = 0.1  # large, so that a missing or misplaced Laplace smoothing shows
    q = two_codes(decay=0.5, eps=eps).train()
    out = q(line([1.0, 2.0, 9.0]))  # nearest: codes 0, 0, 1
    assert out.indices.flatten().tolist() == [0, 0, 1]
    assert out.grid.flatten().tolist() == [0.0, 0.0, 10.0]  # quantised with the codebook before the update
    # N = 0.5 * [1, 1] + 0.5 * [2, 1] = [1.5, 1.0]; m = 0.5 * [0, 10] + 0.5 * [1 + 2, 9] = [1.5, 9.5]
    # N~ = (N + eps) / (2.5 + 2 eps) * 2.5; e = m / N~
    smoothed = [(1.5 + eps) / (2.5 + 2 * eps) * 2.5, (1.0 + eps) / (2.5 + 2 * eps) * 2.5]
    torch.testing.assert_close(q.cluster_size, torch.tensor([1.5, 1.0]))
    torch.testing.assert_close(q.code_sum, torch.tensor([[1.5], [9.5]]))
    torch.testing.assert_close(q.codebook, torch.tensor([[1.5 / smoothed[0]], [9.5 / smoothed[1]]]))


def test_ema_runs_only_in_training_mode_and_in_fp32_under_bf16_autocast():
    q = two_codes(decay=0.5).eval()
    q(line([1.0, 2.0, 9.0]))
    assert q.codebook.flatten().tolist() == [0.0, 10.0] and q.cluster_size.tolist() == [1.0, 1.0]
    q = two_codes(decay=0.99).train()
    z = line([1.0, 2.0, 9.0]).to(torch.bfloat16)  # what a conv gives under bf16 autocast
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = q(z)
    assert q.codebook.dtype == q.code_sum.dtype == q.cluster_size.dtype == torch.float32
    # 0.99 * 1 + 0.01 * 2 = 1.01, which bf16 (8 significant bits) would round to 1.0078125
    torch.testing.assert_close(q.cluster_size, torch.tensor([1.01, 1.0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(q.code_sum, torch.tensor([[0.03], [9.99]]), rtol=0, atol=1e-6)
    assert out.grid.dtype == torch.bfloat16 and out.grid.flatten().tolist() == [0.0, 0.0, 10.0]


def test_straight_through_gradient_reaches_the_encoder_unchanged():
    q = two_codes().train()
    z = line([1.0, 2.0, 9.0]).requires_grad_(True)
    weights = torch.tensor([3.0, -1.0, 2.0]).view(1, 1, 1, 3)
    (q(z).grid * weights).sum().backward()
    torch.testing.assert_close(z.grad, weights)  # identity through the nearest-neighbour lookup
    model = tiny_model().train()
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    model.decode(model.encode(x).mean).pow(2).mean().backward()
    first = model.encoder[0].weight.grad
    assert first is not None and first.abs().sum() > 0


def test_commitment_gradient_reaches_the_encoder_but_not_the_codebook():
    q = two_codes().eval()
    z = line([1.0, 2.0, 9.0]).requires_grad_(True)
    q(z).commitment.backward()
    # d/dz mean((z - sg(e))^2) = 2 (z - e) / n with e = [0, 0, 10]
    torch.testing.assert_close(z.grad.flatten(), 2 * torch.tensor([1.0, 2.0, -1.0]) / 3)
    model = tiny_model(commitment_beta=0.25).train()
    post = model.encode(torch.rand(2, 1, 16, 16) * 2 - 1)
    post.losses["commitment"].backward()
    assert model.encoder[0].weight.grad.abs().sum() > 0
    assert model.decoder[0].weight.grad is None  # the commitment term is the encoder's alone
    assert model.codebook.grad is None and not model.codebook.requires_grad
    assert all(p.data_ptr() != model.codebook.data_ptr() for p in model.parameters())  # never optimised


def test_a_dead_code_is_restarted_from_an_encoder_output_of_the_batch():
    q = VectorQuantizer(4, 2, decay=0.99, dead_code_threshold=1.0)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0]]))
    q.code_sum.copy_(q.codebook)
    z = torch.tensor([[0.1, -0.2], [0.3, 0.1], [-0.1, 0.2], [0.2, 0.2], [0.0, 0.1]]).t().reshape(1, 2, 1, 5)
    out = q.train()(z)
    assert out.indices.flatten().tolist() == [0] * 5 and out.restarted == 3
    rows = z.permute(0, 2, 3, 1).reshape(-1, 2)
    for k in (1, 2, 3):  # counts 0.99 < 1: each now sits on one of the batch's vectors
        assert any(torch.equal(q.codebook[k], r) for r in rows), q.codebook[k]
    assert q.cluster_size[1:].tolist() == [1.0, 1.0, 1.0]
    assert q.cluster_size[0] > 1.0  # the code in use was not touched
    off = VectorQuantizer(4, 2, decay=0.99, dead_code_threshold=0.0)
    off.codebook.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0]]))
    off.code_sum.copy_(off.codebook)
    assert off.train()(z).restarted == 0
    torch.testing.assert_close(off.codebook[1:], torch.tensor([[50.0, 50.0], [60.0, 60.0], [70.0, 70.0]]),
                               rtol=1e-4, atol=0)


def test_perplexity_is_k_for_uniform_usage_and_1_for_a_single_code():
    torch.testing.assert_close(code_perplexity(torch.full((16,), 5.0)), torch.tensor(16.0))
    torch.testing.assert_close(code_perplexity(torch.tensor([0.0, 7.0, 0.0, 0.0])), torch.tensor(1.0))
    assert CodeUsage([3, 3, 0, 0], 1).perplexity == pytest.approx(2.0)


def _settings(**model) -> dict:
    return {**model_arguments("vqvae"), **TINY, **model}


def test_the_dead_code_warning_fires_on_collapsed_usage_and_stays_silent_otherwise():
    images = [torch.rand(4, 1, 16, 16) * 2 - 1 for _ in range(2)]
    collapsed = tiny_model().eval()
    collapsed.quantizer.codebook[1:] = 1e3  # every cell's nearest code is code 0
    usage = measure(collapsed, images)
    assert usage.used == 1 and usage.n_images == 8
    monitor = CodebookMonitor(_settings())
    assert monitor.record(None, usage, epoch=0) is None  # one epoch end is not yet a pattern
    warning = monitor.record(None, usage, epoch=1)
    assert warning and "only 1 of 32 codes" in warning and "model.dead_code_threshold" in warning
    resumed = CodebookMonitor(_settings())
    resumed.load_state_dict(monitor.state_dict())  # what a checkpoint carries under "codebook_usage"
    assert resumed.warning == warning
    off = dead_code_warning(usage, _settings(dead_code_threshold=0.0), epoch=3)
    assert "turn dead-code restarts on with model.dead_code_threshold: 1" in off

    healthy = tiny_model().train()
    healthy.encode(images[0])  # the first EMA step restarts the unused codes onto this batch's outputs
    usage = measure(healthy.eval(), images[:1])
    assert usage.used >= 0.1 * usage.num_codes
    quiet = CodebookMonitor(_settings())
    assert [quiet.record(None, usage, epoch=e) for e in range(3)] == [None, None, None]
    assert quiet.flags == [False, False, False]


def test_sampling_refuses_with_the_reason_and_a_wrong_image_size_is_refused():
    with pytest.raises(GenlabError, match="learned prior over the codes"):
        tiny_model().sample(2)
    with pytest.raises(GenlabError, match=r"divisible by 2 \*\* downsamples = 4 \(got 18\)"):
        build_model("vqvae", TINY, image_size=18, channels=1)


def test_a_tiny_run_trains_evaluates_and_exports(tmp_path):
    from genlab.evaluate import evaluate_run
    from genlab.export import export_run
    from genlab.history import read_history
    from genlab.run import load_model
    from genlab.sampling import draw
    from genlab.training import train
    from helpers import one_thread, tiny_config

    cfg = tiny_config(model={"name": "vqvae", **TINY}, objective={"kind": "reconstruction", "reduction": "mean"},
                      data={"image_size": 16}, train={"epochs": 2, "figures": True})
    with one_thread():
        outcome = train(cfg, out=tmp_path)
    run = outcome.run.path
    rows = read_history(run / "history.csv")
    steps = [r for r in rows if r["scope"] == "step"]
    assert all(float(r["commitment"]) >= 0 and 1 <= float(r["perplexity"]) <= 32 for r in steps)
    ends = [r for r in rows if r["scope"] == "epoch" and r["split"] == "val"]
    assert len(ends) == 2 and all(1 <= float(r["codes_used"]) <= 32 and r["code_perplexity"] for r in ends)
    figures = {p.name for p in outcome.figures}
    assert {"reconstructions.png", "code_usage.png"} <= figures and "samples.png" not in figures
    assert not figures & {"traversal.png", "interpolation.png", "tsne.png"}

    with one_thread():
        scores = evaluate_run(run, ["reconstruction"], device="cpu")
    assert np.isfinite(scores["reconstruction_heldout"]["psnr_mean"])
    with pytest.raises(GenlabError, match="learned prior over the codes"):
        evaluate_run(run, ["fid"], device="cpu")
    trained = load_model(run)
    with pytest.raises(GenlabError, match="cannot draw samples: " + NEEDS_PRIOR[:40]):
        draw(trained, 4)

    files = {p.name for p in export_run(run, ["torchscript", "safetensors"])}
    assert {"encoder.pt", "decoder.pt", "model.safetensors", "codebook.npz", "model.json"} <= files
    out = run / "export"
    manifest = json.loads((out / "model.json").read_text())
    model = trained.model.eval()
    assert manifest["model"]["codebook"] == {"file": "codebook.npz", "num_codes": 32,
                                            "grid_shape": list(model.grid_shape)}
    arrays = np.load(out / "codebook.npz")
    np.testing.assert_array_equal(arrays["codebook"], model.codebook.numpy())
    x = torch.rand(3, 1, 16, 16)  # [0, 1] images, what the graphs take
    encoder, decoder = torch.jit.load(str(out / "encoder.pt")), torch.jit.load(str(out / "decoder.pt"))
    with torch.no_grad():
        got = decoder(encoder(x))
        norm = trained.normalizer
        want = norm.to_unit(model.reconstruct((x - norm.mean) / norm.std))
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_a_summed_reconstruction_error_is_warned_about_and_a_mean_one_is_not():
    from genlab.objectives import OBJECTIVES
    from helpers import tiny_config

    def warnings(reduction: str) -> list[str]:
        cfg = tiny_config(model={"name": "vqvae", **TINY}, data={"image_size": 16},
                          objective={"kind": "reconstruction", "reduction": reduction})
        return OBJECTIVES["reconstruction"].checks(cfg)

    summed = warnings("sum")
    assert len(summed) == 1 and "objective.reduction: mean" in summed[0] and "commitment" in summed[0]
    assert warnings("mean") == []
