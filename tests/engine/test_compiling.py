"""train.compile: which runs compile, that compiling changes neither parameters' names nor results, and that
the gradient penalty's double backward still works on a compiled critic."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab import checkpoint
from genlab.engine.compiling import CACHE_ENV, compile_networks, uses_compile
from genlab.training import train
from helpers import one_thread, tiny_config


@pytest.mark.parametrize("setting,device,expected", [
    (None, "cpu", False), (None, "cuda", False), (True, "cpu", True), (True, "cuda", True), (False, "cuda", False)])
def test_auto_is_off_until_a_device_is_measured_to_gain(setting, device, expected):
    cfg = tiny_config(train={"compile": setting})
    assert uses_compile(cfg, torch.device(device)) is expected


def test_compiling_keeps_parameter_names_and_skips_frozen_children(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_CACHE", str(tmp_path))
    monkeypatch.delenv(CACHE_ENV, raising=False)
    model = nn.Module()
    model.encoder, model.decoder, model.frozen = nn.Linear(3, 2), nn.Linear(2, 3), nn.Linear(2, 2)
    model.frozen.requires_grad_(False)
    keys = list(model.state_dict())
    assert compile_networks(model) == ["encoder", "decoder"]
    assert list(model.state_dict()) == keys
    import os

    assert os.environ[CACHE_ENV] == str(tmp_path / "inductor")


@pytest.fixture
def compile_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "inductor"))


def test_a_compiled_run_trains_like_an_eager_one(tmp_path, compile_cache):
    """Same seed, same data: the compiled networks' losses follow the eager ones to float tolerance, and
    the checkpoint holds the same parameter names (so either kind of run resumes or exports the other's)."""
    cfg = dict(model={"name": "ae", "hidden_dims": [4, 8], "latent_dim": 3},
               train={"epochs": 1, "deterministic": False})
    with one_thread():
        eager = train(tiny_config(name="eager", **cfg), out=tmp_path)
        compiled = train(tiny_config(name="compiled", **{**cfg, "train": {**cfg["train"], "compile": True}}),
                         out=tmp_path)
    a = checkpoint.load(tmp_path / "eager" / "checkpoints" / "last.pt")["model"]
    b = checkpoint.load(tmp_path / "compiled" / "checkpoints" / "last.pt")["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-4), k
    assert compiled.result.last_val["loss"] == pytest.approx(eager.result.last_val["loss"], rel=1e-4)


def test_gradient_penalty_runs_on_a_compiled_critic(tmp_path, compile_cache):
    if not hasattr(torch.compiler, "set_stance"):
        pytest.skip("torch.compiler.set_stance (PyTorch 2.6) runs the penalty's critic eagerly")
    cfg = tiny_config(model={"name": "dcgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "d_norm": "none"},
                      objective={"kind": "adversarial", "loss": "wasserstein", "gradient_penalty": 10.0},
                      data={"image_size": 16}, train={"epochs": 1, "compile": True, "deterministic": False})
    with one_thread():
        out = train(cfg, out=tmp_path)
    assert out.result.progress.step == 6 and math.isfinite(out.result.last_val["loss_d"])
