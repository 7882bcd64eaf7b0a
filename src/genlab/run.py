"""The run folder: everything a run writes, and the rules for creating, resuming and reading one.

    runs/<name>/config.yaml        resolved config (what actually ran)
    runs/<name>/history.csv        loss terms per step and per epoch
    runs/<name>/checkpoints/       last.pt, best.pt (self-describing: they carry the config)
    runs/<name>/figures/           PNG figures (figures/epochs/: fixed-noise samples after each epoch)
    runs/<name>/metrics.json       scores, each with its protocol
    runs/<name>/latent_stats.json  VAEs: KL per latent dimension and active units at the last epoch end
    runs/<name>/summary.json       what `genlab train` ended with: image counts, steps, timings, best
                                   checkpoint, every warning (machine-readable; report and results read it)
    runs/<name>/train.log          the log

This module is the one place that knows the layout: it creates, plans and reopens run folders, loads a
trained model from one (`load_run`), and reads and writes summary.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from genlab.config import (
    RunConfig,
    apply_overrides,
    incompatible_changes,
    load,
    migrate_saved,
    read_yaml,
    validate,
    validate_saved,
)
from genlab.errors import GenlabError
from genlab.io import atomic_write, stale_temporaries

if TYPE_CHECKING:
    from torch import nn

    from genlab.data import DataBundle, Normalizer
    from genlab.models import Capabilities

SUMMARY_FORMAT = 1


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def last(self) -> Path:
        return self.path / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "checkpoints" / "best.pt"

    @property
    def figures(self) -> Path:
        return self.path / "figures"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def latent_stats(self) -> Path:
        return self.path / "latent_stats.json"

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    def read_config(self) -> RunConfig:
        if not self.config.is_file():
            raise GenlabError(f"{self.path} is not a genlab run folder (no config.yaml).")
        return validate_saved(read_yaml(self.config), str(self.config))

    def checkpoint(self, which: str) -> Path:
        if which not in ("best", "last"):
            raise GenlabError(f"--checkpoint must be 'best' or 'last' (got {which!r}).")
        return self.best if which == "best" else self.last


def plan_run(cfg: RunConfig, out_root: Path | None, overwrite: bool) -> RunDir:
    """Where a new run will go, refusing, before anything is built, what create_run would not do."""
    root = Path(out_root or cfg.output.root)
    run = RunDir(root / (cfg.name or "run"))
    if run.path.exists() and not run.path.is_dir():
        raise GenlabError(f"{run.path} exists and is a file, not a run folder; choose another name with "
                          f"--set name=NEW or another --out.")
    if run.path.exists() and any(run.path.iterdir()):
        if not overwrite:
            raise GenlabError(f"run folder {run.path} already exists. Continue it with --resume {run.path}, "
                              f"replace it with --overwrite, or choose another name with --set name=NEW.")
        if not run.config.is_file():
            raise GenlabError(f"{run.path} exists and is not a genlab run folder (no config.yaml); --overwrite "
                              f"deletes only run folders. Choose another name with --set name=NEW.")
    return run


def create_run(run: RunDir, cfg: RunConfig, overwrite: bool) -> RunDir:
    """Make the planned folder (emptying an old run there when overwrite) and write the resolved config."""
    if overwrite and run.config.is_file():
        shutil.rmtree(run.path)
    _check_writable(run.path)
    (run.path / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_config(run, cfg)
    return run


def save_config(run: RunDir, cfg: RunConfig) -> None:
    atomic_write(run.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def existing_run(path: Path) -> RunDir:
    """The run folder to resume at `path`; a missing folder or one without config.yaml is refused."""
    run = RunDir(path)
    if not path.is_dir():
        raise GenlabError(f"cannot resume: run folder {path} does not exist.")
    if not run.config.is_file():
        raise GenlabError(f"cannot resume: {path} is not a genlab run folder (no config.yaml).")
    return run


def open_for_resume(path: Path, new_cfg: RunConfig | None) -> tuple[RunDir, RunConfig]:
    """The run to continue and the config to continue it with; only harmless keys may change."""
    run = existing_run(path)
    saved = run.read_config()
    if not run.last.is_file():
        raise GenlabError(f"cannot resume {path}: it has no checkpoints/last.pt yet; start it again with "
                          f"--overwrite.")
    cfg = saved
    if new_cfg is not None:
        bad = incompatible_changes(saved, new_cfg)
        if bad:
            raise GenlabError(f"cannot resume {path} with this config: it changes {', '.join(bad)}, which "
                              f"the saved run computed differently. Only train.epochs, train.max_steps and "
                              f"similar run-length settings may change on resume; start a new run instead.")
        cfg = new_cfg
    _check_writable(path)
    for stale in stale_temporaries(path / "checkpoints"):  # left by a process killed inside a write
        stale.unlink(missing_ok=True)
    return run, cfg


def resume_config(path: Path, config: str | None, overrides: list[str]) -> RunConfig | None:
    """The config `genlab train --resume RUN_DIR [CONFIG] [--set ...]` continues with: None for the saved
    one as it is; else CONFIG (or the saved config.yaml) with the overrides. Overrides on the saved config
    keep its name, so the run stays in its folder."""
    if not config and not overrides:
        return None
    run = existing_run(path)
    if config:
        return load(config, overrides)
    saved = migrate_saved(read_yaml(run.config))
    cfg = validate(apply_overrides(saved, overrides), f"{run.config} with --set")
    return cfg.model_copy(update={"name": saved.get("name")})


def _check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise GenlabError(f"cannot write to the run folder {path}: {exc.strerror}. Choose another output "
                          f"with --out or output.root.") from None
    free = shutil.disk_usage(path).free
    if free < 50 * 2**20:
        raise GenlabError(f"only {free // 2**20} MiB free at {path}; a run needs room for its checkpoints. "
                          f"Free some space or choose another output with --out.")


# ---------------------------------------------------------------- a trained model from its folder


@dataclass
class TrainedModel:
    """A trained model and what using it takes (its normaliser, capabilities, class names), from its
    checkpoint alone: sampling and exporting a model must not need the data set it was trained on."""

    run: RunDir
    cfg: RunConfig
    model: nn.Module
    normalizer: Normalizer
    caps: Capabilities
    step: int
    which: str
    class_names: list[str]
    channels: int
    data_classes: int | None  # labels in the training data (a model trained unconditional on them still has 0)


@dataclass
class LoadedRun:
    run: RunDir
    cfg: RunConfig
    model: nn.Module
    data: DataBundle
    step: int
    caps: Capabilities
    which: str = "best"


def load_model(path: Path, which: str = "best") -> TrainedModel:
    """The model of a run folder, rebuilt from its checkpoint. Checkpoints of genlab 0.4 and later record the
    training data's channels and classes; for an older one of a conditional model the data set is read for them."""
    from genlab import checkpoint
    from genlab.data import Normalizer
    from genlab.models import build_model, capabilities

    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise GenlabError(f"run folder {path} does not exist.")
    ckpt = run.checkpoint(which)
    if not ckpt.is_file():
        other = run.last if which == "best" else run.best
        hint = f"; {other.name} exists: use --checkpoint {other.stem}" if other.is_file() else ""
        raise GenlabError(f"{path} has no checkpoints/{ckpt.name}{hint}.")
    state = checkpoint.load(ckpt)
    cfg = validate_saved(state["config"], f"{ckpt} (embedded config)")
    shape = state.get("data_shape") or _shape_from_data(cfg, ckpt)
    channels = int(shape["channels"])
    model = build_model(cfg.model.name, cfg.model.kwargs(), image_size=cfg.data.image_size,
                        channels=channels, num_classes=shape["num_classes"])
    model.load_state_dict(state["model"])
    caps = capabilities(cfg.model.name, cfg.model.kwargs(), shape["num_classes"])
    names = list(shape.get("class_names") or [])
    return TrainedModel(run, cfg, model.eval(), Normalizer(cfg.data.normalize, channels), caps,
                        state["progress"]["step"], which, names, channels, shape["num_classes"])


