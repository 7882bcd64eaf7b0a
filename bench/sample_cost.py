"""What one sample costs, model against model, in one process: a GAN draws an image in one generator pass, a
diffusion model in `sample_steps` U-Net passes (twice each with classifier-free guidance).

For each bundled config it builds the model the config describes (random weights: the cost of a forward pass
does not depend on what it learnt), warms it up, then times `model.sample` in alternating rounds so every
config sees the same machine load, and prints images per second (median over rounds), the forward FLOPs of one
sample, and each config's cost relative to the first one named.

    python bench/sample_cost.py                                  # the MNIST and anime-faces configs
    python bench/sample_cost.py cgan_mnist_recommended ddpm_mnist --rounds 5
    python bench/sample_cost.py cgan_mnist_recommended ddpm_mnist --sample-steps 20
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from genlab.config import load
from genlab.data.registry import channels_of
from genlab.models import build_model, capabilities, model_arguments

DEFAULT = ("cgan_mnist_recommended", "sngan_mnist", "ddpm_mnist", "dcgan_anime64_recommended",
           "sngan_anime64_diffaugment", "ddpm_anime64")
CLASSES = {"mnist": 10, "fashion_mnist": 10}


def _model(name: str, steps: int | None):
    cfg = load(name)
    if steps is not None and "sample_steps" in model_arguments(cfg.model.name):
        cfg = load(name, [f"model.sample_steps={steps}"])
    classes = CLASSES.get(cfg.data.name, 0)
    model = build_model(cfg.model.name, cfg.model.kwargs(), image_size=cfg.data.image_size,
                        channels=channels_of(cfg.data), num_classes=classes or None).eval()
    caps = capabilities(cfg.model.name, cfg.model.kwargs(), classes)
    return model, caps


def _draw(model, caps, n: int) -> torch.Tensor:
    labels = torch.arange(n) % caps.num_classes if caps.conditional else None
    with torch.no_grad():
        return model.sample(n, generator=torch.Generator().manual_seed(0), labels=labels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("configs", nargs="*", default=list(DEFAULT))
    p.add_argument("--sample-steps", type=int, help="DDIM steps of the diffusion configs (default: each config's)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=4.0, help="least time per config per round")
    args = p.parse_args()
    models = {name: _model(name, args.sample_steps) for name in args.configs}
    flops, batch = {}, {}
    for name, (model, caps) in models.items():
        with FlopCounterMode(display=False) as counter:
            _draw(model, caps, 2)
        flops[name] = counter.get_total_flops() / 2
        start = time.perf_counter()
        _draw(model, caps, 16)  # warm-up, and the batch: up to 256 images while a call stays within the budget
        per_image = (time.perf_counter() - start) / 16
        batch[name] = max(16, min(256, int(args.seconds / max(per_image, 1e-6) / 2)))
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, (model, caps) in models.items():
            n, done, start = batch[name], 0, time.perf_counter()
            while time.perf_counter() - start < args.seconds:
                _draw(model, caps, n)
                done += n
            rates[name].append(done / (time.perf_counter() - start))
    first = args.configs[0]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.rounds} alternating rounds")
    print(f"{'config':30s} {'model':7s} {'img/s':>9s} {'spread':>8s} {'GFLOP/img':>10s} {'s/img':>9s} "
          f"{'x ' + first:>14s}")
    base = statistics.median(rates[first])
    for name, (_, caps) in models.items():
        med = statistics.median(rates[name])
        spread = (max(rates[name]) - min(rates[name])) / med
        print(f"{name:30s} {caps.name:7s} {med:9.1f} {spread:8.1%} {flops[name] / 1e9:10.3f} {1 / med:9.4f} "
              f"{base / med:14.1f}")


if __name__ == "__main__":
    main()
