"""The run folder: everything a run writes, and the rules for creating, resuming and reading one.

    runs/<name>/config.yaml        resolved config (what actually ran)
    runs/<name>/history.csv        loss terms per step and per epoch
    runs/<name>/checkpoints/       last.pt, best.pt (self-describing: they carry the config)
    runs/<name>/figures/           PNG figures (figures/epochs/: fixed-noise samples after each epoch)
    runs/<name>/metrics.json       scores, each with its protocol
    runs/<name>/latent_stats.json  VAEs: KL per latent dimension and active units at the last epoch end
    runs/<name>/train.log          the log
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from genlab.config import RunConfig, incompatible_changes, read_yaml, validate
from genlab.errors import GenlabError


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

    def read_config(self) -> RunConfig:
        if not self.config.is_file():
            raise GenlabError(f"{self.path} is not a genlab run folder (no config.yaml).")
        return validate(read_yaml(self.config), str(self.config))


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
    write_text_atomic(run.config, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


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
    for stale in (path / "checkpoints").glob(".*.tmp*"):  # left by a process killed inside a write
        stale.unlink(missing_ok=True)
    return run, cfg


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


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
