"""Training speed of the engine for the original experiments' shapes, against this machine's own peak.

For each shape (synthetic uint8 data, so no data set is needed) it prints, from one run:
  train img/s   the real training loop (history, checkpoint bookkeeping and all) after a warm-up, NCHW layout
  loader img/s  the BatchLoader alone (uint8 -> shuffled, flipped, normalised float batches)
  peak RSS      resident memory high-water mark of a fresh process that ran only this shape (MiB)
  GFLOP/step    forward + backward + optimiser FLOPs of one step (torch.utils.flop_counter)
  % of peak     achieved FLOP/s over this machine's fp32 matmul peak, measured in the same run
  NHWC img/s    train img/s again with train.channels_last: true (the peak RSS is of the default run)

and, for the DCGAN experiment's job (50 epochs of ~21,000 anime faces at 64x64, batch 128), an estimate
on paper for one H100: measured FLOPs per step over an assumed fraction of the GPU's published dense
bf16 throughput, with the data rate the loader would need to keep up.

Ratios measured in one run hold on noisy shared machines; absolute times do not. genlab against the reference
implementations, side by side in one process: bench/side_by_side.py.

    python bench/train_speed.py                 # every shape (a few minutes on 2 cores)
    python bench/train_speed.py beta_vae64      # one shape
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.config import validate
from genlab.data import DataBundle, ImageSet, Normalizer
from genlab.engine.loop import Loop
from genlab.run import create_run, plan_run

SHAPES = {
    # name: (model section, objective section, image size, channels, batch)
    "dae28": ({"name": "ae"}, {"reduction": "mean", "noise_std": 0.3}, 28, 1, 128),
    "cgan28": ({"name": "cgan"}, {"kind": "adversarial"}, 28, 1, 200),
    "beta_vae64": ({"name": "beta_vae"}, {"reduction": "mean", "beta": 10, "kld_weight": 0.0025}, 64, 3, 64),
    "res_vae128": ({"name": "res_vae"}, {"beta": 1.0}, 128, 3, 32),
    "dcgan64": ({"name": "dcgan"}, {"kind": "adversarial", "real_target": 0.98}, 64, 3, 128),
}

# On-paper GPU estimate (no GPU here): H100 SXM dense bf16 tensor-core peak, and the share of it
# small convolutional GANs typically reach (they are far from the large-matmul regime).
H100_BF16_FLOPS = 989e12
ASSUMED_UTILISATION = 0.15
DCGAN_JOB = {"images": 21_000, "epochs": 50, "batch": 128}


def build(name: str, steps: int, tmp: Path, channels_last: bool | None = None, allocator: str = "tuned",
          precision: str = "auto", objective_overrides: dict | None = None) -> Loop:
    model, objective, size, ch, batch = SHAPES[name]
    cfg = validate({
        "name": name, "model": model, "objective": {**objective, **(objective_overrides or {})},
        "data": {"name": "digits", "image_size": size, "grayscale": ch == 1, "hflip": True},
        "train": {"epochs": 1, "batch_size": batch, "progress": False, "figures": False, "epoch_samples": False,
                  "checkpoint_every_steps": 10**9, "channels_last": channels_last,
                  "allocator": allocator, "precision": precision},
    })
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (batch * steps, size, size, ch), dtype=np.uint8)
    labels = rng.integers(0, 10, len(images))
    names = [str(i) for i in range(10)]
    data = DataBundle(ImageSet(images, labels, names), ImageSet(images[:batch], labels[:batch], names), ch, size,
                      Normalizer("minus_one_one", ch))
    from genlab.training import loop_for

    torch.manual_seed(0)
    run = create_run(plan_run(cfg, tmp, overwrite=False), cfg, overwrite=False)
    return loop_for(cfg, data, run, torch.device("cpu"))


def train_rate(trainer: Loop, warmup: int, steps: int) -> float:
    trainer.fit(stop_after_steps=warmup)
    t, images0 = time.perf_counter(), trainer.progress.images
    trainer.fit(stop_after_steps=warmup + steps)
    return (trainer.progress.images - images0) / (time.perf_counter() - t)


def loader_rate(trainer: Loop, batches: int = 20) -> float:
    t, n = time.perf_counter(), 0
    for i, batch in enumerate(trainer.train_loader.batches(0)):
        n += batch.images.shape[0]
        if i + 1 >= batches:
            break
    return n / (time.perf_counter() - t)


def step_flops(trainer: Loop) -> float:
    batch = next(iter(trainer.train_loader.batches(0)))
    with FlopCounterMode(display=False) as counter:
        trainer.objective.train_step(batch, trainer.progress.step, trainer.stepper)
    return float(counter.get_total_flops())


def measure_one(name: str, steps: int = 15, warmup: int = 3) -> dict[str, float]:
    """Run in a fresh process, so the memory high-water mark belongs to this shape alone."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build(name, steps + warmup + 2, Path(tmp), channels_last=False)
        rate = train_rate(trainer, warmup, steps)
        loader = loader_rate(trainer)
        flops = step_flops(trainer)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        cl = build(name, steps + warmup + 2, Path(tmp) / "cl", channels_last=True)
        rate_cl = train_rate(cl, warmup, steps)
    return {"train": rate, "loader": loader, "flops": flops, "rss": peak, "train_cl": rate_cl}


