"""train.compile: torch.compile of the model's networks, in place, with a compile cache that outlives /tmp.

Each trainable direct child of the model (a VAE's encoder and decoder, a GAN's generator and discriminator)
is compiled with `nn.Module.compile`, which wraps the module's call and keeps its parameters and their names,
so checkpoints, the optimiser, weight averages and export see the same module whether it is compiled or not.
The engine never learns which family it compiles. Inductor's caches go under genlab's cache root
(`$GENLAB_CACHE/inductor`, unless TORCHINDUCTOR_CACHE_DIR is set): a second run of the same shapes loads
the compiled kernels instead of building them, which `bench/compile_speed.py` measures.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.paths import cache_dir

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"


def uses_compile(cfg, device: torch.device) -> bool:
    """train.compile; null (auto) is off on every device: on this project's 2-core CPU, bench/compile_speed.py
    found no recommended config whose run repays the compile time, and on GPUs nobody has measured genlab's
    gain yet (`bench/gpu_check.py --compile` against a run without)."""
    del device  # the rule may come to depend on it once GPU runs are measured
    return bool(cfg.train.compile)


def compile_networks(model: nn.Module) -> list[str]:
    """Compile each direct child that has trainable parameters; returns their names, for the log."""
    if not hasattr(torch, "compile"):
        raise GenlabError("train.compile needs PyTorch 2.0 or later; set train.compile: false.")
    os.environ.setdefault(CACHE_ENV, str(cache_dir() / "inductor"))
    names = []
    for name, child in model.named_children():
        if any(p.requires_grad for p in child.parameters()):
            child.compile()
            names.append(name)
    return names
