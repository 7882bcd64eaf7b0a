"""`genlab train` as a function: config in, run folder out. The CLI is a thin shell around this.

Started by torchrun with several processes, every process runs this function; genlab.distributed
explains the division of work (rank 0 alone touches the run folder).
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from genlab import checkpoint, distributed
from genlab.config import RunConfig
from genlab.consistency import check_consistency, check_plan
from genlab.data import DataBundle, load_data
from genlab.data.cache import writes_cache
from genlab.data.registry import get_source
from genlab.device import set_determinism
from genlab.engine.hook import Hook
from genlab.engine.loaders import steps_per_epoch
from genlab.engine.loop import FitResult, Loop
from genlab.engine.phases import mark
from genlab.errors import TrainingInterrupted
from genlab.models import Capabilities, build_model, capabilities
from genlab.objectives import Objective, Plan, build_objective
from genlab.run import RunDir, create_run, existing_run, open_for_resume, plan_run, save_config, write_summary

log = logging.getLogger("genlab")


@dataclass
class TrainOutcome:
    run: RunDir
    result: FitResult
    figures: list[Path]
    warnings: list[str] = field(default_factory=list)  # config warnings, then what training warned about


@dataclass
class Parts:
    data: DataBundle
    model: nn.Module
    objective: Objective
    caps: Capabilities
    plan: Plan


def plan_of(cfg: RunConfig, n_train: int) -> Plan:
    per_epoch = max(1, steps_per_epoch(n_train, cfg.train.batch_size))
    total = cfg.train.epochs * per_epoch
    return Plan(per_epoch, min(total, cfg.train.max_steps) if cfg.train.max_steps else total, cfg.train.epochs,
                n_train)


def build_parts(cfg: RunConfig, device: torch.device, fresh: bool = True) -> Parts:
    return parts_for(cfg, _load_data(cfg), device, fresh)


def parts_for(cfg: RunConfig, data: DataBundle, device: torch.device, fresh: bool = True) -> Parts:
    """Model, capabilities, plan and objective for data already in memory (benchmarks pass synthetic data).

    A model trained over another run's (its entry's `builds_on`: vqvae_prior) gets that run's weights in its
    frozen part when `fresh`; a resumed run's come from its own checkpoint."""
    model = build_model(cfg.model.name, cfg.model.kwargs(), image_size=cfg.data.image_size,
                        channels=data.channels, num_classes=data.num_classes)
    if fresh and cfg.prior is not None:
        from genlab.prior_run import load_base

        load_base(model, cfg)
    model = model.to(device)
    if cfg.train.sync_batchnorm and distributed.world_size() > 1:
        model = distributed.convert_sync_batchnorm(model, device)
    caps = capabilities(cfg.model.name, cfg.model.kwargs(), data.num_classes)
    plan = plan_of(cfg, len(data.train))
    objective = build_objective(cfg, model, data.normalizer, caps, plan)
    return Parts(data, model, objective, caps, plan)


def loop_for(cfg: RunConfig, data: DataBundle, run: RunDir, device: torch.device,
             hooks: list[Hook] | None = None) -> Loop:
    """A training loop on `data` writing to `run`, as `genlab train` builds it, without files or logs around it."""
    parts = parts_for(cfg, data, device)
    return Loop(parts.objective, parts.data, cfg, run, device, hooks)


def _load_data(cfg: RunConfig) -> DataBundle:
    """With data.download or a decoded-image cache under torchrun, processes load in turns instead of all
    downloading, or decoding the same files and writing the same cache, at once: rank 0, then the first
    process of every other machine (which finds rank 0's files on a shared disk, or makes its own), then
    the rest, which read what their machine has."""
    writes = cfg.data.download or writes_cache(cfg.data, get_source(cfg.data.name))
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
          hooks: list[Hook] | None = None) -> TrainOutcome:
    """hooks: more loop hooks after genlab's own (benchmarks and notebooks use them; rank 0 only).

    Under torchrun (WORLD_SIZE > 1) it joins the process group for the run and leaves it afterwards."""
    launch = distributed.launch_from_env()
    if launch.world_size == 1:
        return _train(cfg, launch, out, overwrite, resume, stop_after_steps, hooks)
    # The backend (NCCL or gloo) follows the device, so the config is read before the group exists;
    # so is the batch split checked, which then fails on every process alike without one.
    early = cfg if cfg is not None else existing_run(resume).read_config()
    distributed.local_batch_size(early.train.batch_size, launch.world_size)
    device = distributed.select_device(early.train.device, launch)
    with distributed.session(launch, device), distributed.quiet_unless_main():
        return _train(cfg, launch, out, overwrite, resume, stop_after_steps, hooks)


def _open_run(cfg: RunConfig | None, out: Path | None, overwrite: bool, resume: Path | None
              ) -> tuple[RunDir, RunConfig]:
    from genlab.prior_run import resolve

    if resume is not None:  # a saved config was resolved when its run began
        return open_for_resume(resume, None if cfg is None else resolve(cfg))
    assert cfg is not None
    cfg = resolve(cfg)  # a prior run's model and data from the run it names, before anything else reads them
    return plan_run(cfg, out, overwrite), cfg


