"""What genlab has: registered models, objectives, metrics and data sources, bundled configs, known weights."""

from __future__ import annotations

import argparse

from genlab.errors import GenlabError


def add_parser(sub, name: str, text: str, flags: dict[str, argparse.ArgumentParser]) -> None:
    p = sub.add_parser(name, help=text, parents=[flags["debug"]])
    if name == "weights":
        p.add_argument("action", nargs="?", default="list", choices=["list", "fetch"])
        p.add_argument("name", nargs="?", help="which weights to fetch (e.g. inception)")
    if name == "configs":
        p.add_argument("name", nargs="?", help="a bundled config to print (e.g. dae_fashion_mnist_recommended)")
    p.set_defaults(run={"weights": weights, "models": models, "objectives": objectives, "metrics": metrics,
                        "data": data, "configs": configs}[name])


def models(args) -> int:
    from genlab.models import MODELS, model_arguments

    for name in sorted(MODELS):
        arguments = ", ".join(f"{k}={v!r}" for k, v in model_arguments(name).items())
        print(f"{name:10s} {arguments}")
    return 0


def objectives(args) -> int:
    from genlab.objectives import OBJECTIVES

    for kind, entry in OBJECTIVES.items():
        keys = ", ".join(k for k in entry.config.model_fields if k != "kind")
        print(f"{kind:15s} {entry.summary}\n{'':15s} keys: {keys}; best checkpoint by: {entry.default_best_metric}")
    return 0


def metrics(args) -> int:
    from genlab.metrics.registry import METRICS

    for name, m in METRICS.items():
        when = (" (also at the end of training, for some models)" if callable(m.at_train_end)
                else " (also at the end of training)" if m.at_train_end else "")
        print(f"{name:16s} {m.summary}{when}")
    return 0


def data(args) -> int:
    from genlab.data.registry import SOURCES

    for name, s in sorted(SOURCES.items()):
        print(f"{name:14s} {s.summary}")
    return 0


def weights(args) -> int:
    from genlab.io import sha256_of
    from genlab.metrics.weights import KNOWN, fetch

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


def configs(args) -> int:
    from genlab.paths import PACKAGED_CONFIGS, packaged_configs

    if args.name is None:
        for known in packaged_configs():
            print(known)
        return 0
    if args.name not in packaged_configs():
        raise GenlabError(f"no bundled config named {args.name!r}; bundled: {', '.join(packaged_configs())}.")
    print((PACKAGED_CONFIGS / f"{args.name}.yaml").read_text(), end="")
    return 0
