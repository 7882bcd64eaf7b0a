"""The GPU check: every bundled config through genlab's default device path, for whoever has a CUDA GPU.

    python bench/gpu_check.py                    # every bundled config, on cuda (under 5 minutes on one GPU)
    python bench/gpu_check.py --configs dcgan_anime64_recommended --steps 400
    python bench/gpu_check.py --device cpu --steps 6 --configs quickstart   # the logic, on any machine
    python bench/gpu_check.py --compile          # the same with train.compile: true, to compare

For each config, with synthetic uint8 data of the config's image shape (no data set needed) and the
config's own model, objective, batch size and precision (`train.precision: auto`: bf16 autocast where
the GPU supports it, else fp16 with a gradient scaler), through the same Loop `genlab train` runs
(batches put on the device by genlab's loader, channels_last where the config has it on; with --compile,
torch.compile of the networks, whose gain on a GPU nobody has measured for genlab yet):

  - time to the first step (model build, first batch, kernels chosen),
  - half the steps, a checkpoint, a fresh loop restored from it (the interrupt-and-resume path), the rest,
  - every logged loss term finite, and the resumed loop at the step it should be,
  - img/s of the steps after the resume, peak device memory (torch.cuda.max_memory_allocated; on CPU the
    process's peak RSS).

It prints one line per config and a JSON summary, and exits 1 if any check failed. Nothing here is timed
against a target: the figures are for the user to read (and to paste into an issue).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genlab import checkpoint
from genlab.config import load
from genlab.data import DataBundle, ImageSet, Normalizer, channels_of
from genlab.engine.loaders import uses_channels_last
from genlab.history import read_history
from genlab.paths import packaged_configs
from genlab.run import create_run, plan_run
from genlab.training import loop_for

CPU_BATCH = 8  # --device cpu checks the logic, not the speed: small batches keep it quick


def synthetic(cfg, n: int) -> DataBundle:
    """Random images of the config's shape with 10 labels, so conditional models and metrics work."""
    size, ch = cfg.data.image_size, channels_of(cfg.data)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, size, size, ch), dtype=np.uint8)
    labels = rng.integers(0, 10, n)
    names = [str(i) for i in range(10)]
    val = min(len(images), 128)
    return DataBundle(ImageSet(images, labels, names), ImageSet(images[:val], labels[:val], names), ch, size,
                      Normalizer(cfg.data.normalize, ch))


def _finite(run_dir: Path) -> bool:
    rows = read_history(run_dir / "history.csv")
    values = [float(v) for r in rows for k, v in r.items()
              if k not in ("scope", "split", "epoch", "step", "images", "seconds") and v not in ("", None)]
    return bool(values) and all(math.isfinite(v) for v in values)


def check_config(name: str, device: str, steps: int, tmp: Path, compile_: bool = False) -> dict:
    sets = [f"train.compile={str(compile_).lower()}",
            "train.progress=false", "train.figures=false", "train.epoch_samples=false", f"train.device={device}",
            "train.checkpoint_every_steps=1000000", "train.eval_every_steps=1000000", "train.tensorboard=false"]
    if device == "cpu":
        sets.append(f"train.batch_size={CPU_BATCH}")
    cfg = load(name, sets)
    dev = torch.device(device)
    data = synthetic(cfg, cfg.train.batch_size * (steps + 2))
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 1})})
    run = create_run(plan_run(cfg, tmp, overwrite=False), cfg, overwrite=False)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    loop = loop_for(cfg, data, run, dev)
    loop.fit(stop_after_steps=1)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    first_step = time.perf_counter() - t0
    half = max(2, steps // 2)
    loop.fit(stop_after_steps=half)  # ends with a checkpoint, as an interrupted run does
    resumed = loop_for(cfg, data, run, dev)
    resumed.restore(checkpoint.load(run.last, map_location="cpu"), run.last)
    at_resume = resumed.progress.step
    resumed.fit(stop_after_steps=half + 1)  # the first step after a restore is not timed
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t, images0 = time.perf_counter(), resumed.progress.images
    resumed.fit(stop_after_steps=steps)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    elapsed, images = time.perf_counter() - t, resumed.progress.images - images0
    peak = (torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    checks = {"resumed at its step": at_resume == half, "reached the last step": resumed.progress.step == steps,
              "losses finite": _finite(run.path)}
    return {"config": name, "precision": loop.precision, "channels_last": uses_channels_last(cfg),
            "compiled": loop.compiled,
            "batch": cfg.train.batch_size, "first_step_s": round(first_step, 2),
            "img_per_s": round(images / max(elapsed, 1e-9), 1), "peak_mib": round(peak, 1), "checks": checks,
            "ok": all(checks.values())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu to check the logic only")
    p.add_argument("--steps", type=int, default=200, help="steps per config (default 200)")
    p.add_argument("--configs", nargs="+", default=None, help="bundled config names (default: all)")
    p.add_argument("--json", type=Path, help="also write the summary to this file")
    p.add_argument("--compile", action="store_true", help="train.compile: true for every config (run once with "
                   "and once without to see what torch.compile buys on this GPU, first step included)")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here (torch.cuda.is_available() is False); on a GPU machine run "
              "`python bench/gpu_check.py`, or `--device cpu` to check the logic.", file=sys.stderr)
        return 2
    if args.steps < 4:
        print("gpu_check: --steps must be at least 4 (a half, a resume, and timed steps).", file=sys.stderr)
        return 2
    names = args.configs or packaged_configs()
    unknown = sorted(set(names) - set(packaged_configs()))
    if unknown:
        print(f"gpu_check: unknown config(s) {', '.join(unknown)}; bundled: {', '.join(packaged_configs())}",
              file=sys.stderr)
        return 2
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name(torch.device(args.device))}, torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
    results = []
    print(f"{'config':34s} {'precision':9s} {'batch':>5s} {'first step s':>12s} {'img/s':>9s} {'peak MiB':>9s}  checks")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            try:
                r = check_config(name, args.device, args.steps, Path(tmp) / name, args.compile)
            except Exception as exc:  # one config's failure is reported, the others still run
                r = {"config": name, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
                print(f"{name:34s} FAILED: {r['error'][:200]}")
            else:
                bad = [k for k, v in r["checks"].items() if not v]
                print(f"{name:34s} {r['precision']:9s} {r['batch']:5d} {r['first_step_s']:12.2f} "
                      f"{r['img_per_s']:9.1f} {r['peak_mib']:9.1f}  {'ok' if not bad else 'FAILED: ' + ', '.join(bad)}")
            results.append(r)
    summary = {"device": args.device, "steps": args.steps, "results": results, "ok": all(r["ok"] for r in results)}
    print(json.dumps(summary))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
