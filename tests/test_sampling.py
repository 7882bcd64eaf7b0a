"""`genlab sample`: PNG files and a manifest from a checkpoint alone, reproducible by seed, safe for the folder."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab import checkpoint
from genlab.cli import main
from genlab.errors import GenlabError
from genlab.io import sha256_of
from genlab.run import load_model
from genlab.sampling import draw, parse_labels
from genlab.training import train
from helpers import one_thread, tiny_config

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v0_1"
CGAN = {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4, "ema_decay": 0.9}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("sample_runs")
    with one_thread():
        train(tiny_config(name="vae", train={"epochs": 1}), out=out)
        train(tiny_config(name="cgan", model=CGAN, objective={"kind": "adversarial", "proxy_samples": 24},
                          data={"image_size": 16}, train={"epochs": 1}), out=out)
    return {"vae": out / "vae", "cgan": out / "cgan"}


@pytest.fixture
def no_data(monkeypatch):
    """Sampling must not read the data set: any attempt fails the test."""
    def refuse(*a, **k):
        raise AssertionError("the data set was read")

    monkeypatch.setattr("genlab.data.load_data", refuse)
    monkeypatch.setattr("genlab.run.load_data", refuse, raising=False)


def _err(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())  # the CLI wraps its messages at 100 columns


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_sample_writes_pngs_and_a_manifest_without_the_data(runs, tmp_path, no_data, capsys):
    out = tmp_path / "s"
    assert main(["sample", str(runs["cgan"]), "-n", "7", "--out", str(out), "--seed", "3", "--labels", "1,2"]) == 0
    m = _manifest(out)
    files = sorted(p.name for p in out.glob("*.png"))
    assert files == [e["file"] for e in m["images"]] and len(files) == 7 == m["count"]
    assert [e["label"] for e in m["images"]] == [1, 2, 1, 2, 1, 2, 1]
    ckpt = runs["cgan"] / "checkpoints" / "best.pt"
    assert m["checkpoint"]["sha256"] == sha256_of(ckpt) and m["checkpoint"]["which"] == "best"
    assert m["checkpoint"]["step"] == checkpoint.load(ckpt)["progress"]["step"]
    assert m["seed"] == 3 and "weight-averaged" in m["generator_weights"]
    img = np.asarray(Image.open(out / files[0]))
    assert img.shape == (16, 16) and img.dtype == np.uint8 and m["image_shape"] == [16, 16, 1]
    assert "7 samples" in capsys.readouterr().out


def test_same_seed_same_images_whatever_the_batch_size(runs, no_data):
    trained = load_model(runs["vae"])
    a = draw(trained, 10, seed=5, batch_size=3).images
    b = draw(trained, 10, seed=5, batch_size=64).images
    c = draw(trained, 10, seed=6).images
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, c)
    assert a.min() >= 0 and a.max() <= 1


def test_live_weights_differ_from_the_average_and_are_recorded(runs, tmp_path, no_data):
    trained = load_model(runs["cgan"])
    avg = draw(trained, 6, seed=0, labels=[0])
    live = draw(trained, 6, seed=0, labels=[0], live=True)
    assert "live" in live.generator_weights and "weight-averaged" in avg.generator_weights
    assert not torch.allclose(avg.images, live.images)
    assert trained.model.generator_ema is not None  # the average is put back


def test_labels_by_name_default_all_and_errors(runs, no_data):
    gan, vae = load_model(runs["cgan"]), load_model(runs["vae"])
    k = gan.caps.num_classes
    assert parse_labels(None, gan) == list(range(k)) and parse_labels("all", gan) == list(range(k))
    named = dataclasses.replace(gan, class_names=[f"class-{w}" for w in "abcdefghij"])
    assert parse_labels("class-c,1", named) == [2, 1]  # names and indices mixed
    with pytest.raises(GenlabError, match="neither a class index"):
        parse_labels("zebra", gan)
    with pytest.raises(GenlabError, match="out of range"):
        parse_labels(str(k), gan)
    with pytest.raises(GenlabError, match="not conditional"):
        parse_labels("1", vae)
    assert parse_labels(None, vae) is None


def test_a_folder_is_never_overwritten_unless_it_is_a_sample_set_and_asked(runs, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    assert main(["sample", str(runs["vae"]), "-n", "2", "--out", str(mine)]) == 2
    assert "not a genlab sample set" in _err(capsys) and (mine / "notes.txt").read_text() == "keep"
    out = tmp_path / "s"
    assert main(["sample", str(runs["vae"]), "-n", "5", "--out", str(out)]) == 0
    assert main(["sample", str(runs["vae"]), "-n", "2", "--out", str(out)]) == 2
    assert "--overwrite" in _err(capsys) and len(list(out.glob("*.png"))) == 5
    assert main(["sample", str(runs["vae"]), "-n", "2", "--out", str(out), "--overwrite"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["000000.png", "000001.png"]


def test_default_folder_is_inside_the_run(runs, tmp_path):
    run = Path(shutil.copytree(runs["vae"], tmp_path / "vae"))
    assert main(["sample", str(run), "-n", "3", "--checkpoint", "last", "--seed", "4"]) == 0
    assert _manifest(run / "samples" / "last_seed4")["checkpoint"]["which"] == "last"


def test_reconstructions_of_a_folder(runs, tmp_path, no_data):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    for i, size in enumerate((20, 40, 12)):
        Image.fromarray(np.full((size, size, 3), 40 * i, np.uint8)).save(folder / ("sub" if i else "") / f"{i}.png")
    out = tmp_path / "r"
    assert main(["sample", str(runs["vae"]), "--reconstruct", str(folder), "--out", str(out)]) == 0
    m = _manifest(out)
    assert m["kind"] == "reconstructions" and m["count"] == 3
    assert sorted(e["source"] for e in m["images"]) == ["0.png", "sub/1.png", "sub/2.png"]
    assert np.asarray(Image.open(out / "000000.png")).shape == (12, 12)


def test_reconstruct_refuses_gans_bad_files_and_empty_folders(runs, tmp_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    assert main(["sample", str(runs["vae"]), "--reconstruct", str(folder), "--out", str(tmp_path / "a")]) == 2
    assert "no image files" in _err(capsys)
    (folder / "bad.png").write_text("not an image")
    assert main(["sample", str(runs["vae"]), "--reconstruct", str(folder), "--out", str(tmp_path / "b")]) == 2
    assert "bad.png" in _err(capsys)
    assert main(["sample", str(runs["cgan"]), "--reconstruct", str(folder), "--out", str(tmp_path / "c")]) == 2
    assert "no encoder" in _err(capsys)


def test_a_checkpoint_from_before_data_shape_reads_the_data_for_its_classes(tmp_path):
    """genlab 0.1's cgan fixture has no data_shape; its classes come from its data (digits, bundled)."""
    run = Path(shutil.copytree(FIXTURES / "cgan", tmp_path / "cgan"))
    trained = load_model(run)
    assert trained.caps.conditional and trained.caps.num_classes == 10
    assert draw(trained, 4, labels=[3]).images.shape[0] == 4


def test_checkpoints_now_record_the_data_shape(runs):
    state = checkpoint.load(runs["cgan"] / "checkpoints" / "last.pt")
    assert state["data_shape"]["channels"] == 1 and state["data_shape"]["num_classes"] == 10
