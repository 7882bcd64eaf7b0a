"""A diffusion run end to end on the bundled digits: train, figures (the denoising trajectory among them),
scores whose protocol names the sampler, resume, and an export that diffusers itself loads and samples from."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genlab.models import MODELS
from genlab.training import train
from helpers import one_thread, tiny_config


def _cfg(conditional: bool, **train_extra):
    model = {"name": "ddpm", **MODELS["ddpm"].tiny, "conditional": conditional, "ema_decay": 0.99}
    return tiny_config(model=model, objective={"kind": "diffusion", "proxy_samples": 8},
                       data={"image_size": 16, "limit": 64, "val_limit": 72},
                       train={"epochs": 2, "batch_size": 16, "seed": 0, "progress": False, "figures": True,
                              "epoch_samples": True, "checkpoint_every_steps": 2, **train_extra})


@pytest.fixture(scope="module")
def unconditional_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddpm")
    with one_thread():
        outcome = train(_cfg(False), out=out)
    return outcome.run.path


def test_training_writes_figures_history_and_sampler_protocol(unconditional_run):
    run = unconditional_run
    for name in ("samples.png", "trajectory.png", "loss_curves.png"):
        assert (run / "figures" / name).is_file(), name
    assert list((run / "figures" / "epochs").glob("samples_*.png"))  # fixed-noise grid per epoch
    assert not (run / "figures" / "traversal.png").exists()  # image-shaped noise has no traversals
    header = (run / "history.csv").read_text().splitlines()[0].split(",")
    assert {"loss", "fd_randconv"} <= set(header)
    scores = json.loads((run / "metrics.json").read_text())
    assert scores["fd_randconv"]["sampler"] == "DDIM, 3 steps, eta 0"
    assert "weight-averaged U-Net" in scores["fd_randconv"]["generator_weights"]


def test_resume_continues_the_step_count_and_the_average(unconditional_run, tmp_path):
    import shutil

    run = tmp_path / "resumed"
    shutil.copytree(unconditional_run, run)
    from genlab import checkpoint

    before = checkpoint.load(run / "checkpoints" / "last.pt")
    with one_thread():
        train(_cfg(False, epochs=3), resume=run)
    after = checkpoint.load(run / "checkpoints" / "last.pt")
    steps = after["progress"]["step"] - before["progress"]["step"]
    assert steps == 4  # a third epoch of 64 images in batches of 16
    assert int(after["model"]["ema_updates"]) == int(before["model"]["ema_updates"]) + steps


def test_export_is_a_folder_diffusers_loads_and_samples_the_same_images(unconditional_run, tmp_path):
    from diffusers import DDIMPipeline, DDIMScheduler, UNet2DModel

    import genlab
    from genlab.export import export_run

    written = export_run(unconditional_run, ["safetensors"], out=tmp_path / "export", which="last")
    root = tmp_path / "export" / "diffusers"
    manifest = json.loads((tmp_path / "export" / "model.json").read_text())
    assert "diffusers/unet/config.json" in manifest["files"] and root / "scheduler" / "scheduler_config.json" in written
    unet = UNet2DModel.from_pretrained(root, subfolder="unet")
    scheduler = DDIMScheduler.from_pretrained(root, subfolder="scheduler")
    pipe = DDIMPipeline(unet=unet, scheduler=scheduler)
    theirs = pipe(batch_size=2, generator=torch.Generator().manual_seed(5), num_inference_steps=3,
                  output_type="np").images  # (2, H, W, C) in [0, 1]
    trained = genlab.open(unconditional_run, "last").trained
    model = trained.model.eval()
    z = torch.randn(2, model.latent_dim, generator=torch.Generator().manual_seed(5))
    ours = trained.normalizer.to_unit(model.decode(z)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(theirs, ours, atol=2e-4)


def _card_snippet(card: str) -> str:
    section = card.split("### diffusers", 1)[1]
    return section.split("```python\n", 1)[1].split("\n```", 1)[0]


@pytest.mark.parametrize("conditional", [False, True])
def test_the_model_cards_diffusers_snippet_runs_in_the_export_folder(unconditional_run, tmp_path, conditional,
                                                                      monkeypatch):
    from genlab.export import export_run

    run = unconditional_run
    if conditional:
        with one_thread():
            run = train(_cfg(True, epochs=1), out=tmp_path / "runs").run.path
    export_run(run, ["safetensors"], out=tmp_path / "export", which="last")
    code = _card_snippet((tmp_path / "export" / "README.md").read_text())
    monkeypatch.chdir(tmp_path / "export")
    scope: dict = {}
    exec(compile(code, "card", "exec"), scope)  # noqa: S102 - the card's own code, as a user runs it
    images = scope["images"]
    assert tuple(images.shape) in ((4, 1, 16, 16), (4, 16, 16, 1))
    assert float(images.min()) >= 0 and float(images.max()) <= 1


def test_conditional_samples_follow_the_requested_labels_through_genlab_sample(tmp_path):
    from genlab.sampling import draw

    with one_thread():
        run = train(_cfg(True, epochs=1), out=tmp_path).run.path
    trained = genlab_open(run)
    a = draw(trained, 4, seed=1, labels=[0]).images
    b = draw(trained, 4, seed=1, labels=[2]).images
    assert a.shape == (4, 1, 16, 16) and not torch.equal(a, b)  # same noise, other label, other images
    live = draw(trained, 4, seed=1, labels=[0], live=True)
    assert "live weights" in live.generator_weights and not torch.equal(live.images, a)  # --live skips the average


def genlab_open(run):
    import genlab

    return genlab.open(run, "last").trained
