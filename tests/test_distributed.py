"""Several processes (torchrun, gloo on CPU): the same loss curve as one process, resuming across process counts.

The runs train a tiny autoencoder without batch norm or noise, so one process and two differ only by the
order of float additions; the data order and the global batch do not depend on the number of processes.
Each torchrun launch costs a few seconds of interpreter start-up, so the launches are few and shared.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import genlab
from genlab import checkpoint, distributed
from genlab.data.loader import BatchLoader, Normalizer, shard
from genlab.errors import GenlabError
from genlab.run import existing_run
from genlab.training import train
from helpers import tiny_config, with_overrides

SRC = Path(genlab.__file__).resolve().parents[1]
STEPS = 2 * (96 // 16)
TOLERANCE = 1e-4  # relative; history.csv keeps 6 significant digits


def _config(name: str, **train_section):
    return tiny_config(name=name, model={"name": "ae", "hidden_dims": [4, 8], "latent_dim": 3},
                       # fp32: shards of a batch round differently from the whole batch in bf16
                       train={"epochs": 2, "precision": "fp32", **train_section})


def _torchrun_command(*args: str) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "genlab.cli", "train", *args]
    return cmd, env


def _torchrun(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    cmd, env = _torchrun_command(*args)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _output(done: subprocess.CompletedProcess) -> str:
    """What a failed assertion shows: the end of both streams of the launch."""
    return f"exit code {done.returncode}\nstdout:\n{done.stdout[-2000:]}\nstderr:\n{done.stderr[-4000:]}"


def _write_config(cfg, path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path


def _curve(run_dir: Path) -> dict[tuple, dict[str, float]]:
    """Every history row by (scope, split, epoch, step, images): its loss terms."""
    with open(run_dir / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    curve = {}
    for r in rows:
        key = (r["scope"], r["split"], int(r["epoch"]), int(r["step"]), int(r["images"]))
        assert key not in curve, f"history row {key} twice"
        curve[key] = {k: float(r[k]) for k in ("loss", "recon")}
    return curve


def _max_relative_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(abs(a[k][t] - b[k][t]) / abs(b[k][t]) for k in a for t in a[k])


def _steps(curve: dict) -> list[int]:
    return [key[3] for key in curve if key[0] == "step"]


@pytest.fixture(scope="module")
def one_process(tmp_path_factory) -> Path:
    """The reference: the same config trained by a single process."""
    out = tmp_path_factory.mktemp("one")
    train(_config("run"), out=out)
    return out / "run"


def test_two_processes_follow_the_one_process_loss_curve(tmp_path, one_process):
    cfg = _write_config(_config("run"), tmp_path / "run.yaml")
    done = _torchrun(tmp_path, str(cfg), "--out", "runs")
    assert done.returncode == 0, _output(done)
    assert done.stdout.count("run folder:") == 1, _output(done)  # rank 0 reports for both
    two = _curve(tmp_path / "runs" / "run")
    one = _curve(one_process)
    assert _steps(two) == list(range(1, STEPS + 1))
    assert _max_relative_difference(two, one) < TOLERANCE
    state = checkpoint.load(tmp_path / "runs" / "run" / "checkpoints" / "last.pt")
    reference = checkpoint.load(one_process / "checkpoints" / "last.pt")
    assert state["progress"]["step"] == STEPS and state["progress"]["images"] == STEPS * 16
    for k, w in reference["model"].items():
        torch.testing.assert_close(state["model"][k], w, rtol=1e-4, atol=1e-5)
    assert len(state["rng_ranks"]) == 2
    # A second launch into the same folder: rank 0's refusal reaches both processes, which exit with code 2.
    again = _torchrun(tmp_path, str(cfg), "--out", "runs")
    assert again.returncode != 0
    assert again.stderr.count("genlab: error: run folder") == 2, _output(again)


def test_a_two_process_run_resumes_with_one_process(tmp_path, one_process):
    cfg = _write_config(_config("run"), tmp_path / "run.yaml")
    done = _torchrun(tmp_path, str(cfg), "--out", "runs", "--set", "train.max_steps=5")  # stops inside epoch 1
    assert done.returncode == 0, _output(done)
    run = tmp_path / "runs" / "run"
    assert checkpoint.load(run / "checkpoints" / "last.pt")["progress"]["step"] == 5, _output(done)
    out = train(with_overrides(existing_run(run).read_config(), "train.max_steps=null"), resume=run)
    assert out.result.progress.step == STEPS
    curve = _curve(run)
    assert _steps(curve) == list(range(1, STEPS + 1))
    assert _max_relative_difference(curve, _curve(one_process)) < TOLERANCE


def test_a_one_process_run_resumes_with_two_processes(tmp_path, one_process):
    train(_config("run"), out=tmp_path / "runs", stop_after_steps=7)  # inside epoch 2, after a checkpoint
    run = tmp_path / "runs" / "run"
    done = _torchrun(tmp_path, "--resume", str(run))
    assert done.returncode == 0, _output(done)
    assert "resumed at step 7" in done.stdout + done.stderr, _output(done)
    curve = _curve(run)
    assert _steps(curve) == list(range(1, STEPS + 1))
    assert _max_relative_difference(curve, _curve(one_process)) < TOLERANCE
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    assert state["progress"]["step"] == STEPS and len(state["rng_ranks"]) == 2


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _logged_steps(run: Path) -> int:
    path = run / "history.csv"
    return path.read_text().count("\nstep,") if path.is_file() else 0


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds torchrun's workers through /proc")
def test_sigterm_stops_both_processes_at_one_step_with_a_checkpoint(tmp_path):
    """As under SLURM: SIGTERM to torchrun (which forwards it) and to every worker directly, so each worker
    gets it twice at its own moment; all must stop at the same step boundary after last.pt is written."""
    cfg = _write_config(_config("run", epochs=1000, checkpoint_every_steps=1000), tmp_path / "run.yaml")
    cmd, env = _torchrun_command(str(cfg), "--out", "runs")
    run = tmp_path / "runs" / "run"
    with open(tmp_path / "out.txt", "w") as out, open(tmp_path / "err.txt", "w") as err:
        launcher = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=err)
        try:
            deadline = time.monotonic() + 120
            while _logged_steps(run) < 3 and launcher.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            workers = _children(launcher.pid)
            launcher.send_signal(signal.SIGTERM)
            for pid in workers:
                os.kill(pid, signal.SIGTERM)
            launcher.wait(timeout=60)
        finally:
            if launcher.poll() is None:
                launcher.kill()
    stderr = (tmp_path / "err.txt").read_text()
    assert len(workers) == 2 and stderr.count("genlab: SIGTERM received: saved") == 2, stderr[-4000:]
    state = checkpoint.load(run / "checkpoints" / "last.pt")
    stopped = state["progress"]["step"]
    assert _steps(_curve(run)) == list(range(1, stopped + 1))  # no step after the checkpoint's
    out = train(with_overrides(existing_run(run).read_config(), f"train.max_steps={stopped + 2}"), resume=run)
    assert out.result.progress.step == stopped + 2
    assert _steps(_curve(run)) == list(range(1, stopped + 3))


# ---------------------------------------------------------------- without processes


def test_launch_variables():
    assert distributed.launch_from_env({}) == distributed.Launch(0, 1, 0)
    assert distributed.launch_from_env({"WORLD_SIZE": "1", "RANK": "0"}) == distributed.Launch()
    launch = distributed.launch_from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert launch == distributed.Launch(rank=3, world_size=4, local_rank=1)
    with pytest.raises(GenlabError, match="LOCAL_RANK is not set: start genlab with torchrun"):
        distributed.launch_from_env({"WORLD_SIZE": "2", "RANK": "0"})
    with pytest.raises(GenlabError, match="RANK=2, LOCAL_RANK=0 do not fit WORLD_SIZE=2"):
        distributed.launch_from_env({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"})
    with pytest.raises(GenlabError, match="WORLD_SIZE='two' is not an integer"):
        distributed.launch_from_env({"WORLD_SIZE": "two"})


def test_each_process_takes_the_gpu_of_its_local_rank():
    two = distributed.Launch(rank=3, world_size=4, local_rank=1)
    assert distributed.select_device("auto", two, cuda_available=True, device_count=2) == torch.device("cuda", 1)
    assert distributed.select_device("cuda", two, cuda_available=True, device_count=2) == torch.device("cuda", 1)
    assert distributed.select_device("auto", two, cuda_available=False) == torch.device("cpu")
    assert distributed.select_device("cpu", two, cuda_available=True, device_count=2) == torch.device("cpu")
    with pytest.raises(GenlabError, match="'cuda:0', but under torchrun each process uses the GPU of its LOCAL_RANK"):
        distributed.select_device("cuda:0", two, cuda_available=True, device_count=2)
    with pytest.raises(GenlabError, match=r"LOCAL_RANK 1, but this machine has 1 CUDA device.*--nproc_per_node=1"):
        distributed.select_device("auto", two, cuda_available=True, device_count=1)
    with pytest.raises(GenlabError, match="no CUDA device is available"):
        distributed.select_device("cuda", two, cuda_available=False)


def test_the_global_batch_must_split_evenly():
    assert distributed.local_batch_size(64, 4) == 16
    with pytest.raises(GenlabError, match=r"train.batch_size 30 is the global batch.*multiple of 4 \(e.g. 28 or 32\)"):
        distributed.local_batch_size(30, 4)
    with pytest.raises(GenlabError, match=r"multiple of 4 \(e.g. 4\)"):
        distributed.local_batch_size(3, 4)


@pytest.mark.parametrize("world", [2, 3])
def test_shards_of_every_batch_make_up_the_single_process_batch(world):
    """Order and flips belong to the global batch: the processes' shards, side by side, are its images."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (50, 6, 6, 1), dtype=np.uint8)
    labels = np.arange(50)
    opts = dict(batch_size=12, shuffle=True, seed=3, normalizer=Normalizer("minus_one_one", 1), hflip=True)
    one = list(BatchLoader(images, labels, **opts).batches(epoch=2, start=1))
    shards = [list(BatchLoader(images, labels, **opts, rank=r, world_size=world).batches(epoch=2, start=1))
              for r in range(world)]
    for b, batch in enumerate(one[:-1]):  # 50 images: 4 full batches from batch 1 on, then one of 2
        assert torch.equal(torch.cat([s[b].images for s in shards]), batch.images)
        assert torch.equal(torch.cat([s[b].labels for s in shards]), batch.labels)
    # the last batch's 2 images: one each for 2 processes; with 3, the process whose share is empty skips it
    last = [s[len(one) - 1] for s in shards if len(s) == len(one)]
    assert [len(x.labels) for x in last] == [1] * 2 and [len(s) for s in shards].count(len(one) - 1) == world - 2
    assert torch.equal(torch.cat([x.images for x in last]), one[-1].images)
    assert [shard(2, r, 3) for r in range(3)] == [slice(0, 0), slice(0, 1), slice(1, 2)]


