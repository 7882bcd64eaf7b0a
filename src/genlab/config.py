"""Run configuration: typed sections loaded from YAML plus `--set key=value` overrides.

Every section forbids unknown keys, so a misspelt option is an error that names the closest valid
key instead of a silently ignored setting. The `objective` section is a union chosen by
`objective.kind`: each objective kind defines its own section (genlab.objectives), and a key of another
kind is an error that names the kind it belongs to. The `model` section is the exception to strictness:
it holds the model's name plus that model's constructor arguments, which `genlab.models` checks against
the constructor's signature (one schema, not two).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from genlab.errors import GenlabError
from genlab.objectives import OBJECTIVES
from genlab.paths import PACKAGED_CONFIGS, packaged_configs
from genlab.sections import (
    DataConfig,
    ModelConfig,
    OptimConfig,
    OutputConfig,
    PriorConfig,
    RandomCrops,
    Section,
    TrainConfig,
)

__all__ = ["PACKAGED_CONFIGS", "DataConfig", "ModelConfig", "ObjectiveSection", "OptimConfig", "OutputConfig",
           "PriorConfig", "RandomCrops", "RunConfig", "TrainConfig", "apply_overrides", "incompatible_changes", "load",
           "migrate_saved", "packaged_configs", "parse_override", "read_yaml", "resolve_config_path", "validate",
           "validate_saved"]

# One section per registered objective kind, told apart by `kind`.
ObjectiveSection = Annotated[Union[tuple(e.config for e in OBJECTIVES.values())],  # noqa: UP007
                             Field(discriminator="kind")]


def objective_config(kind: str) -> type[Section]:
    return OBJECTIVES[kind].config


class RunConfig(Section):
    name: str | None = Field(None, description="the run folder's name: one path component")
    model: ModelConfig
    objective: ObjectiveSection
    prior: PriorConfig | None = Field(None, description="the finished run a vqvae_prior model is trained over")
    # Required, except in a config with a prior section: such a run takes the first run's data section
    # (genlab.prior_run fills it in, with prior.data's changes, before anything reads it).
    data: DataConfig | None = Field(None, validate_default=True)
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_objective(cls, data: Any) -> Any:
        """No objective section, or one without `kind`: the first kind the model's registry entry trains with."""
        if not isinstance(data, dict):
            return data
        objective = data.get("objective")
        if objective is None:
            objective = {}
        if isinstance(objective, dict) and "kind" not in objective:
            data = {**data, "objective": {"kind": _default_kind(data.get("model"), set(objective)), **objective}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _data_changes_of_a_prior_run(cls, data: Any) -> Any:
        """In a config with a prior section, a data section without `name` (`--set data.limit=500` on the
        bundled vqvae_prior) holds changes to the first run's data section: it is read as prior.data."""
        if not isinstance(data, dict):
            return data
        prior, section = data.get("prior"), data.get("data")
        if isinstance(prior, dict) and isinstance(section, dict) and "name" not in section:
            data = {**data, "prior": {**prior, "data": {**(prior.get("data") or {}), **section}}}
            del data["data"]
        return data

    @field_validator("data")
    @classmethod
    def _data_given(cls, data: DataConfig | None, info: ValidationInfo) -> DataConfig | None:
        """Missing is an error, as for any required key, unless a prior section names a run to take it from
        (a prior section that is itself invalid is reported on its own)."""
        if data is None and "prior" in info.data and info.data["prior"] is None:
            raise PydanticCustomError("missing", "Field required")
        return data

    @field_validator("name")
    @classmethod
    def _one_path_component(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            raise ValueError("the run folder's name must be one path component: letters, digits, '.', '_', "
                             "'+' and '-', starting with a letter or digit (e.g. betavae_cats_b100)")
        return name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _default_kind(model: Any, keys: set[str]) -> str:
    """The model's own first kind; for a model genlab does not know (its error comes when it is built), the
    kind whose section has the keys given, so that the objective section does not hide the model's error."""
    from genlab.models import MODELS

    name = model.get("name") if isinstance(model, dict) else getattr(model, "name", None)
    entry = MODELS.get(name) if isinstance(name, str) else None
    if entry is not None:
        return entry.trains_with[0]
    fits = [kind for kind in OBJECTIVES if keys <= set(objective_config(kind).model_fields)]
    return fits[0] if fits else next(iter(OBJECTIVES))


# Keys that may differ between a run and its resumption: they change how long or how verbosely it
# runs, never what it computes up to the step it stopped at. Objective kinds name their own
# (ObjectiveEntry.resumable).
RESUMABLE_CHANGES = {
    "train.epochs", "train.max_steps", "train.progress", "train.checkpoint_every_steps",
    "train.log_every_steps", "train.threads", "train.figures", "train.device", "output.root", "name",
    "train.epoch_samples", "train.tensorboard", "train.mlflow", "train.mlflow_uri",
    "train.on_nonfinite", "train.max_skipped_batches", "train.channels_last", "data.cache",
    "train.sync_batchnorm", "train.allocator", "train.compile",
    # where the first run lives: a resumed prior run's frozen weights come from its own checkpoint
    "prior.run",
}


def resolve_config_path(spec: str) -> Path:
    """A path to a YAML file, or the name of a config shipped with genlab (`genlab configs` lists them)."""
    p = Path(spec)
    if p.is_file():
        return p
    for candidate in (PACKAGED_CONFIGS / spec, PACKAGED_CONFIGS / f"{spec}.yaml"):
        if candidate.is_file():
            return candidate
    names = sorted(q.stem for q in PACKAGED_CONFIGS.glob("*.yaml"))
    hint = difflib.get_close_matches(p.stem, names, n=1)
    raise GenlabError(
        f"config {spec!r} not found: it is neither a file nor a bundled config. "
        + (f"Did you mean {hint[0]!r}? " if hint else "")
        + f"Bundled configs: {', '.join(names)}."
    )


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise GenlabError(f"{path} is not a text file; a config is YAML text.") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise GenlabError(f"{path}: YAML syntax error{where}: {problem}.") from None
    except OSError as exc:
        raise GenlabError(f"cannot read config {path}: {exc.strerror}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise GenlabError(f"{path}: a config must be a mapping of sections (model, data, ...), "
                          f"got a {type(data).__name__}.")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise GenlabError(f"--set {text!r}: expected key=value, e.g. --set train.epochs=5.")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise GenlabError(f"--set {text!r}: the key {key!r} has an empty part.")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    out = _deep_copy(data)
    for text in overrides:
        parts, value = parse_override(text)
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise GenlabError(f"--set {text!r}: {'.'.join(parts[: i + 1])} is a value, not a section.")
            node = child
        node[parts[-1]] = value
    return out


def _deep_copy(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in d.items()}


def validate(data: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise GenlabError(format_validation_error(exc, source)) from None


def validate_saved(data: dict[str, Any], source: str) -> RunConfig:
    """A config a run folder or checkpoint stored, as this version reads it (see `migrate_saved`)."""
    return validate(migrate_saved(data), source)


def migrate_saved(data: dict[str, Any]) -> dict[str, Any]:
    """A saved config as this version reads it.

    genlab 0.1 saved every objective key of every kind in one flat section. Such a section (recognised by
    keys that belong to other kinds) loses those keys, which had no effect there, and its capacity ramp's
    old default (10000 steps, now implied by null) is dropped too, so an old run resumes with the config it
    was started with. A `data.use_test_split` that 0.1 ignored for a source without an official test split
    (this version refuses it) is cleared. Keys no kind knows are left for validation to report."""
    from genlab.data.registry import SOURCES

    data = dict(data)
    objective = data.get("objective")
    if isinstance(objective, dict) and objective.get("kind") in OBJECTIVES:
        own = objective_config(objective["kind"]).model_fields
        others = {k for kind in OBJECTIVES if kind != objective["kind"] for k in objective_config(kind).model_fields}
        foreign = {k for k in objective if k not in own and k in others}
        if foreign:  # written by genlab 0.1
            kept = {k: v for k, v in objective.items() if k not in foreign}
            if kept.get("capacity_steps") == 10000 and "capacity_epochs" in own:
                kept["capacity_steps"] = None
            data["objective"] = kept
    source = data.get("data")
    if isinstance(source, dict) and source.get("use_test_split") and source.get("name") in SOURCES \
            and not SOURCES[source["name"]].official_test_split:
        data["data"] = {**source, "use_test_split": False}
    return data


def load(spec: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a config file (or bundled name), apply overrides, and validate it."""
    path = resolve_config_path(str(spec))
    data = read_yaml(path)
    data = apply_overrides(data, overrides or [])
    if not data.get("name"):
        data["name"] = path.stem
    return validate(data, str(path))


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        kind = None
        if loc[:1] == ["objective"] and len(loc) > 1 and loc[1] in OBJECTIVES:
            kind = loc.pop(1)  # the union's tag: not a key the user wrote
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(loc[:-1], kind)
            hint = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
            owners = [k for k in OBJECTIVES if k != kind and loc[-1] in objective_config(k).model_fields]
            msg = f"unknown key {key!r}"
            if kind and owners and len(loc) == 2:
                msg += (f": it belongs to objective.kind {' or '.join(map(repr, owners))}, and this objective's "
                        f"kind is {kind!r}.")
            else:
                msg += f"; did you mean {'.'.join(loc[:-1] + [hint[0]])!r}?" if hint else "."
            msg += f" Valid keys here: {', '.join(valid)}."
        elif err["type"] == "missing":
            msg = f"missing required key {key!r}."
        elif err["type"] == "union_tag_invalid":
            msg = (f"{key}.kind {err['ctx']['tag']!r} is not an objective kind; registered kinds: "
                   f"{', '.join(OBJECTIVES)}.")
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            text = str(err["ctx"]["error"]) if err["type"] == "value_error" else err["msg"]  # no "Value error, "
            msg = f"{key}: {text}{shown}."
        lines.append(msg)
    return f"{source}: invalid configuration: " + " ".join(lines)


def _valid_keys(loc: list[str], kind: str | None = None) -> list[str]:
    model: type[BaseModel] | None = RunConfig
    for i, part in enumerate(loc):
        if i == 0 and part == "objective" and kind is not None:
            model = objective_config(kind)
            continue
        field = model.model_fields.get(part) if model else None
        ann = field.annotation if field else None
        model = _section_type(ann)
    return sorted(model.model_fields) if model else []


def _section_type(ann: Any) -> type[BaseModel] | None:
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()):
        found = _section_type(arg)
        if found:
            return found
    return None


def incompatible_changes(saved: RunConfig, new: RunConfig) -> list[str]:
    """Dotted keys whose values differ between two configs and would change what a resumed run computes."""
    a, b = _flatten(saved.to_dict()), _flatten(new.to_dict())
    free = RESUMABLE_CHANGES | {f"objective.{k}" for k in OBJECTIVES[saved.objective.kind].resumable}
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in free)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
