"""Does train.compile pay off within a recommended config's run? Step rates eager against compiled, and what
compiling costs, cold (empty cache) and warm (the cache a previous run left).

For each config it prints:
  eager / compiled img/s   the config's real training loop on synthetic data of its shape, both loops in
                           one process, alternating blocks (median over blocks)
  speed-up                 compiled / eager, the median of per-block ratios
  cold s, warm s           extra seconds compiling costs a run, measured in fresh processes: the first
                           training step and the first validation pass against later ones (train and eval
                           mode are separate graphs), with an empty Inductor cache, then with that cache
  break-even images        cold seconds / (eager - compiled seconds per image)
  run images               the config's epochs x training images ($GENLAB_DATA; a dash without it)

    python bench/compile_speed.py                                 # every recommended config
    GENLAB_DATA=../shared/data python bench/compile_speed.py betavae_cats_recommended

Ratios measured in one run hold on a noisy shared machine; the absolute rates do not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from recommended_cost import trainer_for  # noqa: E402

from genlab.config import RunConfig, load, validate  # noqa: E402

CONFIGS = {  # name: (channels, classes)
    "betavae_cats_recommended": (3, 0),
    "dcgan_anime64_recommended": (3, 0),
    "cgan_mnist_recommended": (1, 10),
    "dae_fashion_mnist_recommended": (1, 10),
    "resvae_celeba128_recommended": (3, 0),
    "sngan_anime64_recommended": (3, 0),
}


def variant(name: str, compile_: bool) -> RunConfig:
    cfg = load(name)
    return validate({**cfg.to_dict(), "train": {**cfg.train.model_dump(mode="json"), "compile": compile_}})


def _block(loop, steps: int) -> float:
    start, t = loop.progress.images, time.perf_counter()
    saving = loop.phases.usage["checkpoints"].seconds if "checkpoints" in loop.phases.usage else 0.0
    loop.fit(stop_after_steps=loop.progress.step + steps)
    saved = loop.phases.usage["checkpoints"].seconds - saving  # the block's closing save is not training
    return (loop.progress.images - start) / (time.perf_counter() - t - saved)


def overhead(name: str) -> dict[str, float]:
    """In this (fresh) process: the compiled loop's first step and first validation against the second ones."""
    ch, classes = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        loop = trainer_for(variant(name, True), ch, classes, Path(tmp), steps=8)
        times = []
        for _ in range(2):
            t = time.perf_counter()
            loop.fit(stop_after_steps=loop.progress.step + 1)
            step = time.perf_counter() - t
            t = time.perf_counter()
            loop._evaluate("epoch")
            times.append((step, time.perf_counter() - t))
    (s1, e1), (s2, e2) = times
    return {"step": s1 - s2, "eval": e1 - e2}


def rates(name: str, blocks: int, seconds: float) -> tuple[list[float], list[float]]:
    ch, classes = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        loops = {}
        for c in (False, True):
            probe = trainer_for(variant(name, c), ch, classes, Path(tmp) / f"probe{c}", steps=4)
            _block(probe, 2)  # compiles (or not) and warms up
            steps = max(1, round(seconds * _block(probe, 2) / probe.cfg.train.batch_size))
            loops[c] = (trainer_for(variant(name, c), ch, classes, Path(tmp) / str(c),
                                    steps=4 + blocks * steps), steps)
            _block(loops[c][0], 2)
        out: dict[bool, list[float]] = {False: [], True: []}
        for i in range(blocks):
            for c in ((False, True) if i % 2 == 0 else (True, False)):
                loop, steps = loops[c]
                out[c].append(_block(loop, steps))
    return out[False], out[True]


def run_images(name: str) -> int | None:
    if not os.environ.get("GENLAB_DATA"):
        return None
    from genlab.data import load_data

    cfg = load(name)
    try:
        return cfg.train.epochs * len(load_data(cfg.data).train)
    except Exception as exc:  # noqa: BLE001 - a missing data set only costs this column
        print(f"  ({name}: no run length, {exc})")
        return None


def main(argv: list[str]) -> None:
    if argv[:1] == ["--overhead"]:
        print(json.dumps(overhead(argv[1])))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="*", metavar="CONFIG", help=f"any of {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--blocks", type=int, default=4)
    p.add_argument("--seconds", type=float, default=3.0)
    args = p.parse_args(argv)
    unknown = sorted(set(args.configs) - set(CONFIGS))
    if unknown:
        p.error(f"unknown config(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    args.configs = args.configs or list(CONFIGS)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    head = (f"{'config':30s} {'eager img/s':>11s} {'compiled':>9s} {'speed-up':>14s} {'cold s':>7s} {'warm s':>7s} "
            f"{'break-even img':>14s} {'run images':>10s}")
    print(head + "\n" + "-" * len(head))
    for name in args.configs:
        eager, compiled = rates(name, args.blocks, args.seconds)
        ratios = [c / e for c, e in zip(compiled, eager)]
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
            cold, warm = (json.loads(subprocess.run([sys.executable, __file__, "--overhead", name], env=env,
                                                    capture_output=True, text=True, check=True
                                                    ).stdout.strip().splitlines()[-1]) for _ in range(2))
        e, c = statistics.median(eager), statistics.median(compiled)
        cold_s, warm_s = cold["step"] + cold["eval"], warm["step"] + warm["eval"]
        gain = 1 / e - 1 / c
        even = f"{cold_s / gain:,.0f}" if gain > 0 else "never"
        total = run_images(name)
        print(f"{name:30s} {e:11.1f} {c:9.1f} {statistics.median(ratios):6.2f}x "
              f"({min(ratios):.2f}-{max(ratios):.2f}) {cold_s:7.1f} {warm_s:7.1f} {even:>14s} "
              f"{f'{total:,}' if total else '—':>10s}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
