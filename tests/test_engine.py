"""The training engine: exact resume, history bookkeeping, checkpoints, interrupts, NaN guard."""

from __future__ import annotations

import csv
import os
import signal
import threading

import pytest
import torch

from genlab import checkpoint
from genlab.errors import NonFiniteLoss, TrainingInterrupted
from genlab.train import train
from helpers import tiny_config

STEPS = 3 * (96 // 16)  # epochs x batches per epoch (drop_last)


def _rows(run_dir):
    with open(run_dir / "history.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def _weights(run_dir):
    return checkpoint.load(run_dir / "checkpoints" / "last.pt")["model"]


FAMILIES = {
    "vae": {"model": {"name": "vae"}, "objective": {"noise_std": 0.2}},  # noise and sampling use the RNG
    "ae": {"model": {"name": "ae"}, "objective": {"noise_std": 0.2}},
    "cgan": {"model": {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4},
             "objective": {"kind": "adversarial", "real_target": 0.9}, "optim": {"lr_g": 1e-3, "lr_d": 2e-3}},
}


@pytest.mark.parametrize("stop_at", [1, 4, 6, 11])  # mid-epoch, at a periodic save, at an epoch end, late
@pytest.mark.parametrize("model", sorted(FAMILIES))
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, stop_at, model):
    extra = FAMILIES[model]
    full = train(tiny_config(name="full", **extra), out=tmp_path)
    part = train(tiny_config(name="part", **extra), out=tmp_path, stop_after_steps=stop_at)
    assert part.result.progress.step == stop_at
    resumed = train(None, resume=tmp_path / "part")
    assert resumed.result.progress.step == full.result.progress.step == STEPS
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert _rows(tmp_path / "full") == _rows(tmp_path / "part")


def test_history_has_every_step_once_and_epoch_rows(tmp_path):
    train(tiny_config(), out=tmp_path, stop_after_steps=5)
    train(None, resume=tmp_path / "tiny")
    rows = _rows(tmp_path / "tiny")
    steps = [int(r["step"]) for r in rows if r["scope"] == "step"]
    assert steps == list(range(1, STEPS + 1))
    epochs = [(r["split"], int(r["epoch"])) for r in rows if r["scope"] == "epoch"]
    assert epochs == [(s, e) for e in range(3) for s in ("train", "val")]
    assert {"loss", "recon", "kl"} <= set(rows[0])
    assert all(float(r["kl"]) >= 0 for r in rows)


def test_best_checkpoint_tracks_lowest_validation_loss(tmp_path):
    out = train(tiny_config(), out=tmp_path)
    rows = [r for r in _rows(tmp_path / "tiny") if r["scope"] == "epoch" and r["split"] == "val"]
    losses = [float(r["loss"]) for r in rows]
    best = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "best.pt")
    assert best["progress"]["best_epoch"] == losses.index(min(losses)) == out.result.progress.best_epoch


def test_resume_a_finished_run_with_more_epochs_continues(tmp_path):
    train(tiny_config(), out=tmp_path)
    longer = tiny_config(train={"epochs": 4})
    out = train(longer, resume=tmp_path / "tiny")
    assert out.result.progress.step == 4 * 6
    assert [int(r["step"]) for r in _rows(tmp_path / "tiny") if r["scope"] == "step"] == list(range(1, 25))


def test_sigterm_saves_a_checkpoint_and_resumes(tmp_path):
    cfg = tiny_config(train={"epochs": 40, "checkpoint_every_steps": 10_000})
    timer = threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGTERM))
    timer.start()
    with pytest.raises(TrainingInterrupted) as info:
        train(cfg, out=tmp_path)
    timer.cancel()
    assert info.value.exit_code == 143
    saved = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")["progress"]["step"]
    assert 0 < saved < 40 * 6
    steps = [int(r["step"]) for r in _rows(tmp_path / "tiny") if r["scope"] == "step"]
    assert steps == list(range(1, saved + 1))
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers restored


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from genlab.objectives.reconstruction import Reconstruction

    original = Reconstruction._terms

    def poisoned(self, batch, step, generator):
        terms = original(self, batch, step, generator)
        if step == 9 and generator is None:
            terms["kl"] = terms["kl"] * float("nan")
        return terms

    monkeypatch.setattr(Reconstruction, "_terms", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"'kl'.*step 9.*last good checkpoint.*step 8"):
        train(tiny_config(), out=tmp_path)
    state = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")
    assert state["progress"]["step"] == 8
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


GAN = {"model": {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4},
       "objective": {"kind": "adversarial", "proxy_samples": 24}}


def test_gan_best_checkpoint_by_proxy_score_every_n_steps(tmp_path):
    cfg = tiny_config(**GAN, train={"eval_every_steps": 2})
    out = train(cfg, out=tmp_path)
    rows = _rows(tmp_path / "tiny")
    evals = [r for r in rows if r["split"] == "val"]
    assert [int(r["step"]) for r in evals] == [2, 4, 6, 8, 10, 12, 14, 16, 18]  # every 2 steps + epoch ends
    scores = [float(r["fd_randconv"]) for r in evals]
    best = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "best.pt")["progress"]
    assert out.result.best_metric == "fd_randconv"
    assert best["best_value"] == pytest.approx(min(scores), rel=1e-4)
    assert best["best_step"] == int(evals[scores.index(min(scores))]["step"])


def test_best_metric_must_exist(tmp_path):
    from genlab.errors import GenlabError

    with pytest.raises(GenlabError, match="best_metric 'nope'.*choose one of"):
        train(tiny_config(train={"best_metric": "nope"}), out=tmp_path)


def test_collapse_warning_can_stop_the_run(tmp_path, caplog):
    cfg = tiny_config(**{**GAN, "objective": {**GAN["objective"], "g_loss_ceiling": 1e-6, "collapse_check_every": 1,
                                              "collapse_patience": 3, "stop_on_collapse": True}})
    out = train(cfg, out=tmp_path)
    assert out.result.progress.step == 3
    assert "possible GAN failure at step 3" in out.result.stopped_early
    assert any("possible GAN failure" in r.message for r in caplog.records)
    assert checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")["progress"]["step"] == 3


def test_collapse_warning_without_stop_keeps_training(tmp_path, caplog):
    cfg = tiny_config(**{**GAN, "objective": {**GAN["objective"], "g_loss_ceiling": 1e-6, "collapse_check_every": 1,
                                              "collapse_patience": 3}})
    out = train(cfg, out=tmp_path)
    assert out.result.progress.step == STEPS and out.result.stopped_early is None
    assert sum("possible GAN failure" in r.message for r in caplog.records) >= 1


def test_epoch_sample_grids_use_fixed_noise(tmp_path):
    from PIL import Image

    train(tiny_config(train={"epoch_samples": True, "figures": True}), out=tmp_path)
    grids = sorted((tmp_path / "tiny" / "figures" / "epochs").glob("samples_*.png"))
    assert [g.name for g in grids] == ["samples_001.png", "samples_002.png", "samples_003.png"]
    assert Image.open(grids[0]).size == Image.open(grids[-1]).size
    assert (tmp_path / "tiny" / "figures" / "reconstructions.png").is_file()
