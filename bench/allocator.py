"""Does the memory allocator cost training speed here? Page faults against img/s, per allocator setting.

On CPU, every large tensor of a training step is a fresh allocation: glibc serves blocks above its
mmap threshold (at most 32 MiB) with mmap and returns them with munmap, so the kernel zero-fills
new 4 KiB pages on first touch, step after step; the system time this costs shows up as page
faults. Each setting below runs bench/train_speed.py's measurement for one shape in a fresh process
(environment settings are read at process start) and prints, for the timed steps, img/s, minor page
faults per image and the system-time share:

  system    train.allocator: system: glibc and PyTorch as installed
  thp       system + THP_MEM_ALLOC_ENABLE=1: PyTorch asks for 2 MiB transparent huge pages (blocks >= 2 MiB)
  glibc     system + MALLOC_MMAP_THRESHOLD_=32 MiB, MALLOC_TRIM_THRESHOLD_=1 GiB, MALLOC_TOP_PAD_=256 MiB
            in the environment: freed blocks stay in the heap and are reused instead of being unmapped
  tuned     train.allocator: tuned (genlab's default): the same glibc settings, set by genlab at run time
            through mallopt, so nothing has to be exported before Python starts

    python bench/allocator.py                  # dae28 and dcgan64
    python bench/allocator.py beta_vae64
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SPEED = Path(__file__).with_name("train_speed.py")
GLIBC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30),
         "MALLOC_TOP_PAD_": str(256 << 20)}
# setting: (environment, train.allocator)
SETTINGS = {"system": ({}, "system"), "thp": ({"THP_MEM_ALLOC_ENABLE": "1"}, "system"), "glibc": (GLIBC, "system"),
            "tuned": ({}, "tuned")}
ROUNDS = 2  # each setting twice, interleaved, so a load change on the machine hits all settings alike


def run(shape: str, env: dict[str, str], allocator: str) -> dict[str, float]:
    """One fresh process; its train rate, page faults per image and system-time share of the timed steps."""
    flags = ["--system-allocator"] if allocator == "system" else []
    out = subprocess.run([sys.executable, str(SPEED), "--one", shape, "--rate-only", *flags], capture_output=True,
                         text=True, check=True, env={**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    shapes = argv or ["dae28", "dcgan64"]
    head = f"{'shape':11s} {'setting':8s} {'train img/s':>11s} {'vs system':>10s} {'faults/img':>10s} {'sys time':>8s}"
    print(head + "\n" + "-" * len(head))
    for shape in shapes:
        results: dict[str, list[dict[str, float]]] = {name: [] for name in SETTINGS}
        for _ in range(ROUNDS):
            for name, (env, allocator) in SETTINGS.items():
                results[name].append(run(shape, env, allocator))
        base = sum(r["train"] for r in results["system"]) / ROUNDS
        for name, rs in results.items():
            rate = sum(r["train"] for r in rs) / ROUNDS
            faults = sum(r["faults_per_image"] for r in rs) / ROUNDS
            sys_share = sum(r["sys_share"] for r in rs) / ROUNDS
            print(f"{shape:11s} {name:8s} {rate:11.1f} {rate / base:9.2f}x {faults:10.1f} {100 * sys_share:7.1f}%")


if __name__ == "__main__":
    main(sys.argv[1:])
