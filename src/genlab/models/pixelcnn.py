"""A gated PixelCNN over a grid of code indices (van den Oord et al. 2016, "Conditional Image Generation with
PixelCNN Decoders"): the autoregressive prior a VQ-VAE samples through (van den Oord et al. 2017, sec. 3.1, 4.2).

It models p(k) = prod_i p(k_i | k_<i) over the cells of an (h, w) grid in raster order, each k_i one of K
codes. Two stacks keep the model causal without the blind spot of the original PixelCNN: the vertical stack
sees only the rows above a cell, the horizontal stack the cells to its left in its own row plus, through a
1x1 link, the vertical stack's view of the rows above. The first layer (mask "A") also hides the cell itself;
later layers (mask "B") may see their own cell's features, which by then describe only earlier cells.

This module is a building block, not a registered model: it knows nothing of VQ-VAEs, data or training. A
`vqvae_prior` run (models/vqvae_prior.py) trains it on the code grids a frozen VQ-VAE's encoder gives the
training images and samples through it (`sample`, then the VQ-VAE's `decode_indices`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GatedLayer(nn.Module):
    """One gated layer of both stacks: tanh(a) * sigmoid(b) on each, a residual on the horizontal one."""

    def __init__(self, channels: int, kernel: int, first: bool):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (got {kernel})")
        self.first, self.half = first, kernel // 2
        # vertical: rows i - k//2 .. i (the last row hidden in the first layer), all columns within k//2
        self.vertical = nn.Conv2d(channels, 2 * channels, (self.half + 1, kernel), padding=(self.half, self.half))
        self.v_to_h = nn.Conv2d(2 * channels, 2 * channels, 1)
        # horizontal: columns j - k//2 .. j of row i (the last hidden in the first layer)
        self.horizontal = nn.Conv2d(channels, 2 * channels, (1, self.half + 1), padding=(0, self.half))
        self.h_out = nn.Conv2d(channels, channels, 1)

    def _masked(self, conv: nn.Conv2d, x: torch.Tensor, axis: int) -> torch.Tensor:
        weight = conv.weight
        if self.first:  # mask A: the kernel's last row (vertical) or column (horizontal) is the cell itself
            mask = torch.ones_like(weight)
            if axis == 2:
                mask[:, :, -1] = 0
            else:
                mask[:, :, :, -1] = 0
            weight = weight * mask
        return F.conv2d(x, weight, conv.bias, padding=conv.padding)

    @staticmethod
    def _gate(x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def vertical_pre(self, v: torch.Tensor) -> torch.Tensor:
        """The vertical stack's pre-gate features; row i depends on input rows above i only (and row i after
        the first layer), so a row's features are final once the rows above it are drawn."""
        return self._masked(self.vertical, v, axis=2)[:, :, :v.shape[-2], :]  # crop: output row i ends at row i

    def horizontal_stack(self, h: torch.Tensor, v_pre: torch.Tensor) -> torch.Tensor:
        """The horizontal stack's output over the rows of `h`, given the vertical stack's features of the same
        rows; cell j depends on cells left of j only (and cell j after the first layer)."""
        h_pre = self._masked(self.horizontal, h, axis=3)[:, :, :, :h.shape[-1]]
        h_out = self.h_out(self._gate(h_pre + self.v_to_h(v_pre)))
        return h_out if self.first else h + h_out

    def forward(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v_pre = self.vertical_pre(v)
        return self._gate(v_pre), self.horizontal_stack(h, v_pre)


class GatedPixelCNN(nn.Module):
    """Logits (B, K, h, w) of each cell's code given the cells before it in raster order."""

    def __init__(self, *, num_codes: int, channels: int = 64, layers: int = 8, kernel: int = 7):
        super().__init__()
        if layers < 1:
            raise ValueError(f"layers must be at least 1 (got {layers})")
        self.num_codes = num_codes
        self.embedding = nn.Embedding(num_codes, channels)
        self.layers = nn.ModuleList(GatedLayer(channels, kernel, first=i == 0) for i in range(layers))
        self.head = nn.Sequential(nn.Conv2d(channels, 4 * channels, 1), nn.ReLU(),
                                  nn.Conv2d(4 * channels, num_codes, 1))

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        x = self.embedding(indices).permute(0, 3, 1, 2)
        v, h = x, x
        for layer in self.layers:
            v, h = layer(v, h)
        return self.head(h)

    def loss(self, indices: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per cell, in nats: cross-entropy of each cell's code."""
        return F.cross_entropy(self(indices), indices)

    def vertical_features(self, rows: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's vertical features of the last row of `rows` (B, r, w): all the horizontal stack needs
        from the rows above, and final once they are drawn, so sampling computes them once per row."""
        v = self.embedding(rows).permute(0, 3, 1, 2)
        features = []
        for layer in self.layers:
            v_pre = layer.vertical_pre(v)
            features.append(v_pre[:, :, -1:])
            v = layer._gate(v_pre)
        return features

    def cell_logits(self, row: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """(B, K) logits of the cell after `row` (B, 1, j+1: the cells left of it, then any placeholder code)
        given its row's vertical features: a pass over one row, not the grid."""
        width = row.shape[-1]
        h = self.embedding(row).permute(0, 3, 1, 2)
        for layer, v_pre in zip(self.layers, features):
            h = layer.horizontal_stack(h, v_pre[..., :width])
        return self.head(h[..., -1:])[:, :, 0, 0]

    @torch.no_grad()
    def sample(self, n: int, grid: tuple[int, int], generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
        """n grids of code indices, (n, h, w), drawn cell by cell in raster order.

        The same draws as a full pass over the grid per cell, about 20 times faster at vqvae_prior's sizes
        (bench/prior_sampling.py): by causality, a cell needs only its row's vertical features (computed once
        per row, from the rows above) and the cells to its left."""
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0 (got {temperature})")
        device = self.embedding.weight.device
        out = torch.zeros(n, *grid, dtype=torch.long, device=device)
        for i in range(grid[0]):
            features = self.vertical_features(out[:, :i + 1])
            for j in range(grid[1]):
                logits = self.cell_logits(out[:, i:i + 1, :j + 1], features)
                probs = torch.softmax(logits.float() / temperature, dim=1)
                out[:, i, j] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        return out
