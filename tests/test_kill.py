"""Crash safety under SIGKILL: a run killed at many random moments, some of them half way through a
checkpoint write, resumes every time and ends with exactly the weights and history of a run that was
never interrupted.

Each round starts `genlab train --resume` in a child process, waits until it has done new work (or,
in every third round, until it is paused inside a checkpoint write by the test hook in
genlab.checkpoint), then kills it with SIGKILL after a random extra delay. After every kill the run
folder must hold a loadable checkpoint. The config is deterministic, so the final weights must equal
those of an uninterrupted run bit for bit.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from genlab import checkpoint
from genlab.checkpoint import PAUSE_ENV

KILLS = 12  # each round starts a Python that imports torch: 4 s of a round on an AVX2-only CPU
SETTINGS = ["--set", "data.limit=256", "--set", "data.val_limit=32", "--set", "train.batch_size=16",
            "--set", "train.epochs=30", "--set", "train.checkpoint_every_steps=3", "--set", "train.seed=7",
            "--set", "train.deterministic=true", "--set", "train.threads=1", "--set", "train.progress=false",
            "--set", "train.figures=false", "--set", "train.epoch_samples=false", "--set", "model.hidden_dims=[8,16]",
            "--set", "model.latent_dim=4", "--set", "data.image_size=16"]
TOTAL_STEPS = 30 * 256 // 16  # long enough that every kill lands before the end on a fast machine


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "genlab.cli", *args]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PAUSE_ENV}
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **extra}


def _step_rows(run: Path) -> list[int]:
    with (run / "history.csv").open(newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f) if r["scope"] == "step" and r["split"] == "train"]


def _progress(run: Path) -> int:
    """Steps logged so far (a partially written last line is not counted)."""
    path = run / "history.csv"
    if not path.is_file():
        return 0
    lines = path.read_text().splitlines()
    return max(len(lines) - 1, 0)


def _wait(predicate, proc: subprocess.Popen, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_dozen_sigkills_lose_nothing(tmp_path):
    rng = random.Random(0)
    out = tmp_path / "killed"
    run = out / "quickstart"
    reference = tmp_path / "reference"
    subprocess.run(_cli("train", "quickstart", "--out", str(reference), *SETTINGS), check=True, env=_env(),
                   capture_output=True, timeout=600)

    # The first process runs until a checkpoint exists: a run killed before its first checkpoint has
    # nothing to resume from and starts again.
    first = subprocess.Popen(_cli("train", "quickstart", "--out", str(out), *SETTINGS), env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert _wait(lambda: (run / "checkpoints" / "last.pt").is_file(), first, 300), first.stderr.read().decode()
    _kill(first)

    kills, in_write, finished_early = 1, 0, 0
    while kills < KILLS:
        marker = tmp_path / f"paused-{kills}"
        pause = kills % 3 == 0
        env = _env(**{PAUSE_ENV: str(marker)}) if pause else _env()
        before = _progress(run)
        proc = subprocess.Popen(_cli("train", "--resume", str(run)), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        if pause:
            reached = _wait(marker.exists, proc, 300)
            if reached:
                time.sleep(rng.uniform(0.0, 0.2))  # the process sleeps half way through the file
                in_write += 1
        else:
            reached = _wait(lambda before=before: _progress(run) > before, proc, 300)
            if reached:
                time.sleep(rng.uniform(0.0, 0.1))
        if proc.poll() is not None:  # it finished the run before the kill: start the rounds on a new length
            assert proc.returncode == 0, proc.stderr.read().decode()
            finished_early += 1
            break
        _kill(proc)
        kills += 1
        state = checkpoint.load(run / "checkpoints" / "last.pt")  # always a loadable last-good checkpoint
        assert 0 < state["progress"]["step"] <= TOTAL_STEPS

    done = subprocess.run(_cli("train", "--resume", str(run)), env=_env(), capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    assert kills >= KILLS and in_write >= (KILLS - 1) // 3 - 1, (kills, in_write, finished_early)
    assert not list((run / "checkpoints").glob(".*.tmp*")), "a half-written temporary file was left behind"

    steps = _step_rows(run)
    assert steps == list(range(1, TOTAL_STEPS + 1)), "steps lost or logged twice"
    assert steps == _step_rows(reference / "quickstart")
    final = checkpoint.load(run / "checkpoints" / "last.pt")["model"]
    expected = checkpoint.load(reference / "quickstart" / "checkpoints" / "last.pt")["model"]
    assert final.keys() == expected.keys()
    assert all(torch.equal(final[k], expected[k]) for k in final), "weights differ from the uninterrupted run"