def _shape_from_data(cfg: RunConfig, ckpt: Path) -> dict[str, Any]:
    """What a pre-0.4 checkpoint did not record: the label count only matters to a conditional model."""
    from genlab.data import channels_of, load_data
    from genlab.models import capabilities

    if not capabilities(cfg.model.name, cfg.model.kwargs(), None).conditional:
        return {"channels": channels_of(cfg.data), "num_classes": None, "class_names": []}
    try:
        data = load_data(cfg.data)
    except GenlabError as exc:
        raise GenlabError(f"{ckpt} was written before genlab recorded a conditional model's classes in its "
                          f"checkpoint, so the training data ({cfg.data.name}) is read to count them, and that "
                          f"failed: {exc} Point data.root (or GENLAB_DATA) at the data set.") from None
    return {"channels": data.channels, "num_classes": data.num_classes,
            "class_names": list(data.train.class_names or [])}


def load_run(path: Path, which: str = "best") -> LoadedRun:
    """A trained model rebuilt from its run folder, with its data (for scores and figures)."""
    from genlab.data import load_data

    trained = load_model(path, which)
    data = load_data(trained.cfg.data)
    if trained.caps.conditional and data.num_classes != trained.caps.num_classes:
        raise GenlabError(f"{trained.run.path}'s model was trained on {trained.caps.num_classes} classes, but "
                          f"its data ({trained.cfg.data.name}) now has {data.num_classes}; the data set changed "
                          f"since training.")
    return LoadedRun(trained.run, trained.cfg, trained.model, data, trained.step, trained.caps, which)


