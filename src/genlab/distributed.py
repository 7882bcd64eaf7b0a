"""Training on several processes started by torchrun: one process per GPU (or per CPU worker), one replica each.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT for every process it starts. With
WORLD_SIZE > 1, `genlab train` joins a process group (NCCL on GPUs, gloo on CPUs) and uses `cuda:LOCAL_RANK`;
without torchrun nothing here does anything, so a single process trains exactly as before.

What the processes share and what they do not:
- Data: `train.batch_size` is the global batch. Every process walks the same (seed, epoch) permutation and
  takes its contiguous slice of each global batch (flips are decided per global index), so the batches,
  their order and the step count do not depend on the number of processes: the basis for the same loss
  curve as one process and for resuming with a different number of processes.
- Gradients are averaged in `Stepper` (all-reduce after backward, before unscaling, clipping and the
  optimiser step), not by wrapping the model in DistributedDataParallel. Why: objectives call
  `model.encode`/`decode`/`generator`/`discriminate` directly, never `model.forward`, so DDP's hooks would
  see none of it; and a GAN step runs D three times around two backward passes over overlapping parameter
  sets, which DDP handles only with find_unused_parameters/static_graph workarounds and would all-reduce
  D's gradients during G's backward for nothing. Averaging exactly the gradients an optimiser is about to
  apply works for every objective unchanged. The price: communication does not overlap the backward pass
  as DDP's buckets do, which matters little at genlab's model sizes.
- Parameters start identical (broadcast from rank 0 after build or restore) and stay identical because
  every process applies the same averaged gradients. Buffers (batch-norm running statistics) are
  broadcast from rank 0 before each validation and checkpoint, the statistics DDP would keep.
- Noise (VAE sampling, denoising noise, GAN z) comes from per-process seeds, seed + rank: rank 0 draws
  what a single process would.
- Logged training terms are means over the global batch; validation terms are computed by every process
  on its share of each validation batch and summed across processes; whole-set scores (fd_randconv) are
  computed by rank 0 on the whole validation set and broadcast.
- Only rank 0 writes: run folder, history.csv, train.log, checkpoints, figures, metrics.json. Checkpoints
  hold the same state as a single process's (plus every process's RNG state, used when the process exists
  on resume), so a run resumes on any number of processes.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch._utils import _flatten_dense_tensors, _take_tensors, _unflatten_dense_tensors

from genlab.device import select_device as select_single_device
from genlab.errors import GenlabError

T = TypeVar("T")
BUCKET_BYTES = 25 * 2**20  # DDP's default bucket size: few collectives, bounded extra memory


@dataclass(frozen=True)
class Launch:
    """Where this process sits in a torchrun launch; the defaults are a plain single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0


def launch_from_env(env: dict[str, str] | None = None) -> Launch:
    """Read torchrun's variables; a malformed set is an error rather than a silent single-process run."""
    env = dict(os.environ) if env is None else env
    world = _int_var(env, "WORLD_SIZE", default=1)
    if world < 1:
        raise GenlabError(f"WORLD_SIZE is {world}; it must be at least 1 (torchrun sets it).")
    if world == 1:
        return Launch()
    rank, local = _int_var(env, "RANK"), _int_var(env, "LOCAL_RANK")
    if not 0 <= rank < world or local < 0:
        raise GenlabError(f"RANK={rank}, LOCAL_RANK={local} do not fit WORLD_SIZE={world}: start genlab with "
                          f"torchrun, which sets them.")
    return Launch(rank, world, local)


