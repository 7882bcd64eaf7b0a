"""The whole run as a user runs it, not the step alone: a real `genlab train` subprocess per config.

For each config it runs `genlab train CONFIG --set train.epochs=N` in a fresh process and prints where the
process's wall time, CPU and minor page faults went: Python start-up and imports (the process's wall time
less the run's own), then the phases the run records in summary.json (genlab.engine.phases): start-up
(config, data, model), data loading, training steps, the loop's per-step work, validation, epoch-end hooks
(sample grids, latent usage), checkpoints, end-of-training scores and figures. It also prints the share of
the wall time spent in training steps, and the page faults taken during the training epochs per trained
image, which the tuned allocator should keep near zero.

It then times the imports `genlab eval` makes before it starts work, in a fresh process.

    GENLAB_DATA=../shared/data python bench/whole_run.py                       # both configs, 4 epochs
    GENLAB_DATA=../shared/data python bench/whole_run.py betavae_cats_recommended --epochs 2

The configs read real data (cat and anime faces under $GENLAB_DATA); one that is missing is skipped
with the reason. Absolute times on a shared machine are noise; the shares are what to compare.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIGS = ("betavae_cats_recommended", "dcgan_anime64_recommended")
EPOCH_PHASES = ("data", "steps", "step_hooks", "validation", "epoch_end_hooks", "checkpoints", "training_rest")
LABELS = {
    "imports": "Python start-up and imports",
    "startup": "start-up (config, data, model)",
    "data": "data loading",
    "steps": "training steps",
    "step_hooks": "per-step loop work",
    "validation": "per-epoch validation",
    "epoch_end_hooks": "epoch-end hooks",
    "checkpoints": "checkpoints",
    "training_rest": "rest of the loop",
    "end_of_training_scores": "end-of-training scores",
    "figures": "figures",
}


def run_config(name: str, epochs: int, out: Path, extra: list[str]) -> dict | None:
    cmd = [sys.executable, "-m", "genlab", "train", name, "--set", f"train.epochs={epochs}",
           "--set", f"output.root={out}", "--set", "train.progress=false", "--overwrite", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        print(f"{name}: skipped, genlab train exited {proc.returncode}: {' / '.join(tail)}")
        return None
    summary = json.loads((out / name / "summary.json").read_text())
    return {"wall": wall, "summary": summary,
            "user": after.ru_utime - before.ru_utime, "system": after.ru_stime - before.ru_stime,
            "minor_faults": after.ru_minflt - before.ru_minflt}


def report(name: str, r: dict) -> None:
    s = r["summary"]
    phases = dict(s["phases"])
    own = s["timings_seconds"]["wall"]
    phases = {"imports": {"seconds": r["wall"] - own, "minor_faults": None, "system_seconds": None}, **phases}
    images = s["progress"]["images"]
    print(f"\n{name}: {s['progress']['epochs_completed']} epochs, {s['progress']['steps']} steps, "
          f"{images:,} images; process wall {r['wall']:.1f} s, user {r['user']:.1f} s, system {r['system']:.1f} s, "
          f"{r['minor_faults']:,} minor faults")
    print(f"  {'phase':32s} {'seconds':>8s} {'share':>6s} {'system s':>9s} {'minor faults':>13s}")
    for key, p in phases.items():
        faults = "" if p.get("minor_faults") is None else f"{p['minor_faults']:,}"
        system = "" if p.get("system_seconds") is None else f"{p['system_seconds']:.2f}"
        print(f"  {LABELS.get(key, key):32s} {p['seconds']:8.2f} {p['seconds'] / r['wall']:6.1%} {system:>9s} "
              f"{faults:>13s}")
    steps = phases.get("steps", {}).get("seconds", 0.0)
    epoch_faults = sum(phases[k]["minor_faults"] for k in EPOCH_PHASES if k in phases)
    print(f"  training steps: {steps / r['wall']:.1%} of the process's wall time (target >= 75%)")
    print(f"  minor faults during the training epochs: {epoch_faults / max(images, 1):.1f} per trained image "
          f"(target < 5); in the steps alone {phases.get('steps', {}).get('minor_faults', 0) / max(images, 1):.1f}")


def eval_imports() -> float:
    """Seconds to import what `genlab eval` needs before it starts work, in a fresh process (best of 3)."""
    code = ("import time; t = time.perf_counter(); import genlab.cli, genlab.evaluate, genlab.metrics.registry; "
            "print(time.perf_counter() - t)")
    return min(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                     .stdout) for _ in range(3))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("configs", nargs="*", default=list(CONFIGS))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed on to genlab train")
    args = p.parse_args()
    if not os.environ.get("GENLAB_DATA"):
        print("note: $GENLAB_DATA is not set; configs whose data.root is relative will not find their data")
    extra = [x for kv in args.set for x in ("--set", kv)]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            r = run_config(name, args.epochs, Path(tmp), extra)
            if r is not None:
                report(name, r)
    print(f"\nimports before `genlab eval` starts work: {eval_imports():.2f} s (target < 3 s)")


if __name__ == "__main__":
    main()
