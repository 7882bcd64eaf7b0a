"""End-to-end CLI runs of the bundled configs on small slices of the real data sets."""

from __future__ import annotations

import csv

import pytest

from genlab.cli import main

pytestmark = pytest.mark.slow


def _val_losses(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return [float(r["loss"]) for r in csv.DictReader(f) if r["scope"] == "epoch" and r["split"] == "val"]


def test_denoising_autoencoder_on_fashion_mnist_learns(real_data, tmp_path, capsys):
    code = main(["train", "dae_fashion_mnist", "--out", str(tmp_path),
                 "--set", "data.limit=2048", "--set", "data.val_limit=512",
                 "--set", "train.epochs=3", "--set", "train.progress=false"])
    assert code == 0
    run = tmp_path / "dae_fashion_mnist"
    losses = _val_losses(run)
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses
    for name in ("config.yaml", "history.csv", "checkpoints/last.pt", "checkpoints/best.pt",
                 "figures/reconstructions.png", "figures/samples.png"):
        assert (run / name).is_file(), name
    out = capsys.readouterr().out
    assert str(run / "checkpoints" / "last.pt") in out and "history.csv" in out


def test_beta_vae_on_cat_faces_runs_at_64px(real_data, tmp_path):
    code = main(["train", "betavae_cats", "--out", str(tmp_path), "--set", "data.limit=128",
                 "--set", "data.val_limit=64", "--set", "train.epochs=1", "--set", "train.progress=false",
                 "--set", "train.batch_size=32"])
    assert code == 0
    losses = _val_losses(tmp_path / "betavae_cats_b10")
    assert len(losses) == 1 and losses[0] > 0