# ---------------------------------------------------------------- summary.json


def write_summary(run: RunDir, summary: dict[str, Any]) -> Path:
    from genlab import __version__

    doc = {"format": SUMMARY_FORMAT, "genlab_version": __version__, **summary}
    return atomic_write(run.summary, json.dumps(doc, indent=2) + "\n")


def read_summary(run: RunDir) -> dict[str, Any] | None:
    """summary.json of a run, or None for a run that has none (one started before genlab wrote it, or one
    still training for the first time)."""
    if not run.summary.is_file():
        return None
    try:
        doc = json.loads(run.summary.read_text())
    except (OSError, ValueError) as exc:
        raise GenlabError(f"{run.summary} cannot be read as JSON ({exc}); delete it (the next `genlab train "
                          f"--resume` writes it again).") from None
    if not isinstance(doc, dict):
        raise GenlabError(f"{run.summary} must hold a JSON object; delete it.")
    return doc


def summary_of(run: RunDir) -> dict[str, Any]:
    """summary.json, or for a run trained before genlab wrote one, what its train.log says of the same
    facts (image counts, collapse warnings); {} when neither exists."""
    doc = read_summary(run)
    if doc is not None:
        return doc
    return _summary_from_log(run.log) if run.log.is_file() else {}


def _summary_from_log(log: Path) -> dict[str, Any]:
    """genlab 0.1 run folders only: the start line's image counts and the warnings' known prefixes."""
    import re

    text = log.read_text(errors="replace")
    counts = re.findall(r"\(([\d,]+) train / ([\d,]+) validation images", text)
    out: dict[str, Any] = {"source": "train.log (written before summary.json existed)"}
    if counts:
        train, val = counts[-1]
        out["images"] = {"train": int(train.replace(",", "")), "validation": int(val.replace(",", ""))}
    out["warnings"] = warnings_in_log(log)
    return out


def warnings_in_log(log: Path) -> list[dict[str, Any]]:
    """The warnings a genlab 0.1 train.log recorded, by their known beginnings; a GAN warning names its step."""
    import re

    kinds = (("gan_collapse", "possible GAN failure"), ("posterior_collapse", "posterior collapse"))
    out = []
    for line in log.read_text(errors="replace").splitlines():
        for kind, prefix in kinds:
            if prefix in line:
                message = line[line.index(prefix):]
                step = re.match(r"possible GAN failure at step (\d+)", message)
                out.append({"kind": kind, "message": message, "step": int(step.group(1)) if step else None})
    return out
