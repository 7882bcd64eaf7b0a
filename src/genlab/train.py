"""`genlab train` as a function: config in, run folder out. The CLI is a thin shell around this.

Started by torchrun with several processes, every process runs this function; genlab.distributed
explains the division of work (rank 0 alone touches the run folder).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genlab import checkpoint, distributed
from genlab.config import RunConfig
from genlab.consistency import check_consistency
from genlab.data import DataBundle, load_data
from genlab.data.cache import CACHED_SOURCES
from genlab.device import set_determinism
from genlab.engine import EpochCallback, FitResult, Progress, Trainer
from genlab.models import build_model, is_gan
from genlab.objectives import Objective, build_objective
from genlab.run import RunDir, create_run, existing_run, open_for_resume, plan_run, save_config

log = logging.getLogger("genlab")

# Scores cheap enough to compute after every training run; `genlab eval` computes the rest.
END_OF_TRAINING_GAN = ("discriminator", "fd_randconv")
END_OF_TRAINING_RECONSTRUCTION = ("reconstruction", "latent_usage")


@dataclass
class TrainOutcome:
    run: RunDir
    result: FitResult
    figures: list[Path]
    warnings: list[str] = field(default_factory=list)  # config warnings, then the collapse warning if any


def build_parts(cfg: RunConfig, device: torch.device):
    data = _load_data(cfg)
    model = build_model(cfg.model.name, cfg.model.kwargs(), image_size=cfg.data.image_size,
                        channels=data.channels, num_classes=data.num_classes).to(device)
    if cfg.train.sync_batchnorm and distributed.world_size() > 1:
        model = distributed.convert_sync_batchnorm(model, device)
    objective = build_objective(cfg, model, data.normalizer)
    return data, model, objective


def _load_data(cfg: RunConfig) -> DataBundle:
    """With data.download or a decoded-image cache under torchrun, processes load in turns instead of all
    downloading, or decoding the same files and writing the same cache, at once: rank 0, then the first
    process of every other machine (which finds rank 0's files on a shared disk, or makes its own), then
    the rest, which read what their machine has."""
    writes = cfg.data.download or (cfg.data.cache and cfg.data.name in CACHED_SOURCES)
    if not (writes and distributed.world_size() > 1):
        return load_data(cfg.data)
    launch = distributed.launch_from_env()
    turn = 0 if launch.rank == 0 else 1 if launch.local_rank == 0 else 2
    data = None
    for phase in range(3):
        if phase == turn:
            data = load_data(cfg.data)
        distributed.barrier()
    assert data is not None
    return data


def train(cfg: RunConfig | None, *, out: Path | None = None, overwrite: bool = False,
          resume: Path | None = None, stop_after_steps: int | None = None,
          callbacks: list[EpochCallback] | None = None) -> TrainOutcome:
    """callbacks run after each epoch's evaluation, like the per-epoch sample grids (benchmarks use them).

    Under torchrun (WORLD_SIZE > 1) it joins the process group for the run and leaves it afterwards;
    callbacks then run on rank 0 only."""
    launch = distributed.launch_from_env()
    if launch.world_size == 1:
        return _train(cfg, launch, out, overwrite, resume, stop_after_steps, callbacks)
    # The backend (NCCL or gloo) follows the device, so the config is read before the group exists;
    # so is the batch split checked, which then fails on every process alike without one.
    early = cfg if cfg is not None else existing_run(resume).read_config()
    distributed.local_batch_size(early.train.batch_size, launch.world_size)
    device = distributed.select_device(early.train.device, launch)
    with distributed.session(launch, device), distributed.quiet_unless_main():
        return _train(cfg, launch, out, overwrite, resume, stop_after_steps, callbacks)


def _open_run(cfg: RunConfig | None, out: Path | None, overwrite: bool, resume: Path | None
              ) -> tuple[RunDir, RunConfig]:
    if resume is not None:
        return open_for_resume(resume, cfg)
    assert cfg is not None
    return plan_run(cfg, out, overwrite), cfg


def _train(cfg: RunConfig | None, launch: distributed.Launch, out: Path | None, overwrite: bool,
           resume: Path | None, stop_after_steps: int | None, callbacks: list[EpochCallback] | None
           ) -> TrainOutcome:
    main = distributed.is_main()
    run, cfg = distributed.main_first(lambda: _open_run(cfg, out, overwrite, resume), "opening the run folder")
    distributed.local_batch_size(cfg.train.batch_size)  # before the data is loaded
    notes = check_consistency(cfg)  # settings that cannot work together stop here, before any data is read
    for note in notes:  # on the console now; into train.log once it exists
        log.warning("config: %s", note)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    set_determinism(cfg.train.seed + launch.rank, cfg.train.deterministic)  # per-process noise
    device = distributed.select_device(cfg.train.device, launch)
    # Everything that can fail on a config or data mistake happens before the run folder is touched,
    # so --overwrite with a typo does not destroy the previous run.
    data, model, objective = build_parts(cfg, device)
    if cfg.train.tensorboard and main:
        from genlab.live import require_tensorboard

        require_tensorboard()
    every_epoch = [epoch_samples(data, cfg, run)] if cfg.train.epoch_samples else []
    trainer = Trainer(objective, data, cfg, run, device, every_epoch + list(callbacks or []) if main else [])
    trainer.preflight()
    if resume is not None:
        # A bad or mismatched checkpoint is refused before anything (even the log) is written to the run.
        state = distributed.main_first(lambda: checkpoint.load(run.last, map_location="cpu"), "reading last.pt")
        trainer.restore(state, run.last)
        del state
    else:
        distributed.main_first(lambda: create_run(run, cfg, overwrite), "creating the run folder")
    distributed.broadcast_module(model)  # processes seeded differently built different weights
    if not main:
        return _train_other(trainer, stop_after_steps, run)
    handler = _log_to(run.log)
    for note in notes:
        handler.handle(log.makeRecord(log.name, logging.WARNING, __file__, 0, "config: %s", (note,), None))
    live = None
    if cfg.train.tensorboard:
        from genlab.live import TensorBoardLog

        live = TensorBoardLog(run.path, resumed_at=trainer.progress.step + 1 if resume is not None else None)
        trainer.history.listeners.append(live.scalars)
        trainer.callbacks.append(lambda objective, p: live.samples(objective.model, data.normalizer, p.step,
                                                                   cfg.train.seed))
    started = False
    try:
        log.info("run %s: %s on %s (%d train / %d validation images, %dx%dx%d), %s parameters, device %s",
                 run.path, cfg.model.name, cfg.data.name, len(data.train), len(data.val), data.channels,
                 cfg.data.image_size, cfg.data.image_size, _parameter_count(model),
                 device)
        if resume is not None:
            save_config(run, cfg)  # the run-length settings it continues with
            log.info("resumed at step %d (epoch %d, batch %d)", trainer.progress.step,
                     trainer.progress.epoch + 1, trainer.progress.batch)
        started = True
        result = trainer.fit(stop_after_steps=stop_after_steps)
        warnings = [*notes, *([trainer.latent_warning] if trainer.latent_warning else [])]
        if result.stopped_early == "stop_after_steps":
            return TrainOutcome(run, result, [], warnings)
        # Plotting and metric libraries load only now: a training process starts in half the time.
        from genlab.evaluate import EvalSettings, evaluate_loaded
        from genlab.figures import LoadedRun, render

        end_metrics = END_OF_TRAINING_GAN if is_gan(model) else END_OF_TRAINING_RECONSTRUCTION
        evaluate_loaded(LoadedRun(run, cfg, model, data, result.progress.step), list(end_metrics), which="last",
                        settings=EvalSettings(seed=cfg.train.seed), device=str(device), strict=False)
        figures = render(model, data, cfg, run) if cfg.train.figures else []
        return TrainOutcome(run, result, figures, warnings)
    except BaseException:
        # A config or data problem found before training began: drop the new, empty run folder, or it
        # would make the corrected command fail with "run folder ... already exists".
        if resume is None and not started:
            _close_log(handler)
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    finally:
        if live is not None:
            live.close()
        _close_log(handler)


def _train_other(trainer: Trainer, stop_after_steps: int | None, run: RunDir) -> TrainOutcome:
    """A process other than rank 0: it trains its share and leaves the end-of-training scores, figures
    and every file to rank 0."""
    return TrainOutcome(run, trainer.fit(stop_after_steps=stop_after_steps), [])


def epoch_samples(data: DataBundle, cfg: RunConfig, run: RunDir):
    """After each epoch, samples from the same fixed noise (and labels), so grids compare across epochs."""

    def callback(objective: Objective, progress: Progress) -> None:
        from genlab.viz.figures import sample_figure

        sample_figure(objective.model, data.normalizer, run.figures / "epochs" / f"samples_{progress.epoch:03d}.png",
                      n=32, seed=cfg.train.seed, class_names=data.train.class_names,
                      title=f"Epoch {progress.epoch}: fixed-noise samples (seed {cfg.train.seed})")
        objective.model.train()

    return callback


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("genlab")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)  # the file gets everything; console handlers choose their own level
    return handler


def _close_log(handler: logging.Handler) -> None:
    logging.getLogger("genlab").removeHandler(handler)
    handler.close()


def _parameter_count(model) -> str:
    """Trained parameters, with a GAN's weight-averaged generator copy named apart, not added in."""
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return f"{trained:,}" + (f" (+{frozen:,} in the averaged generator)" if frozen else "")
