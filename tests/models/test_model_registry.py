"""Every registered model, built from its own tiny arguments: what its entry declares, forward and backward,
its family's API, a state-dict round trip, range checks and export. Parametrized over the registry, so a
new model is tested the day it is registered (tests/test_registries_covered.py checks that nothing escapes)."""

from __future__ import annotations

import importlib.util
import math
import re

import pytest
import torch

from genlab.errors import GenlabError
from genlab.export import build_graphs
from genlab.models import MODELS, build_model, capabilities, model_arguments, output_activation
from genlab.models.latent import Posterior
from genlab.models.registry import FAMILY_API
from genlab.objectives import OBJECTIVES

NAMES = sorted(MODELS)
CLASSES = 3
HAVE_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")


def build(name: str, size: int | None = None, channels: int = 1, **extra):
    entry = MODELS[name]
    size = size or entry.tiny_image_sizes[0]
    kwargs = {**entry.tiny, **extra}
    caps = capabilities(name, kwargs, CLASSES)
    model = build_model(name, kwargs, image_size=size, channels=channels, num_classes=CLASSES)
    return model, caps, size


def labels_for(caps, n: int) -> torch.Tensor | None:
    return torch.arange(n) % caps.num_classes if caps.conditional else None


@pytest.mark.parametrize("name", NAMES)
def test_entry_declares_what_its_family_needs(name):
    entry = MODELS[name]
    assert entry.name == name and entry.summary
    assert entry.family in FAMILY_API, f"{name}: unknown family {entry.family!r}"
    assert entry.trains_with and set(entry.trains_with) <= set(OBJECTIVES), entry.trains_with
    arguments = model_arguments(name)
    assert set(entry.tiny) <= set(arguments), f"{name}: tiny arguments the constructor does not take"
    assert set(entry.sizes) <= set(arguments), f"{name}: size arguments the constructor does not take"
    assert entry.output_activation is not None or "output_activation" in arguments, \
        f"{name}: no fixed output activation and no output_activation argument"
    assert entry.latent.posterior == "none" or entry.family != "gan"
    assert entry.has_encoder == (entry.family == "autoencoder")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("channels", [1, 3])
def test_builds_at_every_tiny_size_with_its_family_api(name, channels):
    entry = MODELS[name]
    for size in entry.tiny_image_sizes:
        model, caps, _ = build(name, size, channels)
        missing = [a for a in FAMILY_API[entry.family] if not hasattr(model, a)]
        assert missing == [], f"{name} lacks {missing} of the {entry.family} API"
        assert tuple(model.image_shape) == (channels, size, size)
        if caps.can_sample:
            x = model.sample(2, labels=labels_for(caps, 2)) if caps.conditional else model.sample(2)
            assert x.shape == (2, channels, size, size)
        else:  # the entry's reason is what sampling commands and metrics show: the model says the same
            with pytest.raises(GenlabError, match=re.escape(caps.cannot_sample)):
                model.sample(2)
            x = torch.rand(2, channels, size, size) * 2 - 1
        if entry.has_encoder:
            post = model.encode(x)
            assert isinstance(post, Posterior) and post.mean.shape == (2, model.latent_dim)
            assert (post.logvar is not None) == entry.variational  # what the KL term and config checks rely on
            assert model.decode(post.mean).shape == x.shape == model.reconstruct(x).shape
            if entry.latent.quantized:  # what code-usage monitors, figures and export read
                codes = post.indices
                assert codes is not None and codes.shape == (2, *model.grid_shape[1:])
                assert int(codes.min()) >= 0 and int(codes.max()) < model.num_codes
                assert tuple(model.codebook.shape) == (model.num_codes, model.grid_shape[0])
                assert math.prod(model.grid_shape) == model.latent_dim


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_backward_reach_every_trained_parameter(name):
    model, caps, size = build(name)
    entry = MODELS[name]
    model.train()
    if entry.builds_on is not None:  # only the prior over another run's frozen codes trains: its logits reach it
        x = torch.rand(4, 1, size, size) * 2 - 1
        model.prior_logits(model.encode(x).indices).logsumexp(1).mean().backward()
    elif entry.has_encoder:
        x = torch.rand(4, 1, size, size) * 2 - 1
        post = model.encode(x)
        z = post.rsample() if entry.variational else post.mean
        model.decode(z).pow(2).mean().backward()
    elif entry.family == "diffusion":  # the noise prediction at a few steps reaches the whole U-Net
        x = torch.rand(4, 1, size, size) * 2 - 1
        model.predict_noise(x, torch.tensor([0, 1, 2, 3]), labels_for(caps, 4)).pow(2).mean().backward()
    else:  # a GAN: D's logit of G's images reaches both networks
        y = labels_for(caps, 4)
        z = torch.randn(4, model.latent_dim)
        model.discriminate(model.generator(z, y), y).mean().backward()
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trained
    missing = [n for n, p in trained if p.grad is None and not n.startswith("discriminator.aux")]
    assert missing == []
    assert all(torch.isfinite(p.grad).all() for _, p in trained if p.grad is not None)


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_reproduces_outputs(name):
    a, caps, size = build(name)
    b, _, _ = build(name)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    z = torch.randn(3, a.latent_dim)
    args = (z, labels_for(caps, 3)) if caps.conditional else (z,)
    torch.testing.assert_close(a.decode(*args), b.decode(*args))


