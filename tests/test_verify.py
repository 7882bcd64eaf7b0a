"""Scores that record their making, and `genlab eval --verify`, which recomputes them from that record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from genlab import checkpoint
from genlab.cli import main
from genlab.io import sha256_of
from genlab.metrics.provenance import LIBRARIES
from genlab.training import train
from genlab.verify import CHANGED, FAILED, MOVED, OK, STALE, UNVERIFIABLE, verify_run
from helpers import one_thread, tiny_config

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v0_1"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("verify_runs")
    with one_thread():
        train(tiny_config(name="vae", data={"limit": 200, "val_limit": 100}), out=out)
        train(tiny_config(name="gan", model={"name": "dcgan", "g_width": 8, "d_width": 8, "latent_dim": 8,
                                             "ema_decay": 0.9},
                          objective={"kind": "adversarial", "proxy_samples": 24},
                          data={"limit": 200, "val_limit": 100, "image_size": 16}), out=out)
    return {"vae": out / "vae", "gan": out / "gan"}


@pytest.fixture
def run(trained, tmp_path, request) -> Path:
    """A private copy, so a test may tamper with it."""
    which = getattr(request, "param", "vae")
    return Path(shutil.copytree(trained[which], tmp_path / which))


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.mark.parametrize("name", ["vae", "gan"])
def test_every_stored_score_records_how_it_was_made(trained, name):
    doc = _metrics(trained[name])
    assert doc
    sha = sha256_of(trained[name] / "checkpoints" / "last.pt")
    for key, entry in doc.items():
        assert entry["checkpoint"] == "last" and entry["checkpoint_sha256"] == sha, key
        assert entry["step"] > 0 and entry["metric"] and entry["device"] == "cpu"
        assert set(LIBRARIES) <= set(entry["versions"]) and entry["versions"]["torch"] == torch.__version__
        assert entry["eval_settings"]["seed"] == entry["seed"]
        tolerances = entry["verify_tolerance"]
        assert set(tolerances) == set(entry["score_keys"]) and min(tolerances.values()) > 0
        assert entry["model_mode"].startswith(("eval", "batch statistics")), entry["model_mode"]
    weights = {e["generator_weights"] for e in doc.values()}
    assert weights == ({"weight-averaged generator (ema_decay 0.9)"} if name == "gan"
                       else {"live weights (no weight average)"})


@pytest.mark.parametrize("run", ["vae", "gan"], indirect=True)
def test_scores_made_at_the_end_of_training_reproduce_from_the_checkpoint(run, capsys):
    """The in-memory model scored at the end of training is the one last.pt holds: --verify agrees."""
    checks = verify_run(run)
    assert checks and all(c.status == OK for c in checks), [c for c in checks if c.status != OK]
    assert main(["eval", str(run), "--verify"]) == 0
    out = capsys.readouterr().out
    assert "reproduced within their tolerance" in out


def test_verify_writes_nothing(run):
    before = (run / "metrics.json").read_bytes()
    verify_run(run)
    assert (run / "metrics.json").read_bytes() == before


def test_a_score_that_was_edited_fails_verify_with_exit_1(run, capsys):
    doc = _metrics(run)
    doc["reconstruction_heldout"]["psnr_mean"] += 0.5
    (run / "metrics.json").write_text(json.dumps(doc))
    checks = {(c.entry, c.value): c for c in verify_run(run)}
    bad = checks[("reconstruction_heldout", "psnr_mean")]
    assert bad.status == MOVED and bad.difference == pytest.approx(-0.5, abs=1e-6)
    assert checks[("reconstruction_heldout", "ssim_mean")].status == OK
    assert main(["eval", str(run), "--verify"]) == 1
    out = capsys.readouterr().out
    assert "moved by more than" in out and "1 of" in out


def test_a_score_of_weights_the_checkpoint_no_longer_holds_is_stale(run, capsys):
    """Training resumed (or best.pt replaced) after scoring: the score describes weights that are gone."""
    ckpt = run / "checkpoints" / "last.pt"
    state = checkpoint.load(ckpt)
    state["model"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in state["model"].items()}
    checkpoint.save_atomic(state, ckpt)
    checks = verify_run(run)
    assert {c.status for c in checks} == {STALE}
    assert "changed since the score was made" in checks[0].reason
    assert main(["eval", str(run), "--verify"]) == 1


def test_scores_stored_by_genlab_0_1_are_unverifiable_and_say_why(tmp_path, capsys):
    run = Path(shutil.copytree(FIXTURES / "cgan", tmp_path / "cgan"))
    checks = verify_run(run)
    assert checks and {c.status for c in checks} == {UNVERIFIABLE}
    assert "before genlab 0.3" in checks[0].reason
    assert main(["eval", str(run), "--verify"]) == 1


def test_verify_of_a_run_without_scores_is_a_clear_error(run, capsys):
    (run / "metrics.json").unlink()
    assert main(["eval", str(run), "--verify"]) != 0
    err = capsys.readouterr().err
    assert "nothing to verify" in err and "Traceback" not in err


@pytest.mark.parametrize("run", ["gan"], indirect=True)
def test_verify_only_the_named_metrics(run):
    checks = verify_run(run, ["discriminator"])
    assert checks and {c.entry.split("_")[0] for c in checks} == {"discriminator"}


def test_a_score_made_on_another_device_says_so_when_it_moves(run):
    """Samples are drawn on the model's device: a CUDA-made score recomputed on the CPU may move for that
    reason alone, and the check must say it rather than leave a bare "moved"."""
    doc = _metrics(run)
    doc["reconstruction_heldout"]["device"] = "cuda:0"
    doc["reconstruction_heldout"]["psnr_mean"] += 1.0
    (run / "metrics.json").write_text(json.dumps(doc))
    moved = [c for c in verify_run(run) if c.status == MOVED]
    assert len(moved) == 1 and "made on cuda:0, recomputed on cpu" in moved[0].reason


def test_a_changed_protocol_is_named(run):
    doc = _metrics(run)
    doc["reconstruction_heldout"]["n_images"] = 99
    (run / "metrics.json").write_text(json.dumps(doc))
    (changed,) = [c for c in verify_run(run) if c.status == CHANGED]
    assert changed.entry == "reconstruction_heldout" and "image count (n_images) differs: 99 in then; 100 in now" \
        in changed.reason


def test_an_entry_that_crashes_its_metric_fails_alone(run, monkeypatch):
    import dataclasses

    from genlab.metrics.registry import METRICS

    def boom(ctx):
        raise RuntimeError("out of memory")

    monkeypatch.setitem(METRICS, "latent_usage", dataclasses.replace(METRICS["latent_usage"], compute=boom))
    checks = verify_run(run)
    failed = [c for c in checks if c.status == FAILED]
    assert [c.entry for c in failed] == ["latent_usage"] and "RuntimeError: out of memory" in failed[0].reason
    assert all(c.passed for c in checks if c.entry == "reconstruction_heldout")
