"""vqvae_prior end to end: a tiny VQ-VAE run on the bundled digits, then a prior run that names it. What the
registry tests cannot say: the prior learns (its loss falls on a tiny set it can memorise), the first run's
weights are loaded and never change, samples and their determinism, resume, export of encoder, decoder and
prior, and the set-up errors (tests/models/test_model_registry.py covers the family API and graph export)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from genlab.config import validate
from genlab.errors import GenlabError

pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")
VQ = {"hidden_channels": 8, "residual_channels": 4, "num_codes": 16, "code_dim": 4}
PIXELCNN = {"prior_channels": 16, "prior_layers": 2, "prior_kernel": 3}
TRAIN = {"batch_size": 16, "seed": 1, "deterministic": True, "progress": False, "figures": False,
         "epoch_samples": False, "checkpoint_every_steps": 4}


def prior_config(first, **train):
    return validate({"name": "prior", "prior": {"run": str(first), "data": {"limit": 32, "val_limit": 80,
                                                                                    "hflip": False}},
                     "model": {"name": "vqvae_prior", **PIXELCNN}, "objective": {"kind": "autoregressive_prior"},
                     "optim": {"lr": 0.01}, "train": {**TRAIN, "epochs": 6, **train}})


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """A finished tiny VQ-VAE run (a few steps: its codes need not be good, only its own)."""
    from genlab.training import train
    from helpers import one_thread

    cfg = validate({"name": "vq", "model": {"name": "vqvae", **VQ},
                    "objective": {"kind": "reconstruction", "reduction": "mean"},
                    "data": {"name": "digits", "image_size": 16, "limit": 96, "val_limit": 24, "hflip": True},
                    "optim": {"lr": 0.003}, "train": {**TRAIN, "epochs": 2}})
    with one_thread():
        return train(cfg, out=tmp_path_factory.mktemp("first")).run.path


@pytest.fixture(scope="module")
def prior(first, tmp_path_factory):
    from genlab.training import train
    from helpers import one_thread

    with one_thread():
        return train(prior_config(first, figures=True), out=tmp_path_factory.mktemp("prior"))


def test_the_prior_run_takes_the_first_runs_model_and_data_and_its_loss_falls(first, prior):
    from genlab.history import read_history
    from genlab.run import RunDir

    saved = RunDir(prior.run.path).read_config()
    base = RunDir(first).read_config()
    assert saved.model.kwargs()["base"] == {"name": "vqvae", **VQ}
    assert saved.model.kwargs()["output_activation"] == "tanh"
    # the first run's data section, with prior.data's changes
    assert saved.data.model_dump() == {**base.data.model_dump(), "limit": 32, "val_limit": 80, "hflip": False}
    rows = read_history(prior.run.path / "history.csv")
    train_ends = [float(r["loss"]) for r in rows if r["scope"] == "epoch" and r["split"] == "train"]
    assert len(train_ends) == 6 and train_ends[-1] < 0.8 * train_ends[0], train_ends
    steps = [r for r in rows if r["scope"] == "step"]
    for r in steps:  # the bits columns are the loss in other units (no label smoothing here)
        assert float(r["bits_per_code"]) == pytest.approx(float(r["loss"]) / 0.6931471805599453, rel=1e-5)
        assert float(r["bits_per_image"]) == pytest.approx(16 * float(r["bits_per_code"]), rel=1e-5)


def test_the_frozen_vqvae_is_the_first_runs_and_training_the_prior_leaves_it_unchanged(first, prior):
    from genlab import checkpoint

    want = checkpoint.load(first / "checkpoints" / "best.pt")["model"]
    for which in ("best.pt", "last.pt"):
        state = checkpoint.load(prior.run.path / "checkpoints" / which)["model"]
        frozen = {k[len("vqvae."):]: v for k, v in state.items() if k.startswith("vqvae.")}
        assert frozen.keys() == want.keys()
        assert all(torch.equal(frozen[k], want[k]) for k in want), which  # codebook buffers included
        assert any(k.startswith("pixelcnn.") for k in state)


def test_samples_have_the_image_shape_use_codes_and_repeat_with_the_seed(prior):
    from genlab.evaluate import evaluate_run
    from genlab.run import load_model
    from genlab.sampling import draw
    from helpers import one_thread

    trained = load_model(prior.run.path)
    assert trained.caps.can_sample
    a, b, c = draw(trained, 5, seed=3), draw(trained, 5, seed=3), draw(trained, 5, seed=4)
    assert a.images.shape == (5, 1, 16, 16) and float(a.images.min()) >= 0 and float(a.images.max()) <= 1
    assert torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)
    assert a.source == "the model's learned prior over its code grid"
    model = trained.model.eval()
    codes = model.encode(trained.normalizer(to_uint8(a.images)).float()).indices
    assert codes.shape == (5, 4, 4) and int(codes.min()) >= 0 and int(codes.max()) < 16
    figures = {p.name for p in prior.figures}
    assert {"samples.png", "reconstructions.png", "code_usage.png"} <= figures
    assert not figures & {"traversal.png", "interpolation.png", "tsne.png"}
    assert sorted(p.name for p in (prior.run.path / "figures").glob("traversal*")) == []
    log = (prior.run.path / "train.log").read_text()
    assert "traversal.png skipped: the model's latent is a grid" in log
    with one_thread():
        scores = evaluate_run(prior.run.path, ["fd_randconv"], device="cpu")
    assert scores["fd_randconv"]["fd_randconv"] >= 0 and "own sampler" in scores["fd_randconv"]["generated"]


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images as the uint8 tensor a Normalizer takes (NCHW both)."""
    return (images * 255).round().to(torch.uint8)


