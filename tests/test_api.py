"""genlab's Python API (genlab.api): one test or more per public function, on tiny real runs."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import genlab
from genlab.errors import GenlabError
from helpers import one_thread, tiny_config

CGAN = {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4}


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("api_cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(train={"epochs": 2}).to_dict()))
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_yaml) -> dict[str, genlab.Run]:
    out = tmp_path_factory.mktemp("api_runs")
    with one_thread():
        vae = genlab.train(tiny_yaml, out=out, name="vae", figures=True)
        gan = genlab.train(tiny_config(name="cgan", model=CGAN, objective={"kind": "adversarial", "proxy_samples": 24},
                                       data={"image_size": 16}, train={"epochs": 1}), out=out)
    return {"vae": vae, "cgan": gan}


def _is_png(data: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(data)).size


# ---------------------------------------------------------------- load_config


def test_keywords_find_their_section(tiny_yaml):
    cfg = genlab.load_config(tiny_yaml, beta=4.0, epochs=7, data__root="x", latent_dim=5, name="n")
    assert cfg.objective.beta == 4.0 and cfg.train.epochs == 7 and cfg.data.root == "x"
    assert cfg.model.kwargs()["latent_dim"] == 5 and cfg.name == "n"
    assert genlab.load_config(tiny_yaml, overrides={"train.batch_size": 4}).train.batch_size == 4
    assert genlab.load_config(cfg, epochs=1).train.epochs == 1  # a config can be changed too
    assert genlab.load_config("quickstart").name == "quickstart"


def test_keyword_errors_say_what_to_write(tiny_yaml):
    with pytest.raises(GenlabError, match="not a key of any section"):
        genlab.load_config(tiny_yaml, bogus=1)
    with pytest.raises(GenlabError, match="epochs"):  # the validator's message: out of range
        genlab.load_config(tiny_yaml, epochs=0)
    with pytest.raises(GenlabError, match="did you mean"):
        genlab.load_config(tiny_yaml, train__epoch=3)
    with pytest.raises(GenlabError, match="not found"):
        genlab.load_config("no_such_config")


def test_an_ambiguous_keyword_names_its_sections(tiny_yaml):
    """`root` is data.root and output.root; `name` is the run's (top-level keys win over sections')."""
    with pytest.raises(GenlabError, match="ambiguous: it could be data.root or output.root; write data__root"):
        genlab.load_config(tiny_yaml, root="x")
    assert genlab.load_config(tiny_yaml, output__root="elsewhere").output.root == "elsewhere"


# ---------------------------------------------------------------- train / open / resume


def test_train_makes_the_same_run_folder_as_the_cli(runs):
    run = runs["vae"]
    for f in ("config.yaml", "history.csv", "checkpoints/best.pt", "summary.json", "figures/samples.png"):
        assert (run.path / f).exists(), f
    assert run.status == "finished" and run.name == "vae" and run.config.train.epochs == 2


def test_open_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(GenlabError, match="not a genlab run folder"):
        genlab.open(tmp_path)
    with pytest.raises(GenlabError, match="best' or 'last"):
        genlab.open(tmp_path, checkpoint="middle")


def test_resume_extends_a_run(runs, tmp_path):
    run = genlab.open(shutil.copytree(runs["vae"].path, tmp_path / "vae"))
    steps = run.summary["progress"]["steps"]
    with one_thread():
        longer = run.resume(epochs=3)
    assert longer.summary["progress"]["steps"] == steps * 3 // 2
    with pytest.raises(GenlabError, match="cannot resume"):
        run.resume(beta=9.0)


# ---------------------------------------------------------------- the model


def test_sample_decode_encode_reconstruct(runs):
    run = runs["vae"]
    images = run.sample(6, seed=1)
    assert images.tensor.shape == (6, 1, 12, 12) and images.tensor.min() >= 0 and images.tensor.max() <= 1
    assert torch.equal(images.tensor, run.sample(6, seed=1).tensor)
    z = run.encode(images)
    assert z.shape == (6, 3)
    assert run.decode(z).tensor.shape == (6, 1, 12, 12)
    assert run.reconstruct(images).tensor.shape == (6, 1, 12, 12)
    assert run.reconstruct(images.numpy()).tensor.shape == (6, 1, 12, 12)  # uint8 NHWC arrays too
    held = run.held_out(4)
    assert len(held) == 4 and len(run.reconstruct(n=4)) == 4
    with pytest.raises(GenlabError, match="shape"):
        run.encode(torch.zeros(2, 3, 12, 12))
    with pytest.raises(GenlabError, match="uint8"):
        run.encode(np.zeros((2, 12, 12, 1), np.float32))


def test_conditional_samples_and_written_sets(runs, tmp_path):
    run = runs["cgan"]
    images = run.sample(5, labels=[7], out=tmp_path / "s")
    assert images.labels == [7] * 5 and len(list((tmp_path / "s").glob("*.png"))) == 5
    assert run.decode(torch.zeros(2, 8), torch.tensor([1, 2])).labels == [1, 2]
    with pytest.raises(GenlabError, match="no encoder"):
        run.encode(images)


def test_images_show_themselves(runs):
    images = runs["vae"].sample(10)
    w, h = _is_png(images._repr_png_())
    assert w > 12 * 8 and h > 12  # two rows of 8, scaled up
    assert images[2:4].tensor.shape[0] == 2 and images[0].tensor.shape[0] == 1
    assert torch.equal(images[-1].tensor, images.tensor[-1:])
    assert images.numpy().dtype == np.uint8 and images.numpy().shape == (10, 12, 12, 1)


# ---------------------------------------------------------------- scores, figures, history


def test_metrics_and_evaluate(runs, tmp_path):
    run = genlab.open(shutil.copytree(runs["vae"].path, tmp_path / "vae"))
    assert "reconstruction_heldout" in run.metrics
    got = run.evaluate("reconstruction", samples=16)
    assert "reconstruction_heldout" in got and got.values_of("reconstruction_heldout")["psnr_mean"] > 0
    assert run.metrics["reconstruction_heldout"]["checkpoint"] == "best"
    html = run.metrics._repr_html_()
    assert "<table>" in html and "reconstruction_heldout" in html
    with pytest.raises(GenlabError, match="no score"):
        run.metrics.values_of("fid")


def test_figures_are_drawn_when_missing_and_show_themselves(runs, tmp_path):
    run = genlab.open(shutil.copytree(runs["vae"].path, tmp_path / "vae"))
    (run.path / "figures" / "traversal.png").unlink(missing_ok=True)
    fig = run.figure("traversal")
    assert fig.path.is_file() and _is_png(fig._repr_png_())[0] > 100
    assert {f.name for f in run.figures()} >= {"samples", "traversal"}
    with pytest.raises(GenlabError, match="unknown figure"):
        run.figure("nope")
    with pytest.raises(GenlabError, match="does not apply"):
        runs["cgan"].figure("traversal", redraw=True)


def test_history_rows(runs):
    rows = runs["vae"].history()
    assert [r["epoch"] for r in rows if r["split"] == "train"] == [0.0, 1.0]
    assert all(isinstance(r["loss"], float) for r in rows)
    steps = runs["vae"].history("step", "train")
    assert len(steps) == runs["vae"].summary["progress"]["steps"]
    with pytest.raises(GenlabError, match="scope"):
        runs["vae"].history("batch")


def test_a_run_shows_itself(runs):
    html = runs["vae"]._repr_html_()
    assert "vae" in html and "finished" in html and "data:image/png;base64," in html
    assert repr(runs["vae"]).startswith("genlab.Run(")


# ---------------------------------------------------------------- several runs, export


def test_compare_and_report(runs, tmp_path):
    table = genlab.compare(runs["vae"], str(runs["cgan"].path))
    text = str(table)
    assert "reconstruction_heldout / psnr" in text and "vae" in text and "cgan" in text
    assert "<table>" in table._repr_html_() and table.csv().startswith("metric,")
    page = genlab.report(runs["vae"], runs["cgan"], out=tmp_path / "r.html")
    assert "<html" in page.read_text()
    with pytest.raises(GenlabError, match="at least one"):
        genlab.compare()


def test_export(runs, tmp_path):
    run = genlab.open(shutil.copytree(runs["vae"].path, tmp_path / "vae"))
    paths = run.export(["safetensors"])
    assert paths[-1].name == "model.json" and (run.path / "export" / "model.safetensors").is_file()


def test_the_api_is_reachable_from_the_package_without_loading_it_early():
    import subprocess
    import sys

    code = "import sys, genlab; assert 'torch' not in sys.modules; genlab.open; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # reaching the API loads genlab.api, which loads torch only when used
    assert set(genlab.api.__all__) <= set(dir(genlab))
    from genlab.sweeps import run_sweep

    assert genlab.sweep is run_sweep and callable(genlab.train) and callable(genlab.compare)