def _int_var(env: dict[str, str], name: str, default: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        if default is None:
            raise GenlabError(f"WORLD_SIZE is {env.get('WORLD_SIZE')} but {name} is not set: start genlab with "
                              f"torchrun (python -m torch.distributed.run), which sets RANK, LOCAL_RANK and "
                              f"WORLD_SIZE.")
        return default
    try:
        return int(raw)
    except ValueError:
        raise GenlabError(f"{name}={raw!r} is not an integer (torchrun sets it).") from None


def select_device(pref: str, launch: Launch, cuda_available: bool | None = None,
                  device_count: int | None = None) -> torch.device:
    """A single process follows train.device; under torchrun each process takes the GPU of its LOCAL_RANK
    (train.device auto or cuda) or the CPU (train.device cpu, or auto without CUDA)."""
    if launch.world_size == 1:
        return select_single_device(pref, cuda_available, device_count)
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if pref == "cpu" or (pref == "auto" and not cuda):
        return torch.device("cpu")
    if pref.startswith("cuda:"):
        raise GenlabError(f"train.device is {pref!r}, but under torchrun each process uses the GPU of its "
                          f"LOCAL_RANK; set train.device to auto or cuda (CUDA_VISIBLE_DEVICES chooses the GPUs).")
    select_single_device(pref, cuda, device_count)  # "cuda" without CUDA: the single-process message
    count = torch.cuda.device_count() if device_count is None else device_count
    if launch.local_rank >= count:
        raise GenlabError(f"process {launch.rank} has LOCAL_RANK {launch.local_rank}, but this machine has "
                          f"{count} CUDA device(s): start at most {count} processes per machine "
                          f"(torchrun --nproc_per_node={count}).")
    return torch.device("cuda", launch.local_rank)


def init(launch: Launch, device: torch.device) -> bool:
    """Join the process group (NCCL for GPUs, gloo for CPUs); True when this call created it."""
    if launch.world_size == 1:
        return False
    if dist.is_initialized():
        if dist.get_world_size() != launch.world_size:
            raise GenlabError(f"a process group of {dist.get_world_size()} processes already exists, but "
                              f"WORLD_SIZE is {launch.world_size}.")
        return False
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise GenlabError(f"WORLD_SIZE is {launch.world_size} but {' and '.join(missing)} is not set: start genlab "
                          f"with torchrun, which sets the rendezvous address.")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=launch.rank,
                            world_size=launch.world_size)
    return True


def cleanup() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def session(launch: Launch, device: torch.device) -> Iterator[None]:
    """The process group for the length of a training run; left alone if the caller made it."""
    owned = init(launch, device)
    try:
        yield
    finally:
        if owned:
            cleanup()


# ---------------------------------------------------------------- who am I


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    return dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """Rank 0: the one process that writes the run folder and logs."""
    return rank() == 0


def _comm_device() -> torch.device:
    """NCCL moves CUDA tensors only; gloo, CPU tensors."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


# ---------------------------------------------------------------- collectives (no-ops for one process)


def barrier() -> None:
    if _active():
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over processes (a copy, on the tensor's device); the tensor itself for one."""
    if not _active():
        return values
    out = values.detach().to(_comm_device(), copy=True)
    dist.all_reduce(out)
    return out.to(values.device)


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    return all_reduce_sum(values) / world_size() if _active() else values


def weighted_mean(values: torch.Tensor, weight: float) -> tuple[torch.Tensor, float]:
    """Mean over processes of per-process means, each weighted by its number of images (float64):
    the mean over the global batch. Returns the means and the total weight."""
    if not _active():
        return values, weight
    local = torch.cat([values.detach().double() * weight, values.new_tensor([weight], dtype=torch.float64)])
    total = all_reduce_sum(local)
    return total[:-1] / total[-1], float(total[-1])


def any_process(flag: bool) -> bool:
    """Whether the flag is set on any process: a decision every process then takes together."""
    if not _active():
        return flag
    return bool(all_reduce_sum(torch.tensor([float(flag)], device=_comm_device())).item() > 0)


