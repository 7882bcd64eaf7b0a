"""Every registered objective kind: its own config section, its default best metric, a training step that moves
the model, and hooks that keep their state across a checkpoint. Parametrized over the registry; each kind is
built on the first registered model that trains with it, from that model's tiny arguments."""

from __future__ import annotations

import pytest
import torch

from genlab.config import validate
from genlab.data import Batch, Normalizer
from genlab.engine.hook import Hook
from genlab.models import MODELS, build_model, capabilities
from genlab.objectives import OBJECTIVES, Plan, Stepper, build_objective

KINDS = sorted(OBJECTIVES)
SIZE, BATCH, CLASSES = 16, 8, 3


def _model_for(kind: str) -> str:
    return next(name for name in sorted(MODELS) if kind in MODELS[name].trains_with)


def _objective(kind: str):
    name = _model_for(kind)
    cfg = validate({"model": {"name": name, **MODELS[name].tiny}, "objective": {"kind": kind},
                    "data": {"name": "digits", "image_size": SIZE}})
    torch.manual_seed(0)
    model = build_model(name, cfg.model.kwargs(), image_size=SIZE, channels=1, num_classes=CLASSES)
    caps = capabilities(name, cfg.model.kwargs(), CLASSES)
    return build_objective(cfg, model, Normalizer("minus_one_one", 1), caps, Plan(4, 8, 2)), caps


def _batch(seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(torch.rand(BATCH, 1, SIZE, SIZE, generator=gen) * 2 - 1, torch.arange(BATCH) % CLASSES)


@pytest.mark.parametrize("kind", KINDS)
def test_entry_owns_its_config_section_and_a_model_trains_with_it(kind):
    entry = OBJECTIVES[kind]
    assert entry.kind == kind and entry.summary
    assert entry.config.model_fields["kind"].default == kind
    assert entry.config.model_config.get("extra") == "forbid"
    assert any(kind in m.trains_with for m in MODELS.values()), f"no registered model trains with {kind!r}"


@pytest.mark.parametrize("kind", KINDS)
def test_a_step_moves_the_model_and_the_default_best_metric_is_computed(kind):
    objective, _ = _objective(kind)
    before = {k: v.clone() for k, v in objective.model.state_dict().items()}
    terms = objective.train_step(_batch(), 0, Stepper())
    assert terms and all(torch.isfinite(v).all() and not v.requires_grad for v in terms.values())
    changed = [k for k, v in objective.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "a training step changed no weight"
    objective.model.eval()
    with torch.no_grad():
        names = set(objective.eval_step(_batch(1), torch.Generator().manual_seed(0)))
    assert OBJECTIVES[kind].default_best_metric in names | set(objective.score_names)
    assert objective.min_val_images >= 1


@pytest.mark.parametrize("kind", KINDS)
def test_hooks_are_named_and_their_state_round_trips(kind):
    objective, _ = _objective(kind)
    hooks = objective.hooks()
    assert len({h.name for h in hooks}) == len(hooks)
    for hook in hooks:
        assert isinstance(hook, Hook) and hook.name
        state = hook.state_dict()
        hook.load_state_dict(state)
        assert hook.state_dict() == state
        hook.load_state_dict({})  # a checkpoint that had nothing for this hook


@pytest.mark.parametrize("kind", KINDS)
def test_a_key_of_every_other_kind_is_refused_naming_its_kind(kind):
    from genlab.errors import GenlabError

    tried = 0
    for other in KINDS:
        foreign = next((k for k in OBJECTIVES[other].config.model_fields
                        if k not in OBJECTIVES[kind].config.model_fields), None)
        if other == kind or foreign is None:
            continue
        tried += 1
        with pytest.raises(GenlabError, match=f"objective.{foreign}': it belongs to objective.kind '{other}'"):
            validate({"model": {"name": _model_for(kind)}, "data": {"name": "digits"},
                      "objective": {"kind": kind, foreign: OBJECTIVES[other].config.model_fields[foreign].default}})
    assert tried or len(KINDS) == 1, "no other kind has a key of its own to try"


@pytest.mark.parametrize("kind", KINDS)
def test_checks_return_sentences(kind):
    name = _model_for(kind)
    cfg = validate({"model": {"name": name}, "data": {"name": "digits"}, "objective": {"kind": kind}})
    entry = OBJECTIVES[kind]
    assert all(isinstance(n, str) and n for n in entry.checks(cfg) + entry.plan_checks(cfg, Plan(1, 1, 1)))
    assert set(entry.learning_rates(cfg.optim)) <= {"optim.lr", "optim.lr_g", "optim.lr_d"}
