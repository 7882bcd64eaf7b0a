"""Precision policy: what `train.precision: auto` picks on each device, the CPU's native-bf16 probe, determinism."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from genlab import device as dev
from genlab.errors import GenlabError


def test_cuda_auto_is_bf16_where_supported_else_fp16():
    cuda = torch.device("cuda")
    assert dev.select_precision("auto", cuda, bf16_supported=True) == "bf16"
    assert dev.select_precision("auto", cuda, bf16_supported=False) == "fp16"
    assert dev.select_precision("fp32", cuda, bf16_supported=True) == "fp32"


def test_cpu_auto_is_bf16_only_where_the_cpu_computes_it_natively(monkeypatch):
    cpu = torch.device("cpu")
    assert dev.select_precision("auto", cpu, bf16_supported=True) == "bf16"
    assert dev.select_precision("auto", cpu, bf16_supported=False) == "fp32"
    monkeypatch.setattr(dev, "cpu_bf16_native", lambda: False)
    assert dev.select_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(dev, "cpu_bf16_native", lambda: True)
    assert dev.select_precision("auto", cpu) == "bf16"
    assert dev.select_precision("fp32", cpu) == "fp32"  # an explicit choice is never overridden
    # a family not yet checked in bf16 stays in fp32 under auto, and gets bf16 when asked for it
    assert dev.select_precision("auto", cpu, cpu_bf16_checked=False) == "fp32"
    assert dev.select_precision("bf16", cpu, cpu_bf16_checked=False) == "bf16"


def test_cpu_choices_and_fp16_refused():
    cpu = torch.device("cpu")
    assert dev.select_precision("bf16", cpu) == "bf16" and dev.select_precision("fp32", cpu) == "fp32"
    with pytest.raises(GenlabError, match="fp16 needs a CUDA device"):
        dev.select_precision("fp16", cpu)


def test_native_bf16_probe_falls_back_to_the_cpu_flags(monkeypatch, tmp_path):
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: False, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    real_path = dev.Path

    def fake_path(p):
        return cpuinfo if str(p) == "/proc/cpuinfo" else real_path(p)

    monkeypatch.setattr(dev, "Path", fake_path)
    cpuinfo.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    assert dev.cpu_bf16_native() is False
    cpuinfo.write_text("flags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert dev.cpu_bf16_native() is True
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    cpuinfo.write_text("flags\t\t: fpu\n")
    assert dev.cpu_bf16_native() is True  # torch's own probe first


def test_norm_layers_compute_in_fp32_under_bf16_autocast_when_asked():
    from torch import nn

    from genlab.device import norms_in_fp32

    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.GroupNorm(2, 4))
    x = torch.randn(2, 3, 9, 9)
    seen: list[torch.dtype] = []
    m[1].register_forward_hook(lambda mod, args, out: seen.append(out.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(x)
    assert norms_in_fp32(m) == 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x)
    assert seen == [torch.bfloat16, torch.float32]
    assert out.dtype == torch.float32  # the last layer is a norm, which now outputs fp32


def test_set_determinism_switches_both_ways_and_off_costs_no_inductor_import():
    dev.set_determinism(0, True)
    assert torch.are_deterministic_algorithms_enabled()
    dev.set_determinism(0, False)
    assert not torch.are_deterministic_algorithms_enabled()
    # torch.use_deterministic_algorithms imports torch._inductor (about a second); the default needs no call
    code = ("import sys, torch; from genlab.device import set_determinism; set_determinism(0, False); "
            "print('torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
