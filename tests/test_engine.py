"""The training engine: exact resume, history bookkeeping, checkpoints, interrupts, NaN guard."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import signal

import pytest
import torch

from genlab import checkpoint
from genlab.errors import NonFiniteLoss, TrainingInterrupted
from genlab.training import train
from helpers import tiny_config, with_overrides

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


@pytest.mark.parametrize("model,stop_at", [
    ("vae", 1), ("vae", 6), ("vae", 11),  # mid-epoch, at an epoch end, late in a later epoch
    ("ae", 4),  # at a periodic save
    ("cgan", 7),
])
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
    assert best["hooks"]["best"]["epoch"] == losses.index(min(losses)) == out.result.best["epoch"]
    assert best["hooks"]["best"]["value"] == pytest.approx(min(losses), rel=1e-5)


def test_resume_a_finished_run_with_more_epochs_continues(tmp_path):
    train(tiny_config(), out=tmp_path)  # cosine schedule: the learning rate reached 0 at the end
    before = _weights(tmp_path / "tiny")
    longer = tiny_config(train={"epochs": 4})
    out = train(longer, resume=tmp_path / "tiny")
    assert out.result.progress.step == 4 * 6
    assert [int(r["step"]) for r in _rows(tmp_path / "tiny") if r["scope"] == "step"] == list(range(1, 25))
    state = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")
    after = state["model"]
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())
    assert [r["split"] for r in _rows(tmp_path / "tiny") if r["scope"] == "epoch"][-2:] == ["train", "val"]


def test_cosine_schedule_replans_over_a_longer_run():
    from genlab.config import OptimConfig
    from genlab.objectives.optim import build_scheduler

    epochs = {"n": 2}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = build_scheduler(opt, OptimConfig(scheduler="cosine"), lambda: epochs["n"])
    lrs = []
    for _ in range(2):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    epochs["n"] = 4
    opt.step()
    sched.step()
    lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(0.5) and lrs[1] == pytest.approx(0.0)
    assert lrs[2] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 4)))


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_saves_at_the_step_boundary_and_resumes_exactly(tmp_path, monkeypatch, signum, code):
    from genlab.objectives.reconstruction import Reconstruction

    train(tiny_config(name="full"), out=tmp_path)
    original = Reconstruction.train_step

    def signalling(self, batch, step, stepper):
        if step == 6:  # the 7th step: the signal arrives while the step runs
            os.kill(os.getpid(), signum)
        return original(self, batch, step, stepper)

    monkeypatch.setattr(Reconstruction, "train_step", signalling)
    with pytest.raises(TrainingInterrupted) as info:
        train(tiny_config(name="part"), out=tmp_path)
    assert info.value.exit_code == code
    assert checkpoint.load(tmp_path / "part" / "checkpoints" / "last.pt")["progress"]["step"] == 7
    assert signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler)  # handlers restored
    monkeypatch.setattr(Reconstruction, "train_step", original)
    train(None, resume=tmp_path / "part")
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(tmp_path / "full") == _rows(tmp_path / "part")


def test_stop_at_the_last_step_finishes_the_epoch_on_resume(tmp_path):
    full = train(tiny_config(name="full"), out=tmp_path)
    train(tiny_config(name="part"), out=tmp_path, stop_after_steps=STEPS)
    resumed = train(None, resume=tmp_path / "part")
    assert resumed.result.progress.epoch == full.result.progress.epoch == 3
    assert _rows(tmp_path / "full") == _rows(tmp_path / "part")
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_gan_resume_at_an_evaluation_step_is_exact(tmp_path):
    cfg = dict(GAN, train={"eval_every_steps": 2})
    train(tiny_config(name="full", **cfg), out=tmp_path)
    train(tiny_config(name="part", **cfg), out=tmp_path, stop_after_steps=4)
    train(None, resume=tmp_path / "part")
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(tmp_path / "full") == _rows(tmp_path / "part")


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from genlab.objectives.reconstruction import Reconstruction

    original = Reconstruction._terms

    def poisoned(self, batch, step, generator):
        terms = original(self, batch, step, generator)
        if step == 9 and generator is None:
            terms["kl"] = terms["kl"] * float("nan")
        return terms

    monkeypatch.setattr(Reconstruction, "_terms", poisoned)
    with pytest.raises(NonFiniteLoss, match=r"'kl'.*step 10;.*last good checkpoint.*step 8"):
        train(tiny_config(), out=tmp_path)
    state = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")
    assert state["progress"]["step"] == 8
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def _poison_kl_at(monkeypatch, steps: set[int]) -> None:
    from genlab.objectives.reconstruction import Reconstruction

    original = Reconstruction._terms

    def poisoned(self, batch, step, generator):
        terms = original(self, batch, step, generator)
        if step in steps and generator is None:
            terms["kl"] = terms["kl"] * float("nan")
        return terms

    monkeypatch.setattr(Reconstruction, "_terms", poisoned)


def test_skip_policy_drops_the_poisoned_batch_and_counts_it(tmp_path, monkeypatch, genlab_log):
    _poison_kl_at(monkeypatch, {9})
    out = train(tiny_config(train={"on_nonfinite": "skip"}), out=tmp_path)
    state = checkpoint.load(out.run.last)
    assert state["hooks"]["nonfinite"]["skipped"] == 1 and out.result.progress.step == 18
    steps = [int(r["step"]) for r in _rows(tmp_path / "tiny") if r["scope"] == "step"]
    assert 10 not in steps and steps == [s for s in range(1, 19) if s != 10]
    assert any("'kl' is nan at step 10: batch skipped" in r.getMessage() for r in genlab_log.records)
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_skip_policy_stops_past_the_allowed_number_of_skips(tmp_path, monkeypatch):
    _poison_kl_at(monkeypatch, {3, 4, 5})
    with pytest.raises(NonFiniteLoss, match=r"3 batches skipped, more than train.max_skipped_batches=2"):
        train(tiny_config(train={"on_nonfinite": "skip", "max_skipped_batches": 2}), out=tmp_path)


def _poison_gradient_at(monkeypatch, step_to_poison: int) -> None:
    """A finite loss whose gradient is NaN: a backward hook on the first parameter, at one step only."""
    from genlab.objectives.optim import Stepper

    original = Stepper.step

    def step(self, loss, optimizer, terms):
        if self.step_index == step_to_poison:
            first = optimizer.param_groups[0]["params"][0]
            handle = first.register_hook(lambda g: g * float("nan"))
            try:
                return original(self, loss, optimizer, terms)
            finally:
                handle.remove()
        return original(self, loss, optimizer, terms)

    monkeypatch.setattr(Stepper, "step", step)


def test_non_finite_gradient_stops_naming_the_step(tmp_path, monkeypatch):
    _poison_gradient_at(monkeypatch, 6)
    with pytest.raises(NonFiniteLoss, match=r"gradient norm is nan at step 6;.*last good checkpoint.*step 4"):
        train(tiny_config(), out=tmp_path)
    state = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_non_finite_gradient_with_skip_policy_continues_and_counts_it(tmp_path, monkeypatch):
    _poison_gradient_at(monkeypatch, 6)
    out = train(tiny_config(train={"on_nonfinite": "skip"}), out=tmp_path)
    assert checkpoint.load(out.run.last)["hooks"]["nonfinite"]["skipped"] == 1


GAN = {"model": {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4},
       "objective": {"kind": "adversarial", "proxy_samples": 24}}


def test_gan_best_checkpoint_by_proxy_score_every_n_steps(tmp_path):
    cfg = tiny_config(**GAN, train={"eval_every_steps": 2})
    out = train(cfg, out=tmp_path)
    rows = _rows(tmp_path / "tiny")
    evals = [r for r in rows if r["split"] == "val"]
    assert [int(r["step"]) for r in evals] == [2, 4, 6, 8, 10, 12, 14, 16, 18]  # every 2 steps + epoch ends
    scores = [float(r["fd_randconv"]) for r in evals]
    best = checkpoint.load(tmp_path / "tiny" / "checkpoints" / "best.pt")["hooks"]["best"]
    assert out.result.best_metric == "fd_randconv"
    assert best["value"] == pytest.approx(min(scores), rel=1e-4)
    assert best["step"] == int(evals[scores.index(min(scores))]["step"])


def test_best_metric_must_exist(tmp_path):
    from genlab.errors import GenlabError

    with pytest.raises(GenlabError, match="best_metric 'nope'.*choose one of"):
        train(tiny_config(train={"best_metric": "nope"}), out=tmp_path)


def test_collapse_warning_can_stop_the_run(tmp_path, genlab_log):
    cfg = tiny_config(**{**GAN, "objective": {**GAN["objective"], "g_loss_ceiling": 1e-6, "collapse_check_every": 1,
                                              "collapse_patience": 3, "stop_on_collapse": True}})
    out = train(cfg, out=tmp_path)
    assert out.result.progress.step == 3
    assert "possible GAN failure at step 3" in out.result.stopped_early
    assert any("possible GAN failure" in r.message for r in genlab_log.records)
    assert checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")["progress"]["step"] == 3


def test_collapse_warning_without_stop_keeps_training(tmp_path, genlab_log):
    cfg = tiny_config(**{**GAN, "objective": {**GAN["objective"], "g_loss_ceiling": 1e-6, "collapse_check_every": 1,
                                              "collapse_patience": 3}})
    out = train(cfg, out=tmp_path)
    assert out.result.progress.step == STEPS and out.result.stopped_early is None
    assert sum("possible GAN failure" in r.message for r in genlab_log.records) >= 1


def test_epoch_sample_grids_use_fixed_noise(tmp_path, monkeypatch):
    from genlab.viz import figures as figures_module

    drawn = []
    original = figures_module.sample_figure

    def recording(model, normalizer, path, n=32, seed=0, **kw):
        gen = torch.Generator().manual_seed(seed)
        if path.parent.name == "epochs":  # not the end-of-training samples.png
            drawn.append(torch.randn(n, model.latent_dim, generator=gen))
        return original(model, normalizer, path, n=n, seed=seed, **kw)

    monkeypatch.setattr(figures_module, "sample_figure", recording)
    train(tiny_config(train={"epoch_samples": True, "figures": True}), out=tmp_path)
    grids = sorted((tmp_path / "tiny" / "figures" / "epochs").glob("samples_*.png"))
    assert [g.name for g in grids] == ["samples_001.png", "samples_002.png", "samples_003.png"]
    assert len(drawn) == 3 and all(torch.equal(drawn[0], z) for z in drawn)  # one per epoch
    assert (tmp_path / "tiny" / "figures" / "reconstructions.png").is_file()


@pytest.mark.parametrize("fp32_norms", [False, True])
def test_gan_trains_and_scores_under_bf16_autocast(tmp_path, fp32_norms):
    """The GPU default is bf16 autocast; on CPU the same path runs with train.precision: bf16."""
    out = train(tiny_config(**GAN, train={"precision": "bf16", "epochs": 1, "fp32_norms": fp32_norms}),
                out=tmp_path)
    assert math.isfinite(out.result.last_val["fd_randconv"]) and out.result.progress.step == 6


def test_resume_removes_temporary_files_left_by_a_killed_write(tmp_path):
    train(tiny_config(), out=tmp_path, stop_after_steps=5)
    stale = tmp_path / "tiny" / "checkpoints" / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    train(None, resume=tmp_path / "tiny")
    assert not stale.exists()
    assert checkpoint.load(tmp_path / "tiny" / "checkpoints" / "last.pt")["progress"]["step"] == STEPS


def test_channels_last_trains_the_same_numbers(tmp_path):
    from genlab.engine.loaders import uses_channels_last

    runs = {}
    for layout in (False, True):
        # fp32: the layouts' kernels round differently, which bf16's 8-bit mantissa would show
        cfg = tiny_config(name=f"cl_{layout}", train={"channels_last": layout, "epochs": 1, "precision": "fp32"})
        out = train(cfg, out=tmp_path)
        runs[layout] = [float(r["loss"]) for r in _rows(out.run.path) if r["scope"] == "step"]
    assert runs[False] == pytest.approx(runs[True], rel=1e-4)
    assert uses_channels_last(tiny_config(data={"image_size": 64})) and uses_channels_last(tiny_config())
    assert not uses_channels_last(tiny_config(data={"image_size": 64}, train={"channels_last": False}))


# ---------------------------------------------------------------- latent usage (VAEs)

# A VAE small enough for seconds on a CPU that still learns to use its 4 latent dimensions in one epoch.
LATENT = {"data": {"limit": 512, "val_limit": 64, "hflip": False}, "optim": {"lr": 0.01, "scheduler": "none"},
          "train": {"batch_size": 16, "epochs": 3, "checkpoint_every_steps": 1000}}


def _latent_config(name: str, model: dict | None = None, objective: dict | None = None, data: dict | None = None):
    return tiny_config(name=name, model={"hidden_dims": [8, 16], "latent_dim": 4, **(model or {})},
                       objective=objective or {}, data={**LATENT["data"], **(data or {})},
                       optim=LATENT["optim"], train=LATENT["train"])


class _Bar:
    """Stands in for the tqdm bar and keeps every postfix it was given."""

    def __init__(self, *args, **kwargs):
        self.postfixes: list[dict] = []

    def set_postfix(self, postfix, refresh=True):
        self.postfixes.append(dict(postfix))

    def update(self, n=1):
        pass

    def set_description(self, *args, **kwargs):
        pass

    def close(self):
        pass


def _val_epoch_rows(run_dir):
    return [r for r in _rows(run_dir) if r["scope"] == "epoch" and r["split"] == "val"]


def test_a_vae_whose_kl_overwhelms_the_likelihood_gets_the_collapse_warning(tmp_path, monkeypatch, genlab_log):
    from genlab.engine.hooks import progress

    bar = _Bar()
    monkeypatch.setattr(progress.ProgressBar, "_open", lambda self, loop: setattr(self, "bar", bar) or bar)
    # the β-VAE experiment's pixel-mean reduction with a huge beta: the KL term wins and the posterior collapses
    cfg = _latent_config("collapse", objective={"beta": 1000.0, "reduction": "mean"})
    out = train(with_overrides(cfg, "train.progress=true"), out=tmp_path)  # the bar above stands in for tqdm
    collapse = [r for r in genlab_log.records if r.getMessage().startswith("posterior collapse")]
    assert len(collapse) == 1 and collapse[0].levelname == "WARNING"  # logged once, not at every epoch end
    message = collapse[0].getMessage()
    assert re.match(r"posterior collapse after epoch 2 \(2 epoch ends in a row\): only [01] of 4 latent", message)
    assert "KL " in message and "objective.reduction: sum" in message and "objective.kl_warmup_steps" in message
    rows = _val_epoch_rows(out.run.path)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2] and all(int(r["active_units"]) < 2 for r in rows)
    assert all(float(r["kl_dims_max"]) >= 0 for r in rows)
    stats = json.loads(out.run.latent_stats.read_text())
    assert (stats["epoch"], stats["latent_dim"], stats["warning"]) == (2, 4, message)
    assert len(stats["kl_per_dim"]) == 4 and stats["active_units"] == int(rows[-1]["active_units"])
    assert checkpoint.load(out.run.last)["hooks"]["latent_usage"]["warning"] == message
    assert out.warnings[-1] == message and out.warnings[0].startswith("objective.reduction 'mean'")
    assert bar.postfixes[-1]["active"] == f"{stats['active_units']}/4" and bar.postfixes[-1]["warning"] == "see log"
    assert message in out.run.log.read_text()


def test_a_textbook_vae_uses_its_latent_space_and_gets_no_warning(tmp_path, genlab_log):
    cfg = _latent_config("healthy", model={"output_activation": "sigmoid"}, objective={"reduction": "sum"},
                         data={"normalize": "zero_one"})
    out = train(cfg, out=tmp_path)
    assert not any("posterior collapse" in r.getMessage() for r in genlab_log.records)
    assert out.warnings == []
    assert all(int(r["active_units"]) >= 2 for r in _val_epoch_rows(out.run.path))
    assert json.loads(out.run.latent_stats.read_text())["warning"] is None


@pytest.mark.parametrize("family", ["ae", "cgan"])
def test_models_without_a_kl_get_no_latent_usage(tmp_path, family):
    extra = {"ae": {"model": {"name": "ae"}}, "cgan": GAN}[family]
    out = train(tiny_config(**extra, train={"epochs": 1}), out=tmp_path)
    assert "active_units" not in _rows(out.run.path)[0]
    assert not out.run.latent_stats.exists()
    assert "latent_usage" not in checkpoint.load(out.run.last)["hooks"]  # no such hook: nothing saved


def test_hooks_need_the_whole_protocol_and_a_name_of_their_own(tmp_path):
    from genlab.engine.hook import Hook

    class Plain:
        name = "plain"

        def on_step(self, loop, record):
            pass

    class Named(Hook):
        name = "history"  # the engine's own history hook has this name

    with pytest.raises(TypeError, match="Plain is not a loop hook: it lacks on_evaluation"):
        train(tiny_config(), out=tmp_path / "a", hooks=[Plain()])
    with pytest.raises(ValueError, match="two loop hooks are named history"):
        train(tiny_config(), out=tmp_path / "b", hooks=[Named()])


def test_a_hook_can_stop_the_run_and_the_summary_says_how_it_ended(tmp_path):
    from genlab.engine.hook import Hook

    class StopAtFive(Hook):
        name = "stop_at_five"

        def stop_reason(self, loop):
            return "enough" if loop.progress.step >= 5 else None

    out = train(tiny_config(), out=tmp_path, hooks=[StopAtFive()])
    assert out.result.stopped_early == "enough" and out.result.progress.step == 5
    summary = json.loads((out.run.path / "summary.json").read_text())
    assert summary["status"] == "stopped early: enough" and summary["progress"]["steps"] == 5
    assert summary["images"] == {"train": 96, "validation": 24} and summary["best"]["metric"] == "loss"


def test_a_non_finite_stop_is_summarised_as_a_failure_at_the_last_step_taken(tmp_path, monkeypatch):
    _poison_kl_at(monkeypatch, {6})
    with pytest.raises(NonFiniteLoss):
        train(tiny_config(), out=tmp_path)
    summary = json.loads((tmp_path / "tiny" / "summary.json").read_text())
    assert summary["status"].startswith("failed: NonFiniteLoss: loss term 'kl' is nan at step 7")
    assert summary["progress"]["steps"] == 6  # the poisoned seventh step was not taken


@pytest.mark.parametrize("native", [True, False])
def test_asking_for_bf16_on_a_cpu_that_emulates_it_warns_before_training(tmp_path, monkeypatch, native):
    from genlab import device

    monkeypatch.setattr(device, "cpu_bf16_native", lambda: native)
    out = train(with_overrides(tiny_config(), "train.epochs=1", "train.precision=bf16"), out=tmp_path)
    log = (out.run.path / "train.log").read_text()
    assert ("this CPU has no native bf16" in log) is not native
    assert json.loads((out.run.path / "summary.json").read_text())["compute"]["precision"] == "bf16"


@pytest.mark.parametrize("native", [True, False])
def test_the_run_records_what_precision_auto_resolved_to(tmp_path, monkeypatch, native):
    from genlab import device

    monkeypatch.setattr(device, "cpu_bf16_native", lambda: native)
    cfg = with_overrides(tiny_config(), "train.epochs=1", "train.precision=auto")
    out = train(cfg, out=tmp_path)
    summary = json.loads((out.run.path / "summary.json").read_text())
    assert summary["compute"] == {"device": "cpu", "precision": "bf16" if native else "fp32"}
    line = next(s for s in (out.run.path / "train.log").read_text().splitlines() if "parameters, device" in s)
    expected = "bf16 autocast, normalisation in fp32 (train.precision auto)" if native else "device cpu, fp32"
    assert line.endswith(expected), line


@pytest.mark.parametrize(("loss", "checked"), [("bce", True), ("hinge", False)])
def test_precision_auto_trains_only_checked_settings_in_bf16_and_says_why(tmp_path, monkeypatch, loss, checked):
    """The bce game (cgan_mnist_recommended, dcgan_anime64_recommended) was checked in bf16 with D's own step
    in fp32; the hinge and Wasserstein games were not."""
    from genlab import device

    monkeypatch.setattr(device, "cpu_bf16_native", lambda: True)
    cfg = with_overrides(tiny_config(model={"name": "cgan", "latent_dim": 4, "g_width": 8, "d_width": 8},
                                     objective={"kind": "adversarial", "loss": loss}), "train.epochs=1")
    out = train(cfg, out=tmp_path)
    precision = json.loads((out.run.path / "summary.json").read_text())["compute"]["precision"]
    assert precision == ("bf16" if checked else "fp32")
    line = next(s for s in (out.run.path / "train.log").read_text().splitlines() if "parameters, device" in s)
    assert line.endswith("bf16 autocast, normalisation in fp32 (train.precision auto)" if checked else
                         "fp32 (train.precision auto: bf16 is not yet checked on CPU for these adversarial "
                         "objective settings)"), line
