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


def test_cgan_on_mnist_writes_discriminator_metrics_and_class_rows(real_data, tmp_path):
    import json

    from PIL import Image

    code = main(["train", "cgan_mnist", "--out", str(tmp_path), "--set", "train.batch_size=32",
                 "--set", "train.max_steps=200", "--set", "data.limit=6400", "--set", "data.val_limit=320",
                 "--set", "train.progress=false", "--set", "objective.proxy_samples=320"])
    assert code == 0
    run = tmp_path / "cgan_mnist"
    d = json.loads((run / "metrics.json").read_text())["discriminator_real_vs_fake"]
    assert d["n_real"] == d["n_fake"] == 320 and d["tp"] + d["fn"] == 320 and d["tn"] + d["fp"] == 320
    assert d["d_accuracy"] == (d["tp"] + d["tn"]) / 640
    assert d["positive_class"] == "real" and d["threshold"] == 0.5
    with open(run / "history.csv") as f:
        header = f.readline().strip().split(",")
    assert {"loss_d", "loss_d_real", "loss_d_fake", "loss_g", "d_real", "d_fake"} <= set(header)
    w, h = Image.open(run / "figures" / "samples.png").size
    assert h > 2 * w / 3  # ten class rows of ten samples: roughly square, not a single strip
    assert list((run / "figures" / "epochs").glob("samples_*.png"))


def test_vae_on_binarised_mnist_learns_and_scores_a_likelihood_below_its_elbo(real_data, tmp_path):
    import json

    code = main(["train", "vae_mnist_binarized", "--out", str(tmp_path), "--set", "data.limit=6000",
                 "--set", "train.epochs=2", "--set", "objective.kl_warmup_epochs=0.5", "--set", "train.progress=false",
                 "--set", "train.figures=false"])
    assert code == 0
    run = tmp_path / "vae_mnist_binarized"
    losses = _val_losses(run)
    assert losses[-1] < losses[0] < 250, losses  # a fair coin per pixel would be 544 nats
    assert main(["eval", str(run), "--metrics", "nll", "--nll-samples", "50", "--nll-images", "200"]) == 0
    nll = json.loads((run / "metrics.json").read_text())["nll"]
    assert nll["n_images"] == 200 and nll["importance_samples"] == 50 and "dynamic" in nll["binarisation"]
    assert 50 < nll["nll_nats"] < nll["neg_elbo_nats"]


@pytest.mark.parametrize("config, terms", [
    ("wgangp_anime64", {"critic_real", "critic_fake", "wasserstein_estimate", "gradient_penalty"}),
    ("sngan_anime64_diffaugment", {"critic_real", "critic_fake"}),
    ("sngan_mnist", {"critic_real", "critic_fake"}),
])
def test_the_small_data_gan_configs_train_score_and_resume(real_data, tmp_path, config, terms):
    """Each config's game end to end on a slice of its data: the critic's terms logged, D scored by the rule
    of its loss, then the run continued from its last checkpoint with the steps counted on."""
    import json

    small = ["--set", "data.limit=96", "--set", "data.val_limit=32", "--set", "train.batch_size=16",
             "--set", "train.progress=false", "--set", "objective.proxy_samples=32"]
    assert main(["train", config, "--out", str(tmp_path), "--set", "train.max_steps=6", *small]) == 0
    run = tmp_path / config
    with open(run / "history.csv") as f:
        header = set(f.readline().strip().split(","))
    assert terms | {"loss_d", "loss_g"} <= header and "d_real" not in header
    d = json.loads((run / "metrics.json").read_text())["discriminator_real_vs_fake"]
    assert d["tp"] + d["fn"] == 32 and "no BatchNorm" in d["model_mode"]
    assert d["threshold"] == (0.5 if "sngan" in config else "midpoint of the mean critic scores on real and "
                                                             "generated")
    assert (run / "figures" / "samples.png").is_file()
    assert main(["train", "--resume", str(run), "--set", "train.max_steps=8", "--set", "train.progress=false"]) == 0
    with open(run / "history.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f) if r["scope"] == "step"]
    assert steps[-1] == 8 and steps == sorted(set(steps))  # each step logged once, resumed where it stopped
