"""Run configuration: typed sections loaded from YAML plus `--set key=value` overrides.

Every section forbids unknown keys, so a misspelt option is an error that names the closest valid
key instead of a silently ignored setting. The `model` section is the exception: it holds the
model's name plus that model's constructor arguments, which `genlab.models` checks against the
constructor's signature (one schema, not two).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from genlab.errors import GenlabError

PACKAGED_CONFIGS = Path(__file__).parent / "configs"

# The validation value that ranks best checkpoints when train.best_metric is not set, per objective.
DEFAULT_BEST_METRIC = {"reconstruction": "loss", "adversarial": "fd_randconv"}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(BaseModel):
    """`name` selects a registry entry; every other key is a keyword argument of its constructor."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RandomCrops(_Section):
    """Grow a small texture set: `per_image` random square crops of `size` source pixels each."""

    per_image: int = Field(ge=1)
    size: int = Field(ge=8)


class DataConfig(_Section):
    name: Literal["digits", "mnist", "fashion_mnist", "celeba", "image_folder", "npz", "shapes"]
    root: str | None = None
    image_size: int = Field(32, ge=8, le=1024)
    grayscale: bool | None = None
    normalize: Literal["minus_one_one", "zero_one", "imagenet"] = "minus_one_one"
    center_crop: int | None = Field(None, ge=8)
    random_crops: RandomCrops | None = None
    hflip: bool = False
    val_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    split_seed: int = 0
    # mnist / fashion_mnist: validate on the official test split instead of a val_fraction of train;
    # celeba: use list_eval_partition.txt (train = 0, validation = 1).
    use_test_split: bool = False
    # At most this many training / validation source images (seeded choice). For folders these are
    # files: with random_crops each file then yields per_image crops.
    limit: int | None = Field(None, ge=1)
    val_limit: int | None = Field(None, ge=1)
    labels: bool = True
    images_key: str = "images"
    labels_key: str = "labels"
    download: bool = False
    max_skipped_fraction: float = Field(0.5, ge=0.0, le=1.0)
    # image_folder / celeba: keep the decoded, resized arrays in $GENLAB_CACHE/data and memory-map them
    # on later runs (the key covers the settings and every file's size and mtime).
    cache: bool = True


class ObjectiveConfig(_Section):
    kind: Literal["reconstruction", "adversarial"] = "reconstruction"
    recon_loss: Literal["mse", "bce"] = "mse"
    reduction: Literal["mean", "sum"] = Field(
        "sum",
        description="mean: averaged over every pixel (PyTorch-VAE, seed 001); "
        "sum: summed over each image's pixels, averaged over the batch (Kingma & Welling)",
    )
    # mse only: the squared error divided by 2·std², i.e. the negative log-likelihood of a Gaussian decoder
    # with this fixed std in data units (constant dropped). null keeps the plain squared error (std 1/√2).
    likelihood_std: float | None = Field(None, gt=0.0)
    beta: float = Field(1.0, ge=0.0)
    kld_weight: float = Field(1.0, ge=0.0)
    noise_std: float = Field(0.0, ge=0.0)
    noise_clip: bool = False
    capacity_max: float | None = Field(None, ge=0.0)
    capacity_steps: int = Field(10000, ge=1)
    gamma: float = Field(1000.0, ge=0.0)
    kl_warmup_steps: int = Field(0, ge=0)
    # adversarial
    real_target: float = Field(1.0, gt=0.0, le=1.0, description="one-sided label smoothing: D's target for real")
    fake_target: float = Field(0.0, ge=0.0, lt=1.0)
    # Weight of the auxiliary classifier's cross-entropy (AC-GAN) in D's and G's losses, for a
    # discriminator built with aux_classifier: true; ignored otherwise.
    class_loss_weight: float = Field(1.0, ge=0.0)
    proxy_samples: int = Field(1000, ge=2)
    collapse_check_every: int = Field(50, ge=1)
    collapse_patience: int = Field(5, ge=1)
    d_loss_floor: float = Field(0.01, ge=0.0)
    g_loss_ceiling: float = Field(20.0, gt=0.0)
    stop_on_collapse: bool = False

    @model_validator(mode="after")
    def _likelihood_std_fits(self) -> ObjectiveConfig:
        if self.likelihood_std is not None and (self.recon_loss != "mse" or self.reduction != "sum"):
            raise ValueError("objective.likelihood_std sets the std of a Gaussian decoder, a per-image likelihood: "
                             "it needs recon_loss: mse and reduction: sum "
                             f"(got recon_loss: {self.recon_loss}, reduction: {self.reduction})")
        return self


