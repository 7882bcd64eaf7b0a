"""genlab's real training step against the code users would otherwise run, side by side in one process.

For each seed experiment's shape it builds, in one process:
  - each reference of bench/references.py (a plain PyTorch re-implementation of the published code),
  - genlab's real training loop for the seed config (`Loop.fit`: history rows, hooks, bookkeeping) at its
    defaults (`precision: auto`: bf16 on a CPU with native bf16 for the families checked in it, else fp32),
    and again in the other of fp32 and bf16, so the fp32 ratio (equal arithmetic) and the default's are both
    printed,
  - genlab's bare step (the objective's `train_step` on the same loop's batches, nothing around it),
and times them in alternating blocks (the order rotating each block), so a machine whose speed drifts
slows every side alike. It prints per side: img/s (median over blocks, with the range), GFLOP per image
(torch.utils.flop_counter on one step), achieved GFLOP/s and its share of this machine's fp32 and bf16
matmul peaks measured in the same run; then each ratio as the median of the per-block ratios, with the
range. genlab's side trains on synthetic uint8 images of the experiment's shape (no data set needed);
the references train on float tensors already in memory, as their DataLoaders hand them over.

    python bench/side_by_side.py                    # beta_vae64 dcgan64 cgan28 dae28 (~10 min on 2 cores)
    python bench/side_by_side.py dcgan64 --blocks 7 --seconds 3
    GENLAB_DATA=../shared/data python bench/side_by_side.py --own-process     # and as users run them

--own-process adds "as users run them": `genlab train SEED_CONFIG` at its defaults on the real data set
(read through $GENLAB_DATA; skipped when absent) against each reference's step in a fresh Python process of
its own (glibc's malloc, fp32, eager), each run twice, for N1 and N2 steps; the marginal rate
batch * (N2 - N1) / (t2 - t1) cancels start-up and end-of-run work, which `bench/whole_run.py` measures.

Ratios measured in one run hold on a noisy shared machine; the absolute rates do not.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))

from loop_overhead import bare_block  # noqa: E402
from recommended_cost import trainer_for  # noqa: E402
from references import REFERENCES  # noqa: E402
from train_speed import machine_peak  # noqa: E402

from genlab.config import load, validate  # noqa: E402
from genlab.device import select_precision  # noqa: E402
from genlab.objectives import cpu_bf16  # noqa: E402

# shape: (the seed experiment's config, channels, classes)
SEED_CONFIGS = {
    "beta_vae64": ("betavae_cats", 3, 0),
    "dcgan64": ("dcgan_anime64", 3, 0),
    "cgan28": ("cgan_mnist", 1, 10),
    "dae28": ("dae_fashion_mnist", 1, 10),
}
# genlab at a reference's own widths, for a comparison at equal work: shape -> (label, model settings)
AT_REFERENCE_WIDTHS = {
    "dae28": ("genlab ae at the tutorial's 16-32, latent 64", {"hidden_dims": [16, 32], "latent_dim": 64}),
}


class Side:
    """One contender: `run(steps)` trains that many steps and returns the images it trained on and the
    seconds of the block that are not training (left out of its rate)."""

    def __init__(self, label: str, batch: int, run: Callable[[int], tuple[int, float]],
                 flops: Callable[[], float]):
        self.label, self.batch, self.run, self.count_flops = label, batch, run, flops
        self.rates: list[float] = []
        self.steps = 1
        self.flops_per_image = 0.0

    def block(self) -> float:
        t = time.perf_counter()
        images, excluded = self.run(self.steps)
        rate = images / (time.perf_counter() - t - excluded)
        self.rates.append(rate)
        return rate


def reference_side(ref, seed: int = 0) -> Side:
    step = ref.make(seed)

    def run(steps: int) -> tuple[int, float]:
        for _ in range(steps):
            step()
        return steps * ref.batch, 0.0

    def flops() -> float:
        with FlopCounterMode(display=False) as counter:
            step()
        return counter.get_total_flops() / ref.batch

    return Side(ref.name, ref.batch, run, flops)


def genlab_sides(shape: str, tmp: Path, total_steps: int) -> list[Side]:
    """genlab's loop at its defaults, its bare step, its loop in the other precision (fp32 where auto is
    bf16, else bf16), and (for some shapes) its loop at a reference's widths, in that order."""
    name, channels, classes = SEED_CONFIGS[shape]
    cfg = load(name)
    sides = []
    auto = select_precision("auto", torch.device("cpu"), cpu_bf16_checked=cpu_bf16(cfg.objective))
    other = "fp32" if auto == "bf16" else "bf16"
    kinds = [("auto", None), (other, None)] + ([("auto", AT_REFERENCE_WIDTHS[shape])]
                                                if shape in AT_REFERENCE_WIDTHS else [])
    for precision, widths in kinds:
        model = {**cfg.to_dict()["model"], **(widths[1] if widths else {})}
        variant = validate({**cfg.to_dict(), "model": model,
                            "train": {**cfg.train.model_dump(mode="json"), "precision": precision}})
        folder = tmp / (precision if widths is None else "widths")
        loop = trainer_for(variant, channels, classes, folder, steps=total_steps)
        batch = variant.train.batch_size

        def run(steps: int, loop=loop) -> tuple[int, float]:
            # fit(stop_after_steps) ends like an interruption, with a checkpoint a real run would not write
            # there: its time is left out of the block
            start, saving = loop.progress.images, _checkpoint_seconds(loop)
            loop.fit(stop_after_steps=loop.progress.step + steps)
            return loop.progress.images - start, _checkpoint_seconds(loop) - saving

        def flops(loop=loop, batch=batch) -> float:
            b = next(iter(loop.train_loader.batches(0)))
            with FlopCounterMode(display=False) as counter:
                loop.objective.train_step(b, loop.progress.step, loop.stepper)
            return counter.get_total_flops() / batch

        label = f"genlab {name} ({loop.precision})" if widths is None else f"{widths[0]} ({loop.precision})"
        sides.append(Side(label, batch, run, flops))
        if precision == "auto" and widths is None:
            def bare(steps: int, loop=loop, batch=batch) -> tuple[int, float]:
                bare_block(loop, steps)  # `steps` full batches of the loop's loader, outside the loop
                return steps * batch, 0.0

            sides.append(Side(f"genlab bare step ({loop.precision})", batch, bare, flops))
    return sides


