"""`genlab sweep`: one run folder per combination of settings and seeds, locally or on a SLURM cluster."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub, name: str, text: str, flags: dict[str, argparse.ArgumentParser]) -> None:
    s = sub.add_parser(name, help=text, parents=[flags["debug"]],
                       description="Expand CONFIG(s) x --grid values x --seeds into one run folder each under "
                                   "OUT/NAME, and train them. Started again, it skips finished runs and resumes "
                                   "interrupted ones. `genlab compare OUT/NAME` and `genlab report OUT/NAME` show "
                                   "runs that differ only in the seed as mean ± std.")
    s.add_argument("configs", nargs="+", metavar="CONFIG", help="YAML files or bundled config names (several: "
                                                               "one more axis of the sweep)")
    s.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a config key and its values, e.g. --grid objective.beta=10,100 (repeatable: the product)")
    s.add_argument("--seeds", metavar="N|S1,S2,...", help="N seeds (train.seed 0..N-1) or the seeds themselves")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a setting for every run, e.g. --set train.epochs=5")
    s.add_argument("--name", help="the sweep's folder name (default: from the first config and the grid keys)")
    s.add_argument("--out", type=Path, default=Path("runs"), metavar="DIR", help="parent folder (default runs)")
    s.add_argument("--executor", default="local", choices=["local", "slurm", "submitit-local"],
                   help="local processes (default), SLURM through submitit, or submitit's local executor")
    s.add_argument("--jobs", type=int, metavar="N", help="local: runs at a time (default 1), each with its share of "
                                                         "the CPU threads")
    s.add_argument("--slurm-partition", metavar="NAME")
    s.add_argument("--slurm-time", type=int, default=60, metavar="MINUTES",
                   help="time limit per job (default 60); a run that needs more is requeued and resumes")
    s.add_argument("--gpus-per-run", type=int, default=0, metavar="N")
    s.add_argument("--cpus-per-run", type=int, metavar="N", help="SLURM cpus-per-task (default 4)")
    s.add_argument("--no-array", action="store_true", help="SLURM: one job per run instead of one job array")
    s.add_argument("--dry-run", action="store_true", help="list the runs and what each would do; run nothing")
    s.set_defaults(run=sweep)


def sweep(args) -> int:
    from genlab.errors import GenlabError
    from genlab.sweeps import Slurm, read_manifest, run_sweep

    seeds = None
    if args.seeds is not None:
        try:
            seeds = int(args.seeds) if args.seeds.isdigit() else [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise GenlabError(f"--seeds {args.seeds!r}: give a count (3) or seeds separated by commas "
                              f"(0,1,2).") from None
    slurm = Slurm(partition=args.slurm_partition, time_min=args.slurm_time, gpus_per_run=args.gpus_per_run,
                  cpus_per_run=args.cpus_per_run, array=not args.no_array)
    root = run_sweep(args.configs, args.grid, seeds=seeds, overrides=args.overrides, name=args.name, out=args.out,
                     executor=args.executor, jobs=args.jobs, slurm=slurm, dry_run=args.dry_run)
    if args.dry_run:
        return 0
    runs = read_manifest(root)["runs"]
    print(f"sweep {root}: {len(runs)} runs; manifest {root / 'sweep.json'}")
    for r in runs:
        print(f"  {r['name']}: {r['status']}")
    print(f"compare them: genlab compare {root}   report: genlab report {root} -o {root / 'report.html'}")
    return 0
