"""genlab eval: scores recomputed from the run folder alone, with their protocol, on tiny real runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genlab.cli import main
from genlab.errors import GenlabError
from genlab.evaluate import EvalSettings, evaluate_run
from genlab.training import train
from helpers import one_thread, tiny_config


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("eval-cache")


@pytest.fixture(autouse=True)
def private_cache(shared_cache, monkeypatch) -> Path:
    """One cache for this module, so the digits classifier is trained once (no weights files in it)."""
    monkeypatch.setenv("GENLAB_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("eval_runs")
    with one_thread():
        train(tiny_config(name="vae", data={"limit": 200, "val_limit": 100}), out=out)
        train(tiny_config(name="cgan", model={"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8,
                                              "label_dim": 4},
                          objective={"kind": "adversarial"}, data={"limit": 200, "val_limit": 150}), out=out)
    return {"vae": out / "vae", "cgan": out / "cgan"}


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def test_training_ends_with_the_cheap_scores(runs):
    vae, cgan = _metrics(runs["vae"]), _metrics(runs["cgan"])
    assert vae["reconstruction_heldout"]["checkpoint"] == "last" and "psnr_mean" in vae["reconstruction_heldout"]
    assert vae["latent_usage"]["checkpoint"] == "last" and vae["latent_usage"]["latent_dim"] == 3
    assert {"discriminator_real_vs_fake", "fd_randconv"} <= set(cgan)


def test_reconstruction_entry_carries_its_protocol(runs):
    res = evaluate_run(runs["vae"], ["reconstruction"], settings=EvalSettings(seed=3))
    entry = _metrics(runs["vae"])["reconstruction_heldout"]
    assert entry == {**res["reconstruction_heldout"], "checkpoint": "best", "step": entry["step"], "seed": 3,
                     "genlab_version": entry["genlab_version"]}
    assert entry["n_images"] == 100 and 0 < entry["ssim_mean"] < 1 and entry["psnr_mean"] > 5
    assert "[0, 1]" in entry["data_range"] and entry["step"] > 0


def test_latent_usage_matches_the_last_epochs_history_and_refuses_gans(runs):
    """Recomputed from the last checkpoint it must equal what training logged at that epoch end."""
    import csv

    res = evaluate_run(runs["vae"], ["latent_usage"], which="last", settings=EvalSettings(batch_size=7))
    entry = res["latent_usage"]
    with (runs["vae"] / "history.csv").open() as f:
        last = [r for r in csv.DictReader(f) if r["scope"] == "epoch" and r["split"] == "val"][-1]
    assert entry["active_units"] == int(float(last["active_units"]))
    assert entry["kl_dims_max"] == pytest.approx(float(last["kl_dims_max"]), rel=1e-4)
    assert entry["latent_dim"] == 3 and entry["n_images"] == 100 and "Burda" in entry["protocol"]
    with pytest.raises(GenlabError, match="latent_usage.*not a VAE"):
        evaluate_run(runs["cgan"], ["latent_usage"])


def test_eval_is_reproducible_and_independent_of_batch_size(runs):
    a = evaluate_run(runs["cgan"], ["fd_randconv"], settings=EvalSettings(samples=80, batch_size=7))
    b = evaluate_run(runs["cgan"], ["fd_randconv"], settings=EvalSettings(samples=80, batch_size=80))
    assert a["fd_randconv"]["fd_randconv"] == pytest.approx(b["fd_randconv"]["fd_randconv"], rel=1e-6)
    entry = a["fd_randconv"]
    assert entry["n_real"] == entry["n_fake"] == 80 and "seed 0" in entry["reference_split"]
    assert entry["extractor"]["name"] == "fd_randconv" and 0 <= entry["precision"] <= 1


def test_external_images_are_scored_after_the_training_resize(runs, tmp_path):
    folder = tmp_path / "outside"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (40, 30), dtype=np.uint8)).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"<html>not an image</html>")
    res = evaluate_run(runs["vae"], ["reconstruction"], settings=EvalSettings(images=folder))
    ext = res["reconstruction_external"]
    assert ext["n_images"] == 3 and ext["n_skipped"] == 1 and ext["images"] == str(folder)


def test_named_metric_that_does_not_apply_is_an_error_naming_why(runs):
    with pytest.raises(GenlabError, match="not class-conditional"):
        evaluate_run(runs["vae"], ["class_accuracy"])
    with pytest.raises(GenlabError, match="no encoder"):
        evaluate_run(runs["cgan"], ["reconstruction"])
    with pytest.raises(GenlabError, match="unknown metric.*valid: .*reconstruction"):
        evaluate_run(runs["vae"], ["psnr"])


def test_too_few_held_out_images_name_the_minimum(runs):
    with pytest.raises(GenlabError, match="at least 65 real and 65 generated"):
        evaluate_run(runs["cgan"], ["fd_randconv"], settings=EvalSettings(samples=40))


def test_missing_fid_weights_error_when_asked_and_a_skip_by_default(runs, genlab_log):
    before = (runs["cgan"] / "metrics.json").read_bytes()
    with pytest.raises(GenlabError, match="genlab weights fetch inception"):
        evaluate_run(runs["cgan"], ["fid"])
    assert (runs["cgan"] / "metrics.json").read_bytes() == before  # nothing written on failure
    res = evaluate_run(runs["cgan"], None, settings=EvalSettings(samples=80))
    assert "fid_inception" not in res and "discriminator_real_vs_fake" in res
    assert any("fid skipped" in r.getMessage() for r in genlab_log.records)


def test_cli_eval_and_compare(runs, capsys, genlab_log):
    assert main(["eval", str(runs["vae"]), "--metrics", "reconstruction", "--seed", "1"]) == 0
    assert "metrics.json" in capsys.readouterr().out
    assert any(r.getMessage().startswith("reconstruction_heldout: psnr_mean") for r in genlab_log.records)
    assert main(["compare", str(runs["vae"]), str(runs["cgan"]), "--format", "markdown"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0] == "| metric | vae | cgan |"
    assert "reconstruction_heldout / psnr ±" not in table  # the std goes in the cell, not the name
    assert "| reconstruction_heldout / checkpoint | best @ step" in table
    row = next(line for line in table.splitlines() if line.startswith("| reconstruction_heldout / psnr |"))
    assert "±" in row and row.rstrip().endswith("— |")  # the GAN has no reconstruction score
    assert main(["eval", str(runs["vae"]), "--samples", "1"]) == 2
    assert "--samples must be at least 2" in capsys.readouterr().err


def test_domain_classifier_distance_and_class_accuracy(runs):
    res = evaluate_run(runs["cgan"], ["fd_classifier", "class_accuracy"],
                       settings=EvalSettings(samples=140, class_samples=20))
    fd = res["fd_digits_classifier"]
    assert fd["extractor"]["name"] == "FD-digits-classifier" and fd["fd"] > 0
    assert 0.5 < fd["classifier_test_accuracy"] <= 1.0 and len(fd["extractor"]["weights_sha256"]) == 64
    acc = res["class_accuracy"]
    assert set(acc["class_accuracy"]) == {str(i) for i in range(10)} and acc["n_per_class"] == 20
    assert acc["class_accuracy_mean"] == pytest.approx(np.mean(list(acc["class_accuracy"].values())))
    stored = _metrics(runs["cgan"])
    assert stored["fd_digits_classifier"]["fd"] == fd["fd"] and stored["class_accuracy"]["step"] > 0


def test_disentanglement_of_a_shapes_model_through_the_run_folder(tmp_path):
    train(tiny_config(name="shapes", data={"name": "shapes", "image_size": 16, "limit": 64, "val_limit": 32,
                                           "hflip": False}, train={"epochs": 1}), out=tmp_path)
    counts = {"mig": {"n": 300}, "factor_vae": {"n_train": 20, "n_eval": 10, "batch": 8, "n_variance": 200},
              "dci": {"n_train": 60, "n_test": 30}}
    res = evaluate_run(tmp_path / "shapes", ["disentanglement"], settings=EvalSettings(disentanglement=counts))
    assert set(res) == {"mig", "mig_chen", "factor_vae", "dci"}
    assert 0 <= res["mig"]["mig"] <= 1 and res["mig"]["n_samples"] == 300
    assert 0 <= res["mig_chen"]["mig_chen"] <= 1 and res["mig_chen"]["n_samples"] == 300  # MIG's count
    assert 0 <= res["dci"]["dci_disentanglement"] <= 1 and res["dci"]["n_train"] == 60
    assert "16x16" in res["factor_vae"]["resize"]
    assert _metrics(tmp_path / "shapes")["factor_vae"]["checkpoint"] == "best"
    with pytest.raises(GenlabError, match="disentanglement scores .* failed"):
        evaluate_run(tmp_path / "shapes", ["disentanglement"],
                     settings=EvalSettings(disentanglement={"mig": {"n": 0}}))
