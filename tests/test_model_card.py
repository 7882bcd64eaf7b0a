"""The model card's text for what the tiny trained runs of test_export.py do not produce: awkward cell text,
scores of older genlab versions, run folders without summary.json, unreadable metrics. No training here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from genlab.model_card import model_card


def _manifest(run: Path, files: dict[str, str]) -> dict:
    """model.json as `genlab export` writes it, for a VAE-like model exported as `files` ({name: format})."""
    z = {"name": "z", "dtype": "float32", "shape": ["batch", 3], "description": "latent code"}
    image = {"name": "image", "dtype": "float32", "shape": ["batch", 1, 8, 8], "range": [0, 1],
             "description": "images in [0, 1]"}
    graph_files = {fmt: name for name, fmt in files.items() if fmt in ("torchscript", "onnx")}
    return {
        "format": "genlab-export", "format_version": 1, "genlab_version": "9.9.9", "torch_version": "2.x",
        "exported_at": "2030-01-01T00:00:00+00:00",
        "source": {"run": str(run), "checkpoint": "best", "step": 7, "checkpoint_file": "checkpoints/best.pt",
                   "checkpoint_sha256": "ab" * 32},
        "model": {"name": "vae", "summary": "a VAE", "kwargs": {"latent_dim": 3}, "family": "vae",
                  "latent_dim": 3, "conditional": False, "num_classes": 0,
                  "parameters": {"trained": 1234, "frozen": 0, "by_module": {"encoder": 600, "decoder": 634}},
                  "generator_weights": "live weights (no weight average)"},
        "build": {"name": "vae", "kwargs": {"latent_dim": 3}, "image_size": 8, "channels": 1, "num_classes": 0},
        "image": {"channels": 1, "height": 8, "width": 8, "num_classes": 0},
        "normalization": {"kind": "minus_one_one", "mean": [0.5], "std": [0.5], "note": ""},
        "graphs": {"decoder": {"inputs": [z], "outputs": [image], "files": graph_files}},
        "files": {name: {"sha256": "cd" * 32, "bytes": 10} for name in files},
        "config": {"data": {"name": "npy_folder", "root": "~/data/my|set"}, "objective": {"kind": "reconstruction"}},
    }


@pytest.fixture
def run(tmp_path) -> Path:
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "config.yaml").write_text("name: run\nnote: \"a ``` fence inside\"\n")
    return folder


def _tables(card: str) -> list[str]:
    return re.findall(r"(?:^\|.*\|\n)+", card, flags=re.M)


def test_pipes_in_cells_are_escaped_and_tables_keep_their_columns(run):
    (run / "metrics.json").write_text(json.dumps({"odd|name": {
        "score|value": 0.5, "score_keys": ["score|value"], "protocol": "p", "metric": "m",
        "reference_split": "train | validation", "extractor": {"name": "net|v2", "resize": "bilinear"},
        "checkpoint": "best", "step": 7, "checkpoint_sha256": "ab" * 32}}))
    card = model_card(_manifest(run, {"model.safetensors": "safetensors"}), run)
    for table in _tables(card):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(widths) == 1, table
    assert r"`odd\|name`" in card and r"score\|value = 0.5" in card
    assert r"| reference_split | train \| validation | reference split |" in card
    assert r"| extractor.name | net\|v2 | feature extractor |" in card
    assert r"`~/data/my\|set`" in card  # the data root as the user gave it
    assert "the exported checkpoint" in card  # the score's checkpoint hash is the export's


def test_scores_of_older_versions_are_split_by_their_rule(run):
    (run / "metrics.json").write_text(json.dumps({"reconstruction_heldout": {
        "psnr_mean": 8.879426942989653, "n_images": 24, "seed": 1, "checkpoint": "last", "step": 12}}))
    card = model_card(_manifest(run, {"model.safetensors": "safetensors"}), run)
    assert "psnr_mean = 8.87943" in card and "n_images =" not in card
    assert "| n_images | 24 | image count |" in card
    assert "| `reconstruction_heldout` | psnr_mean = 8.87943 | last, step 12 |" in card  # no hash: no claim


def test_a_run_without_summary_or_metrics_says_what_is_missing(run):
    card = model_card(_manifest(run, {"decoder.pt": "torchscript"}), run)
    assert "not recorded (the run has no summary.json)" in card
    assert f"no metrics.json). Score it with `genlab eval {run}`" in card
    # only the format exported gets a snippet
    assert 'torch.jit.load("decoder.pt"' in card and "InferenceSession" not in card and "load_file" not in card


def test_an_unreadable_metrics_file_still_gives_a_card(run):
    (run / "metrics.json").write_text("{not json")
    card = model_card(_manifest(run, {"decoder.onnx": "onnx"}), run)
    assert "could not be read" in card and f"`genlab eval {run}`" in card
    assert 'ort.InferenceSession("decoder.onnx"' in card and "torch.jit.load" not in card


def test_the_config_block_survives_backticks_inside_it(run):
    card = model_card(_manifest(run, {"model.safetensors": "safetensors"}), run)
    (block,) = re.findall(r"^````yaml\n(.*?)^````$", card, flags=re.S | re.M)
    assert yaml.safe_load(block) == yaml.safe_load((run / "config.yaml").read_text())


def test_the_sample_figure_is_embedded_when_given(run):
    card = model_card(_manifest(run, {"model.safetensors": "safetensors", "samples.png": "figure"}), run,
                      figure="samples.png")
    assert "![samples drawn by the run](samples.png)" in card