def _hooks(cfg: RunConfig, parts: Parts, run: RunDir, resumed: bool, extra: list[Hook]) -> list[Hook]:
    """Rank 0's optional hooks: per-epoch sample grids, TensorBoard, MLflow, then the caller's."""
    out: list[Hook] = []
    if cfg.train.epoch_samples and not parts.caps.can_sample:
        log.info("train.epoch_samples: no per-epoch sample grids, the model cannot draw samples: %s",
                 parts.caps.cannot_sample)
    elif cfg.train.epoch_samples:
        from genlab.engine.hooks.samples import EpochSamples

        out.append(EpochSamples(parts.data.normalizer, cfg.train.seed, parts.caps.num_classes,
                                parts.data.train.class_names))
    if cfg.train.tensorboard:
        from genlab.engine.hooks.tensorboard import TensorBoardHook

        out.append(TensorBoardHook(run.path, parts.data.normalizer, cfg.train.seed, parts.caps.num_classes,
                                   cfg.train.log_every_steps, resumed=resumed, samples=parts.caps.can_sample))
    if cfg.train.mlflow:
        from genlab.tracking import MLflowHook

        out.append(MLflowHook(run, cfg))
    return out + extra


def _train(cfg: RunConfig | None, launch: distributed.Launch, out: Path | None, overwrite: bool,
           resume: Path | None, stop_after_steps: int | None, hooks: list[Hook] | None) -> TrainOutcome:
    started_at, started_mark = time.perf_counter(), mark()
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
    parts = build_parts(cfg, device, fresh=resume is None)
    later = check_plan(cfg, parts.plan)  # settings that only the run's length in steps shows to be wrong
    for note in later:
        log.warning("config: %s", note)
    notes += later
    if cfg.train.tensorboard and main:
        from genlab.live import require_tensorboard

        require_tensorboard()
    if cfg.train.mlflow and main:
        from genlab.tracking import require_mlflow

        require_mlflow(cfg.train.mlflow_uri)
    extra = _hooks(cfg, parts, run, resume is not None, list(hooks or [])) if main else []
    loop = Loop(parts.objective, parts.data, cfg, run, device, extra)
    loop.preflight()
    if resume is not None:
        # A bad or mismatched checkpoint is refused before anything (even the log) is written to the run.
        state = distributed.main_first(lambda: checkpoint.load(run.last, map_location="cpu"), "reading last.pt")
        loop.restore(state, run.last)
        del state
    else:
        distributed.main_first(lambda: create_run(run, cfg, overwrite), "creating the run folder")
    distributed.broadcast_module(parts.model)  # processes seeded differently built different weights
    if not main:
        return TrainOutcome(run, loop.fit(stop_after_steps=stop_after_steps), [])
    handler = _log_to(run.log)
    for note in notes:
        handler.handle(log.makeRecord(log.name, logging.WARNING, __file__, 0, "config: %s", (note,), None))
    started = False
    timings: dict[str, float] = {}
    result: FitResult | None = None
    failure: BaseException | None = None
    figures: list[Path] = []
    try:
        log.info("run %s: %s on %s (%d train / %d validation images, %dx%dx%d), %s parameters, device %s, %s",
                 run.path, cfg.model.name, cfg.data.name, len(parts.data.train), len(parts.data.val),
                 parts.data.channels, cfg.data.image_size, cfg.data.image_size,
                 _parameter_count(parts.model, cfg.prior is not None), device, _precision_phrase(loop))
        if emulated := _emulated_bf16(loop):
            log.warning(emulated)
        if resume is not None:
            save_config(run, cfg)  # the run-length settings it continues with
            log.info("resumed at step %d (epoch %d, batch %d)", loop.progress.step, loop.progress.epoch + 1,
                     loop.progress.batch)
        started = True
        timings["startup"] = time.perf_counter() - started_at
        loop.phases.since("startup", started_mark)
        t = time.perf_counter()
        with loop.phases.span("training_rest"):  # what the fit spends outside its named phases
            result = loop.fit(stop_after_steps=stop_after_steps)
        timings["training"] = time.perf_counter() - t
        if result.stopped_early != "stop_after_steps":
            t = time.perf_counter()
            with loop.phases.span("end_of_training_scores"):
                _end_of_training_scores(cfg, parts, run, result, device)
            timings["end_of_training_scores"] = time.perf_counter() - t
            if cfg.train.figures:
                from genlab.figures import render  # plotting libraries load only now

                t = time.perf_counter()
                with loop.phases.span("figures"):
                    figures = render(parts.model, parts.data, cfg, run, caps=parts.caps)
                timings["figures"] = time.perf_counter() - t
        return TrainOutcome(run, result, figures, [*notes, *_warning_lines(loop.warnings)])
    except BaseException as exc:
        failure = exc
        # A config or data problem found before training began: drop the new, empty run folder, or it
        # would make the corrected command fail with "run folder ... already exists".
        if resume is None and not started:
            _close_log(handler)
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    finally:
        if started:
            _summarise(run, loop, parts, notes, result, failure, timings, time.perf_counter() - started_at)
            if cfg.train.mlflow:  # after summary.json, which it uploads; a failure there is only a warning
                from genlab.tracking import log_end_of_training

                log_end_of_training(run, cfg)
        _close_log(handler)