def _checkpoint_seconds(loop) -> float:
    usage = loop.phases.usage.get("checkpoints")
    return usage.seconds if usage else 0.0


def calibrate(side: Side, seconds: float) -> None:
    """Warm up (first allocations, lazy imports), then size a block to take about `seconds`."""
    side.run(1)
    t = time.perf_counter()
    _, excluded = side.run(1)
    side.steps = max(1, round(seconds / max(time.perf_counter() - t - excluded, 1e-6)))


def ratio(a: Side, b: Side) -> tuple[float, float, float]:
    r = [x / y for x, y in zip(a.rates, b.rates)]
    return statistics.median(r), min(r), max(r)


def measure(shape: str, blocks: int, seconds: float) -> list[Side]:
    with tempfile.TemporaryDirectory() as tmp:
        refs = [reference_side(r) for r in REFERENCES[shape]]
        # enough steps in genlab's epoch for warm-up, calibration and every block without an epoch end
        probe = refs[0]
        calibrate(probe, seconds)
        budget = 10 + blocks * max(4, probe.steps * 6)
        sides = refs + genlab_sides(shape, Path(tmp), budget)
        for s in sides[1:]:
            calibrate(s, seconds)
        for s in sides:
            s.flops_per_image = s.count_flops()
        for i in range(blocks):
            order = sides[i % len(sides):] + sides[:i % len(sides)]
            for s in order:
                s.block()
    return sides


def reference_process(shape: str, index: int, steps: int) -> None:
    """The body of a reference's own process: build, then train `steps` steps; the parent times it all."""
    step = REFERENCES[shape][index].make(0)
    for _ in range(steps):
        step()


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float | None:
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-2:]
        print(f"    failed ({proc.returncode}): {' / '.join(tail)}")
        return None
    return time.perf_counter() - t


def marginal(run: Callable[[int], float | None], n1: int, n2: int, batch: int) -> float | None:
    t1, t2 = run(n1), run(n2)
    if t1 is None or t2 is None or t2 <= t1:
        return None
    return batch * (n2 - n1) / (t2 - t1)


