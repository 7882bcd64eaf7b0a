"""`genlab figures`, `report`, `explore` and `export`: what a trained run folder can be turned into."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from genlab.errors import GenlabError
from genlab.viz import FIGURES


def add_parser(sub, name: str, text: str, flags: dict[str, argparse.ArgumentParser]) -> None:
    {"figures": _figures, "report": _report, "explore": _explore, "export": _export}[name](sub, name, text, flags)


def _figures(sub, name, text, flags) -> None:
    f = sub.add_parser(name, help=text, parents=[flags["debug"], flags["checkpoint"]])
    f.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    f.add_argument("--only", nargs="+", metavar="NAME", help="some of: " + ", ".join(FIGURES))
    f.set_defaults(run=figures)


def _report(sub, name, text, flags) -> None:
    r = sub.add_parser(name, help=text, parents=[flags["debug"]])
    r.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                   help="run folders, or sweep folders (each stands for its runs)")
    r.add_argument("--per-run", action="store_true",
                   help="compare every run in its own column, even runs that differ only in the seed (default: "
                        "such runs share a column of mean ± std over the seeds)")
    r.add_argument("-o", "--output", type=Path, default=Path("report.html"), metavar="FILE",
                   help="where to write the page (default: report.html)")
    r.add_argument("--strict", action="store_true",
                   help="refuse (exit 2, nothing written) when the runs' scores of one row were made differently "
                        "(sample count, reference split, resizer, feature weights, k, binarisation or model mode); "
                        "without it the page marks such rows ⚠ and lists why")
    r.set_defaults(run=report)


def _explore(sub, name, text, flags) -> None:
    x = sub.add_parser(name, help=text + ' (needs pip install "genlab[explore]")',
                       parents=[flags["debug"], flags["checkpoint"]])
    x.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    x.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    x.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1, this machine only)")
    x.add_argument("--allow-remote", action="store_true", help="allow a --host reachable from other machines")
    x.set_defaults(run=explore)


def _export(sub, name, text, flags) -> None:
    from genlab.export import FORMATS

    xp = sub.add_parser(name, help=text, parents=[flags["debug"], flags["checkpoint"]])
    xp.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    xp.add_argument("--format", dest="formats", nargs="+", metavar="FORMAT",
                    help=f"some of: {', '.join(FORMATS)} (default: all; onnx when genlab[export] is installed)")
    xp.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: RUN_DIR/export)")
    xp.set_defaults(run=export)


def figures(args) -> int:
    from genlab.figures import render
    from genlab.run import load_run

    unknown = sorted(set(args.only or ()) - set(FIGURES))
    if unknown:
        raise GenlabError(f"--only {' '.join(unknown)}: unknown figure; choose from {', '.join(FIGURES)}.")
    loaded = load_run(args.run_dir, args.checkpoint)
    paths = render(loaded.model, loaded.data, loaded.cfg, loaded.run, tuple(args.only or FIGURES), caps=loaded.caps)
    print(f"figures of {args.run_dir} ({args.checkpoint} checkpoint, step {loaded.step}):")
    for path in paths:
        print(f"  {path}")
    return 0


def report(args) -> int:
    from genlab.reporting import write_report
    from genlab.sweeps import expand_run_dirs

    path = write_report(args.run_dirs, args.output, strict=args.strict, per_run=args.per_run)
    n = len(expand_run_dirs(args.run_dirs))
    print(f"report of {n} run folder{'s' if n > 1 else ''}: {path}")
    return 0


def require_flask() -> None:
    """The explorer's web server is an optional extra: say how to install it before anything is loaded."""
    if importlib.util.find_spec("flask") is None:
        raise GenlabError('genlab explore serves its page with Flask, which is not installed here; install it with '
                          'pip install "genlab[explore]" (or pip install flask).')


def explore(args) -> int:
    require_flask()
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


def export(args) -> int:
    from genlab.export import default_formats, export_run

    formats = args.formats
    if formats is None:
        formats, note = default_formats()
        if note:
            print(note)
    paths = export_run(args.run_dir, formats, out=args.out, which=args.checkpoint)
    print(f"exported {args.run_dir} ({args.checkpoint} checkpoint) to {paths[-1].parent}:")
    for path in paths:
        print(f"  {path}")
    return 0
