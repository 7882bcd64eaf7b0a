"""bf16 autocast against fp32 on this CPU, step against step in one process, for each benchmark shape.

    python bench/cpu_precision.py               # every shape of bench/train_speed.py
    python bench/cpu_precision.py dcgan64       # one

Both loops are genlab's real training loop on the same synthetic batches; they run in alternating blocks,
so a machine that slows down part way slows both. Prints img/s of each (median over blocks, with the
spread), the ratio, and whether this CPU has native bf16 (AVX512-BF16 or AMX), which `train.precision:
auto` keys on.
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
    with tempfile.TemporaryDirectory() as tmp:
        loops = {p: build(name, total, Path(tmp) / p, precision=p) for p in ("fp32", "bf16")}
        for loop in loops.values():
            loop.fit(stop_after_steps=WARMUP)
        rates: dict[str, list[float]] = {p: [] for p in loops}
        for _ in range(BLOCKS):
            for p, loop in loops.items():
                rates[p].append(block_rate(loop, STEPS_PER_BLOCK))
    med = {p: statistics.median(r) for p, r in rates.items()}
    ratios = [b / f for b, f in zip(rates["bf16"], rates["fp32"])]
    return {"fp32": med["fp32"], "bf16": med["bf16"], "ratio": statistics.median(ratios),
            "ratio_min": min(ratios), "ratio_max": max(ratios)}


def main(names: list[str]) -> None:
    print(f"native bf16 on this CPU: {'yes' if cpu_bf16_native() else 'no'}")
    print(f"{'shape':12s} {'fp32 img/s':>11s} {'bf16 img/s':>11s} {'bf16/fp32':>10s} {'spread':>13s}")
    for name in names:
        r = compare(name)
        print(f"{name:12s} {r['fp32']:11.1f} {r['bf16']:11.1f} {r['ratio']:9.2f}x "
              f"{r['ratio_min']:6.2f}-{r['ratio_max']:.2f}x")


if __name__ == "__main__":
    main(sys.argv[1:] or list(SHAPES))
