"""bf16 against fp32 on real runs: the validation curve of each run side by side, and the final scores as
mean ± std per precision, so a difference can be held against the run-to-run spread of the same precision.

Made for a sweep over train.precision with several seeds, e.g.

    genlab sweep dcgan_anime64_recommended --grid train.precision=fp32,bf16 --seeds 2 --name dcgan_prec
    python bench/precision_quality.py runs/dcgan_prec                 # the run's best metric, per epoch
    python bench/precision_quality.py runs/dcgan_prec --metric loss

Runs are grouped by the precision they trained in (summary.json's resolved one, else config.yaml's);
everything else being equal is the sweep's business. The final scores are every float of each run's
metrics.json (the end-of-training scores).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

from genlab.history import read_history


def runs_in(folder: Path) -> list[Path]:
    return sorted(p.parent for p in folder.glob("*/summary.json"))


def precision_of(run: Path) -> str:
    """What the run trained in: summary.json records what `auto` resolved to (runs trained since auto could
    pick bf16 on CPU do), else the config's setting."""
    summary = json.loads((run / "summary.json").read_text())
    resolved = summary.get("compute", {}).get("precision")
    if resolved:
        return str(resolved)
    return str(yaml.safe_load((run / "config.yaml").read_text())["train"].get("precision", "auto"))


def val_curve(run: Path, metric: str) -> list[float | None]:
    rows = [r for r in read_history(run / "history.csv") if r.get("scope") == "epoch" and r.get("split") == "val"]
    return [float(r[metric]) if r.get(metric) not in (None, "") else None for r in rows]


def final_scores(run: Path) -> dict[str, float]:
    path = run / "metrics.json"
    if not path.is_file():
        return {}
    out = {}
    for name, entry in json.loads(path.read_text()).items():
        for k, v in entry.items():
            if isinstance(v, float):
                out[k if k.startswith(name.split("_")[0]) else f"{name}.{k}"] = v
    return out


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} ± {statistics.stdev(values):.2g}"


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="a sweep folder (or any folder of run folders)")
    p.add_argument("--metric", help="the per-epoch validation column (default: each run's best metric)")
    args = p.parse_args(argv)
    runs = runs_in(args.folder)
    if not runs:
        sys.exit(f"precision_quality: no finished runs (run folders with summary.json) in {args.folder}")
    metric = args.metric or json.loads((runs[0] / "summary.json").read_text())["best"]["metric"]
    runs.sort(key=lambda r: (precision_of(r), r.name))
    curves = {r: val_curve(r, metric) for r in runs}
    names = [f"{precision_of(r)}:{r.name.rsplit('_', 1)[-1]}" for r in runs]
    print(f"validation {metric} per epoch\n")
    print(f"{'epoch':>5s} " + " ".join(f"{n:>12s}" for n in names))
    for e in range(max(len(c) for c in curves.values())):
        cells = [c[e] if e < len(c) else None for c in curves.values()]
        print(f"{e + 1:5d} " + " ".join(f"{v:12.4g}" if v is not None else f"{'—':>12s}" for v in cells))
    groups: dict[str, list[dict[str, float]]] = {}
    for r in runs:
        groups.setdefault(precision_of(r), []).append(final_scores(r))
    keys = sorted({k for g in groups.values() for s in g for k in s})
    print("\nfinal scores (metrics.json), mean ± std over seeds\n")
    print(f"{'score':62s} " + " ".join(f"{f'{p} (n={len(g)})':>20s}" for p, g in groups.items()))
    for k in keys:
        cells = [spread([s[k] for s in g if k in s]) if any(k in s for s in g) else "—" for g in groups.values()]
        print(f"{k:62s} " + " ".join(f"{c:>20s}" for c in cells))


if __name__ == "__main__":
    main(sys.argv[1:])
