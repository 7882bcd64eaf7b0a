"""Run folders written by genlab 0.1 (tests/fixtures/runs_v0_1, made with that version before the registries
change) still load, evaluate to the numbers that version stored, resume, export, draw and report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from genlab import checkpoint
from genlab.evaluate import EvalSettings, evaluate_run
from genlab.export import export_run
from genlab.figures import render
from genlab.history import read_history
from genlab.reporting import build_report
from genlab.run import load_run, resume_config, summary_of
from genlab.training import train

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v0_1"
RUNS = ("vae", "dae", "cgan")


@pytest.fixture
def old(tmp_path):
    """A copy of the three old run folders (each test may change its copy)."""
    for name in RUNS:
        shutil.copytree(FIXTURES / name, tmp_path / name)
    return {name: tmp_path / name for name in RUNS}


def test_the_fixtures_are_from_the_previous_version():
    for name in RUNS:
        wrapper = torch.load(FIXTURES / name / "checkpoints" / "last.pt", weights_only=True)
        assert wrapper["genlab_version"] == "0.1.0"
        state = checkpoint.load(FIXTURES / name / "checkpoints" / "last.pt")
        assert "hooks" not in state and "best_value" in state["progress"]  # the old layout


@pytest.mark.parametrize("name", RUNS)
def test_an_old_run_loads_with_its_capabilities(old, name):
    loaded = load_run(old[name], "best")
    assert loaded.step > 0 and loaded.cfg.name == name
    assert loaded.caps.family == ("gan" if name == "cgan" else "autoencoder")
    assert loaded.caps.variational == (name == "vae") and loaded.caps.conditional == (name == "cgan")


@pytest.mark.parametrize(("name", "entry", "key"), [("vae", "reconstruction_heldout", "psnr_mean"),
                                                     ("vae", "latent_usage", "kl_total"),
                                                     ("dae", "reconstruction_heldout", "ssim_mean"),
                                                     ("cgan", "discriminator_real_vs_fake", "d_accuracy")])
def test_an_old_run_evaluates_to_the_score_that_version_stored(old, name, entry, key):
    stored = json.loads((old[name] / "metrics.json").read_text())[entry]
    metric = {"reconstruction_heldout": "reconstruction", "latent_usage": "latent_usage",
              "discriminator_real_vs_fake": "discriminator"}[entry]
    res = evaluate_run(old[name], [metric], which=stored["checkpoint"], settings=EvalSettings(seed=stored["seed"]))
    # genlab 0.1 scored D in eval mode only; that figure is now the _eval_mode entry beside the default one
    now = entry + "_eval_mode" if metric == "discriminator" else entry
    # 0.1 computed PSNR/SSIM in float64, this version in float32 (2e-7 apart: bench/psnr_ssim.py); the bound is
    # the metrics' own verify tolerance, 1e-5 relative to max(1, |value|)
    assert res[now][key] == pytest.approx(stored[key], rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("name", RUNS)
def test_an_old_run_resumes_with_more_epochs_and_keeps_its_best_and_history(old, name):
    before = checkpoint.load(old[name] / "checkpoints" / "last.pt")
    rows_before = read_history(old[name] / "history.csv")
    cfg = resume_config(old[name], None, ["train.epochs=3", "train.progress=false"])
    out = train(cfg, resume=old[name])
    p = out.result.progress
    assert p.step == before["progress"]["step"] * 3 // 2 and p.epoch == 3  # one more epoch of the same size
    state = checkpoint.load(old[name] / "checkpoints" / "last.pt")
    assert "hooks" in state and state["hooks"]["best"]["value"] <= before["progress"]["best_value"]
    rows = read_history(old[name] / "history.csv")
    assert rows[:len(rows_before)] == rows_before  # nothing of the old history lost or rewritten
    steps = [int(r["step"]) for r in rows if r["scope"] == "step"]
    assert steps == list(range(1, p.step + 1))
    assert summary_of(out.run)["status"] == "finished"


@pytest.mark.parametrize("name", RUNS)
def test_an_old_run_exports_and_draws(old, name):
    written = export_run(old[name], ["torchscript", "safetensors"])
    manifest = json.loads(written[-1].read_text())
    assert manifest["model"]["family"] == {"vae": "vae", "dae": "autoencoder", "cgan": "gan"}[name]
    loaded = load_run(old[name], "best")
    paths = render(loaded.model, loaded.data, loaded.cfg, loaded.run, caps=loaded.caps)
    assert all(p.is_file() for p in paths) and any(p.name == "samples.png" for p in paths)


def test_old_runs_report_their_counts_and_warnings_from_train_log(old):
    summary = summary_of(load_run(old["vae"]).run)
    assert summary["images"] == {"train": 96, "validation": 24}
    assert [w["kind"] for w in summary["warnings"]] == ["posterior_collapse"]
    page = build_report([old["vae"], old["cgan"]])
    assert "96 train / 24 validation" in page


def test_an_old_gan_run_keeps_the_warnings_its_log_recorded_up_to_the_checkpoint(old):
    from genlab.engine.state import saved_warnings

    state = checkpoint.load(old["cgan"] / "checkpoints" / "last.pt")
    step = state["progress"]["step"]
    log = old["cgan"] / "train.log"
    log.write_text(log.read_text() + "".join(
        f"2026-01-01 00:00:00,000 WARNING genlab.engine: possible GAN failure at step {s}: D loss 0.001\n"
        for s in (step - 2, step + 5)))  # the second was logged after the checkpoint: its steps rerun on resume
    warnings = saved_warnings(state, log)
    assert [(w["kind"], w["step"]) for w in warnings] == [("gan_collapse", step - 2)]
