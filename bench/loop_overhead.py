"""What the training loop costs beyond the objective's own step, measured in one process.

For each shape (train_speed.py's synthetic data and configs) it alternates blocks of K steps of the real
loop (`fit`: history rows, hooks, progress, bookkeeping) with blocks of K bare steps (the objective's
`train_step` on the loader's batches, nothing else), and prints img/s of each and the loop's share of the
bare rate. Alternating blocks in one process make the ratio hold on a machine whose speed drifts (this
one's has been seen to change 5x between runs); absolute rates do not.

    python bench/loop_overhead.py                       # dae28 cgan28 beta_vae64
    python bench/loop_overhead.py dcgan64 --blocks 4 --steps 5
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).parent


def _train_speed():
    spec = importlib.util.spec_from_file_location("train_speed", HERE / "train_speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _autocast(loop):
    from genlab.device import autocast

    return autocast(loop.device, loop.precision)


def bare_block(loop, steps: int) -> float:
    """img/s of the objective's step alone, on the same loader and stepper, for `steps` batches."""
    batches = loop.train_loader.batches(0)
    images, t = 0, time.perf_counter()
    for _ in range(steps):
        batch = next(batches)
        with _autocast(loop):
            terms = loop.objective.train_step(batch, loop.progress.step, loop.stepper)
        torch.stack([v.float() for v in terms.values()]).tolist()  # the loop reads the terms too
        images += batch.images.shape[0]
    return images / (time.perf_counter() - t)


def loop_block(loop, steps: int) -> float:
    start, t = loop.progress.images, time.perf_counter()
    loop.fit(stop_after_steps=loop.progress.step + steps)
    return (loop.progress.images - start) / (time.perf_counter() - t)


def measure(name: str, blocks: int, steps: int) -> tuple[list[float], list[float]]:
    ts = _train_speed()
    with tempfile.TemporaryDirectory() as tmp:
        loop = ts.build(name, blocks * steps * 2 + steps + 4, Path(tmp))
        loop_block(loop, 2)  # warm-up: first allocations, lazy imports
        bare_block(loop, 2)
        loops, bares = [], []
        for i in range(blocks):  # alternate which goes first, so a drift within a pair cancels
            if i % 2:
                bares.append(bare_block(loop, steps))
                loops.append(loop_block(loop, steps))
            else:
                loops.append(loop_block(loop, steps))
                bares.append(bare_block(loop, steps))
    return loops, bares


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shapes", nargs="*", default=["dae28", "cgan28", "beta_vae64"])
    p.add_argument("--blocks", type=int, default=6)
    p.add_argument("--steps", type=int, default=8)
    args = p.parse_args(argv)
    import genlab

    print(f"genlab {genlab.__version__} ({Path(genlab.__file__).parent}), torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {args.blocks} alternating blocks of {args.steps} steps\n")
    print(f"{'shape':12s} {'loop img/s':>10s} {'bare img/s':>10s} {'loop / bare':>11s} {'per-block range':>17s}")
    for name in args.shapes:
        loops, bares = measure(name, args.blocks, args.steps)
        ratios = [a / b for a, b in zip(loops, bares)]
        print(f"{name:12s} {statistics.median(loops):10.1f} {statistics.median(bares):10.1f} "
              f"{statistics.median(ratios):10.3f}x {min(ratios):8.3f}-{max(ratios):.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
