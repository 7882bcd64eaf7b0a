"""`genlab train` as a function: config in, run folder out. The CLI is a thin shell around this."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from genlab import checkpoint
from genlab.config import RunConfig
from genlab.data import DataBundle, load_data
from genlab.device import select_device, set_determinism
from genlab.engine import FitResult, Trainer
from genlab.models import build_model
from genlab.objectives import build_objective
from genlab.run import RunDir, create_run, open_for_resume
from genlab.viz.figures import reconstruction_figure, sample_figure

log = logging.getLogger("genlab")


@dataclass
class TrainOutcome:
    run: RunDir
    result: FitResult
    figures: list[Path]


def build_parts(cfg: RunConfig, device: torch.device):
    data = load_data(cfg.data)
    model = build_model(cfg.model.name, cfg.model.kwargs(), image_size=cfg.data.image_size,
                        channels=data.channels).to(device)
    objective = build_objective(cfg, model, data.normalizer)
    return data, model, objective


def train(cfg: RunConfig | None, *, out: Path | None = None, overwrite: bool = False,
          resume: Path | None = None, stop_after_steps: int | None = None) -> TrainOutcome:
    if resume is not None:
        run, cfg = open_for_resume(resume, cfg)
    else:
        assert cfg is not None
        run = create_run(cfg, out, overwrite)
    handler = _log_to(run.log)
    try:
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        set_determinism(cfg.train.seed, cfg.train.deterministic)
        device = select_device(cfg.train.device)
        data, model, objective = build_parts(cfg, device)
        log.info("run %s: %s on %s (%d train / %d validation images, %dx%dx%d), %s parameters, device %s",
                 run.path, cfg.model.name, cfg.data.name, len(data.train), len(data.val), data.channels,
                 cfg.data.image_size, cfg.data.image_size, f"{sum(p.numel() for p in model.parameters()):,}",
                 device)
        trainer = Trainer(objective, data, cfg, run, device)
        if resume is not None:
            trainer.restore(checkpoint.load(run.last, map_location=device))
            log.info("resumed at step %d (epoch %d, batch %d)", trainer.progress.step,
                     trainer.progress.epoch + 1, trainer.progress.batch)
        result = trainer.fit(stop_after_steps=stop_after_steps)
        figures = end_of_run_figures(model, data, cfg, run) if cfg.train.figures and not result.stopped_early else []
        return TrainOutcome(run, result, figures)
    finally:
        logging.getLogger("genlab").removeHandler(handler)
        handler.close()


def end_of_run_figures(model: nn.Module, data: DataBundle, cfg: RunConfig, run: RunDir) -> list[Path]:
    device = next(model.parameters()).device
    n = min(8, len(data.val))
    x = data.normalizer(torch.from_numpy(data.val.images[:n]).permute(0, 3, 1, 2).to(device))
    return [
        reconstruction_figure(model, x, data.normalizer, run.figures / "reconstructions.png",
                              noise_std=cfg.objective.noise_std, seed=cfg.train.seed),
        sample_figure(model, data.normalizer, run.figures / "samples.png", seed=cfg.train.seed),
    ]


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("genlab")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)  # the file gets everything; console handlers choose their own level
    return handler
