"""Nothing registered escapes the registry tests: for every model, objective kind, metric and data source, each
test of its registry's test module that is parametrized over entries was collected for that entry.

A test module that replaced `sorted(MODELS)` by a hand-kept list, or skipped an entry by a filter, fails here
(timm's habit: a model that cannot pass is excluded by a named filter, never silently). It reads what pytest
collected in this session, so it checks only when the whole test suite runs.
"""

from __future__ import annotations

import pytest

from genlab.data import SOURCES
from genlab.metrics.registry import METRICS
from genlab.models import MODELS
from genlab.objectives import OBJECTIVES

# registry test module -> (the parameter that names an entry, the registry, the least number of such tests)
COVERED = {
    "tests/models/test_model_registry.py": ("name", MODELS, 7),
    "tests/objectives/test_objective_registry.py": ("kind", OBJECTIVES, 5),
    "tests/metrics/test_metric_registry.py": ("name", METRICS, 2),
    "tests/data/test_source_registry.py": ("name", SOURCES, 5),
}


def _collected(session) -> dict[str, dict[str, set]]:
    """module -> test function -> entry names it was collected for."""
    out: dict[str, dict[str, set]] = {}
    for item in session.items:
        module = item.nodeid.split("::")[0]
        if module not in COVERED:
            continue
        param = COVERED[module][0]
        callspec = getattr(item, "callspec", None)
        if callspec is not None and param in callspec.params:
            out.setdefault(module, {}).setdefault(item.originalname, set()).add(callspec.params[param])
    return out


@pytest.mark.parametrize("module", list(COVERED))
def test_every_registry_entry_is_covered_by_its_parametrized_tests(module, request):
    collected = _collected(request.session)
    if module not in collected:
        pytest.skip(f"{module} was not collected in this session (run the whole suite to check coverage)")
    _, registry, least = COVERED[module]
    tests = collected[module]
    assert len(tests) >= least, f"{module}: only {sorted(tests)} are parametrized over entries"
    for test, names in tests.items():
        missing = sorted(set(registry) - names)
        assert not missing, f"{module}::{test} is not collected for {missing}"
