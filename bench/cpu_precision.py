"""bf16 autocast against fp32 on this CPU, step against step in one process, for each benchmark shape.

    python bench/cpu_precision.py               # every shape of bench/train_speed.py
    python bench/cpu_precision.py dcgan64       # one

Both loops are genlab's real training loop on the same synthetic batches; they run in alternating blocks,
so a machine that slows down part way slows both. Prints img/s of each (median over blocks, with the
spread), the ratio, and whether this CPU has native bf16 (AVX512-BF16 or AMX), which `train.precision:
auto` keys on. The GAN shapes' bf16 side keeps D's own step in fp32 (objective.d_fp32's default); a third
side, "bf16, D in bf16" (d_fp32: never), shows what that costs.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from train_speed import SHAPES, build  # noqa: E402

from genlab.device import cpu_bf16_native  # noqa: E402

BLOCKS, STEPS_PER_BLOCK, WARMUP = 5, 4, 3


def block_rate(loop, steps: int) -> float:
    t, images = time.perf_counter(), loop.progress.images
    loop.fit(stop_after_steps=loop.progress.step + steps)
    return (loop.progress.images - images) / (time.perf_counter() - t)


def compare(name: str) -> dict[str, float]:
    total = WARMUP + BLOCKS * STEPS_PER_BLOCK + 2
    sides = {"fp32": ("fp32", None), "bf16": ("bf16", None)}
    if SHAPES[name][1].get("kind") == "adversarial":
        sides["bf16_d_bf16"] = ("bf16", {"d_fp32": "never"})
    with tempfile.TemporaryDirectory() as tmp:
        loops = {k: build(name, total, Path(tmp) / k, precision=p, objective_overrides=o)
                 for k, (p, o) in sides.items()}
        for loop in loops.values():
            loop.fit(stop_after_steps=WARMUP)
        rates: dict[str, list[float]] = {p: [] for p in loops}
        for _ in range(BLOCKS):
            for p, loop in loops.items():
                rates[p].append(block_rate(loop, STEPS_PER_BLOCK))
    out = {p: statistics.median(r) for p, r in rates.items()}
    for side in [k for k in rates if k != "fp32"]:
        ratios = [b / f for b, f in zip(rates[side], rates["fp32"])]
        out |= {f"{side}_ratio": statistics.median(ratios), f"{side}_min": min(ratios), f"{side}_max": max(ratios)}
    return out


def main(names: list[str]) -> None:
    print(f"native bf16 on this CPU: {'yes' if cpu_bf16_native() else 'no'}")
    print(f"{'shape':12s} {'fp32 img/s':>11s} {'bf16 img/s':>11s} {'bf16/fp32':>10s} {'spread':>13s}")
    for name in names:
        r = compare(name)
        print(f"{name:12s} {r['fp32']:11.1f} {r['bf16']:11.1f} {r['bf16_ratio']:9.2f}x "
              f"{r['bf16_min']:6.2f}-{r['bf16_max']:.2f}x")
        if "bf16_d_bf16" in r:
            print(f"{'  D in bf16':12s} {'':11s} {r['bf16_d_bf16']:11.1f} {r['bf16_d_bf16_ratio']:9.2f}x "
                  f"{r['bf16_d_bf16_min']:6.2f}-{r['bf16_d_bf16_max']:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:] or list(SHAPES))
