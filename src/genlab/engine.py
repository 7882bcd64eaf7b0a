"""The one training engine: device, precision, progress, history, checkpoints, resume, interrupts.

It knows objectives only through their contract (`model`, `optimizers`, `train_step`,
`eval_step`), so autoencoders and GANs share every line here. A run resumed from a checkpoint
continues exactly: the data order is a function of (seed, epoch), the checkpoint carries the
optimiser, scheduler and RNG states and the partial epoch's sums, and history rows after the
checkpoint are dropped before training continues.

Under torchrun (genlab.distributed) every process runs this same loop on its share of each batch;
the decisions that end or alter a step (a signal, a non-finite loss, a collapse warning) are taken
from values all processes agree on, and only rank 0 writes history rows, logs and checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from genlab import checkpoint, distributed
from genlab.allocator import tune_allocator
from genlab.config import RunConfig, incompatible_changes, validate
from genlab.data import BatchLoader, DataBundle
from genlab.device import autocast, grad_scaler, select_precision
from genlab.errors import GenlabError, NonFiniteLoss, TrainingInterrupted
from genlab.history import History
from genlab.metrics.latent_usage import COLLAPSE_PATIENCE, collapse_warning, write_stats
from genlab.objectives import Objective, Stepper
from genlab.objectives.optim import build_scheduler
from genlab.run import RunDir

log = logging.getLogger("genlab.engine")

EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


@dataclass
class Progress:
    epoch: int = 0  # epoch in progress (0-based)
    batch: int = 0  # batches of that epoch already done
    step: int = 0  # optimiser steps overall
    images: int = 0
    seconds: float = 0.0  # training time, excluding validation and checkpoint writes
    best_value: float | None = None
    best_epoch: int = -1
    best_step: int = -1
    ended_step: int = -1  # step at which the last end-of-epoch evaluation ran
    epoch_sums: dict[str, float] = field(default_factory=dict)
    epoch_count: int = 0
    skipped_batches: int = 0  # batches whose update train.on_nonfinite="skip" dropped


@dataclass
class FitResult:
    progress: Progress
    best_metric: str
    last_val: dict[str, float]
    stopped_early: str | None = None


EpochCallback = Callable[[Objective, Progress], None]


def uses_channels_last(cfg: RunConfig) -> bool:
    """train.channels_last; null (auto) is on: with train.allocator tuned, bench/train_speed.py measured NHWC
    faster at every seed shape on this CPU, 28x28 included (before, page faults hid it there)."""
    if cfg.train.channels_last is None:
        return True
    return cfg.train.channels_last


def make_loaders(data: DataBundle, cfg: RunConfig, device: torch.device, rank: int = 0, world_size: int = 1
                 ) -> tuple[BatchLoader, BatchLoader]:
    """Training and validation batches; with several processes, this rank's share of each global batch."""
    bs = cfg.train.batch_size
    distributed.local_batch_size(bs, world_size)
    if len(data.train) < bs:
        raise GenlabError(f"the training set has {len(data.train)} images, fewer than one batch "
                          f"(train.batch_size={bs}); use at least {bs} images or a smaller batch size.")
    cl = uses_channels_last(cfg)
    train = BatchLoader(data.train.images, data.train.labels, batch_size=bs, shuffle=True,
                        seed=cfg.train.seed, normalizer=data.normalizer, hflip=cfg.data.hflip,
                        drop_last=True, device=device, channels_last=cl, rank=rank, world_size=world_size)
    return train, make_val_loader(data, cfg, device, rank, world_size)


def make_val_loader(data: DataBundle, cfg: RunConfig, device: torch.device, rank: int = 0, world_size: int = 1
                    ) -> BatchLoader:
    """Validation batches in a fixed order; with several processes, this rank's share unless rank/world 0/1."""
    return BatchLoader(data.val.images, data.val.labels, batch_size=cfg.train.batch_size, shuffle=False,
                       seed=cfg.train.seed, normalizer=data.normalizer, device=device,
                       channels_last=uses_channels_last(cfg), rank=rank, world_size=world_size)


