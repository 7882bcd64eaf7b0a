"""Training images/s of the engine for the seed shapes, on synthetic uint8 data (no data set needed).

Runs the real `Trainer` (history, checkpoints and all) for a fixed number of steps after a short
warm-up and prints images/s. Absolute numbers on shared machines are noise; compare ratios taken
in one run.

    python bench/train_speed.py                 # every shape
    python bench/train_speed.py beta_vae64      # one shape
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genlab.config import validate
from genlab.data import DataBundle, ImageSet, Normalizer
from genlab.engine import Trainer
from genlab.run import create_run, plan_run

SHAPES = {
    # name: (model section, objective section, image size, channels, batch)
    "dae28": ({"name": "ae"}, {"reduction": "mean", "noise_std": 0.3}, 28, 1, 128),
    "cgan28": ({"name": "cgan"}, {"kind": "adversarial"}, 28, 1, 200),
    "beta_vae64": ({"name": "beta_vae"}, {"reduction": "mean", "beta": 10, "kld_weight": 0.0025}, 64, 3, 64),
    "res_vae128": ({"name": "res_vae"}, {"beta": 1.0}, 128, 3, 32),
    "dcgan64": ({"name": "dcgan"}, {"kind": "adversarial", "real_target": 0.98}, 64, 3, 128),
}


def measure(name: str, steps: int = 20, warmup: int = 3) -> float:
    model, objective, size, ch, batch = SHAPES[name]
    cfg = validate({
        "name": name, "model": model, "objective": objective,
        "data": {"name": "digits", "image_size": size, "grayscale": ch == 1},
        "train": {"epochs": 1, "batch_size": batch, "progress": False, "figures": False, "epoch_samples": False,
                  "checkpoint_every_steps": 10**9},
    })
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * (steps + warmup), size, size, ch), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    names = [str(i) for i in range(10)]
    data = DataBundle(ImageSet(images, labels, names), ImageSet(images[:batch], labels[:batch], names), ch, size,
                      Normalizer("minus_one_one", ch))
    from genlab.models import build_model
    from genlab.objectives import build_objective

    torch.manual_seed(0)
    net = build_model(cfg.model.name, cfg.model.kwargs(), image_size=size, channels=ch, num_classes=10)
    obj = build_objective(cfg, net, data.normalizer)
    with tempfile.TemporaryDirectory() as tmp:
        run = create_run(plan_run(cfg, Path(tmp), overwrite=False), cfg, overwrite=False)
        trainer = Trainer(obj, data, cfg, run, torch.device("cpu"))
        trainer.fit(stop_after_steps=warmup)
        t = time.perf_counter()
        images0 = trainer.progress.images
        trainer.fit(stop_after_steps=warmup + steps)
        wall = time.perf_counter() - t
        imgs = trainer.progress.images - images0
    return imgs / wall


def main(argv: list[str]) -> None:
    names = argv or list(SHAPES)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in names:
        _, _, size, ch, batch = SHAPES[name]
        print(f"{name:12s} {size}x{size}x{ch} batch {batch:4d}: {measure(name):8.1f} train images/s")


if __name__ == "__main__":
    main(sys.argv[1:])
