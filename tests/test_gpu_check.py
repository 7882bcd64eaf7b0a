"""bench/gpu_check.py's logic, on the CPU (no GPU is lent to this project): the same loop, resume and checks
that a user with a CUDA GPU runs with `python bench/gpu_check.py`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from genlab.config import load
from genlab.device import select_precision
from genlab.objectives import cpu_bf16

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def test_every_check_passes_on_cpu_for_an_autoencoder_and_a_conditional_gan(tmp_path):
    out = tmp_path / "summary.json"
    done = _run("--device", "cpu", "--steps", "4", "--configs", "quickstart", "cgan_mnist", "--json", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(out.read_text())
    assert [r["config"] for r in summary["results"]] == ["quickstart", "cgan_mnist"] and summary["ok"]
    for r in summary["results"]:
        objective = load(r["config"]).objective  # auto on this CPU: bf16 where checked if native, else fp32
        expected = select_precision("auto", torch.device("cpu"), cpu_bf16_checked=cpu_bf16(objective))
        assert all(r["checks"].values()) and r["img_per_s"] > 0 and r["precision"] == expected


def test_it_says_what_to_do_without_a_gpu_and_refuses_unknown_configs():
    if not torch.cuda.is_available():
        done = _run()
        assert done.returncode == 2 and "no CUDA device here" in done.stderr and "--device cpu" in done.stderr
    done = _run("--device", "cpu", "--configs", "no_such_config")
    assert done.returncode == 2 and "unknown config(s) no_such_config" in done.stderr
