"""Figures: every figure of a run is drawn from a tiny model, non-empty, of a sensible size."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.cli import main
from genlab.figures import render
from genlab.run import load_run
from genlab.training import train
from genlab.viz.curves import epoch_table
from genlab.viz.latent import dimension_ranking, slerp, traversal_values
from helpers import tiny_config

VAE_FIGURES = {"samples.png", "reconstructions.png", "traversal.png", "traversal_prior.png", "interpolation.png",
               "tsne.png", "kl_per_dim.png", "loss_curves.png", "loss_table.csv", "loss_table.md"}


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("figs")
    train(tiny_config(train={"figures": True}), out=out)
    return out / "tiny"


def _png_ok(path, min_side=100):
    img = Image.open(path)
    img.load()
    arr = np.asarray(img.convert("L"))
    assert min(img.size) >= min_side, (path.name, img.size)
    assert arr.std() > 5, f"{path.name} is blank"  # something was drawn
    return img.size


def test_training_draws_every_vae_figure(vae_run):
    names = {p.name for p in (vae_run / "figures").iterdir() if p.is_file()}
    assert names == VAE_FIGURES
    for name in VAE_FIGURES:
        if name.endswith(".png"):
            _png_ok(vae_run / "figures" / name)


def test_traversal_has_one_row_per_dimension_and_seven_columns(vae_run, monkeypatch):
    from genlab.viz import latent

    drawn = []
    original = latent.save_cells

    def recording(cells, path, title, **kw):
        drawn.append((path.name, cells, kw))
        return original(cells, path, title, **kw)

    monkeypatch.setattr(latent, "save_cells", recording)
    loaded = load_run(vae_run, "last")
    render(loaded.model, loaded.data, loaded.cfg, loaded.run, ("traversal",), caps=loaded.caps)
    assert [name for name, _, _ in drawn] == ["traversal.png", "traversal_prior.png"]
    for _, cells, kw in drawn:
        assert cells.shape[:2] == (3, 7)  # latent_dim 3 -> 3 rows; values -3..3 in 7 steps -> 7 columns
        assert kw["col_labels"] == ["-3.0", "-2.0", "-1.0", "+0.0", "+1.0", "+2.0", "+3.0"]
        assert {label.split("\n")[0] for label in kw["row_labels"]} == {"z[0]", "z[1]", "z[2]"}  # each named
        # each row is a real sweep: the decoded images change between the two ends
        assert all((row[0] - row[-1]).abs().max() > 1e-4 for row in cells)
    w, h = Image.open(vae_run / "figures" / "traversal.png").size
    assert w > 1.7 * h  # seven columns of square-ish cells for three rows


def test_figures_command_redraws_from_the_run_folder(vae_run, capsys):
    target = vae_run / "figures" / "tsne.png"
    target.unlink()
    assert main(["figures", str(vae_run), "--only", "tsne", "--checkpoint", "last"]) == 0
    assert str(target) in capsys.readouterr().out
    _png_ok(target)


def test_figures_command_errors(vae_run, tmp_path, capsys):
    assert main(["figures", str(tmp_path / "nope")]) == 2
    assert "does not exist" in " ".join(capsys.readouterr().err.split())
    assert main(["figures", str(vae_run), "--only", "tnse"]) == 2
    assert "unknown figure" in " ".join(capsys.readouterr().err.split())


def test_gan_run_draws_class_rows_and_gan_curves(tmp_path):
    cfg = tiny_config(model={"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4},
                      objective={"kind": "adversarial"}, train={"figures": True})
    train(cfg, out=tmp_path)
    figs = tmp_path / "tiny" / "figures"
    assert {p.name for p in figs.iterdir() if p.is_file()} == {"samples.png", "loss_curves.png",
                                                                "loss_table.csv", "loss_table.md"}
    w, h = _png_ok(figs / "samples.png")
    assert h > w / 2  # ten class rows
    header = (figs / "loss_table.csv").read_text().splitlines()[0].split(",")
    assert {"train_loss_d", "train_loss_g", "train_d_real", "train_d_fake", "val_fd_randconv"} <= set(header)


def test_load_run_rebuilds_the_trained_model(vae_run):
    loaded = load_run(vae_run, "last")
    x = torch.zeros(2, 1, 12, 12)
    assert loaded.model.reconstruct(x).shape == x.shape
    assert loaded.step == 18 and loaded.cfg.model.name == "vae"
    assert render(loaded.model, loaded.data, loaded.cfg, loaded.run, only=("samples",))[0].name == "samples.png"


def test_epoch_table_matches_history(vae_run, tmp_path):
    csv_path, md_path = epoch_table(vae_run / "history.csv", tmp_path / "t.csv", tmp_path / "t.md")
    rows = list(csv.DictReader(csv_path.open()))
    with (vae_run / "history.csv").open() as f:
        val = [r for r in csv.DictReader(f) if r["scope"] == "epoch" and r["split"] == "val"]
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert [r["val_loss"] for r in rows] == [r["loss"] for r in val]
    assert md_path.read_text().splitlines()[0].startswith("| epoch | step | train_loss")


def test_slerp_endpoints_and_norm():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    mid = slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
    torch.testing.assert_close(mid.norm(), torch.tensor(1.0))  # stays on the sphere, unlike the linear path


def test_dimension_ranking_by_mean_kl():
    means = torch.zeros(10, 3)
    means[:, 1] = 2.0  # KL 2 per image in dim 1, 0 elsewhere
    logvars = torch.zeros(10, 3)
    logvars[:, 2] = -1.0  # KL 0.5 * (e^-1 + 1 - 1) ~ 0.18
    order, scores = dimension_ranking(means, logvars)
    assert order == [1, 2, 0] and scores[0] == pytest.approx(2.0)


def test_traversal_values_span_minus_three_to_three():
    assert traversal_values() == [-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0]


def test_loss_curve_axes_keep_the_whole_run_readable():
    """A term spanning decades gets a log axis; a term that crosses zero with a few huge early values gets a
    range that leaves them off the panel; an ordinary term keeps matplotlib's own."""
    from genlab.viz.curves import y_axis

    assert y_axis([230_000.0, 40_000.0, 9_000.0, *[2_000.0 + i for i in range(50)]]) == ("log", None)
    scale, limits = y_axis([5_000.0, -3.0, *[float(i % 7) - 3 for i in range(100)]])
    assert scale == "linear" and limits is not None and limits[1] < 10 and limits[0] > -10
    assert y_axis([1.0, 0.9, 0.8, 0.85, 0.7]) == ("linear", None)
    assert y_axis([float("nan"), 1.0]) == ("linear", None)
