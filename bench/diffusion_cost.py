"""What a bundled diffusion config costs on this machine: its training step in fp32 and in bf16, and a sample.

    python bench/diffusion_cost.py                       # every bundled config with objective.kind diffusion
    python bench/diffusion_cost.py ddpm_anime64_cpu      # one

For each config, on synthetic images of its shape: the config's real training loop (its U-Net, batch and
optimiser) in fp32 and in bf16 autocast, in alternating blocks in one process (median img/s over blocks,
and the bf16 / fp32 ratio), the U-Net's weights, and the seconds one DDIM sample takes at the config's
`sample_steps` (a GAN's sample is one generator pass). It sizes a config for a time budget: a run's
training images are img/s x seconds. Ratios measured in one run hold on a noisy shared machine; absolute
rates do not.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

from compile_speed import _block as block_rate  # noqa: E402  (img/s of a block, its closing save left out)
from recommended_cost import trainer_for  # noqa: E402

from genlab.config import PACKAGED_CONFIGS, RunConfig, load, validate  # noqa: E402


def diffusion_configs() -> list[str]:
    return sorted(name for name in PACKAGED_CONFIGS if load(name).objective.kind == "diffusion")


def with_precision(cfg: RunConfig, precision: str) -> RunConfig:
    return validate({**cfg.to_dict(), "train": {**cfg.train.model_dump(mode="json"), "precision": precision}})


def sample_seconds(model, n: int = 4) -> float:
    model.eval()
    with torch.no_grad():
        model.sample(1, generator=torch.Generator().manual_seed(0))  # first call builds the scheduler
        t = time.perf_counter()
        model.sample(n, generator=torch.Generator().manual_seed(1))
    return (time.perf_counter() - t) / n


def measure(name: str, blocks: int, steps: int) -> None:
    cfg = load(name)
    channels = 1 if cfg.data.grayscale or cfg.data.name in ("mnist", "fashion_mnist") else 3
    classes = 10 if cfg.model.model_dump().get("conditional") else 0
    with tempfile.TemporaryDirectory() as tmp:
        loops = {p: trainer_for(with_precision(cfg, p), channels, classes, Path(tmp) / p, steps=blocks * steps + 1)
                 for p in ("fp32", "bf16")}
        for loop in loops.values():
            loop.fit(stop_after_steps=1)  # warm-up: first-touch allocation and kernel selection
        rates: dict[str, list[float]] = {p: [] for p in loops}
        for b in range(blocks):
            for p in (("fp32", "bf16") if b % 2 == 0 else ("bf16", "fp32")):
                rates[p].append(block_rate(loops[p], steps))
        model = loops["fp32"].objective.model
        weights = sum(p.numel() for p in model.unet.parameters())
        per_sample = sample_seconds(model)
    fp32, bf16 = statistics.median(rates["fp32"]), statistics.median(rates["bf16"])
    ratio = statistics.median(b / f for b, f in zip(rates["bf16"], rates["fp32"]))
    print(f"{name:22s} {cfg.data.image_size:>4d} {cfg.train.batch_size:>5d} {weights / 1e6:8.2f} {fp32:9.1f} "
          f"{bf16:9.1f} {ratio:7.2f}x {model.sample_steps:>6d} {per_sample:10.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("configs", nargs="*", help="bundled diffusion configs (default: all)")
    ap.add_argument("--blocks", type=int, default=4)
    ap.add_argument("--steps", type=int, default=2, help="training steps per block")
    args = ap.parse_args()
    names = args.configs or diffusion_configs()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; training img/s median over "
          f"{args.blocks} alternating blocks of {args.steps} steps; sample: one DDIM sample, fp32 eval mode\n")
    print(f"{'config':22s} {'size':>4s} {'batch':>5s} {'M weights':>8s} {'fp32 img/s':>9s} {'bf16 img/s':>9s} "
          f"{'bf16/fp32':>8s} {'steps':>6s} {'s/sample':>10s}")
    for name in names:
        measure(name, args.blocks, args.steps)


if __name__ == "__main__":
    main()
