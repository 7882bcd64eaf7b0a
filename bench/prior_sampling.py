"""Sampling speed of the gated PixelCNN prior: the row-by-row sampler against a full pass over the grid per
cell, measured in one process, in alternating blocks, at the vqvae_prior config's sizes.

    python bench/prior_sampling.py [--images 16] [--grid 16] [--blocks 3]
"""

from __future__ import annotations

import argparse
import time

import torch

from genlab.models.pixelcnn import GatedPixelCNN


def naive_sample(model: GatedPixelCNN, n: int, grid: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    out = torch.zeros(n, *grid, dtype=torch.long)
    for i in range(grid[0]):
        for j in range(grid[1]):
            probs = torch.softmax(model(out)[:, :, i, j].float(), dim=1)
            out[:, i, j] = torch.multinomial(probs, 1, generator=gen).squeeze(1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--grid", type=int, default=16, help="grid side (vqvae_cats: 16)")
    ap.add_argument("--codes", type=int, default=512)
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--kernel", type=int, default=7)
    ap.add_argument("--blocks", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = GatedPixelCNN(num_codes=args.codes, channels=args.channels, layers=args.layers, kernel=args.kernel).eval()
    grid = (args.grid, args.grid)
    times: dict[str, list[float]] = {"row by row": [], "full pass per cell": []}
    with torch.no_grad():
        for b in range(args.blocks):
            for name in (list(times) if b % 2 == 0 else list(times)[::-1]):
                gen = torch.Generator().manual_seed(b)
                t = time.perf_counter()
                if name == "row by row":
                    model.sample(args.images, grid, generator=gen)
                else:
                    naive_sample(model, args.images, grid, gen)
                times[name].append(time.perf_counter() - t)
    best = {k: min(v) for k, v in times.items()}
    print(f"{args.images} samples, {args.grid}x{args.grid} grid, {args.layers} layers of {args.channels}, "
          f"K={args.codes}, {torch.get_num_threads()} threads, best of {args.blocks}")
    for name, t in best.items():
        print(f"  {name:>20}: {t:7.2f} s  ({args.images / t:6.2f} samples/s)")
    print(f"  speed-up: {best['full pass per cell'] / best['row by row']:.1f}x")


if __name__ == "__main__":
    main()
