"""What a checkpoint holds, and how a loop is put back where a checkpoint left it.

    config       the resolved run config (a checkpoint alone rebuilds the model)
    model        the model's state dict
    optimizers   one state per objective optimiser; schedulers likewise; scaler (fp16 only)
    objective    trained state the objective owns beside the model (FactorVAE's discriminator), else {}
    progress     epoch, batch in epoch, step, images, training seconds, the open epoch's sums
    hooks        {hook name: its state}, for every hook that has state
    warnings     every warning the run gave (kind, message, step)
    rng          the torch (and CUDA) generators; under torchrun also every process's own (rng_ranks)
    data_shape   channels, label count and class names of the training data, so a checkpoint alone
                 rebuilds a conditional model and names its classes (`genlab sample` reads no data set)

A checkpoint written by genlab 0.1 kept hook state elsewhere (best value in progress, the collapse
monitor's streak in "monitors", the latent-usage flags in "latent"); `hook_states` reads both layouts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from genlab import distributed
from genlab.config import incompatible_changes, validate_saved
from genlab.errors import GenlabError

if TYPE_CHECKING:
    from genlab.data import DataBundle
    from genlab.engine.loop import Loop


@dataclass
class Progress:
    epoch: int = 0  # epoch in progress (0-based)
    batch: int = 0  # batches of that epoch already done
    step: int = 0  # optimiser steps overall
    images: int = 0
    seconds: float = 0.0  # training time, excluding validation and checkpoint writes
    ended_step: int = -1  # step at which the last end-of-epoch evaluation ran
    epoch_sums: dict[str, float] = field(default_factory=dict)  # image-weighted sums of this epoch's terms
    epoch_count: int = 0

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Progress:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in known})

    def epoch_means(self) -> dict[str, float]:
        return {k: v / max(self.epoch_count, 1) for k, v in self.epoch_sums.items()}


def hook_states(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each hook's saved state by name, from this version's layout or genlab 0.1's."""
    if "hooks" in state:
        return dict(state["hooks"])
    progress = state.get("progress", {})
    legacy: dict[str, dict[str, Any]] = {
        "nonfinite": {"skipped": int(progress.get("skipped_batches", 0))},
        "latent_usage": dict(state.get("latent") or {}),
    }
    if progress.get("best_value") is not None:
        legacy["best"] = {"value": progress["best_value"], "epoch": progress.get("best_epoch", -1),
                          "step": progress.get("best_step", -1)}
    monitors = state.get("monitors") or []
    if monitors:
        legacy["gan_collapse"] = {"streak": monitors[0].get("streak", 0), "warning": state.get("warning")}
    return legacy


def saved_warnings(state: dict[str, Any], log: Path | None = None) -> list[dict[str, Any]]:
    """The run's warnings so far. A genlab 0.1 checkpoint kept only the current GAN warning and the collapse
    warning; its run's train.log has every warning, so those logged by the checkpoint's step come from there."""
    if "warnings" in state:
        return [dict(w) for w in state["warnings"]]
    if log is not None and log.is_file():
        from genlab.run import warnings_in_log

        step = int(state.get("progress", {}).get("step", 0))
        return [w for w in warnings_in_log(log) if w["step"] is None or w["step"] <= step]
    out = []
    latent = (state.get("latent") or {}).get("warning")
    if latent:
        out.append({"kind": "posterior_collapse", "message": latent, "step": None})
    if state.get("warning"):
        out.append({"kind": "gan_collapse", "message": state["warning"], "step": None})
    return out


def data_shape(data: DataBundle) -> dict[str, Any]:
    return {"channels": data.channels, "num_classes": data.num_classes,
            "class_names": list(data.train.class_names or [])}


def rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def process_rng(device: torch.device) -> dict[str, Any]:
    """This process's generators (under torchrun each process draws its own noise)."""
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["rng"]["torch"].cpu())
    saved_cuda = state["rng"]["cuda"] or []
    if device.type == "cuda" and saved_cuda:
        # this process's own GPU only: a run resumed on fewer visible GPUs has fewer generators
        index = device.index if device.index is not None else torch.cuda.current_device()
        torch.cuda.set_rng_state(saved_cuda[min(index, len(saved_cuda) - 1)].cpu(), device)




# ---------------------------------------------------------------- a loop's state, out and back in


def capture(loop: Loop) -> dict[str, Any]:
    """Everything a checkpoint holds (see the module docstring); collective under torchrun (the RNGs)."""
    return {
        "config": loop.cfg.to_dict(),
        "model": loop.objective.model.state_dict(),
        "optimizers": {k: o.state_dict() for k, o in loop.objective.optimizers.items()},
        "objective": loop.objective.state_dict(),
        "schedulers": {k: s.state_dict() for k, s in loop.schedulers.items()},
        "scaler": loop.stepper.scaler.state_dict() if loop.stepper.scaler else None,
        "progress": asdict(loop.progress),
        "hooks": {h.name: s for h in loop.hooks if (s := h.state_dict())},
        "warnings": list(loop.warnings),
        "rng": rng_state(),
        "data_shape": dict(loop.data_shape),
        **({"rng_ranks": distributed.all_gather_object(process_rng(loop.device))} if loop.world_size > 1 else {}),
    }


def restore_into(loop: Loop, state: dict[str, Any], source: Path) -> None:
    """Put a checkpoint (read onto the CPU) into the loop's parts; refuse one from an incompatible run."""
    try:
        saved = validate_saved(state["config"], f"{source} (embedded config)")
        bad = incompatible_changes(saved, loop.cfg)
        if bad:
            raise GenlabError(f"{source} was written by a run configured differently ({', '.join(bad)} "
                              f"differ from {loop.run.config}); it cannot continue this run.")
        loop.objective.model.load_state_dict(state["model"])
        loop.objective.load_state_dict(state.get("objective", {}))  # older checkpoints: none
        for k, o in loop.objective.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in loop.schedulers.items():
            s.load_state_dict(state["schedulers"][k])
            # the optimiser state holds the rate of the old plan; apply the (possibly re-planned) one
            for group, base, factor in zip(s.optimizer.param_groups, s.base_lrs, s.lr_lambdas):
                group["lr"] = base * factor(s.last_epoch)
        if loop.stepper.scaler and state.get("scaler"):
            loop.stepper.scaler.load_state_dict(state["scaler"])
        loop.progress = Progress.from_state(state["progress"])
        saved_hooks = hook_states(state)
        for h in loop.hooks:
            h.load_state_dict(saved_hooks.get(h.name, {}))
        loop.warnings = saved_warnings(state, loop.run.log)
        restore_rng(state, loop.device)
        if loop.rank > 0:
            _restore_process_rng(loop, state.get("rng_ranks") or [])
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError, AttributeError) as exc:
        raise GenlabError(f"{source} does not fit this run ({type(exc).__name__}: {str(exc)[:200]}).") from None


def _restore_process_rng(loop: Loop, saved: list[dict]) -> None:
    """A process other than rank 0 continues its own generators when the checkpoint has them (same
    number of processes or more before); one it has none for is seeded from (seed, rank, step)."""
    if loop.rank < len(saved):
        torch.set_rng_state(saved[loop.rank]["torch"].cpu())
        if saved[loop.rank]["cuda"] is not None and loop.device.type == "cuda":
            torch.cuda.set_rng_state(saved[loop.rank]["cuda"].cpu(), loop.device)
    else:
        torch.manual_seed(distributed.derived_seed(loop.cfg.train.seed, loop.rank, loop.progress.step))