def test_sync_batchnorm_is_refused_on_cpu_but_ignored_without_batch_norm():
    plain = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3))
    assert distributed.convert_sync_batchnorm(plain, torch.device("cpu")) is plain
    with pytest.raises(GenlabError, match="train.sync_batchnorm needs CUDA devices"):
        distributed.convert_sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(2)), torch.device("cpu"))
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    params = list(net.parameters())
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)  # what runs on GPUs: same parameters
    assert isinstance(converted[1], torch.nn.SyncBatchNorm) and list(converted.parameters()) == params


def test_without_torchrun_the_helpers_do_nothing():
    x = torch.tensor([1.0, 2.0])
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.all_reduce_sum(x) is x
    assert distributed.weighted_mean(x, 4) == (x, 4)
    assert distributed.any_process(False) is False and distributed.any_process(True) is True
    assert distributed.main_first(lambda: 5, "testing") == 5
    assert distributed.derived_seed(1, 1, 7) == distributed.derived_seed(1, 1, 7) != distributed.derived_seed(1, 2, 7)


def test_a_repeated_signal_aborts_one_process_but_not_a_torchrun_worker():
    """Under SLURM a worker gets SIGTERM from the job step and again from torchrun: that is not "now"."""
    from genlab.engine.signals import Signals as _Signals

    with _Signals(repeat_aborts=False) as sig:
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # let the handler run
    assert sig.received == "SIGTERM"
    with pytest.raises(KeyboardInterrupt), _Signals() as sig:
        for _ in range(2):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