def test_export_writes_encoder_decoder_and_the_prior_with_how_to_sample(prior):
    import numpy as np

    from genlab.export import export_run
    from genlab.run import load_model

    files = {p.name for p in export_run(prior.run.path, ["torchscript", "safetensors"])}
    assert {"encoder.pt", "decoder.pt", "prior.pt", "codebook.npz", "model.safetensors", "model.json"} <= files
    out = prior.run.path / "export"
    manifest = json.loads((out / "model.json").read_text())
    assert set(manifest["graphs"]) == {"encoder", "decoder", "prior"}
    assert "raster-order sampling" in manifest["model"]["sampling"]
    assert manifest["graphs"]["prior"]["inputs"][0]["shape"] == ["batch", 4, 4]
    assert manifest["model"]["parameters"]["frozen"] > 0
    model = load_model(prior.run.path).model.eval()
    grid = torch.randint(16, (3, 4, 4), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out / "prior.pt"))(grid), model.prior_logits(grid),
                                   atol=1e-5, rtol=0)
        # the manifest's recipe: codebook[grid] -> (B, D, h, w) flattened -> decoder graph
        codebook = torch.from_numpy(np.load(out / "codebook.npz")["codebook"])
        z = codebook[grid].permute(0, 3, 1, 2).flatten(1)
        images = torch.jit.load(str(out / "decoder.pt"))(z)
        want = load_model(prior.run.path).normalizer.to_unit(model.decode_indices(grid))
    torch.testing.assert_close(images, want, atol=1e-5, rtol=0)


def test_a_prior_run_resumes_from_its_own_checkpoint_without_the_first_run(first, tmp_path):
    from genlab.run import RunDir
    from genlab.training import train
    from helpers import one_thread

    copy = tmp_path / "vq"
    shutil.copytree(first, copy)
    with one_thread():
        stopped = train(prior_config(copy, epochs=2), out=tmp_path, stop_after_steps=3)
        assert stopped.result.stopped_early == "stop_after_steps"
        shutil.rmtree(copy)  # the frozen weights are in the prior run's checkpoint now
        done = train(None, resume=stopped.run.path)
    assert done.result.progress.step == 4  # 32 images, batches of 16, 2 epochs
    summary = json.loads(RunDir(done.run.path).summary.read_text())
    assert summary["status"] == "finished"


