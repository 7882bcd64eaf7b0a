"""Every registered metric on tiny trained runs of each model family (and on the shapes set, for the metrics
that need known factors): when it applies it computes numbers and a protocol that metrics.json keeps apart;
when it does not it says why. Parametrized over the registry, so a new metric is tested the day it is added."""

from __future__ import annotations

import math

import pytest

from genlab.device import select_device
from genlab.errors import GenlabError
from genlab.evaluate import evaluate_loaded
from genlab.metrics.context import Context, EvalSettings
from genlab.metrics.registry import METRICS, end_of_training
from genlab.metrics.store import read_metrics, split_entry, update_metrics
from genlab.run import load_run
from genlab.training import train
from genlab.verify import verify_run
from helpers import one_thread, tiny_config

NAMES = sorted(METRICS)
GAN = {"model": {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4},
       "objective": {"kind": "adversarial", "proxy_samples": 24}}
RUNS = {  # one per family and kind of latent, with held-out sets large enough for 64-d covariances
    "vae": {},
    "ae": {"model": {"name": "ae", "hidden_dims": [4, 8], "latent_dim": 3}},
    "cgan": GAN,
    # unlabelled, so no domain classifier is trained on 20,000 renders here (the digits runs cover that)
    "shapes": {"data": {"name": "shapes", "image_size": 16, "limit": 64, "val_limit": 150, "hflip": False,
                        "labels": False}},
}
SETTINGS = EvalSettings(samples=140, kid_subset_size=20, kid_subsets=5, class_samples=5, disentanglement={
    "mig": {"n": 400}, "factor_vae": {"n_train": 10, "n_eval": 6, "batch": 8, "n_variance": 100},
    "dci": {"n_train": 40, "n_test": 20}}, cas_recipe={"min_steps": 20}, nll_samples=6)


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("metric-cache")


@pytest.fixture(autouse=True)
def private_cache(shared_cache, monkeypatch):
    """One cache for this module: the digits classifier that two metrics need is trained once, not per test."""
    monkeypatch.setenv("GENLAB_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("metric-runs")
    with one_thread():
        for name, sections in RUNS.items():
            data = {"val_limit": 150, **sections.get("data", {})}
            train(tiny_config(name=name, **{**sections, "data": data}, train={"epochs": 1}), out=out)
    return {name: out / name for name in RUNS}


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_named_and_summarised(name):
    metric = METRICS[name]
    assert metric.name == name and metric.summary and callable(metric.compute) and callable(metric.applies)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("run", list(RUNS))
def test_applies_or_says_why_and_computes_values_apart_from_protocol(name, run, runs):
    metric, loaded = METRICS[name], load_run(runs[run], "last")
    ctx = Context(loaded, SETTINGS, select_device("cpu"))
    reason = metric.applies(ctx)
    if reason is not None:
        assert isinstance(reason, str) and len(reason) > 10
        return
    try:
        scores = metric.compute(ctx)
    except GenlabError as exc:  # it applies but cannot run on this machine: it must say what is missing
        assert name == "fid" and "genlab weights fetch inception" in str(exc), str(exc)
        pytest.skip(f"{name} cannot run here: {str(exc)[:80]}")
    assert scores, f"{name} applies to the {run} run but returned nothing"
    for key, score in scores.items():
        assert score.values and not set(score.values) & set(score.protocol), (key, score.values, score.protocol)
        numbers = [v for v in score.values.values() if not isinstance(v, dict)]
        assert numbers and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)
        assert all(math.isfinite(v) for v in numbers)
        if any(k in ("fd", "fid") or k.startswith("fd_") for k in score.values):  # a Fréchet distance
            assert {"kid_mean", "kid_std"} <= set(score.values), f"{key}: KID belongs beside every Fréchet distance"
        # metrics.json keeps them apart: what is stored splits back into the same values and protocol
        update_metrics(loaded.run.metrics, key, score, checkpoint="last", step=loaded.step, seed=0)
        values, protocol = split_entry(read_metrics(loaded.run.metrics)[key])
        assert values == {k: v for k, v in score.values.items() if not isinstance(v, dict)}
        assert set(score.protocol) <= set(protocol) and {"checkpoint", "step", "seed"} <= set(protocol)
    directions = set(metric.higher_is_better)
    assert directions <= {k for s in scores.values() for k in s.values}, directions


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("run", list(RUNS))
def test_stored_scores_record_their_making_and_reproduce_under_verify(name, run, runs):
    """What `genlab eval --verify` checks, for every metric: its stored record is enough to recompute it."""
    loaded = load_run(runs[run], "last")
    reason = METRICS[name].applies(Context(loaded, SETTINGS, select_device("cpu")))
    if reason is not None:
        pytest.skip(f"{name} does not apply to the {run} run")
    stored = evaluate_loaded(loaded, [name], which="last", settings=SETTINGS, device="cpu", strict=False)
    if not stored:
        pytest.skip(f"{name} cannot run here")
    for entry in stored.values():
        assert entry["metric"] == name and entry["checkpoint_sha256"] and entry["eval_settings"]["samples"] == 140
        assert entry["model_mode"] and entry["generator_weights"] and entry["versions"]["torch"]
    checks = verify_run(runs[run], [name])
    assert {c.entry for c in checks} == set(stored)
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]


def test_every_metric_applies_to_some_run_here(runs):
    """The runs above are enough to exercise every metric's compute (a metric none applies to is untested)."""
    applied = {name: [r for r in RUNS if METRICS[name].applies(
        Context(load_run(runs[r], "last"), SETTINGS, select_device("cpu"))) is None] for name in NAMES}
    assert all(applied.values()), {n: r for n, r in applied.items() if not r}


def test_the_end_of_training_set_is_declared_by_the_metrics():
    from genlab.models import capabilities

    vae, gan = capabilities("vae", {}), capabilities("cgan", {}, 10)
    for caps in (vae, gan):
        assert set(end_of_training(caps)) == {n for n, m in METRICS.items() if m.runs_at_train_end(caps)}
    assert {"reconstruction", "latent_usage"} <= set(end_of_training(vae)) and "fd_randconv" not in \
        end_of_training(vae)
    assert {"fd_randconv", "discriminator"} <= set(end_of_training(gan))