def own_process(shape: str, sides: list[Side], seconds: float) -> None:
    """As users run them: genlab train at its defaults against each reference in a process of its own."""
    name, _, _ = SEED_CONFIGS[shape]
    if not os.environ.get("GENLAB_DATA"):
        print(f"  as users run them: skipped, $GENLAB_DATA is not set ({name} trains on its real data set)\n")
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "GLIBC_TUNABLES"))}
    rates: dict[str, float | None] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, ref in enumerate(REFERENCES[shape]):
            n = max(2, round(seconds * statistics.median(sides[i].rates) / ref.batch))
            cmd = [sys.executable, __file__, "--reference-process", shape, str(i)]
            rates[ref.name] = marginal(lambda k, cmd=cmd: _timed([*cmd, str(k)], env), 2, 2 + n, ref.batch)
        genlab_side = sides[len(REFERENCES[shape])]
        n = max(2, round(seconds * statistics.median(genlab_side.rates) / genlab_side.batch))

        def genlab_run(k: int) -> float | None:
            return _timed([sys.executable, "-m", "genlab", "train", name, "--set", f"train.max_steps={k}",
                           "--set", f"output.root={tmp}", "--set", "train.progress=false", "--overwrite"])

        mine = rates["genlab"] = marginal(genlab_run, 2, 2 + n, genlab_side.batch)
    for ref in REFERENCES[shape]:
        theirs = rates[ref.name]
        shown = f"{mine / theirs:.2f}x" if mine and theirs else "—"
        print(f"  as users run them: genlab train {name} {mine or 0:.1f} img/s, {ref.name} in its own process "
              f"{theirs or 0:.1f} img/s: {shown}")
    print()


def main(argv: list[str]) -> None:
    if argv[:1] == ["--reference-process"]:
        reference_process(argv[1], int(argv[2]), int(argv[3]))
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shapes", nargs="*", metavar="SHAPE", help=f"any of {', '.join(SEED_CONFIGS)} (default: all)")
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--seconds", type=float, default=2.0, help="length of one side's block")
    p.add_argument("--own-process", action="store_true", help="also time genlab train and each reference "
                   "in processes of their own (needs $GENLAB_DATA)")
    p.add_argument("--own-seconds", type=float, default=30.0, help="marginal training time per own-process pair")
    args = p.parse_args(argv)
    unknown = sorted(set(args.shapes) - set(SEED_CONFIGS))
    if unknown:
        p.error(f"unknown shape(s) {', '.join(unknown)}; choose from {', '.join(SEED_CONFIGS)}")
    shapes = args.shapes or list(SEED_CONFIGS)
    peak = machine_peak()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; this machine now: fp32 matmul "
          f"{peak['fp32_matmul'] / 1e9:.0f} GFLOP/s, bf16 matmul {peak['bf16_matmul'] / 1e9:.0f} GFLOP/s; "
          f"{args.blocks} alternating blocks of ~{args.seconds:g} s per side\n")
    head = (f"{'shape':10s} {'side':52s} {'batch':>5s} {'img/s':>8s} {'range':>15s} {'GFLOP/img':>9s} "
            f"{'GFLOP/s':>8s} {'% fp32 pk':>9s} {'% bf16 pk':>9s}")
    for shape in shapes:
        sides = measure(shape, args.blocks, args.seconds)
        print(head + "\n" + "-" * len(head))
        for s in sides:
            rate = statistics.median(s.rates)
            achieved = rate * s.flops_per_image
            print(f"{shape:10s} {s.label:52s} {s.batch:5d} {rate:8.1f} {min(s.rates):7.1f}-{max(s.rates):<7.1f} "
                  f"{s.flops_per_image / 1e9:9.3f} {achieved / 1e9:8.1f} {100 * achieved / peak['fp32_matmul']:8.1f}% "
                  f"{100 * achieved / peak['bf16_matmul']:8.1f}%")
        refs = sides[:len(REFERENCES[shape])]
        loop, bare, other, *widths = sides[len(refs):]
        for ref in refs:
            for g in (loop, other, *widths):
                m, lo, hi = ratio(g, ref)
                print(f"  {g.label} / {ref.label}: {m:.2f}x ({lo:.2f}-{hi:.2f})")
        m, lo, hi = ratio(loop, bare)
        print(f"  genlab loop / its bare step: {m:.3f} ({lo:.3f}-{hi:.3f})\n", flush=True)
        if args.own_process:
            own_process(shape, sides, args.own_seconds)


if __name__ == "__main__":
    main(sys.argv[1:])
