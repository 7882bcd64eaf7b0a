"""Device and precision selection: CUDA when present, else CPU; the policy in one testable place."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from genlab.errors import GenlabError


def select_device(pref: str, cuda_available: bool | None = None, device_count: int | None = None) -> torch.device:
    cuda = torch.cuda.is_available() if cuda_available is None else cuda_available
    if pref == "auto":
        return torch.device("cuda" if cuda else "cpu")
    if pref.startswith("cuda") and not cuda:
        raise GenlabError(f"train.device is {pref!r} but no CUDA device is available; use 'auto' or 'cpu'.")
    device = torch.device(pref)
    if device.type == "cuda" and device.index is not None:
        count = torch.cuda.device_count() if device_count is None else device_count
        if device.index >= count:
            raise GenlabError(f"train.device is {pref!r} but this machine has {count} CUDA device(s): "
                              f"cuda:0 to cuda:{count - 1}.")
    return device


def cpu_bf16_native() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16); elsewhere bf16 autocast is an
    emulation slower than fp32. torch's own probes first, the kernel's CPU flags as the fallback."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        fn = getattr(torch.cpu, probe, None)
        if fn is not None:
            with contextlib.suppress(Exception):
                if fn():
                    return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def select_precision(pref: str, device: torch.device, bf16_supported: bool | None = None,
                     cpu_bf16_checked: bool = True) -> str:
    """auto: bf16 on GPUs that support it, else fp16 (with a gradient scaler). On CPU: bf16 where the CPU
    computes it natively and the objective's family was checked in bf16 (`cpu_bf16_checked`, declared by
    each objective kind), else fp32: emulated bf16 is slower than fp32, and bf16 changed what some
    families learn (README, "Devices"). `bf16_supported` overrides the probe of the device in question."""
    if device.type != "cuda":
        if pref == "fp16":
            raise GenlabError("train.precision fp16 needs a CUDA device; on CPU use fp32 or bf16.")
        if pref != "auto":
            return pref
        if not cpu_bf16_checked:
            return "fp32"
        return "bf16" if (cpu_bf16_native() if bf16_supported is None else bf16_supported) else "fp32"
    if pref != "auto":
        return pref
    bf16 = torch.cuda.is_bf16_supported() if bf16_supported is None else bf16_supported
    return "bf16" if bf16 else "fp16"


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


NORM_LAYERS = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)


def _inputs_to_fp32(module: torch.nn.Module, args: tuple) -> tuple:
    return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def norms_in_fp32(model: torch.nn.Module) -> int:
    """Make every normalisation layer compute in fp32 under autocast, as mixed-precision practice keeps them:
    CPU autocast runs batch norm in the dtype it is given (bf16), so batch statistics and the normalised
    output carry 8 bits of mantissa. The next matmul-like layer casts back to bf16, so the cost is a cast per
    layer. Returns how many layers it changed (train.fp32_norms, on by default)."""
    n = 0
    for m in model.modules():
        if isinstance(m, NORM_LAYERS):
            m.register_forward_pre_hook(_inputs_to_fp32)
            n += 1
    return n


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler | None:
    return torch.amp.GradScaler(device.type) if precision == "fp16" else None


def set_determinism(seed: int, deterministic: bool) -> None:
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif torch.are_deterministic_algorithms_enabled():  # the call imports torch._inductor: ~1 s of start-up
        torch.use_deterministic_algorithms(False)
