"""How the importance-sampled log-likelihood of one trained VAE moves with the number of samples k.

The bound log (1/k) Σ w_k tightens as k grows (Burda et al. 2016, Theorem 1): the gap between k = 1 (the
ELBO) and the largest k says how loose the ELBO is for this model, and the change between the two largest k
says whether the largest is enough. Same images, same seed, one process; it also prints the seconds each k
took, since the cost is k decodes per image.

    python bench/nll_samples.py RUN_DIR                        # k = 1, 10, 100, 1000 on 1000 held-out images
    python bench/nll_samples.py RUN_DIR --k 1,50,5000 --images 10000 --checkpoint last

Nothing in the run folder changes: `genlab eval RUN --metrics nll` is what stores a score.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from genlab.device import select_device
from genlab.errors import GenlabError
from genlab.metrics.context import Context, EvalSettings
from genlab.metrics.registry import METRICS
from genlab.run import load_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path)
    p.add_argument("--k", default="1,10,100,1000", help="comma-separated sample counts")
    p.add_argument("--images", type=int, default=1000, help="held-out images (a seeded choice; default 1000)")
    p.add_argument("--checkpoint", default="last")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    try:
        loaded = load_run(args.run_dir, args.checkpoint)
    except GenlabError as exc:
        raise SystemExit(f"error: {exc}") from None
    metric = METRICS["nll"]
    base = EvalSettings(seed=args.seed, nll_images=args.images)
    reason = metric.applies(Context(loaded, base, select_device("cpu")))
    if reason:
        raise SystemExit(f"nll does not apply to {args.run_dir}: {reason}")
    print(f"{args.run_dir} ({args.checkpoint}, step {loaded.step}): {args.images} held-out images, seed {args.seed}")
    print(f"{'k':>6} {'NLL (nats)':>11} {'± sem':>7} {'-ELBO':>8} {'bits/dim':>9} {'seconds':>8}")
    for k in (int(v) for v in args.k.split(",")):
        ctx = Context(loaded, dataclasses.replace(base, nll_samples=k), select_device("cpu"))
        start = time.perf_counter()
        v = metric.compute(ctx)["nll"].values
        took = time.perf_counter() - start
        print(f"{k:>6} {v['nll_nats']:>11.3f} {v['nll_sem']:>7.3f} {v['neg_elbo_nats']:>8.3f} "
              f"{v['bits_per_dim']:>9.4f} {took:>8.1f}")


if __name__ == "__main__":
    main()