def test_set_up_errors_say_what_would_be_valid(first, tmp_path):
    from genlab.prior_run import resolve
    from helpers import tiny_config

    with pytest.raises(GenlabError, match=r"prior.run .*nope: no such folder\. .*e\.g\. runs/vqvae_cats"):
        resolve(prior_config(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenlabError, match="is not a genlab run folder"):
        resolve(prior_config(tmp_path / "empty"))
    vae = tmp_path / "vae"  # a finished run's folder of a model with a gaussian posterior
    (vae / "checkpoints").mkdir(parents=True)
    (vae / "config.yaml").write_text(json.dumps(tiny_config().to_dict()))
    (vae / "checkpoints" / "best.pt").write_bytes(b"")
    with pytest.raises(GenlabError, match="not a finished run .*no summary.json"):
        resolve(prior_config(vae))
    (vae / "summary.json").write_text(json.dumps({"status": "finished"}))
    with pytest.raises(GenlabError, match=r"a run of model 'vae' \(a gaussian posterior\); a vqvae_prior run needs "
                                          r"a run of a model with a quantized posterior: vqvae\."):
        resolve(prior_config(vae))
    bad = prior_config(first).model_copy(update={"prior": prior_config(first).prior.model_copy(
        update={"data": {"image_size": 32}})})
    with pytest.raises(GenlabError, match=r"prior.data.image_size cannot change \(16 in prior.run"):
        resolve(bad)
    with pytest.raises(GenlabError, match=r"is trained over a finished run's model: name that run with prior.run"):
        resolve(validate({"model": {"name": "vqvae_prior", **PIXELCNN}, "data": {"name": "digits"}}))
    with pytest.raises(GenlabError, match=r"model 'vae' is not trained over another run \(vqvae_prior"):
        resolve(validate({**tiny_config().to_dict(), "prior": {"run": str(first)}}))
    with pytest.raises(GenlabError, match="missing required key 'data'"):
        validate({"model": {"name": "vae"}})


def test_a_data_section_without_a_name_in_a_prior_config_changes_the_first_runs():
    cfg = validate({"prior": {"run": "elsewhere", "data": {"limit": 3, "val_limit": 9}},
                    "model": {"name": "vqvae_prior"}, "data": {"limit": 5, "hflip": False}})
    assert cfg.data is None and cfg.prior.data == {"limit": 5, "val_limit": 9, "hflip": False}


@pytest.mark.skipif(not all(__import__("importlib").util.find_spec(n) for n in ("onnx", "onnxscript", "onnxruntime")),
                    reason="onnx, onnxscript and onnxruntime are needed to export and run ONNX")
def test_onnx_prior_and_decoder_give_the_models_logits_and_images(prior):
    import numpy as np
    import onnxruntime as ort

    from genlab.export import export_run
    from genlab.run import load_model

    files = {p.name for p in export_run(prior.run.path, ["onnx"])}
    assert {"encoder.onnx", "decoder.onnx", "prior.onnx"} <= files
    out = prior.run.path / "export"
    loaded = load_model(prior.run.path)
    model = loaded.model.eval()
    codebook = np.load(out / "codebook.npz")["codebook"]
    prior_session = ort.InferenceSession(str(out / "prior.onnx"), providers=["CPUExecutionProvider"])
    decoder = ort.InferenceSession(str(out / "decoder.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # neither is the traced batch size
        grid = torch.randint(16, (batch, 4, 4), generator=torch.Generator().manual_seed(batch))
        (logits,) = prior_session.run(None, {prior_session.get_inputs()[0].name: grid.numpy()})
        z = codebook[grid.numpy()].transpose(0, 3, 1, 2).reshape(batch, -1)
        (images,) = decoder.run(None, {decoder.get_inputs()[0].name: z.astype(np.float32)})
        with torch.no_grad():
            np.testing.assert_allclose(logits, model.prior_logits(grid).numpy(), atol=1e-4, rtol=0)
            want = loaded.normalizer.to_unit(model.decode_indices(grid)).numpy()
        np.testing.assert_allclose(images, want, atol=1e-4, rtol=0)