@pytest.mark.parametrize("name", NAMES)
def test_every_size_argument_refuses_zero_with_the_key_named(name):
    entry = MODELS[name]
    for key in entry.sizes:
        bad = [0] if isinstance(model_arguments(name)[key], (list, tuple)) else 0
        with pytest.raises(GenlabError, match=rf"model\.{key} must be (a|a list of) positive integers?"):
            build(name, **{key: bad})


@pytest.mark.parametrize("name", NAMES)
def test_output_activation_is_what_the_registry_says(name):
    entry = MODELS[name]
    if entry.output_activation is not None:  # fixed: what the outputs span, and a GAN's last module is it
        model, caps, _ = build(name)
        assert entry.output_activation == output_activation(name, {}) == "tanh"
        if entry.family == "gan":
            assert type(list(model.generator.modules())[-1]).__name__.lower() == "tanh"
        model.eval()
        y = model.decode(torch.randn(8, model.latent_dim) * 10, labels_for(caps, 8))
        assert y.min() >= -1 and y.max() <= 1
    else:
        model, caps, _ = build(name, output_activation="sigmoid")
        assert output_activation(name, {"output_activation": "sigmoid"}) == "sigmoid"
        y = model.decode(torch.randn(8, model.latent_dim) * 10)
        assert y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_conditional_models_take_labels_and_others_refuse_none(name):
    model, caps, _ = build(name)
    if not caps.conditional:
        assert caps.num_classes == 0 and getattr(model, "num_classes", 0) == 0
        return
    assert caps.num_classes == CLASSES == model.num_classes
    z = torch.randn(2, model.latent_dim)
    with pytest.raises(ValueError, match="conditional"):
        model.decode(z)


@pytest.mark.parametrize("name", NAMES)
def test_exports_as_torchscript_and_onnx_that_match_the_model(name, tmp_path):
    from genlab import export

    model, caps, size = build(name)
    model = model.eval().requires_grad_(False)
    mean, std = torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.5)
    graphs = build_graphs(model, caps, mean, std)
    # a diffusion model's sampler is a loop of network calls, not one graph: it exports in diffusers' format
    expected = {"autoencoder": ["decoder", "encoder"], "gan": ["generator"], "diffusion": []}[caps.family]
    if caps.latent.prior == "learned" and caps.can_sample:  # and the prior over its code grid, apart
        expected = [*expected, "prior"]
    assert [g.name for g in graphs] == expected
    for graph in graphs:
        with torch.no_grad():
            want = graph.module(*graph.example)
            traced = torch.jit.load(str(export._export_torchscript(graph, tmp_path)))
            got = traced(*graph.example)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
        if HAVE_ONNX:
            import onnxruntime as ort

            session = ort.InferenceSession(str(export._export_onnx(graph, tmp_path)),
                                           providers=["CPUExecutionProvider"])
            names = [i.name for i in session.get_inputs()]
            outputs = session.run(None, {n: t.numpy() for n, t in zip(names, graph.example)})
            want = want if isinstance(want, tuple) else (want,)
            for o, w in zip(outputs, want):
                torch.testing.assert_close(torch.from_numpy(o), w, atol=1e-4, rtol=0)