def evaluate(objective: Objective, loader: BatchLoader, seed: int, device: torch.device, precision: str,
             whole: BatchLoader | None = None) -> dict[str, float]:
    """Image-weighted mean of each eval term over the whole loader, plus the objective's whole-set
    scores, all drawn with a fixed seed so evaluations compare across the run.

    Under torchrun `loader` holds this process's share (at least one image, which preflight checks) and
    the sums are added across processes; the whole-set scores are computed by rank 0 on `whole`, the
    unsharded loader, and broadcast (they need every image in one place)."""
    objective.model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    sums: dict[str, float] = {}
    n = 0
    with torch.no_grad():
        with autocast(device, precision):
            for batch in loader.batches():
                terms = objective.eval_step(batch, gen)
                b = batch.images.shape[0]
                values = torch.stack([v.detach().float().reshape(()) for v in terms.values()]).tolist()
                for k, v in zip(terms, values):
                    sums[k] = sums.get(k, 0.0) + v * b
                n += b
        if distributed.world_size() > 1:
            totals = distributed.all_reduce_sum(torch.tensor([*sums.values(), n], dtype=torch.float64))
            sums, n = dict(zip(sums, totals[:-1].tolist())), totals[-1].item()
        out = {k: v / n for k, v in sums.items()}
        if hasattr(objective, "scores"):  # whole-set scores in full precision (their numpy side needs it)
            scores = objective.scores(whole or loader, gen) if distributed.is_main() else None
            out.update(distributed.broadcast_object(scores))
    objective.model.train()
    return out