class OptimConfig(_Section):
    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0.0, le=10.0)
    lr_g: float | None = Field(None, gt=0.0, le=10.0)
    lr_d: float | None = Field(None, gt=0.0, le=10.0)
    betas: tuple[Annotated[float, Field(ge=0.0, lt=1.0)], Annotated[float, Field(ge=0.0, lt=1.0)]] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    scheduler: Literal["none", "cosine", "exponential"] = "none"
    scheduler_gamma: float = Field(0.95, gt=0.0, le=1.0)
    grad_clip: float | None = Field(None, gt=0.0)


class TrainConfig(_Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    deterministic: bool = False
    max_steps: int | None = Field(None, ge=1)
    checkpoint_every_steps: int = Field(500, ge=1)
    log_every_steps: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1)
    progress: bool = True
    figures: bool = True
    epoch_samples: bool = True
    # Mirror the history (scalars) and per-epoch fixed-noise samples to RUN_DIR/tensorboard; needs the
    # optional tensorboard package.
    tensorboard: bool = False
    # Convolution weights and batches in NHWC ("channels last") layout: same numbers, other kernels.
    # null = auto: on. bench/train_speed.py (train.allocator tuned) measured NHWC faster at every seed shape
    # on this CPU: beta_vae64 +40 %, dcgan64 +8 %, cgan28 +17 %, dae28 +4 to +17 %.
    channels_last: bool | None = None
    # A NaN/inf loss term or gradient: "stop" (with the last good checkpoint) or "skip" the batch (no
    # optimiser step; counted in the log), stopping anyway past max_skipped_batches.
    on_nonfinite: Literal["stop", "skip"] = "stop"
    # CPU memory: "tuned" keeps freed blocks in the process (glibc mallopt; bench/allocator.py measured
    # 1.3-1.4x faster steps here, page faults per image from ~120 to ~0), "system" leaves glibc's defaults.
    allocator: Literal["tuned", "system"] = "tuned"
    max_skipped_batches: int = Field(100, ge=1)
    eval_every_steps: int | None = Field(None, ge=1)
    best_metric: str | None = None
    best_mode: Literal["min", "max"] = "min"
    # Under torchrun: batch norm with the statistics of the global batch instead of each process's share
    # (GPUs only: PyTorch's SyncBatchNorm does not run on CPU). No effect in a single process.
    sync_batchnorm: bool = False

    @model_validator(mode="after")
    def _device_known(self) -> TrainConfig:
        d = self.device
        if d not in ("auto", "cpu", "cuda") and not (d.startswith("cuda:") and d[5:].isdigit()):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N (got {d!r})")
        return self


class OutputConfig(_Section):
    root: str = "runs"


class RunConfig(_Section):
    name: str | None = Field(None, description="the run folder's name: one path component")
    model: ModelConfig
    objective: ObjectiveConfig = ObjectiveConfig()
    data: DataConfig
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    output: OutputConfig = OutputConfig()

    @field_validator("name")
    @classmethod
    def _one_path_component(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", name):
            raise ValueError("the run folder's name must be one path component: letters, digits, '.', '_', "
                             "'+' and '-', starting with a letter or digit (e.g. betavae_cats_b100)")
        return name

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# Keys that may differ between a run and its resumption: they change how long or how verbosely it
# runs, never what it computes up to the step it stopped at.
RESUMABLE_CHANGES = {
    "train.epochs", "train.max_steps", "train.progress", "train.checkpoint_every_steps",
    "train.log_every_steps", "train.threads", "train.figures", "train.device", "output.root", "name",
    "train.epoch_samples", "objective.stop_on_collapse", "train.tensorboard",
    "train.on_nonfinite", "train.max_skipped_batches", "train.channels_last", "data.cache",
    "train.sync_batchnorm", "train.allocator",
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


def packaged_configs() -> list[str]:
    return sorted(q.stem for q in PACKAGED_CONFIGS.glob("*.yaml"))


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
        key = ".".join(loc)
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(loc[:-1])
            hint = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
            msg = f"unknown key {key!r}"
            msg += f"; did you mean {'.'.join(loc[:-1] + [hint[0]])!r}?" if hint else "."
            msg += f" Valid keys here: {', '.join(valid)}."
        elif err["type"] == "missing":
            msg = f"missing required key {key!r}."
        else:
            got = err.get("input")
            shown = "" if isinstance(got, dict) else f" (got {got!r})"
            msg = f"{key}: {err['msg']}{shown}."
        lines.append(msg)
    return f"{source}: invalid configuration: " + " ".join(lines)


def _valid_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] | None = RunConfig
    for part in loc:
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
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k) and k not in RESUMABLE_CHANGES)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
