"""The config sections every run has, whatever it trains: model, data, optim, train, output (and prior).

Objective sections are not here: each objective kind defines its own next to its code (see
genlab.objectives), and genlab.config joins them into one union chosen by `objective.kind`. This module
imports nothing else of genlab's but its error type, so every other module can use these types without
import cycles.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    """Unknown keys are errors that name the closest valid one (genlab.config formats them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelConfig(BaseModel):
    """`name` selects a registry entry; every other key is a keyword argument of its constructor."""

    model_config = ConfigDict(extra="allow", frozen=True)
    name: str

    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RandomCrops(Section):
    """Grow a small texture set: `per_image` random square crops of `size` source pixels each."""

    per_image: int = Field(ge=1)
    size: int = Field(ge=8)


class DataConfig(Section):
    name: str = Field(description="a registered data source: `genlab data` lists them")
    root: str | None = None
    image_size: int = Field(32, ge=8, le=1024)
    grayscale: bool | None = None
    normalize: Literal["minus_one_one", "zero_one", "imagenet"] = "minus_one_one"
    center_crop: int | None = Field(None, ge=8)
    random_crops: RandomCrops | None = None
    hflip: bool = False
    binarize: Literal["dynamic", "static"] | None = Field(
        None, description="Bernoulli draw of each pixel, as likelihood papers use MNIST: dynamic (training images "
        "drawn afresh every epoch) or static (drawn once); validation images are drawn once either way")
    val_fraction: float = Field(0.25, gt=0.0, lt=1.0)
    split_seed: int = 0
    # Sources with an official test split (mnist, fashion_mnist; celeba's list_eval_partition.txt): validate
    # on it instead of a val_fraction of the training files.
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
    # Sources decoded from image files: keep the decoded, resized arrays in $GENLAB_CACHE/data and memory-map
    # them on later runs (the key covers the settings and every file's size and mtime).
    cache: bool = True

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        from genlab.data.registry import SOURCES  # the sources import this module: resolved when validating

        if name not in SOURCES:
            names = sorted(SOURCES)
            hint = difflib.get_close_matches(name, names, n=1)
            listed = ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}"
            raise ValueError(f"unknown data source{f'; did you mean {hint[0]!r}?' if hint else '.'} "
                             f"Input should be {listed}")
        return name


class OptimConfig(Section):
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


class TrainConfig(Section):
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    # Under bf16/fp16 autocast: normalisation layers (batch, group, layer norm) compute in fp32 (device.py,
    # norms_in_fp32). On: with batch norm in bf16 a DCGAN's samples were measurably worse than fp32's, with
    # it in fp32 they were not (bench/precision_quality.py on 2 seeds each; README, Devices).
    fp32_norms: bool = True
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
    # Log the run to MLflow too (genlab.tracking): the history's loss terms live, then the config as params,
    # the end-of-training scores, figures, config.yaml and summary.json; needs the optional mlflow package.
    mlflow: bool = False
    # null = the SQLite store <output root>/mlflow.db; else any MLflow tracking URI (http://host:5000, ...).
    mlflow_uri: str | None = None
    # Convolution weights and batches in NHWC ("channels last") layout: same numbers, other kernels.
    # null = auto: on. bench/train_speed.py (train.allocator tuned) measured NHWC faster at every benchmark
    # shape on this CPU: beta_vae64 +40 %, dcgan64 +8 %, cgan28 +17 %, dae28 +4 to +17 %.
    channels_last: bool | None = None
    # torch.compile of the model's networks (engine/compiling.py); the first steps then include compiling,
    # cached under $GENLAB_CACHE/inductor for later runs. null = auto: off (engine/compiling.py says why).
    compile: bool | None = None
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


class PriorConfig(Section):
    """The finished run a model with `builds_on` (vqvae_prior) is trained over: genlab.prior_run reads it."""

    run: str = Field(description="the first run's folder, relative to the working directory or absolute")
    checkpoint: Literal["best", "last"] = Field("best", description="which of its checkpoints to load")
    data: dict[str, Any] = Field(default_factory=dict, description="keys of the first run's data section to "
                                 "change for this run (image_size and grayscale excepted); empty: its images")


class OutputConfig(Section):
    root: str = "runs"