class _Signals:
    """Turns SIGINT/SIGTERM into a flag checked at step boundaries (main thread only).

    A second signal means "now" for a single process. Under torchrun it does not: a worker commonly gets
    the same signal twice at once (from SLURM, which signals every process of a job step, and again from
    torchrun, which forwards it), and torchrun's own shutdown (SIGKILL 30 s after its signal) bounds the wait.
    """

    def __init__(self, repeat_aborts: bool = True):
        self.received: str | None = None
        self.repeat_aborts = repeat_aborts
        self._old: dict[int, object] = {}

    def __enter__(self):
        with contextlib.suppress(ValueError):  # not in the main thread: leave handlers alone
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.received and self.repeat_aborts:  # a second Ctrl-C means "now"
            raise KeyboardInterrupt
        self.received = self.received or signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    def __init__(self, objective: Objective, data: DataBundle, cfg: RunConfig, run: RunDir,
                 device: torch.device, callbacks: list[EpochCallback] | None = None):
        self.objective = objective
        self.cfg = cfg
        self.run = run
        self.device = device
        self.precision = select_precision(cfg.train.precision, device)
        tune_allocator(cfg.train.allocator)
        if uses_channels_last(cfg):  # before any optimiser state exists: parameters change layout in place
            objective.model.to(memory_format=torch.channels_last)
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
        self.callbacks = callbacks or []
        self.monitors = list(getattr(objective, "monitors", []))
        self.best_metric = cfg.train.best_metric or objective.default_best_metric
        self.warning: str | None = None
        # VAEs: the posterior-collapse warning (kept once given), per epoch whether its end found most units
        # inactive, and "active/latent_dim" for the progress line
        self.latent_warning: str | None = None
        self.latent_flags: list[bool] = []
        self.latent_active: str | None = None
        self._preflight_done = False
        self.progress = Progress()
        self.history = History(run.history) if distributed.is_main() else _NoHistory()

    # ------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {
            "config": self.cfg.to_dict(),
            "model": self.objective.model.state_dict(),
            "optimizers": {k: o.state_dict() for k, o in self.objective.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.stepper.scaler.state_dict() if self.stepper.scaler else None,
            "progress": asdict(self.progress),
            "monitors": [{"streak": m.streak} for m in self.monitors],
            "warning": self.warning,
            "latent": {"warning": self.latent_warning, "flags": self.latent_flags, "active": self.latent_active},
            "rng": {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
            **({"rng_ranks": distributed.all_gather_object(self._process_rng())} if self.world_size > 1 else {}),
        }

    def _process_rng(self) -> dict:
        """This process's generators (under torchrun each process draws its own noise)."""
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def save(self, which: str = "last") -> Path:
        """Rank 0 writes; every process takes part (the state gathers each one's RNG) and waits until the
        file is complete, so a process that exits next cannot make torchrun stop rank 0 half way."""
        path = self.run.last if which == "last" else self.run.best
        distributed.broadcast_buffers(self.objective.model)
        state = self.state()
        if distributed.is_main():
            checkpoint.save_atomic(state, path)
        distributed.barrier()
        return path

    def restore(self, state: dict, source: Path) -> None:
        """Load a checkpoint (read onto the CPU) into the parts; refuse one from an incompatible run."""
        try:
            saved = validate(state["config"], f"{source} (embedded config)")
            bad = incompatible_changes(saved, self.cfg)
            if bad:
                raise GenlabError(f"{source} was written by a run configured differently ({', '.join(bad)} "
                                  f"differ from {self.run.config}); it cannot continue this run.")
            self.objective.model.load_state_dict(state["model"])
            for k, o in self.objective.optimizers.items():
                o.load_state_dict(state["optimizers"][k])
            for k, s in self.schedulers.items():
                s.load_state_dict(state["schedulers"][k])
                # the optimiser state holds the rate of the old plan; apply the (possibly re-planned) one
                for group, base, factor in zip(s.optimizer.param_groups, s.base_lrs, s.lr_lambdas):
                    group["lr"] = base * factor(s.last_epoch)
            if self.stepper.scaler and state.get("scaler"):
                self.stepper.scaler.load_state_dict(state["scaler"])
            self.progress = Progress(**state["progress"])
            for monitor, saved_state in zip(self.monitors, state.get("monitors", [])):
                monitor.streak = saved_state["streak"]
            self.warning = state.get("warning")
            latent = state.get("latent") or {}  # absent from checkpoints of older versions
            self.latent_warning, self.latent_active = latent.get("warning"), latent.get("active")
            self.latent_flags = list(latent.get("flags", []))
            torch.set_rng_state(state["rng"]["torch"].cpu())
            saved_cuda = state["rng"]["cuda"] or []
            if self.device.type == "cuda" and saved_cuda:
                # this process's own GPU only: a run resumed on fewer visible GPUs has fewer generators
                index = self.device.index if self.device.index is not None else torch.cuda.current_device()
                torch.cuda.set_rng_state(saved_cuda[min(index, len(saved_cuda) - 1)].cpu(), self.device)
            if self.rank > 0:
                self._restore_process_rng(state.get("rng_ranks") or [])
        except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
            raise GenlabError(f"{source} does not fit this run ({type(exc).__name__}: {str(exc)[:200]}).") from None
        p = self.progress
        # An epoch that train.max_steps left unfinished keeps its rows only if this run will not finish it.
        reopened = p.epoch if p.step < self.total_steps else None
        self.history.truncate_after(p.step, p.ended_step, reopened)

    def _restore_process_rng(self, saved: list[dict]) -> None:
        """A process other than rank 0 continues its own generators when the checkpoint has them (same
        number of processes or more before); one it has none for is seeded from (seed, rank, step)."""
        if self.rank < len(saved):
            torch.set_rng_state(saved[self.rank]["torch"].cpu())
            if saved[self.rank]["cuda"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(saved[self.rank]["cuda"].cpu(), self.device)
        else:
            torch.manual_seed(distributed.derived_seed(self.cfg.train.seed, self.rank, self.progress.step))

    # ------------------------------------------------------------ loop
    def fit(self, stop_after_steps: int | None = None) -> FitResult:
        """Train to the configured length; `stop_after_steps` ends early with a checkpoint (a test hook
        that behaves like an interruption)."""
        p = self.progress
        self.preflight()
        bar = _progress_bar(self.cfg.train.progress and distributed.is_main(), self.total_steps, p.step)
        last_val: dict[str, float] = {}
        self.objective.model.train()
        every = self.cfg.train.eval_every_steps
        try:
            with _Signals(repeat_aborts=self.world_size == 1) as sig:
                while p.step < self.total_steps or self._epoch_end_pending():
                    t0 = time.perf_counter()
                    for batch in self.train_loader.batches(p.epoch, p.batch):
                        if p.step >= self.total_steps:
                            break
                        self._train_one(batch, bar, time.perf_counter() - t0)
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
                        if stop_after_steps is not None and p.step >= stop_after_steps:
                            self.save()
                            return FitResult(p, self.best_metric, last_val, "stop_after_steps")
                        if self.warning and self.cfg.objective.stop_on_collapse:
                            self.save()
                            return FitResult(p, self.best_metric, last_val, self.warning)
                        t0 = time.perf_counter()
                    # train.max_steps may stop inside an epoch: validate, but leave that epoch open so
                    # that a resume with more steps finishes it instead of skipping its last batches.
                    last_val = self._end_epoch(finished=p.batch >= self.steps_per_epoch)
        except NonFiniteLoss as exc:
            raise NonFiniteLoss(f"{exc}; training stopped. The last good checkpoint is {self.run.last} "
                                f"(step {_saved_step(self.run.last)}). Lower optim.lr, set optim.grad_clip, "
                                f"or check the data.") from None
        finally:
            bar.close()
            self.history.close()
        return FitResult(p, self.best_metric, last_val)

    def _received(self, sig: _Signals) -> str | None:
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
        need = getattr(self.objective, "min_val_images", 1)
        if self.val_loader.num_images < need:
            scores = ", ".join(getattr(self.objective, "score_names", ())) or "scores"
            raise GenlabError(f"the validation set has {self.val_loader.num_images} image(s); this objective's "
                              f"{scores} needs at least {need}. Raise data.val_fraction or data.val_limit.")
        if self.val_loader.num_images < self.world_size:
            raise GenlabError(f"the validation set has {self.val_loader.num_images} image(s), fewer than the "
                              f"{self.world_size} processes, which each validate a share of it. Raise "
                              f"data.val_fraction or data.val_limit, or start fewer processes.")
        batch = next(iter(self.val_whole.batches()))
        self.objective.model.eval()
        with torch.no_grad(), autocast(self.device, self.precision):
            names = set(self.objective.eval_step(batch, torch.Generator(device=self.device).manual_seed(0)))
        self.objective.model.train()
        names |= set(getattr(self.objective, "score_names", ()))
        if self.best_metric not in names:
            raise GenlabError(f"train.best_metric {self.best_metric!r} is not computed for this model; "
                              f"choose one of {', '.join(sorted(names))}.")
        self._preflight_done = True

    def _train_one(self, batch, bar, load_seconds: float) -> None:
        p = self.progress
        t = time.perf_counter()
        self.stepper.step_index = p.step + 1
        try:
            with autocast(self.device, self.precision):
                terms = self.objective.train_step(batch, p.step, self.stepper)
        except NonFiniteLoss as exc:
            if self.cfg.train.on_nonfinite != "skip":
                raise
            self._skip(exc, batch.images.shape[0] * self.world_size, time.perf_counter() - t + load_seconds, bar)
            return
        values, b = self._global_means(terms, batch.images.shape[0])
        dt = time.perf_counter() - t + load_seconds
        p.step += 1
        p.batch += 1
        p.images += b
        p.seconds += dt
        p.epoch_count += b
        for k, v in values.items():
            p.epoch_sums[k] = p.epoch_sums.get(k, 0.0) + v * b
        if p.step % self.cfg.train.log_every_steps == 0:
            self.history.write("step", "train", p.epoch, p.step, p.images, p.seconds, values)
        messages = [m for m in (mon.check(p.step, values) for mon in self.monitors) if m]
        if messages and messages[0] != self.warning:
            log.warning(messages[0])
        if messages or p.step % self.cfg.objective.collapse_check_every == 0:
            self.warning = messages[0] if messages else None
        bar.update(1)
        bar.set_description(f"epoch {p.epoch + 1}/{self.cfg.train.epochs}", refresh=False)
        postfix = {**{k: f"{v:.4g}" for k, v in values.items()}, "img/s": f"{b / max(dt, 1e-9):.0f}"}
        if self.latent_active:
            postfix["active"] = self.latent_active
        if self.warning or self.latent_warning:
            postfix["warning"] = "see log"
        bar.set_postfix(postfix, refresh=False)

    def _global_means(self, terms: dict[str, torch.Tensor], b: int) -> tuple[dict[str, float], int]:
        """The step's loss terms as means over the global batch, and its number of images."""
        local = torch.stack([v.float() for v in terms.values()])
        if self.world_size == 1:
            return dict(zip(terms, local.tolist())), b
        means, total = distributed.weighted_mean(local, b)
        return dict(zip(terms, means.tolist())), round(total)

    def _skip(self, exc: NonFiniteLoss, b: int, dt: float, bar) -> None:
        """train.on_nonfinite = "skip": the batch counts as seen (the data order stays that of an
        uninterrupted run) but updates nothing and adds nothing to the epoch means or the history."""
        p = self.progress
        p.step += 1
        p.batch += 1
        p.images += b
        p.seconds += dt
        p.skipped_batches += 1
        limit = self.cfg.train.max_skipped_batches
        # The forward pass may already have written NaN into batch-norm running statistics; skipping
        # the optimiser step cannot undo that, so such a model is not trained on.
        bad = [n for n, t in self.objective.model.named_buffers() if t.is_floating_point() and not t.isfinite().all()]
        if distributed.any_process(bool(bad)):
            where = f"the model's buffer {bad[0]!r}" if bad else "a model buffer on another process"
            raise NonFiniteLoss(f"{exc}; the batch was skipped but its forward pass left non-finite values in "
                                f"{where}, so the run cannot go on")
        if p.skipped_batches > limit:
            raise NonFiniteLoss(f"{exc}; {p.skipped_batches} batches skipped, more than "
                                f"train.max_skipped_batches={limit}")
        log.warning("%s: batch skipped (train.on_nonfinite=skip; %d skipped so far, at most %d)", exc,
                    p.skipped_batches, limit)
        bar.update(1)

    def _evaluate(self, scope: str) -> dict[str, float]:
        """Validate, log to history, and keep `best.pt` when the ranking metric improved."""
        p = self.progress
        distributed.broadcast_buffers(self.objective.model)  # every process validates rank 0's model
        val = evaluate(self.objective, self.val_loader, self.cfg.train.seed + self.rank, self.device, self.precision,
                       whole=self.val_whole)
        if scope == "epoch":
            val.update(self._latent_usage())
        self.history.write(scope, "val", p.epoch, p.step, p.images, p.seconds, val)
        value = val[self.best_metric]
        if math.isfinite(value) and (p.best_value is None or (
                value < p.best_value if self.cfg.train.best_mode == "min" else value > p.best_value)):
            p.best_value, p.best_epoch, p.best_step = value, p.epoch, p.step
            self.save("best")
        return val

    def _latent_usage(self) -> dict[str, float]:
        """VAEs: active units and KL per dimension over the whole validation set (rank 0 measures, every
        process gets the numbers); the collapse warning once COLLAPSE_PATIENCE epoch ends in a row found
        most units inactive."""
        measure = getattr(self.objective, "latent_usage", None)
        if measure is None:
            return {}
        model = self.objective.model
        model.eval()  # batch norm from its running statistics, as at test time
        usage = distributed.broadcast_object(measure(self.val_whole) if distributed.is_main() else None)
        model.train()
        if usage is None:  # a plain AE: no KL to split
            return {}
        p = self.progress
        self.latent_active = f"{usage.active_units}/{usage.latent_dim}"
        # One flag per epoch: the end of an epoch reopened on resume (train.max_steps) replaces its flag.
        flags = self.latent_flags[:p.epoch]
        flags += [False] * (p.epoch - len(flags))
        streak = next((i for i, flag in enumerate(reversed(flags)) if not flag), len(flags)) + 1
        found = collapse_warning(usage, self.cfg, p.epoch, p.step, streak)
        self.latent_flags = [*flags, found is not None]
        if found and self.latent_warning is None and streak >= COLLAPSE_PATIENCE:
            self.latent_warning = found  # logged once; the progress line, summary and report keep showing it
            log.warning(found)
        if distributed.is_main():
            write_stats(self.run.latent_stats, usage, epoch=p.epoch, step=p.step, warning=self.latent_warning)
        return usage.history_terms()

    def _end_epoch(self, finished: bool = True) -> dict[str, float]:
        """Validate, log and checkpoint. An unfinished epoch (stopped by train.max_steps) stays the current
        one: no scheduler step, and a resume that completes it replaces its epoch rows in the history."""
        p = self.progress
        train_means = {k: v / max(p.epoch_count, 1) for k, v in p.epoch_sums.items()}
        self.history.write("epoch", "train", p.epoch, p.step, p.images, p.seconds, train_means)
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
        msg = (f"epoch {p.epoch + 1}/{self.cfg.train.epochs}{stopped}  train "
               + " ".join(f"{k}={v:.4g}" for k, v in train_means.items())
               + "  |  val " + " ".join(f"{k}={v:.4g}" for k, v in val.items()) + f"  |  {rate:.0f} img/s")
        log.info(msg)
        if finished:
            p.epoch += 1
            p.batch = 0
            p.epoch_sums, p.epoch_count = {}, 0
            for cb in self.callbacks:  # train() hands callbacks (figures, TensorBoard) to rank 0 only
                cb(self.objective, p)
        self.save("last")
        return val


class _NoHistory:
    """What processes other than rank 0 write the history to: nothing."""

    def __init__(self):
        self.listeners: list = []

    def write(self, *args, **kwargs) -> None:
        pass

    def truncate_after(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _saved_step(path: Path) -> str:
    try:
        return str(checkpoint.load(path)["progress"]["step"])
    except GenlabError:
        return "none yet"


def _progress_bar(enabled: bool, total: int, initial: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                mininterval=0.5, leave=True)