def broadcast_object(obj: T) -> T:
    """Rank 0's object on every process (pickled: for small objects and checkpoint states)."""
    if not _active():
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    if not _active():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def main_first(fn: Callable[[], T], what: str) -> T:
    """Run `fn` on rank 0 only (it touches the run folder) and hand its result to every process; when it
    fails, every process fails with the same message instead of waiting for a collective that never comes."""
    if not _active():
        return fn()
    outcome: tuple[str, Any] = ("", None)
    if is_main():
        try:
            outcome = ("ok", fn())
        except GenlabError as exc:
            outcome = ("genlab", str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the other processes, then re-raised here
            outcome = ("other", f"{type(exc).__name__}: {exc}")
            broadcast_object(outcome)
            raise
    outcome = broadcast_object(outcome)
    kind, value = outcome
    if kind == "ok":
        return value
    if kind == "genlab":
        raise GenlabError(value)
    raise GenlabError(f"process 0 failed while {what}: {value}")


# ---------------------------------------------------------------- model state


def average_gradients(params: Iterable[nn.Parameter], bucket_bytes: int = BUCKET_BYTES) -> None:
    """Replace each gradient by its mean over processes, in flattened buckets (one all-reduce per bucket,
    not per tensor). Every process must hold gradients for the same parameters, which the objectives
    guarantee: the same code runs on every process."""
    if not _active():
        return
    world = world_size()
    grads = [p.grad for p in params if p.grad is not None]
    for bucket in _take_tensors(grads, bucket_bytes):
        flat = _flatten_dense_tensors(bucket)
        dist.all_reduce(flat)
        flat.div_(world)
        for grad, synced in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
            grad.copy_(synced)


def broadcast_tensors(tensors: Iterable[torch.Tensor], bucket_bytes: int = BUCKET_BYTES) -> None:
    """Overwrite the tensors with rank 0's values, in flattened buckets."""
    if not _active():
        return
    with torch.no_grad():
        for bucket in _take_tensors([t.data for t in tensors], bucket_bytes):
            flat = _flatten_dense_tensors(bucket)
            dist.broadcast(flat, src=0)
            for t, synced in zip(bucket, _unflatten_dense_tensors(flat, bucket)):
                t.copy_(synced)


def broadcast_module(module: nn.Module) -> None:
    """Rank 0's parameters and buffers everywhere: processes seeded differently built different weights."""
    broadcast_tensors([*module.parameters(), *module.buffers()])


def broadcast_buffers(module: nn.Module) -> None:
    """Rank 0's batch-norm statistics everywhere (each process's running statistics saw its own share)."""
    buffers = list(module.buffers())
    if buffers:
        broadcast_tensors(buffers)


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """BatchNorm layers that normalise with the statistics of the global batch (train.sync_batchnorm).
    PyTorch's SyncBatchNorm runs only on GPUs; parameters are kept, so optimisers built on them still work."""
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model
    if device.type != "cuda":
        raise GenlabError("train.sync_batchnorm needs CUDA devices: PyTorch's SyncBatchNorm does not run on CPU. "
                          "Set train.sync_batchnorm: false (each process then normalises with the statistics of "
                          "its share of the batch), or use a model without batch norm.")
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert converted is model  # only a BatchNorm root would be replaced, and models are never one
    return model


# ---------------------------------------------------------------- data and seeds


def local_batch_size(global_batch: int, world: int | None = None) -> int:
    """train.batch_size is the global batch; each process takes an equal share of it."""
    world = world_size() if world is None else world
    if global_batch % world:
        lower, upper = global_batch - global_batch % world, global_batch + world - global_batch % world
        options = f"{lower} or {upper}" if lower else f"{upper}"
        raise GenlabError(f"train.batch_size {global_batch} is the global batch, split evenly across the {world} "
                          f"processes; it must be a multiple of {world} (e.g. {options}).")
    return global_batch // world


def derived_seed(seed: int, rank: int, step: int) -> int:
    """A seed for a process that a checkpoint has no RNG state for (resuming on more processes)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])


# ---------------------------------------------------------------- logging


@contextlib.contextmanager
def quiet_unless_main(logger_name: str = "genlab") -> Iterator[None]:
    """Processes other than rank 0 log errors only: the same lines N times would drown the console."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    if not is_main():
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
