"""Run set-up for a model trained over another run's model (an entry with `builds_on`: `vqvae_prior`).

A prior run names a finished run in its `prior` section (`prior.run`, relative to the working directory or
absolute; `prior.checkpoint`, best or last). Before the run folder is planned, `resolve` fills in from that
run's config.yaml what the prior run must share with it:

    model.base               the first run's model name and arguments (the frozen submodule's architecture)
    model.output_activation  the first run's
    data                     the first run's data section (the same images, split and normalisation), with
                             `prior.data`'s keys changed (image_size and grayscale may not change: the frozen
                             network was trained on that shape)

so the prior run's config.yaml and checkpoints describe the whole model and `genlab sample`, `eval` and
`export` need only the prior run. `load_base` then loads the first run's weights into the frozen submodule
of a newly built model (a resumed run's come from its own checkpoint). Neither the model nor the training
loop knows of any of this.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from torch import nn

from genlab.config import RunConfig
from genlab.errors import GenlabError
from genlab.sections import DataConfig

FIXED_DATA = ("image_size", "grayscale")


def _entry(name: str):
    from genlab.models import MODELS

    return MODELS.get(name)


def _valid_bases(posterior: str) -> list[str]:
    from genlab.models import MODELS

    return sorted(n for n, e in MODELS.items() if e.latent.posterior == posterior and e.builds_on is None)


def first_run(cfg: RunConfig) -> tuple[Path, RunConfig]:
    """The first run's folder and config, refused unless it is a finished run of a model this one builds on."""
    from genlab.run import RunDir, read_summary

    entry = _entry(cfg.model.name)
    assert cfg.prior is not None and entry is not None and entry.builds_on is not None
    path = Path(cfg.prior.run)
    valid = " or ".join(_valid_bases(entry.builds_on)) or "none registered"
    what = (f"prior.run names the finished run whose model a {cfg.model.name} run is trained over (a model with a "
            f"{entry.builds_on} posterior: {valid}), e.g. runs/vqvae_cats after `genlab train vqvae_cats`")
    if not path.is_dir():
        where = "" if path.is_absolute() else f" (relative to the working directory, {Path.cwd()})"
        raise GenlabError(f"prior.run {path}: no such folder{where}. {what}.")
    run = RunDir(path)
    if not run.config.is_file():
        raise GenlabError(f"prior.run {path} is not a genlab run folder (no config.yaml). {what}.")
    summary = read_summary(run)
    status = (summary or {}).get("status", "")
    if not (status == "finished" or status.startswith("stopped early")):
        said = f"its summary.json says {status!r}" if summary else "it has no summary.json"
        raise GenlabError(f"prior.run {path} is not a finished run ({said}). Finish it first (genlab train "
                          f"--resume {path}), or name another. {what}.")
    ckpt = run.checkpoint(cfg.prior.checkpoint)
    if not ckpt.is_file():
        raise GenlabError(f"prior.run {path} has no checkpoints/{ckpt.name}; set prior.checkpoint to "
                          f"{'last' if ckpt.stem == 'best' else 'best'} or train the run again.")
    base = run.read_config()
    base_entry = _entry(base.model.name)
    if base_entry is None or base_entry.latent.posterior != entry.builds_on or base_entry.builds_on is not None:
        kind = f"a {base_entry.latent.posterior} posterior" if base_entry else "an unknown model"
        raise GenlabError(f"prior.run {path} is a run of model {base.model.name!r} ({kind}); a {cfg.model.name} "
                          f"run needs a run of a model with a {entry.builds_on} posterior: {valid}.")
    return path, base


def resolve(cfg: RunConfig) -> RunConfig:
    """`cfg` with model.base, model.output_activation and data taken from the first run (see the module)."""
    from genlab.models import output_activation

    entry = _entry(cfg.model.name)
    builds_on = entry.builds_on if entry is not None else None
    if builds_on is None:
        if cfg.prior is not None:
            users = sorted(n for n in _model_names() if _entry(n).builds_on)
            raise GenlabError(f"a prior section names the run a model is trained over; model {cfg.model.name!r} "
                              f"is not trained over another run ({', '.join(users)} are): remove it.")
        return cfg
    if cfg.prior is None:
        raise GenlabError(f"model {cfg.model.name!r} is trained over a finished run's model: name that run with "
                          f"prior.run (e.g. --set prior.run=runs/vqvae_cats).")
    path, base = first_run(cfg)
    derived = {"base": {"name": base.model.name, **{k: v for k, v in base.model.kwargs().items()
                                                    if k != "output_activation"}},
               "output_activation": output_activation(base.model.name, base.model.kwargs())}
    given = cfg.model.kwargs()
    clash = [k for k in derived if k in given and given[k] != derived[k]]
    if clash:
        raise GenlabError(f"model.{clash[0]} is set to {given[clash[0]]!r}, but prior.run {path} gives "
                          f"{derived[clash[0]]!r}; leave it out (run set-up fills it in from that run).")
    data = _data(cfg, base.data, path)
    if cfg.data is not None and cfg.data != data:
        raise GenlabError(f"a {cfg.model.name} run takes its data section from prior.run {path}; this config's "
                          f"differs from it. Remove the data section and change keys of the first run's with "
                          f"prior.data (e.g. --set prior.data.limit=1000).")
    model = type(cfg.model).model_validate({"name": cfg.model.name, **given, **derived})
    return cfg.model_copy(update={"model": model, "data": data})


def _model_names() -> list[str]:
    from genlab.models import MODELS

    return list(MODELS)


def _data(cfg: RunConfig, first: DataConfig, path: Path) -> DataConfig:
    assert cfg.prior is not None
    changes: dict[str, Any] = dict(cfg.prior.data)
    fixed = [k for k in FIXED_DATA if k in changes and changes[k] != getattr(first, k)]
    if fixed:
        raise GenlabError(f"prior.data.{fixed[0]} cannot change ({getattr(first, fixed[0])!r} in prior.run {path}): "
                          f"the frozen network was trained on images of that shape.")
    unknown = sorted(set(changes) - set(DataConfig.model_fields))
    if unknown:
        hint = difflib.get_close_matches(unknown[0], list(DataConfig.model_fields), n=1, cutoff=0.5)
        raise GenlabError(f"prior.data.{unknown[0]} is not a key of a data section"
                          + (f"; did you mean prior.data.{hint[0]}?" if hint else ".")
                          + f" Valid keys: {', '.join(sorted(DataConfig.model_fields))}.")
    try:
        return DataConfig.model_validate({**first.model_dump(mode="json"), **changes})
    except ValidationError as exc:
        problems = "; ".join(f"prior.data.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise GenlabError(f"{problems} (changing the data section of prior.run {path}).") from None


def load_base(model: nn.Module, cfg: RunConfig) -> None:
    """The first run's weights (prior.checkpoint) into a newly built model's frozen submodule."""
    from genlab import checkpoint

    assert cfg.prior is not None
    path, base = first_run(cfg)
    from genlab.run import RunDir

    ckpt = RunDir(path).checkpoint(cfg.prior.checkpoint)
    state = checkpoint.load(ckpt)
    embedded = state["config"].get("model", {})
    if embedded != base.model.model_dump(mode="json"):
        raise GenlabError(f"{ckpt}'s model ({embedded}) is not the one {path}/config.yaml describes "
                          f"({base.model.model_dump(mode='json')}); the run folder was changed after training.")
    model.load_base(state["model"])