def _end_of_training_scores(cfg: RunConfig, parts: Parts, run: RunDir, result: FitResult, device) -> None:
    """Every metric that declares itself cheap enough for the end of training (the rest: `genlab eval`)."""
    from genlab.evaluate import EvalSettings, evaluate_loaded
    from genlab.metrics.registry import end_of_training
    from genlab.run import LoadedRun

    loaded = LoadedRun(run, cfg, parts.model, parts.data, result.progress.step, parts.caps, "last")
    evaluate_loaded(loaded, end_of_training(parts.caps), which="last", settings=EvalSettings(seed=cfg.train.seed),
                    device=str(device), strict=False)


def _warning_lines(warnings: list[dict]) -> list[str]:
    """One line per kind of warning the run gave: the latest message, with how many there were."""
    by_kind: dict[str, list[str]] = {}
    for w in warnings:
        by_kind.setdefault(w["kind"], []).append(w["message"])
    return [msgs[-1] if len(msgs) == 1 else f"{msgs[-1]} ({len(msgs)} such warnings; the last shown)"
            for msgs in by_kind.values()]


def _summarise(run: RunDir, loop: Loop, parts: Parts, notes: list[str], result: FitResult | None,
               failure: BaseException | None, timings: dict[str, float], wall: float) -> None:
    p = loop.progress
    if isinstance(failure, TrainingInterrupted):
        status = f"interrupted: {failure.signal_name}"
    elif isinstance(failure, KeyboardInterrupt):
        status = "interrupted: KeyboardInterrupt"
    elif failure is not None:
        status = f"failed: {type(failure).__name__}: {str(failure)[:300]}"
    elif result is not None and result.stopped_early:
        status = f"stopped early: {result.stopped_early}"
    else:
        status = "finished"
    best = loop.hook("best")
    write_summary(run, {
        "status": status,
        "images": {"train": len(parts.data.train), "validation": len(parts.data.val)},
        "progress": {"epochs_completed": p.epoch, "steps": p.step, "images": p.images,
                     "training_seconds": round(p.seconds, 3)},
        "plan": {"steps_per_epoch": parts.plan.steps_per_epoch, "total_steps": parts.plan.total_steps},
        "best": {"metric": loop.best_metric, "mode": loop.cfg.train.best_mode,
                 **((best.record() or {}) if best else {})},
        "warnings": [*({"kind": "config", "message": n, "step": None} for n in notes), *loop.warnings],
        "timings_seconds": {**{k: round(v, 3) for k, v in timings.items()}, "wall": round(wall, 3)},
        "phases": loop.phases.record(),
        "compute": {"device": str(loop.device), "precision": loop.precision},
    })


def _precision_phrase(loop: Loop) -> str:
    """What train.precision resolved to, since `auto` means different things on different machines and
    objectives."""
    from genlab.device import cpu_bf16_native
    from genlab.objectives import cpu_bf16

    objective = loop.cfg.objective
    if loop.precision == "fp32":
        if loop.cfg.train.precision == "auto" and loop.device.type == "cpu" and not cpu_bf16(objective) \
                and cpu_bf16_native():
            return (f"fp32 (train.precision auto: bf16 is not yet checked on CPU for these {objective.kind} "
                    "objective settings)")
        return "fp32"
    norms = ", normalisation in fp32" if loop.cfg.train.fp32_norms else ""
    return f"{loop.precision} autocast{norms} (train.precision {loop.cfg.train.precision})"


def _emulated_bf16(loop: Loop) -> str | None:
    """A config may ask for bf16 by name (ddpm_anime64_cpu does, for this project's CPUs); on a CPU without
    native bf16 that is emulated, and slower than fp32, which is worth saying before an hour of training."""
    from genlab.device import cpu_bf16_native

    if loop.precision != "bf16" or loop.device.type != "cpu" or loop.cfg.train.precision != "bf16" \
            or cpu_bf16_native():
        return None
    return ("train.precision bf16: this CPU has no native bf16 (AVX512-BF16 or AMX), so bf16 is emulated and "
            "slower than fp32; --set train.precision=fp32 (or auto) trains faster here")


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


def _parameter_count(model, frozen_from_run: bool = False) -> str:
    """Trained parameters, with a GAN's weight-averaged generator copy named apart, not added in."""
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    if frozen and frozen_from_run:
        return f"{trained:,}" + f" (+{frozen:,} frozen, from the run named by prior.run)"
    return f"{trained:,}" + (f" (+{frozen:,} in the averaged generator)" if frozen else "")
