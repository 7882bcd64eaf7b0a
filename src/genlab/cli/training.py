"""`genlab train`."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path


def add_parser(sub, name: str, text: str, flags: dict[str, argparse.ArgumentParser]) -> None:
    from genlab.paths import packaged_configs

    t = sub.add_parser(name, help=text, parents=[flags["debug"]],
                       epilog="bundled configs: " + ", ".join(packaged_configs()))
    t.add_argument("config", nargs="?", help="YAML file or bundled name (default: quickstart; "
                                             "with --resume: the run's saved config)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    t.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted or finished run")
    t.add_argument("--out", type=Path, metavar="DIR", help="parent folder of the run (default: output.root)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    t.set_defaults(run=train)


def train(args) -> int:
    from genlab import config
    from genlab.distributed import launch_from_env
    from genlab.run import resume_config
    from genlab.training import train as run_training

    if args.resume is not None:
        cfg = resume_config(args.resume, args.config, args.overrides)
    else:
        cfg = config.load(args.config or "quickstart", args.overrides)
    outcome = run_training(cfg, out=args.out, overwrite=args.overwrite, resume=args.resume)
    if launch_from_env().rank != 0:  # under torchrun, rank 0 reports for all processes
        return 0
    print_outcome(outcome)
    return 0


def print_outcome(outcome) -> None:
    run, result, p = outcome.run, outcome.result, outcome.result.progress
    print(f"\nrun folder:   {run.path}")
    best = (f"{run.best} (best {result.best_metric} = {result.best['value']:.5g}, step {result.best['step']})"
            if result.best is not None else "no best.pt yet (no finite validation value so far)")
    print(f"checkpoints:  {run.last} (last), {best}")
    if result.stopped_early:
        print(f"stopped early: {result.stopped_early}")
    for warning in outcome.warnings:  # given before training or during it; repeated where they are seen last
        print(textwrap.fill(warning, width=100, initial_indent="warning:      ", subsequent_indent=" " * 14,
                            break_long_words=False, break_on_hyphens=False))
    if run.metrics.is_file():
        print(f"metrics:      {run.metrics}")
    print(f"history:      {run.history}")
    for f in outcome.figures:
        print(f"figure:       {f}")
    if result.last_val:
        print("validation:   " + ", ".join(f"{k}={v:.5g}" for k, v in result.last_val.items()))
    print(f"trained:      {p.step} steps, {p.images:,} images in {p.seconds:.1f} s "
          f"({p.images / max(p.seconds, 1e-9):.0f} images/s)")
