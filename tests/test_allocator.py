"""train.allocator: freed tensor memory stays in the process, so training steps stop page-faulting."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.allocator import tune_allocator

SPEED = Path(__file__).parents[1] / "bench" / "train_speed.py"


def _faults_per_image(*flags: str) -> float:
    """The denoising AE's real training step (28x28, batch 128) in a fresh process, as the benchmark runs it."""
    out = subprocess.run([sys.executable, str(SPEED), "--one", "dae28", "--rate-only", *flags],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["faults_per_image"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_tuned_allocator_stops_the_page_faults_of_training_steps():
    if not tune_allocator("tuned"):
        pytest.skip("no glibc mallopt in this Linux (e.g. musl)")
    system, tuned = _faults_per_image("--system-allocator"), _faults_per_image()
    # measured here: ~125 minor faults per image with glibc's defaults, under 1 when tuned
    assert system > 20
    assert tuned < system / 10


def test_system_setting_changes_nothing():
    assert tune_allocator("system") is False


_BIG_TENSORS = """
import ctypes, resource, sys
from genlab.allocator import tune_allocator
tune_allocator(sys.argv[1])
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
size = 40 << 20  # above glibc's largest mmap threshold (32 MiB), as a real run's biggest activations
def block():
    p = libc.malloc(size)
    ctypes.memset(p, 1, size)  # touch every page
    libc.free(p)
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block()  # once, so the heap has grown to hold it
start = faults()
for _ in range(5):
    block()
print((faults() - start) / 5)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
def test_tensors_above_the_largest_mmap_threshold_reuse_the_heap_too():
    if not tune_allocator("tuned"):
        pytest.skip("no glibc mallopt in this Linux (e.g. musl)")

    def per_tensor(setting: str) -> float:
        out = subprocess.run([sys.executable, "-c", _BIG_TENSORS, setting], capture_output=True, text=True,
                             check=True)
        return float(out.stdout.strip().splitlines()[-1])

    system, tuned = per_tensor("system"), per_tensor("tuned")
    assert system > 5_000  # 40 MiB mapped afresh each time: 10,240 pages of 4 kB
    assert tuned < 50, tuned
