"""What the four registries (models, objectives, metrics, data sources) share: finding entries by importing
every module of a package, and looking one up with a suggestion of the closest name."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from genlab.errors import GenlabError

T = TypeVar("T")


def collect(package: ModuleType, attribute: str, name_of: Callable[[Any], str], skip: tuple[str, ...] = ()
            ) -> dict[str, Any]:
    """Every `attribute` (one entry, or a tuple of entries) declared by a module of `package`, by name, in
    module order. Two entries of one name are a bug in genlab, not a user's mistake."""
    found: dict[str, Any] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name in skip:
            continue
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        declared = getattr(module, attribute, ())
        for entry in declared if isinstance(declared, tuple) else (declared,):
            name = name_of(entry)
            if name in found:
                raise RuntimeError(f"{name!r} is registered twice (again in {module.__name__})")
            found[name] = entry
    return found


def lookup(registry: dict[str, T], name: str, what: str) -> T:
    """The entry named `name`, or a GenlabError naming the closest registered one and all of them."""
    if name not in registry:
        hint = difflib.get_close_matches(name, list(registry), n=1)
        raise GenlabError(f"unknown {what} {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else ".")
                          + f" Registered {what}s: {', '.join(sorted(registry))}.")
    return registry[name]
