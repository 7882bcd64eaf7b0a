"""`genlab sweep`: the grid expanded into named runs, each trained to its end exactly once, even when the
sweep is killed and started again; seeds of one setting compared as mean ± std."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from genlab.comparison import compare_table
from genlab.errors import GenlabError
from genlab.reporting import build_report
from genlab.sweeps import expand, parse_axis, read_manifest, run_sweep, state_of
from helpers import tiny_config

QUICK = ["train.epochs=2", "train.threads=1", "train.progress=false", "train.figures=false"]


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep_cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config(data={"limit": 64, "val_limit": 16}).to_dict()))
    return path


def _steps(run: Path) -> list[int]:
    """Train step rows; a last line a running training is still writing is left out (it has no split yet, or a
    cut-off step), so polling a live run cannot fail on it; a finished run has no such line."""
    with (run / "history.csv").open(newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)
                if r["scope"] == "step" and r["split"] == "train" and (r["step"] or "").isdigit()]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "genlab", *args]


# ---------------------------------------------------------------- the grid


def test_axis_values_are_yaml_scalars_and_lists_in_brackets():
    assert parse_axis("objective.beta=1,4,10").values == (1, 4, 10)
    assert parse_axis("data.root=cat-faces,stanford-cars").values == ("cat-faces", "stanford-cars")
    assert parse_axis("model.hidden_dims=[8,16],[16,32]").values == ([8, 16], [16, 32])
    for bad, why in (("beta", "expected key=value"), ("objective.beta=", "at least one value"),
                     ("objective.beta=1,,2", "no empty"), ("objective.beta=1,1", "twice"), (".x=1", "empty part")):
        with pytest.raises(GenlabError, match=why):
            parse_axis(bad)


def test_runs_are_named_from_their_values(tiny_yaml, tmp_path):
    specs = expand([str(tiny_yaml)], [parse_axis("objective.beta=1,4"), parse_axis("data.root=/x/cat-faces,y")],
                   [0, 1], tmp_path, ["train.epochs=1"])
    names = [s.name for s in specs]
    assert len(names) == 8 and names[0] == "tiny_beta1_rootcat-faces_seed0" and names[-1] == "tiny_beta4_rooty_seed1"
    assert specs[0].overrides == ("train.epochs=1", "objective.beta=1", 'data.root="/x/cat-faces"', "train.seed=0",
                                  "name=tiny_beta1_rootcat-faces_seed0")
    two = expand([str(tiny_yaml)], [parse_axis("data.limit=8,16"), parse_axis("data.val_limit=4")], None, tmp_path)
    assert [s.name for s in two] == ["tiny_limit8_val_limit4", "tiny_limit16_val_limit4"]


def test_a_bad_grid_fails_before_anything_runs(tiny_yaml, tmp_path):
    with pytest.raises(GenlabError, match="train.epochs"):
        run_sweep(str(tiny_yaml), ["train.epochs=1,0"], out=tmp_path)
    with pytest.raises(GenlabError, match="use --seeds"):
        run_sweep(str(tiny_yaml), ["train.seed=1,2"], out=tmp_path)
    with pytest.raises(GenlabError, match="share the folder name"):
        run_sweep(str(tiny_yaml), ["data.root=a/x,b/x"], out=tmp_path)
    with pytest.raises(GenlabError, match="--executor"):
        run_sweep(str(tiny_yaml), ["objective.beta=1"], out=tmp_path, executor="kubernetes")
    assert not any(tmp_path.iterdir())


def test_the_same_folder_refuses_another_grid_or_settings_and_extends_run_length(tiny_yaml, tmp_path):
    root = run_sweep(str(tiny_yaml), ["objective.beta=1"], out=tmp_path, name="s", overrides=QUICK, seeds=1)
    with pytest.raises(GenlabError, match="holds a sweep of other runs"):
        run_sweep(str(tiny_yaml), ["objective.beta=2"], out=tmp_path, name="s", overrides=QUICK)
    with pytest.raises(GenlabError, match="trained with other settings than this sweep gives it .optim.lr"):
        run_sweep(str(tiny_yaml), ["objective.beta=1"], out=tmp_path, name="s", overrides=[*QUICK, "optim.lr=0.01"],
                  seeds=1)
    longer = [q if not q.startswith("train.epochs") else "train.epochs=3" for q in QUICK]
    run_sweep(str(tiny_yaml), ["objective.beta=1"], out=tmp_path, name="s", overrides=longer, seeds=1)
    assert _steps(root / "tiny_beta1_seed0") == list(range(1, 13))  # resumed from 8 steps to 12, each once


def test_python_grids_are_checked_like_command_line_ones(tiny_yaml, tmp_path):
    for grid, why in (({"data.limit": "64"}, "non-empty list"), ({"objective.beta": []}, "non-empty list"),
                      ({"objective.beta": [1, 1]}, "twice"), ({"": [1]}, "dotted config key")):
        with pytest.raises(GenlabError, match=why):
            run_sweep(str(tiny_yaml), grid, out=tmp_path)


def test_a_job_stopped_before_it_trains_never_starts_and_a_job_that_cannot_start_is_a_failure(tiny_yaml, tmp_path):
    from genlab.sweeps import RunJob

    spec = expand([str(tiny_yaml)], [], [0], tmp_path / "j", QUICK)[0]
    job = RunJob(spec, 1, str(tmp_path / "j" / "logs"))
    job.stop()
    assert job() == "interrupted" and not spec.path.exists()
    (tmp_path / "a-file").write_text("")
    broken = RunJob(spec, 1, str(tmp_path / "a-file" / "logs"))  # its log folder cannot be made
    assert broken().startswith("failed (")


# ---------------------------------------------------------------- running it, again, and after a kill


def test_a_local_sweep_runs_each_once_and_skips_finished_runs_when_started_again(tiny_yaml, tmp_path, capsys):
    root = run_sweep(str(tiny_yaml), ["objective.beta=1,8"], seeds=2, overrides=QUICK, out=tmp_path, name="s",
                     jobs=2)
    doc = read_manifest(root)
    assert [r["status"] for r in doc["runs"]] == ["finished"] * 4 and doc["seeds"] == [0, 1]
    assert doc["grid"] == {"objective.beta": [1, 8]} and doc["executor"] == "local"
    first = {r["name"]: (root / r["name"] / "history.csv").stat().st_mtime_ns for r in doc["runs"]}
    run_sweep(str(tiny_yaml), ["objective.beta=1,8"], seeds=2, overrides=QUICK, out=tmp_path, name="s")
    assert {n: (root / n / "history.csv").stat().st_mtime_ns for n in first} == first  # nothing ran again
    for r in doc["runs"]:
        steps = _steps(root / r["name"])
        assert steps == sorted(set(steps)) and len(steps) == 8  # 2 epochs of 4 steps
        cfg = yaml.safe_load((root / r["name"] / "config.yaml").read_text())
        assert cfg["train"]["seed"] == r["seed"] and cfg["objective"]["beta"] == r["values"]["objective.beta"]
    # compare and report read the sweep folder, seeds of one setting as mean ± std with the count
    header, rows, _ = compare_table([root])
    assert header == ["metric", "tiny_beta1 (2 seeds)", "tiny_beta8 (2 seeds)"]
    psnr = next(r for r in rows if r[0] == "reconstruction_heldout / psnr")
    assert all("±" in c and "(n=2)" in c for c in psnr[1:])
    per_run = compare_table([root], per_run=True)[0]
    assert len(per_run) == 5
    page = build_report([root])
    assert "mean ± std over seeds" in page and "tiny_beta8 (2 seeds)" in page


def _wait(predicate, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None or time.monotonic() > end:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"sweep ended or timed out (exit {proc.poll()}): {err}")
        time.sleep(0.05)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_a_sweep_stopped_half_way_finishes_every_run_exactly_once(tiny_yaml, tmp_path):
    """SIGTERM to the sweep while its second run trains: that run checkpoints, the sweep exits 143; then
    SIGKILL to the sweep started again while its third run trains (the training, told by the kernel, still
    checkpoints); the third start finishes everything. Every run's history has each step once."""
    args = [str(tiny_yaml), "--seeds", "3", "--name", "k", "--out", str(tmp_path),
            *sum((["--set", s] for s in QUICK[1:]), []), "--set", "train.epochs=20",
            "--set", "train.checkpoint_every_steps=1000"]
    root = tmp_path / "k"
    runs = [root / f"tiny_seed{i}" for i in range(3)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen(_cli("sweep", *args), stderr=subprocess.PIPE, text=True, env=env)
    _wait(lambda: state_of_path(runs[0]) == "done" and len(_steps_if(runs[1])) > 10, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 143
    assert state_of_path(runs[1]) == "resume" and not runs[2].exists()

    proc = subprocess.Popen(_cli("sweep", *args), stderr=subprocess.PIPE, text=True, env=env)
    _wait(lambda: len(_steps_if(runs[2])) > 10, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    _wait_status(runs[2], "interrupted: SIGTERM")  # the orphaned training was told, saved and stopped

    done = subprocess.run(_cli("sweep", *args), capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    for run in runs:
        steps = _steps(run)
        assert steps == list(range(1, 81)), run  # 20 epochs of 4 steps, each once
        assert json.loads((run / "summary.json").read_text())["status"] == "finished"
    assert [r["status"] for r in read_manifest(root)["runs"]] == ["finished"] * 3


def _steps_if(run: Path) -> list[int]:
    return _steps(run) if (run / "history.csv").is_file() else []


def state_of_path(run: Path) -> str:
    from genlab.sweeps import RunSpec

    return state_of(RunSpec(run.name, "", (), {}, None, str(run.parent)))


def _wait_status(run: Path, status: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    path = run / "summary.json"
    while time.monotonic() < end:
        if path.is_file() and json.loads(path.read_text() or "{}").get("status") == status:
            return
        time.sleep(0.05)
    raise AssertionError(f"{run} never reached status {status!r}: the orphaned training went on")


def test_submitit_local_executor_runs_the_same_jobs(tiny_yaml, tmp_path):
    pytest.importorskip("submitit")
    root = run_sweep(str(tiny_yaml), ["objective.beta=2"], seeds=2, overrides=QUICK, out=tmp_path, name="sub",
                     executor="submitit-local")
    doc = read_manifest(root)
    assert [r["status"] for r in doc["runs"]] == ["finished"] * 2 and doc["executor"] == "submitit-local"
    assert any((root / "submitit").iterdir())
    for r in doc["runs"]:
        assert len(_steps(root / r["name"])) == 8


def test_slurm_jobs_ask_for_the_partition_time_gpus_and_an_early_signal(tiny_yaml, tmp_path, monkeypatch):
    """No cluster here: stand-in `srun` and `sbatch` on PATH record what submitit would submit."""
    pytest.importorskip("submitit")
    from genlab.sweeps import Slurm

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncat "$@" > {tmp_path}/submitted.sh 2>/dev/null || true\n'
                                    f'for a in "$@"; do [ -f "$a" ] && cp "$a" {tmp_path}/submitted.sh; done\n'
                                    'echo "Submitted batch job 4242"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = run_sweep(str(tiny_yaml), ["objective.beta=1,2"], seeds=1, overrides=QUICK, out=tmp_path, name="slurm",
                     executor="slurm", slurm=Slurm(partition="gpu", time_min=240, gpus_per_run=1, cpus_per_run=8))
    script = (tmp_path / "submitted.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=240", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=8", "#SBATCH --signal=USR2@120", "#SBATCH --array=0-1"):
        assert line in script, line
    runs = read_manifest(root)["runs"]
    assert [(r["status"], r["job_id"]) for r in runs] == [("submitted", "4242_0"), ("submitted", "4242_1")]
