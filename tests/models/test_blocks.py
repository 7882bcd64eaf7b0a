"""The shared blocks' precision rules under autocast."""

from __future__ import annotations

import torch

from genlab.models.blocks import output_activation


def test_sigmoid_output_resolves_probabilities_near_one_under_bf16_autocast():
    # logit 7: p = 0.99909, 1 - p = 9.1e-4. In bf16, p would round to 1.0 and log(1 - p) to the clamp's floor.
    logits = torch.tensor([7.0, -7.0, 0.0]).to(torch.bfloat16)
    layer = torch.nn.Sequential(torch.nn.Identity(), output_activation("sigmoid"))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        p = layer(logits)
    assert p.dtype == torch.float32
    expected = torch.sigmoid(logits.float())
    assert torch.allclose(1 - p, 1 - expected, rtol=1e-5)
    assert (1 - p[0]).item() > 5e-4
    assert torch.sigmoid(logits)[0].item() == 1.0  # what bf16 gives: the reason for the rule


def test_tanh_output_keeps_the_run_precision():
    x = torch.randn(4).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert output_activation("tanh")(x).dtype == torch.bfloat16
