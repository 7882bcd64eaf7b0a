"""The optional TensorBoard view: real event files, read back with TensorBoard's own reader."""

from __future__ import annotations

import sys

import pytest

from genlab.errors import GenlabError
from genlab.history import read_history
from genlab.training import train
from helpers import tiny_config

pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")


def _events(logdir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_history_and_samples_reach_tensorboard(tmp_path):
    out = train(tiny_config(train={"tensorboard": True, "epochs": 2}), out=tmp_path)
    acc = _events(out.run.path / "tensorboard")
    tags = acc.Tags()
    assert {"loss/train", "loss/train_epoch", "loss/val_epoch", "kl/train"} <= set(tags["scalars"])
    rows = [r for r in read_history(out.run.history) if r["scope"] == "epoch" and r["split"] == "val"]
    logged = acc.Scalars("loss/val_epoch")
    assert [e.step for e in logged] == [int(r["step"]) for r in rows]
    assert [e.value for e in logged] == pytest.approx([float(r["loss"]) for r in rows], rel=1e-5)
    images = acc.Images("samples (fixed noise)")
    assert len(images) == 2 and images[0].width > 0 and images[0].encoded_image_string.startswith(b"\x89PNG")


def test_resume_purges_events_past_the_checkpoint(tmp_path):
    import shutil

    cfg = tiny_config(train={"tensorboard": True, "epochs": 2})
    first = train(cfg, out=tmp_path, stop_after_steps=3)
    last = first.run.last
    shutil.copy(last, tmp_path / "step3.pt")
    train(None, resume=first.run.path, stop_after_steps=2)  # logs steps 4 and 5, checkpoint at 5 ...
    shutil.copy(tmp_path / "step3.pt", last)  # ... which a kill lost: the last checkpoint is step 3 again
    train(None, resume=first.run.path)
    steps = [e.step for e in _events(first.run.path / "tensorboard").Scalars("loss/train")]
    assert steps == sorted(set(steps)), "a step logged twice"
    assert steps == [int(r["step"]) for r in read_history(first.run.history)
                     if r["scope"] == "step" and r["split"] == "train"]


def test_missing_tensorboard_is_reported_before_the_run_starts(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard -> ImportError
    with pytest.raises(GenlabError, match=r'pip install "genlab\[tensorboard\]"'):
        train(tiny_config(name="no_tb", train={"tensorboard": True}), out=tmp_path)
    assert not (tmp_path / "no_tb").exists()