def measure_rate(name: str, allocator: str = "tuned", steps: int = 15, warmup: int = 3) -> dict[str, float]:
    """The default layout's train rate, with the page faults and system time of the timed steps alone."""
    with tempfile.TemporaryDirectory() as tmp:
        trainer = build(name, steps + warmup + 2, Path(tmp), allocator=allocator)
        trainer.fit(stop_after_steps=warmup)
        r0, t, images0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter(), trainer.progress.images
        trainer.fit(stop_after_steps=warmup + steps)
        r1, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t
        images = trainer.progress.images - images0
    sys_s, user_s = r1.ru_stime - r0.ru_stime, r1.ru_utime - r0.ru_utime
    return {"train": images / elapsed, "faults_per_image": (r1.ru_minflt - r0.ru_minflt) / images,
            "sys_share": sys_s / max(sys_s + user_s, 1e-9)}


def machine_peak() -> dict[str, float]:
    """FLOP/s of large fp32 and bf16 matmuls and of a typical 3x3 convolution, on this machine, now."""

    def rate(fn, flops: float, reps: int = 5) -> float:
        fn()
        t = time.perf_counter()
        for _ in range(reps):
            fn()
        return flops * reps / (time.perf_counter() - t)

    n = 1024
    a32, b32 = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    x, w = torch.randn(64, 64, 32, 32), torch.randn(128, 64, 3, 3)
    conv_flops = 2 * 64 * 128 * 32 * 32 * 64 * 9
    with torch.no_grad():
        return {"fp32_matmul": rate(lambda: a32 @ b32, 2 * n**3), "bf16_matmul": rate(lambda: a16 @ b16, 2 * n**3),
                "conv3x3": rate(lambda: torch.nn.functional.conv2d(x, w, padding=1), conv_flops)}


def main(argv: list[str]) -> None:
    if argv[:1] == ["--one"]:
        allocator = "system" if "--system-allocator" in argv else "tuned"
        print(json.dumps(measure_rate(argv[1], allocator) if "--rate-only" in argv else measure_one(argv[1])))
        return
    names = argv or list(SHAPES)
    peak = machine_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; this machine now: fp32 matmul "
          f"{peak['fp32_matmul'] / 1e9:.0f} GFLOP/s, bf16 matmul {peak['bf16_matmul'] / 1e9:.0f} GFLOP/s, "
          f"3x3 conv {peak['conv3x3'] / 1e9:.0f} GFLOP/s\n")
    head = (f"{'shape':12s} {'input':>9s} {'batch':>5s} {'train img/s':>11s} {'loader img/s':>12s} "
            f"{'peak RSS':>9s} {'GFLOP/step':>10s} {'% of peak':>9s} {'NHWC img/s':>10s}")
    print(head + "\n" + "-" * len(head))
    results = {}
    for name in names:
        out = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True, check=True)
        r = results[name] = json.loads(out.stdout.strip().splitlines()[-1])
        _, _, size, ch, batch = SHAPES[name]
        achieved = r["flops"] * r["train"] / batch
        print(f"{name:12s} {f'{size}x{size}x{ch}':>9s} {batch:5d} {r['train']:11.1f} {r['loader']:12.0f} "
              f"{r['rss']:8.0f}M {r['flops'] / 1e9:10.2f} {100 * achieved / peak['fp32_matmul']:8.1f}% "
              f"{r['train_cl']:10.1f}")
    if "dcgan64" in results:
        r = results["dcgan64"]
        steps = DCGAN_JOB["epochs"] * -(-DCGAN_JOB["images"] // DCGAN_JOB["batch"])
        seconds = steps * r["flops"] / (H100_BF16_FLOPS * ASSUMED_UTILISATION)
        print(f"\nthe DCGAN experiment's job on one H100 (on paper): {steps:,} steps x {r['flops'] / 1e9:.1f} "
              f"GFLOP/step = "
              f"{steps * r['flops'] / 1e15:.2f} PFLOP; at {ASSUMED_UTILISATION:.0%} of {H100_BF16_FLOPS / 1e12:.0f} "
              f"TFLOP/s dense bf16: {seconds:.0f} s ({seconds / 60:.1f} min), needing "
              f"{steps * DCGAN_JOB['batch'] / seconds:,.0f} images/s from the loader (this CPU's loader: "
              f"{r['loader']:,.0f} img/s; the original run took 33 min on a laptop GPU)")


if __name__ == "__main__":
    main(sys.argv[1:])
