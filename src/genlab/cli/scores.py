"""`genlab eval`, `genlab compare` and `genlab results`: computing scores, and tables of stored ones."""

from __future__ import annotations

import argparse
from pathlib import Path

from genlab.errors import GenlabError

STRICT_HELP = ("refuse (exit 2, as every genlab error) when runs' scores of one row were made differently: "
               "sample count, reference split, resizer, feature weights, k, binarisation or model mode; "
               "without it such rows are marked ⚠ and explained under the table")


def add_parser(sub, name: str, text: str, flags: dict[str, argparse.ArgumentParser]) -> None:
    {"eval": _eval_parser, "compare": _compare_parser, "results": _results_parser}[name](sub, name, text, flags)


def _eval_parser(sub, name, text, flags) -> None:
    from genlab.metrics.registry import METRICS

    listed = "; ".join(f"{m.name}: {m.summary}" for m in METRICS.values())
    on_request = ", ".join(m.name for m in METRICS.values() if not m.by_default)
    e = sub.add_parser(name, help=text, parents=[flags["debug"], flags["checkpoint"]])
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    e.add_argument("--metrics", nargs="+", metavar="NAME",
                   help=f"some of the registered metrics ({listed}); default: every one that applies and can "
                        f"run here, except those run only when named ({on_request})")
    e.add_argument("--samples", type=int, default=2400, metavar="N",
                   help="generated and held-out real images for distribution scores (default 2400, the β-VAE "
                        "experiment's count)")
    e.add_argument("--images", type=Path, metavar="DIR", help="also score reconstructions of these outside images")
    e.add_argument("--kid-subset-size", type=int, default=1000, metavar="N", help="images per KID subset (1000)")
    e.add_argument("--class-samples", type=int, default=1000, metavar="N",
                   help="generated images per class for class accuracy (1000)")
    e.add_argument("--nll-samples", type=int, default=1000, metavar="K",
                   help="importance samples per image for nll (1000; Burda et al. 2016 report 5000); the cost is "
                        "K decodes per held-out image")
    e.add_argument("--nll-images", type=int, metavar="N",
                   help="estimate nll on N held-out images drawn with --seed (default: all of them)")
    e.add_argument("--seed", type=int, default=0, help="seed of the drawn reference images and samples (0)")
    e.add_argument("--dlib-counts", action="store_true",
                   help="disentanglement_lib's sample counts for FactorVAE (10000/5000 votes) and DCI (10000/5000); "
                        "about 15 and 5 times slower than the defaults")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    e.add_argument("--verify", action="store_true",
                   help="write nothing: recompute every stored score (or those of --metrics) from the checkpoint "
                        "and settings it records, print the differences, and exit 1 when any value moved by more "
                        "than its metric's tolerance, its checkpoint changed, or it cannot be recomputed")
    e.set_defaults(run=evaluate)


def _compare_parser(sub, name, text, flags) -> None:
    c = sub.add_parser(name, help=text, parents=[flags["debug"], flags["table"]])
    c.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                   help="run folders, or sweep folders (each stands for its runs)")
    c.add_argument("--strict", action="store_true", help=STRICT_HELP)
    c.add_argument("--per-run", action="store_true",
                   help="one column per run, even for runs that differ only in the seed (default: such runs "
                        "share a column of mean ± std over the seeds, with the seed count)")
    c.set_defaults(run=compare)


def _results_parser(sub, name, text, flags) -> None:
    rs = sub.add_parser(name, help=text, parents=[flags["debug"], flags["table"]])
    rs.add_argument("runs", type=Path, nargs="?", default=Path("runs"),
                    help="the folder holding the run folders (default runs)")
    rs.add_argument("--strict", action="store_true", help=STRICT_HELP)
    rs.set_defaults(run=results)


def evaluate(args) -> int:
    from genlab.evaluate import EvalSettings, evaluate_run

    if args.verify:
        return verify(args)
    for flag, value, low in (("--samples", args.samples, 2), ("--kid-subset-size", args.kid_subset_size, 2),
                             ("--class-samples", args.class_samples, 1), ("--nll-samples", args.nll_samples, 1),
                             ("--nll-images", args.nll_images or 1, 1)):
        if value < low:
            raise GenlabError(f"{flag} must be at least {low}; got {value}.")
    counts = {}
    if args.dlib_counts:
        from genlab.metrics.disentanglement import DLIB_DCI, DLIB_FACTOR_VAE

        counts = {"factor_vae": dict(DLIB_FACTOR_VAE), "dci": dict(DLIB_DCI)}
    settings = EvalSettings(samples=args.samples, kid_subset_size=args.kid_subset_size, seed=args.seed,
                            images=args.images, class_samples=args.class_samples, disentanglement=counts,
                            nll_samples=args.nll_samples, nll_images=args.nll_images)
    results = evaluate_run(args.run_dir, args.metrics, which=args.checkpoint, settings=settings, device=args.device)
    if not results:
        print(f"no metric applies to {args.run_dir}; see `genlab eval --help`.")
        return 1
    print(f"written to {args.run_dir / 'metrics.json'} with each score's protocol")
    return 0


def verify(args) -> int:
    from genlab.verify import render_checks, verify_run

    checks = verify_run(args.run_dir, args.metrics, device=None if args.device == "auto" else args.device)
    print(render_checks(checks), end="")
    return 0 if all(c.passed for c in checks) else 1


def compare(args) -> int:
    from genlab.comparison import compare_table, row_entry

    header, rows, flags = compare_table(args.run_dirs, per_run=args.per_run)
    _print_table(header, rows, flags, args, "this comparison", row_entry, 0)
    return 0


def _print_table(header, rows, flags, args, what: str, key_of, column: int) -> None:
    from genlab.comparison import render, with_flags
    from genlab.metrics.comparable import notes, refuse

    if args.strict:
        refuse(flags, what)
    print(render(*with_flags(header, rows, flags, key_of, column, args.format), args.format), end="")
    if flags and args.format != "csv":
        print("\nrows marked ⚠ compare scores made differently:\n" + "\n".join(notes(flags)))


def results(args) -> int:
    from genlab.results import results_rows, row_key

    if not args.runs.is_dir():
        raise GenlabError(f"{args.runs} is not a folder; give the folder that holds the run folders "
                          f"(output.root of the configs, default runs).")
    header, rows, flags = results_rows(args.runs)
    _print_table(header, rows, flags, args, "this results table", row_key, 1)
    return 0
