"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) of every image D sees, real and generated.

On a few thousand images D memorises the training set and its feedback to G stops meaning anything.
Augmenting only the real images would teach G to draw augmented images; augmenting both with
transforms that are differentiable lets D see a larger set while G's gradient passes through the
same transform to G. The three policies are the paper's (its `DiffAugment_pytorch.py` defines them
the same way): each draws its own random parameters per image, for images in [-1, 1].

- color: brightness shift U(-0.5, 0.5), saturation factor U(0, 2), contrast factor U(0.5, 1.5);
- translation: an integer shift of up to 1/8 of the image in each axis, zero-filled;
- cutout: a zeroed square of half the image's side at a random centre.

Randomness comes from torch's global generator, which the training loop seeds and checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from genlab.errors import GenlabError


def color(x: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    shape = (n, 1, 1, 1)
    x = x + (torch.rand(shape, dtype=x.dtype, device=x.device) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (torch.rand(shape, dtype=x.dtype, device=x.device) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(shape, dtype=x.dtype, device=x.device) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) + dy).clamp(-1, h)  # -1 and h index the zero border
    cols = (torch.arange(w, device=x.device).view(1, 1, w) + dx).clamp(-1, w)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    batch = torch.arange(n, device=x.device).view(n, 1, 1)
    return padded.permute(0, 2, 3, 1)[batch, rows + 1, cols + 1].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    top, left = cy - ch // 2, cx - cw // 2  # the square may run over the border, as in the paper's code
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


POLICIES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color, "translation": translation, "cutout": cutout}


def parse(policy: str) -> tuple[str, ...]:
    """'color,translation,cutout' -> the names in order; an empty string is no augmentation."""
    names = tuple(p.strip() for p in policy.split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise GenlabError(f"objective.diffaugment: unknown polic{'ies' if len(unknown) > 1 else 'y'} "
                          f"{', '.join(map(repr, unknown))}; valid: a comma-separated subset of "
                          f"{', '.join(POLICIES)} (e.g. 'color,translation,cutout'), or '' for none")
    if len(set(names)) != len(names):
        raise GenlabError(f"objective.diffaugment names a policy twice ({policy!r}); name each at most once")
    return names


def augment(x: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    for name in names:
        x = POLICIES[name](x)
    return x.contiguous()
