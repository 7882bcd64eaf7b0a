"""Soak: many short epochs with frequent checkpoints, evaluation and figures; resident memory and open
file descriptors per epoch must stay flat (a leak shows as a steady climb, not as noise).

    python bench/soak.py            # 60 epochs of a small VAE on the bundled digits (about 3 minutes)
    python bench/soak.py 200        # longer

Prints one line per epoch (RSS in MiB from /proc/self/status, open descriptors from /proc/self/fd)
and the change between the first epoch after warm-up and the last. Linux only.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

from genlab.config import validate
from genlab.data import load_data
from genlab.engine.hook import Hook
from genlab.evaluate import EvalSettings, evaluate_loaded
from genlab.figures import render
from genlab.models import capabilities
from genlab.run import LoadedRun, RunDir
from genlab.training import train

WARMUP_EPOCHS = 5


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def main(epochs: int = 60) -> None:
    torch.set_num_threads(2)
    cfg = validate({
        "name": "soak",
        "model": {"name": "vae", "hidden_dims": [8, 16], "latent_dim": 8},
        "data": {"name": "digits", "image_size": 16, "limit": 256, "val_limit": 128},
        "train": {"epochs": epochs, "batch_size": 32, "checkpoint_every_steps": 2, "eval_every_steps": 3,
                  "progress": False, "epoch_samples": True, "figures": False, "seed": 0},
    })
    data = load_data(cfg.data)
    samples: list[tuple[int, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir(Path(tmp) / cfg.name)

        caps = capabilities(cfg.model.name, cfg.model.kwargs(), data.num_classes)

        class EveryEpoch(Hook):
            name = "soak"

            def on_epoch_end(self, loop) -> None:
                model, progress = loop.objective.model, loop.progress
                loaded = LoadedRun(run, cfg, model, data, progress.step, caps, "last")
                render(model, data, cfg, run, caps=caps)  # every figure, every epoch
                evaluate_loaded(loaded, ["reconstruction", "fd_randconv"], which="last",
                                settings=EvalSettings(samples=128), strict=False)
                model.train()
                samples.append((progress.epoch, rss_mib(), open_fds()))
                e, rss, fds = samples[-1]
                print(f"epoch {e:4d}  rss {rss:8.1f} MiB  open fds {fds:4d}", flush=True)

        train(cfg, out=Path(tmp), hooks=[EveryEpoch()])
    first = samples[min(WARMUP_EPOCHS, len(samples) - 1)]
    last = samples[-1]
    per_epoch = (last[1] - first[1]) / max(last[0] - first[0], 1)
    print(f"\nafter {WARMUP_EPOCHS} warm-up epochs: rss {first[1]:.1f} -> {last[1]:.1f} MiB "
          f"({per_epoch:+.3f} MiB/epoch over {last[0] - first[0]} epochs), open fds {first[2]} -> {last[2]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 60)
