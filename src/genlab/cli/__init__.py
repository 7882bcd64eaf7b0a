"""Command line: `genlab COMMAND ...`, one module per group of commands, each command one function.

Shared flags (--debug, --checkpoint, --format) are declared once, as parent parsers. Lists in the help
text (metrics, figures, models) come from the registries. Only the command being run gets its full
parser, so `genlab --help` and `genlab configs` start without importing torch. Errors in user input
print one paragraph, no traceback.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import textwrap
import threading

from genlab import __version__
from genlab.errors import GenlabError, TrainingInterrupted

# command -> (module under genlab.cli, one-line help); the module's add_parser builds its full parser
COMMANDS = {
    "train": ("training", "train a model from a YAML config (or a bundled config name)"),
    "sweep": ("sweeping", "train every combination of settings and seeds (locally or on SLURM), resumably"),
    "eval": ("scores", "compute scores of a trained run into its metrics.json, each with its protocol"),
    "compare": ("scores", "one table of the stored scores of several runs"),
    "results": ("scores", "original experiment settings vs recommended configs, from run folders"),
    "figures": ("views", "draw every figure of a run from its run folder alone"),
    "report": ("views", "one self-contained HTML page of one or more run folders (compared side by side)"),
    "explore": ("views", "a local web app to move through a trained model's latent space"),
    "export": ("views", "write a run's model as TorchScript, ONNX and safetensors + model.json"),
    "sample": ("sampling", "write N images from a trained run as PNG files with a manifest (no data set needed)"),
    "weights": ("catalogue", "list the pretrained weights metrics use, or fetch and verify one"),
    "models": ("catalogue", "list registered models and their arguments"),
    "objectives": ("catalogue", "list registered objective kinds and their config keys"),
    "metrics": ("catalogue", "list registered metrics"),
    "data": ("catalogue", "list registered data sources"),
    "configs": ("catalogue", "list bundled configs, or print one with its comments"),
}


def common_flags() -> dict[str, argparse.ArgumentParser]:
    """Parent parsers for flags several commands share, each declared here only."""
    debug = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a sub-command's default must not override a --debug given before the command
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show full tracebacks")
    checkpoint = argparse.ArgumentParser(add_help=False)
    checkpoint.add_argument("--checkpoint", default="best", choices=["best", "last"],
                            help="which checkpoint (default best)")
    table = argparse.ArgumentParser(add_help=False)
    table.add_argument("--format", default="text", choices=["text", "markdown", "csv"], help="table format (text)")
    return {"debug": debug, "checkpoint": checkpoint, "table": table}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The full parser of `command` (others get a stub that only names them)."""
    import importlib

    p = argparse.ArgumentParser(prog="genlab", description="Train, evaluate and explore image generative models.")
    p.add_argument("--version", action="version", version=f"genlab {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    flags = common_flags()
    for name, (module, text) in COMMANDS.items():
        if name == command:
            importlib.import_module(f"genlab.cli.{module}").add_parser(sub, name, text, flags)
        else:
            sub.add_parser(name, help=text, parents=[flags["debug"]], add_help=False)
    return p


def _command_of(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    setup_logging()
    debug = getattr(args, "debug", False)
    try:
        if not getattr(args, "run", None):
            parser.print_help()
            return 0
        return args.run(args)
    except GenlabError as exc:
        if debug:
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


def setup_logging() -> None:
    logger = logging.getLogger("genlab")
    if not any(isinstance(h, _TqdmHandler) for h in logger.handlers):
        handler = _TqdmHandler(logging.INFO)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False


def entry() -> None:
    """The `genlab` command: `main`, then an exit that skips the interpreter's teardown once nothing is left to
    do. Tearing down a process that has imported torch and trained took about a second after the last line
    was written (1.0 s of a 12 s one-epoch β-VAE run), time the user waits for nothing. Exit handlers (log
    files, trackers) still run and both streams are flushed; a live non-daemon thread gets the usual exit."""
    code = main()
    code = code if isinstance(code, int) else 0 if code is None else 1  # as sys.exit would map it
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)

