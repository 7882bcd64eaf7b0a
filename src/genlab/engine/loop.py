"""The training loop: steps, evaluations, checkpoints, resume and interrupts, for every objective alike.

It knows an objective only through `Objective` and does everything else through hooks, so autoencoders,
GANs and whatever comes next share every line here. A resumed run continues exactly: the data order is
a function of (seed, epoch), the checkpoint carries the optimiser, scheduler, hook and RNG states and the
open epoch's sums, and history rows after the checkpoint are dropped before training continues.

Under torchrun (genlab.distributed) every process runs this same loop on its share of each batch; the
decisions that end or alter a step (a signal, a non-finite loss, a hook's stop) are taken from values
all processes agree on, and only rank 0 writes files (the hooks that write check it).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genlab import checkpoint, distributed
from genlab.allocator import tune_allocator
from genlab.data import DataBundle
from genlab.device import autocast, grad_scaler, norms_in_fp32, select_precision
from genlab.engine.compiling import CACHE_ENV, compile_networks, uses_compile
from genlab.engine.evaluation import evaluate
from genlab.engine.hook import Hook, StepRecord
from genlab.engine.loaders import make_loaders, make_val_loader, uses_channels_last
from genlab.engine.phases import Phases, mark
from genlab.engine.signals import EXIT_CODES, Signals, supervised
from genlab.engine.state import Progress, capture, data_shape, restore_into
from genlab.errors import GenlabError, NonFiniteLoss, TrainingInterrupted
from genlab.objectives import cpu_bf16, default_best_metric
from genlab.objectives.contract import Objective
from genlab.objectives.optim import Stepper, build_scheduler

log = logging.getLogger("genlab.engine")


@dataclass
class FitResult:
    progress: Progress
    best_metric: str
    last_val: dict[str, float]
    stopped_early: str | None = None
    best: dict[str, Any] | None = None  # {"value", "epoch", "step"} of best.pt, None before any finite value


class Loop:
    """One run's training. `hooks` come after the engine's own (non-finite policy, the objective's hooks,
    history, best checkpoint, progress bar), in the order given."""

    def __init__(self, objective: Objective, data: DataBundle, cfg, run, device: torch.device,
                 hooks: list[Hook] | None = None):
        from genlab.engine.hooks import standard_hooks

        self.objective, self.cfg, self.run, self.device = objective, cfg, run, device
        self.data_shape = data_shape(data)
        self.precision = select_precision(cfg.train.precision, device, cpu_bf16_checked=cpu_bf16(cfg.objective))
        tune_allocator(cfg.train.allocator)
        if uses_channels_last(cfg):  # before any optimiser state exists: parameters change layout in place
            objective.model.to(memory_format=torch.channels_last)
        if self.precision != "fp32" and cfg.train.fp32_norms:
            norms_in_fp32(objective.model)
        self.compiled = compile_networks(objective.model) if uses_compile(cfg, device) else []
        if self.compiled:
            log.info("train.compile: compiling %s on first use (cached in %s)", ", ".join(self.compiled),
                     os.environ.get(CACHE_ENV))
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.train_loader, self.val_loader = make_loaders(data, cfg, device, self.rank, self.world_size)
        # every validation image, for whole-set scores and preflight (the same loader for one process)
        self.val_whole = self.val_loader if self.world_size == 1 else make_val_loader(data, cfg, device)
        self.steps_per_epoch = len(self.train_loader)
        total = cfg.train.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.train.max_steps) if cfg.train.max_steps else total
        self.stepper = Stepper(cfg.optim.grad_clip, grad_scaler(device, self.precision))
        # The schedule reads the current train.epochs, so a resume that extends the run re-plans it.
        self.schedulers = {k: s for k, o in objective.optimizers.items()
                           if (s := build_scheduler(o, cfg.optim, lambda: self.cfg.train.epochs)) is not None}
        self.best_metric = cfg.train.best_metric or default_best_metric(cfg.objective.kind)
        self.progress = Progress()
        self.phases = Phases()  # this process's time and page faults by phase, for the summary
        # short facts hooks show in the progress line (e.g. "active": "12/16"); a key ending in "_warning"
        # with a value means that hook's warning stands, shown as "warning: see log"
        self.status: dict[str, str] = {}
        self.warnings: list[dict[str, Any]] = []  # every warning given: {"kind", "message", "step"}
        self.hooks: list[Hook] = _checked([*standard_hooks(self, objective.hooks()), *(hooks or [])])
        self._preflight_done = False

    # ------------------------------------------------------------ what hooks use
    def warn(self, kind: str, message: str) -> None:
        """Log a warning and keep it for the checkpoint, the summary and the report."""
        log.warning(message)
        self.warnings.append({"kind": kind, "message": message, "step": self.progress.step})

    def hook(self, name: str) -> Hook | None:
        return next((h for h in self.hooks if h.name == name), None)

    # ------------------------------------------------------------ checkpoints (engine/state.py)
    def state(self) -> dict:
        return capture(self)

    def save(self, which: str = "last") -> Path:
        """Rank 0 writes; every process takes part (the state gathers each one's RNG) and waits until the
        file is complete, so a process that exits next cannot make torchrun stop rank 0 half way."""
        path = self.run.last if which == "last" else self.run.best
        with self.phases.span("checkpoints"):
            distributed.broadcast_buffers(self.objective.model)
            state = self.state()
            if distributed.is_main():
                checkpoint.save_atomic(state, path)
            distributed.barrier()
        return path

    def restore(self, state: dict, source: Path) -> None:
        """Load a checkpoint (read onto the CPU) into the parts; refuse one from an incompatible run."""
        restore_into(self, state, source)
        p = self.progress
        # An epoch that train.max_steps left unfinished keeps its rows only if this run will not finish it.
        reopened = p.epoch if p.step < self.total_steps else None
        history = self.hook("history")
        if history is not None:
            history.truncate_after(p.step, p.ended_step, reopened)

    # ------------------------------------------------------------ the loop
    def fit(self, stop_after_steps: int | None = None) -> FitResult:
        """Train to the configured length; `stop_after_steps` ends early with a checkpoint (a test hook
        that behaves like an interruption)."""
        p = self.progress
        self.preflight()
        last_val: dict[str, float] = {}
        self.objective.model.train()
        every = self.cfg.train.eval_every_steps
        try:
            with Signals(repeat_aborts=self.world_size == 1 and not supervised()) as sig:
                while p.step < self.total_steps or self._epoch_end_pending():
                    t0, m = time.perf_counter(), mark()
                    for batch in self.train_loader.batches(p.epoch, p.batch):
                        if p.step >= self.total_steps:
                            break
                        self.phases.since("data", m)
                        self._step(batch, time.perf_counter() - t0)
                        # Work due at this step comes before any stop, so an interrupted run has done
                        # exactly what an uninterrupted one had done by the same step.
                        if every and p.step % every == 0 and p.batch < self.steps_per_epoch \
                                and p.step < self.total_steps:
                            last_val = self._evaluate("eval")
                        if p.step % self.cfg.train.checkpoint_every_steps == 0:
                            self.save()
                        received = self._received(sig)
                        if received:
                            path = self.save()
                            raise TrainingInterrupted(received, EXIT_CODES[received], str(path))
                        reason = ("stop_after_steps" if stop_after_steps is not None and p.step >= stop_after_steps
                                  else self._hook_stop())
                        if reason:
                            self.save()
                            return self._result(last_val, reason)
                        t0, m = time.perf_counter(), mark()
                    # train.max_steps may stop inside an epoch: validate, but leave that epoch open so
                    # that a resume with more steps finishes it instead of skipping its last batches.
                    last_val = self._end_epoch(finished=p.batch >= self.steps_per_epoch)
        except NonFiniteLoss as exc:
            raise NonFiniteLoss(f"{exc}; training stopped. The last good checkpoint is {self.run.last} "
                                f"(step {_saved_step(self.run.last)}). Lower optim.lr, set optim.grad_clip, "
                                f"or check the data.") from None
        finally:
            for h in self.hooks:
                h.close(self)
        return self._result(last_val, None)

    def _result(self, last_val: dict[str, float], stopped: str | None) -> FitResult:
        best = self.hook("best")
        return FitResult(self.progress, self.best_metric, last_val, stopped, best.record() if best else None)

    def _hook_stop(self) -> str | None:
        """A hook's reason to stop, agreed by every process: a hook that runs on rank 0 only (a caller's)
        must not make rank 0 alone stop and wait in a collective the others never reach."""
        reason = next((r for h in self.hooks if (r := h.stop_reason(self))), None)
        if self.world_size == 1 or not distributed.any_process(reason is not None):
            return reason
        return distributed.broadcast_object(reason) or reason or "a hook on another process asked to stop"

    def _received(self, sig: Signals) -> str | None:
        """The signal to stop on. torchrun forwards a SIGTERM to every process, but each notices it at its
        own moment: all stop at the first step boundary where any process has it."""
        if self.world_size == 1:
            return sig.received
        flags = torch.tensor([float(sig.received == "SIGINT"), float(sig.received == "SIGTERM")])
        sigint, sigterm = distributed.all_reduce_sum(flags).tolist()
        return "SIGINT" if sigint else "SIGTERM" if sigterm else None

    def _epoch_end_pending(self) -> bool:
        """Stopped after an epoch's last due step but before its end-of-epoch evaluation ran."""
        p = self.progress
        return p.batch > 0 and p.ended_step != p.step and (
            p.batch >= self.steps_per_epoch or p.step >= self.total_steps)

    def preflight(self) -> None:
        """Fail before training (and before a run folder is written), not after an epoch, when the
        validation set is too small for the objective or train.best_metric names nothing computed."""
        if self._preflight_done:
            return
        need, scores = self.objective.min_val_images, self.objective.score_names
        if self.val_loader.num_images < need:
            raise GenlabError(f"the validation set has {self.val_loader.num_images} image(s); this objective's "
                              f"{', '.join(scores) or 'scores'} needs at least {need}. Raise data.val_fraction or "
                              f"data.val_limit.")
        if self.val_loader.num_images < self.world_size:
            raise GenlabError(f"the validation set has {self.val_loader.num_images} image(s), fewer than the "
                              f"{self.world_size} processes, which each validate a share of it. Raise "
                              f"data.val_fraction or data.val_limit, or start fewer processes.")
        batch = next(iter(self.val_whole.batches()))
        self.objective.model.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            names = set(self.objective.eval_step(batch, torch.Generator(device=self.device).manual_seed(0)))
        self.objective.model.train()
        names |= set(scores)
        if self.best_metric not in names:
            raise GenlabError(f"train.best_metric {self.best_metric!r} is not computed for this model; "
                              f"choose one of {', '.join(sorted(names))}.")
        self._preflight_done = True

    def _step(self, batch, load_seconds: float) -> None:
        p = self.progress
        t = time.perf_counter()
        self.stepper.step_index = p.step + 1
        error: NonFiniteLoss | None = None
        try:
            with self.phases.span("steps"), autocast(self.device, self.precision):
                terms = self.objective.train_step(batch, p.step, self.stepper)
        except NonFiniteLoss as exc:
            error = exc
        b = batch.images.shape[0]
        dt = time.perf_counter() - t + load_seconds
        if error is not None:
            # The hooks (the non-finite policy first) decide before the step counts: a stop leaves the
            # progress at the last step taken; a skip counts the batch as seen, its update dropped.
            b *= self.world_size
            record = StepRecord(p.step + 1, p.epoch, b, dt, None, error)
            for h in self.hooks:
                h.on_step(self, record)
            self._advance(b, dt)
            return
        with self.phases.span("step_hooks"):  # the loss values' read-back waits for the step's last kernels
            values, b = self._global_means(terms, b)
            for k, v in values.items():
                p.epoch_sums[k] = p.epoch_sums.get(k, 0.0) + v * b
            p.epoch_count += b
            self._advance(b, dt)
            record = StepRecord(p.step, p.epoch, b, dt, values, None)
            for h in self.hooks:
                h.on_step(self, record)

    def _advance(self, images: int, seconds: float) -> None:
        p = self.progress
        p.step += 1
        p.batch += 1
        p.images += images
        p.seconds += seconds

    def _global_means(self, terms: dict[str, torch.Tensor], b: int) -> tuple[dict[str, float], int]:
        """The step's loss terms as means over the global batch, and its number of images."""
        local = torch.stack([v.float() for v in terms.values()])
        if self.world_size == 1:
            return dict(zip(terms, local.tolist())), b
        means, total = distributed.weighted_mean(local, b)
        return dict(zip(terms, means.tolist())), round(total)

    def _evaluate(self, scope: str) -> dict[str, float]:
        """Validate; the hooks record it (history), rank it (best checkpoint) or add to it (monitors)."""
        with self.phases.span("validation"):
            distributed.broadcast_buffers(self.objective.model)  # every process validates rank 0's model
            val = evaluate(self.objective, self.val_loader, self.cfg.train.seed + self.rank, self.device,
                           self.precision, whole=self.val_whole)
            for h in self.hooks:
                h.on_evaluation(self, scope, val)
        return val

    def _end_epoch(self, finished: bool = True) -> dict[str, float]:
        """Validate, log and checkpoint. An unfinished epoch (stopped by train.max_steps) stays the current
        one: no scheduler step, and a resume that completes it replaces its epoch rows in the history."""
        p = self.progress
        train_means = p.epoch_means()
        val = self._evaluate("epoch")
        p.ended_step = p.step
        if finished:
            with warnings.catch_warnings():
                # After a resume at an epoch boundary the fresh optimizer has not stepped in this
                # process yet, which makes PyTorch warn about the call order; the order is right.
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)`")
                for s in self.schedulers.values():
                    s.step()
        rate = p.images / max(p.seconds, 1e-9)
        stopped = "" if finished else f" (stopped at batch {p.batch}/{self.steps_per_epoch})"
        log.info(f"epoch {p.epoch + 1}/{self.cfg.train.epochs}{stopped}  train "
                 + " ".join(f"{k}={v:.4g}" for k, v in train_means.items())
                 + "  |  val " + " ".join(f"{k}={v:.4g}" for k, v in val.items()) + f"  |  {rate:.0f} img/s")
        if finished:
            p.epoch += 1
            p.batch = 0
            p.epoch_sums, p.epoch_count = {}, 0
            with self.phases.span("epoch_end_hooks"):
                for h in self.hooks:
                    h.on_epoch_end(self)
        self.save("last")
        return val


def _checked(hooks: list[Hook]) -> list[Hook]:
    """Hooks with every method of the protocol (subclass Hook for the defaults) and names of their own,
    since each one's state is saved under its name."""
    methods = ("on_step", "on_evaluation", "on_epoch_end", "stop_reason", "close", "state_dict", "load_state_dict")
    for h in hooks:
        missing = [m for m in methods if not callable(getattr(h, m, None))]
        if missing or not isinstance(getattr(h, "name", None), str):
            raise TypeError(f"{type(h).__name__} is not a loop hook: it lacks {', '.join(missing) or 'a name'} "
                            f"(subclass genlab.engine.hook.Hook for do-nothing defaults)")
    names = [h.name for h in hooks]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"two loop hooks are named {', '.join(repeated)}; each needs its own name (its state is "
                         f"saved under it)")
    return hooks


def _saved_step(path: Path) -> str:
    try:
        return str(checkpoint.load(path)["progress"]["step"])
    except GenlabError:
        return "none yet"
