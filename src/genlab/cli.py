"""Command line: `genlab train | eval | compare | results | figures | report | explore | export | weights | models |
configs`.

Errors in user input print one paragraph, no traceback."""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from pathlib import Path

from genlab import __version__
from genlab.errors import GenlabError, TrainingInterrupted
from genlab.viz import FIGURES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genlab", description="Train, evaluate and explore image generative models.")
    p.add_argument("--version", action="version", version=f"genlab {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train a model from a YAML config (or a bundled config name)")
    t.add_argument("config", nargs="?", help="YAML file or bundled name (default: quickstart; "
                                             "with --resume: the run's saved config)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    t.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted or finished run")
    t.add_argument("--out", type=Path, metavar="DIR", help="parent folder of the run (default: output.root)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    t.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    f = sub.add_parser("figures", help="draw every figure of a run from its run folder alone")
    f.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    f.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which checkpoint (default best)")
    f.add_argument("--only", nargs="+", metavar="NAME", help="some of: " + ", ".join(FIGURES))
    f.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    r = sub.add_parser("report", help="one self-contained HTML page of one or more run folders (compared "
                                      "side by side when several)")
    r.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    r.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="FILE",
                   help="where to write the page (default: report.html)")
    r.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    e = sub.add_parser("eval", help="compute scores of a trained run into its metrics.json, each with its protocol")
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    e.add_argument("--metrics", nargs="+", metavar="NAME",
                   help="some of: reconstruction, fid, fd_classifier, class_accuracy, fd_randconv, discriminator, "
                        "disentanglement (default: every one that applies and can run here)")
    e.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which checkpoint (default best)")
    e.add_argument("--samples", type=int, default=2400, metavar="N",
                   help="generated and held-out real images for distribution scores (default 2400, seed 001's)")
    e.add_argument("--images", type=Path, metavar="DIR", help="also score reconstructions of these outside images")
    e.add_argument("--kid-subset-size", type=int, default=1000, metavar="N", help="images per KID subset (1000)")
    e.add_argument("--class-samples", type=int, default=1000, metavar="N",
                   help="generated images per class for class accuracy (1000)")
    e.add_argument("--seed", type=int, default=0, help="seed of the drawn reference images and samples (0)")
    e.add_argument("--dlib-counts", action="store_true",
                   help="disentanglement_lib's sample counts for FactorVAE (10000/5000 votes) and DCI (10000/5000); "
                        "about 15 and 5 times slower than the defaults")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    e.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    c = sub.add_parser("compare", help="one table of the stored scores of several runs")
    c.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    c.add_argument("--format", default="text", choices=["text", "markdown", "csv"], help="table format (text)")
    c.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    rs = sub.add_parser("results", help="seed settings vs recommended configs, per experiment, from run folders")
    rs.add_argument("runs", type=Path, nargs="?", default=Path("runs"),
                    help="the folder holding the run folders (default runs)")
    rs.add_argument("--format", default="text", choices=["text", "markdown", "csv"], help="table format (text)")
    rs.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    w = sub.add_parser("weights", help="list the pretrained weights metrics use, or fetch and verify one")
    w.add_argument("action", nargs="?", default="list", choices=["list", "fetch"])
    w.add_argument("name", nargs="?", help="which weights to fetch (e.g. inception)")
    w.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    x = sub.add_parser("explore", help="a local web app to move through a trained model's latent space")
    x.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    x.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    x.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    x.add_argument("--allow-remote", action="store_true", help="allow a --host reachable from other machines")
    x.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which checkpoint (default best)")
    x.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    xp = sub.add_parser("export", help="write a run's model as TorchScript, ONNX and safetensors + model.json, "
                                       "loadable without genlab")
    xp.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    xp.add_argument("--format", dest="formats", nargs="+", metavar="FORMAT",
                    help="some of: torchscript, onnx, safetensors (default: all three; onnx when genlab[export] "
                         "is installed)")
    xp.add_argument("--checkpoint", default="best", choices=["best", "last"], help="which checkpoint (default best)")
    xp.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: RUN_DIR/export)")
    xp.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)

    sub.add_parser("models", help="list registered models and their arguments")
    cf = sub.add_parser("configs", help="list bundled configs, or print one with its comments")
    cf.add_argument("name", nargs="?", help="a bundled config to print (e.g. dae_fashion_mnist_recommended)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging()
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "figures":
            return cmd_figures(args)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "eval":
            return cmd_eval(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "results":
            return cmd_results(args)
        if args.command == "weights":
            return cmd_weights(args)
        if args.command == "export":
            return cmd_export(args)
        if args.command == "explore":
            return cmd_explore(args)
        if args.command == "models":
            return cmd_models()
        if args.command == "configs":
            return cmd_configs(args.name)
        _parser().print_help()
        return 0
    except GenlabError as exc:
        if args.debug:
            raise
        # Never split a word: paths and keys must stay whole to be copied from the message.
        print(textwrap.fill(f"genlab: error: {exc}", width=100, break_long_words=False, break_on_hyphens=False),
              file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"genlab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("genlab: interrupted before a checkpoint could be written", file=sys.stderr)
        return 130


class _TqdmHandler(logging.Handler):
    """Log lines printed above a live progress bar instead of through it."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _setup_logging() -> None:
    logger = logging.getLogger("genlab")
    if not any(isinstance(h, _TqdmHandler) for h in logger.handlers):
        handler = _TqdmHandler(logging.INFO)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def cmd_train(args) -> int:
    from genlab import config
    from genlab.distributed import launch_from_env
    from genlab.train import train

    cfg = None
    if args.resume is not None:
        if args.config or args.overrides:
            from genlab.run import existing_run

            run = existing_run(args.resume)
            cfg = config.load(args.config or str(run.config), args.overrides)
            if not args.config:  # overrides on the saved config keep its name
                cfg = cfg.model_copy(update={"name": run.read_config().name})
    else:
        cfg = config.load(args.config or "quickstart", args.overrides)
    outcome = train(cfg, out=args.out, overwrite=args.overwrite, resume=args.resume)
    if launch_from_env().rank != 0:  # under torchrun, rank 0 reports for all processes
        return 0
    run, p = outcome.run, outcome.result.progress
    print(f"\nrun folder:   {run.path}")
    best = (f"{run.best} (best {outcome.result.best_metric} = {p.best_value:.5g}, step {p.best_step})"
            if p.best_value is not None else "no best.pt yet (no finite validation value so far)")
    print(f"checkpoints:  {run.last} (last), {best}")
    if outcome.result.stopped_early:
        print(f"stopped early: {outcome.result.stopped_early}")
    for warning in outcome.warnings:  # given before training or during it; repeated where they are seen last
        print(textwrap.fill(warning, width=100, initial_indent="warning:      ", subsequent_indent=" " * 14,
                            break_long_words=False, break_on_hyphens=False))
    if run.metrics.is_file():
        print(f"metrics:      {run.metrics}")
    print(f"history:      {run.history}")
    for f in outcome.figures:
        print(f"figure:       {f}")
    if outcome.result.last_val:
        print("validation:   " + ", ".join(f"{k}={v:.5g}" for k, v in outcome.result.last_val.items()))
    print(f"trained:      {p.step} steps, {p.images:,} images in {p.seconds:.1f} s "
          f"({p.images / max(p.seconds, 1e-9):.0f} images/s)")
    return 0


def cmd_figures(args) -> int:
    from genlab.figures import load_run, render

    unknown = sorted(set(args.only or ()) - set(FIGURES))
    if unknown:
        raise GenlabError(f"--only {' '.join(unknown)}: unknown figure; choose from {', '.join(FIGURES)}.")
    loaded = load_run(args.run_dir, args.checkpoint)
    paths = render(loaded.model, loaded.data, loaded.cfg, loaded.run, tuple(args.only or FIGURES))
    print(f"figures of {args.run_dir} ({args.checkpoint} checkpoint, step {loaded.step}):")
    for path in paths:
        print(f"  {path}")
    return 0


def cmd_report(args) -> int:
    from genlab.report import write_report

    path = write_report(args.run_dirs, args.output)
    print(f"report of {len(args.run_dirs)} run folder{'s' if len(args.run_dirs) > 1 else ''}: {path}")
    return 0


def cmd_eval(args) -> int:
    from genlab.evaluate import EvalSettings, evaluate_run

    for flag, value, low in (("--samples", args.samples, 2), ("--kid-subset-size", args.kid_subset_size, 2),
                             ("--class-samples", args.class_samples, 1)):
        if value < low:
            raise GenlabError(f"{flag} must be at least {low}; got {value}.")
    counts = {}
    if args.dlib_counts:
        from genlab.metrics.disentanglement import DLIB_DCI, DLIB_FACTOR_VAE

        counts = {"factor_vae": dict(DLIB_FACTOR_VAE), "dci": dict(DLIB_DCI)}
    settings = EvalSettings(samples=args.samples, kid_subset_size=args.kid_subset_size, seed=args.seed,
                            images=args.images, class_samples=args.class_samples, disentanglement=counts)
    results = evaluate_run(args.run_dir, args.metrics, which=args.checkpoint, settings=settings, device=args.device)
    if not results:
        print(f"no metric applies to {args.run_dir}; see `genlab eval --help`.")
        return 1
    print(f"written to {args.run_dir / 'metrics.json'} with each score's protocol")
    return 0


def cmd_compare(args) -> int:
    from genlab.compare import compare_table, render

    print(render(*compare_table(args.run_dirs), args.format), end="")
    return 0


def cmd_results(args) -> int:
    from genlab.compare import render
    from genlab.results import results_rows

    if not args.runs.is_dir():
        raise GenlabError(f"{args.runs} is not a folder; give the folder that holds the run folders "
                          f"(output.root of the configs, default runs).")
    print(render(*results_rows(args.runs), args.format), end="")
    return 0


def cmd_weights(args) -> int:
    from genlab.metrics.weights import KNOWN, fetch, sha256_of

    if args.action == "list":
        for w in KNOWN.values():
            path = w.path()
            state = ("verified" if sha256_of(path) == w.sha256 else "PRESENT BUT WRONG HASH") if path.is_file() \
                else "absent"
            print(f"{w.key:10s} {state:8s} {path}\n           {w.what}; SHA-256 {w.sha256}")
        return 0
    if args.name not in KNOWN:
        raise GenlabError(f"genlab weights fetch needs one of: {', '.join(KNOWN)} (got {args.name!r}).")
    print(f"verified: {fetch(KNOWN[args.name])}")
    return 0


def cmd_explore(args) -> int:
    from genlab.explore.app import make_server

    if not 0 <= args.port <= 65535:
        raise GenlabError(f"--port must be in 0..65535; got {args.port}.")
    server = make_server(args.run_dir, args.host, args.port, allow_remote=args.allow_remote, which=args.checkpoint)
    print(f"genlab explorer for {args.run_dir}: http://{args.host}:{server.server_port}/  (Ctrl-C to stop)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_export(args) -> int:
    import importlib.util

    from genlab.export import FORMATS, export_run

    formats = args.formats
    if formats is None:
        have_onnx = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript"))
        formats = [f for f in FORMATS if f != "onnx" or have_onnx]
        if not have_onnx:
            print('onnx is not installed: exporting TorchScript and safetensors (pip install "genlab[export]" '
                  'for ONNX too)')
    paths = export_run(args.run_dir, formats, out=args.out, which=args.checkpoint)
    print(f"exported {args.run_dir} ({args.checkpoint} checkpoint) to {paths[-1].parent}:")
    for path in paths:
        print(f"  {path}")
    return 0


def cmd_models() -> int:
    from genlab.models import MODELS, model_arguments

    for name in sorted(MODELS):
        args = ", ".join(f"{k}={v!r}" for k, v in model_arguments(name).items())
        print(f"{name:10s} {args}")
    return 0


def cmd_configs(name: str | None = None) -> int:
    from genlab.config import PACKAGED_CONFIGS, packaged_configs

    if name is None:
        for known in packaged_configs():
            print(known)
        return 0
    if name not in packaged_configs():
        raise GenlabError(f"no bundled config named {name!r}; bundled: {', '.join(packaged_configs())}.")
    print((PACKAGED_CONFIGS / f"{name}.yaml").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
