"""Training cost of each recommended config against its original-settings config, side by side in one process.

"Equal or lower training wall time" is a ratio, and ratios measured in one run hold on a noisy shared
machine while the wall times of runs made hours apart under other loads do not. For each experiment
this builds both configs' real training loops (model, objective, optimiser, batch size, layout) on synthetic
uint8 data of the experiment's shape, times them in alternating blocks of steps, and prints

  original s/img, recommended s/img, their ratio, the epoch-end work of each per training image (the
  validation pass on a set a third the size of the training set, as a 75/25 split gives, with every
  hook the run has: latent usage, a fitted prior, history, best checkpoint), each config's epochs, and
  wall-time ratio = (recommended epochs x (s/img + end s/img)) / (original epochs x (s/img + end s/img))

which is the recommended run's training time as a share of the original-settings run's on the same data (the
epoch sizes are equal). Below 1 means the recommended config needs less time than the original's.

    python bench/recommended_cost.py            # every experiment (about 5 minutes on 2 cores)
    python bench/recommended_cost.py dae        # one
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genlab.config import RunConfig, load, validate
from genlab.data import DataBundle, ImageSet, Normalizer
from genlab.engine.loop import Loop
from genlab.run import create_run, plan_run

# experiment: (original-settings config, recommended config, channels, classes)
PAIRS = {
    "betavae_cats": ("betavae_cats", "betavae_cats_recommended", 3, 0),
    "dae": ("dae_fashion_mnist", "dae_fashion_mnist_recommended", 1, 10),
    "cgan": ("cgan_mnist", "cgan_mnist_recommended", 1, 10),
    "dcgan": ("dcgan_anime64", "dcgan_anime64_recommended", 3, 0),
    "resvae": ("resvae_celeba128", "resvae_celeba128_recommended", 3, 0),
    # not an original against its recommended config: the small-data GANs against the best DCGAN, same faces
    "sngan_diffaugment": ("dcgan_anime64_recommended", "sngan_anime64_diffaugment", 3, 0),
    "sngan_recommended": ("dcgan_anime64_recommended", "sngan_anime64_recommended", 3, 0),
    "wgangp": ("dcgan_anime64_recommended", "wgangp_anime64", 3, 0),
}
BLOCKS, STEPS, WARMUP = 3, 6, 2


def trainer_for(cfg: RunConfig, channels: int, classes: int, tmp: Path, steps: int | None = None) -> Loop:
    """The config's own training step on random images of its shape (no data set needed), on an epoch
    longer than `steps` (default: this benchmark's blocks), so no epoch end falls inside a timed block."""
    size, batch = cfg.data.image_size, cfg.train.batch_size
    data_cfg = {"name": "digits", "image_size": size, "grayscale": channels == 1, "hflip": cfg.data.hflip,
                "normalize": cfg.data.normalize}
    cfg = validate({**cfg.to_dict(), "data": data_cfg, "output": {"root": str(tmp)},
                    "train": {**cfg.train.model_dump(mode="json"), "progress": False, "figures": False,
                              "epoch_samples": False, "checkpoint_every_steps": 10**9, "threads": None,
                              "eval_every_steps": None}})
    n = batch * ((BLOCKS * STEPS + WARMUP if steps is None else steps) + 2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)
    labels = rng.integers(0, max(classes, 1), n) if classes else None
    names = [str(i) for i in range(classes)] if classes else []
    norm = Normalizer(cfg.data.normalize, channels)
    n_val = n // 3
    data = DataBundle(ImageSet(images, labels, names), ImageSet(images[:n_val], None if labels is None
                      else labels[:n_val], names), channels, size, norm)
    from genlab.training import loop_for

    torch.manual_seed(0)
    run = create_run(plan_run(cfg, tmp, overwrite=False), cfg, overwrite=False)
    return loop_for(cfg, data, run, torch.device("cpu"))


def seconds_per_image(trainers: list[Loop]) -> list[float]:
    """Training seconds per image, in alternating blocks, so a load change on the machine hits both alike."""
    for t in trainers:
        t.fit(stop_after_steps=WARMUP)
    spent, images = [0.0] * len(trainers), [0] * len(trainers)
    for _ in range(BLOCKS):
        for i, t in enumerate(trainers):
            start, n0 = time.perf_counter(), t.progress.images
            t.fit(stop_after_steps=t.progress.step + STEPS)
            spent[i] += time.perf_counter() - start
            images[i] += t.progress.images - n0
    return [s / n for s, n in zip(spent, images)]


def epoch_end_seconds_per_image(trainers: list[Loop], repeats: int = 2) -> list[float]:
    """One end-of-epoch evaluation with every hook, per training image of the epoch, alternating too."""
    spent = [0.0] * len(trainers)
    for _ in range(repeats):
        for i, t in enumerate(trainers):
            start = time.perf_counter()
            t._evaluate("epoch")
            spent[i] += time.perf_counter() - start
    return [s / (repeats * t.train_loader.num_images) for s, t in zip(spent, trainers)]


def main(argv: list[str]) -> None:
    names = argv or list(PAIRS)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {BLOCKS} alternating blocks of "
          f"{STEPS} steps per config after {WARMUP} warm-up steps\n")
    head = (f"{'experiment':14s} {'orig ms/img':>11s} {'rec ms/img':>10s} {'per-image':>9s} {'orig end':>8s} "
            f"{'rec end':>7s} {'orig ep':>7s} {'rec ep':>6s} {'wall-time ratio':>15s}")
    print(head + "\n" + "-" * len(head))
    for name in names:
        seed_name, rec_name, ch, classes = PAIRS[name]
        seed_cfg, rec_cfg = load(seed_name), load(rec_name)
        with tempfile.TemporaryDirectory() as tmp:
            trainers = [trainer_for(seed_cfg, ch, classes, Path(tmp) / "seed"),
                        trainer_for(rec_cfg, ch, classes, Path(tmp) / "rec")]
            s, r = seconds_per_image(trainers)
            s_end, r_end = epoch_end_seconds_per_image(trainers)
        es, er = seed_cfg.train.epochs, rec_cfg.train.epochs
        ratio = er * (r + r_end) / (es * (s + s_end))
        print(f"{name:14s} {1e3 * s:11.3f} {1e3 * r:10.3f} {r / s:8.2f}x {1e3 * s_end:8.3f} {1e3 * r_end:7.3f} "
              f"{es:7d} {er:6d} {ratio:14.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:])
