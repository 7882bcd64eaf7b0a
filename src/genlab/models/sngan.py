"""SNGAN (Miyato et al. 2018): a ResNet generator and a ResNet discriminator with spectral normalisation.

The architecture of the paper's appendix B.4 (its ResNet for CIFAR-10, STL-10 and ImageNet), at any size
whose halving reaches a small start: G draws z into a start x start grid (4x4 at 32, 64 and 128 px; 7x7
at 28 px; 6x6 at 48 px), then one up-sampling residual block per doubling, BatchNorm + ReLU, a 3x3 conv
and Tanh. D mirrors it with down-sampling residual blocks (the first one "optimised": conv before the
activation, shortcut pooled first, because the image is not a ReLU output), one more block at the
start size, ReLU, a sum over positions and one linear output.

Every weight of D is spectrally normalised, so D is 1-Lipschitz per layer and cannot win by sharpening its
decision; trained with the hinge loss (`objective.loss: hinge`). Widths halve in G from
g_width * 2^n at the start grid to g_width at the image (n up-sampling blocks: 1024 down to 64 at 64 px
for g_width 64, the paper's 64 px generator) and double in D from d_width; the paper's 32 px networks
keep one width throughout instead.

Conditional (labels): G's BatchNorms get a class-specific scale and shift (conditional BatchNorm), and
D adds the inner product of a class embedding with its pooled features to the output: the projection
discriminator of Miyato & Koyama 2018, the conditioning the SNGAN paper uses for ImageNet.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genlab.models.gan import GAN
from genlab.models.registry import LatentSpec, ModelEntry, always, when


def start_size(image_size: int) -> int:
    """Halve while the result stays a whole number of pixels above 7: 32, 64, 128 -> 4; 28 -> 7; 48 -> 6."""
    s = image_size
    while s % 2 == 0 and s > 7:
        s //= 2
    return s


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without its own affine part, then a scale and shift per class (or one shared pair)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=not num_classes)
        self.num_classes = num_classes
        if num_classes:
            self.scale = nn.Embedding(num_classes, channels)
            self.shift = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.scale.weight)
            nn.init.zeros_(self.shift.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.norm(x)
        if not self.num_classes:
            return h
        return h * self.scale(labels)[:, :, None, None] + self.shift(labels)[:, :, None, None]


def _init(conv: nn.Module, gain: float = 1.0) -> nn.Module:
    """Xavier-uniform weights (the paper's Chainer code; sqrt(2) on the residual path's convs), zero biases."""
    nn.init.xavier_uniform_(conv.weight, gain)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class GBlock(nn.Module):
    """BN, ReLU, 2x nearest up-sampling, 3x3 conv, BN, ReLU, 3x3 conv; the shortcut up-samples and 1x1-convs."""

    def __init__(self, c_in: int, c_out: int, num_classes: int):
        super().__init__()
        self.bn1, self.bn2 = ConditionalBatchNorm(c_in, num_classes), ConditionalBatchNorm(c_out, num_classes)
        self.conv1 = _init(nn.Conv2d(c_in, c_out, 3, 1, 1), math.sqrt(2))
        self.conv2 = _init(nn.Conv2d(c_out, c_out, 3, 1, 1), math.sqrt(2))
        self.shortcut = _init(nn.Conv2d(c_in, c_out, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, labels)), scale_factor=2.0)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0))


class SNGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int, num_classes: int):
        super().__init__()
        self.start = start_size(image_size)
        n_up = int(math.log2(image_size // self.start))
        self.num_classes = num_classes
        widths = [width * 2 ** (n_up - i) for i in range(n_up + 1)]
        self.c0 = widths[0]
        self.fc = _init(nn.Linear(latent_dim, self.c0 * self.start ** 2))
        self.blocks = nn.ModuleList(GBlock(widths[i], widths[i + 1], num_classes) for i in range(n_up))
        self.head = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU(), _init(nn.Conv2d(width, channels, 3, 1, 1)),
                                  nn.Tanh())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and labels is None:
            raise ValueError("this GAN is conditional: pass class labels")
        h = self.fc(z).view(z.shape[0], self.c0, self.start, self.start)
        for block in self.blocks:
            h = block(h, labels)
        return self.head(h)


class DBlock(nn.Module):
    """ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 average pool; shortcut 1x1 conv then pool (when the shape changes).

    first: the block that reads the image: conv before any ReLU, and the shortcut pools before its conv."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool = False):
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _init(nn.Conv2d(c_in, c_out, 3, 1, 1), math.sqrt(2))
        self.conv2 = _init(nn.Conv2d(c_out, c_out, 3, 1, 1), math.sqrt(2))
        self.shortcut = _init(nn.Conv2d(c_in, c_out, 1)) if (c_in != c_out or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(x if self.first else F.relu(x))
        h = self.conv2(F.relu(h))
        if self.down:
            h = F.avg_pool2d(h, 2)
        s = x
        if self.first:
            s = self.shortcut(F.avg_pool2d(s, 2))
        elif self.shortcut is not None:
            s = self.shortcut(s)
            s = F.avg_pool2d(s, 2) if self.down else s
        return h + s


class SNGANDiscriminator(nn.Module):
    def __init__(self, image_size: int, channels: int, width: int, num_classes: int):
        super().__init__()
        n_down = int(math.log2(image_size // start_size(image_size)))
        self.num_classes = num_classes
        widths = [width * 2**i for i in range(n_down)]
        blocks = [DBlock(channels, widths[0], down=True, first=True)]
        blocks += [DBlock(widths[i - 1], widths[i], down=True) for i in range(1, n_down)]
        blocks += [DBlock(widths[-1], widths[-1], down=False)]
        self.blocks = nn.Sequential(*blocks)
        self.linear = _init(nn.Linear(widths[-1], 1))
        self.class_embed = nn.Embedding(num_classes, widths[-1]) if num_classes else None
        if self.class_embed is not None:
            nn.init.xavier_uniform_(self.class_embed.weight)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding):
                spectral_norm(m)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes and labels is None:
            raise ValueError("this GAN is conditional: pass class labels")
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        out = self.linear(h).view(-1)
        if self.class_embed is not None:
            out = out + (self.class_embed(labels) * h).sum(1)
        return out


def sngan(*, image_size: int, channels: int, num_classes: int = 0, latent_dim: int = 128, g_width: int = 64,
          d_width: int = 64, conditional: bool = False, ema_decay: float = 0.0) -> GAN:
    start = start_size(image_size)
    if image_size == start or start > 7:
        raise ValueError(f"sngan doubles from a start grid of 4 to 7 pixels, so image_size must be 4 to 7 times "
                         f"a power of 2 (16, 28, 32, 48, 64, 96, 128, ...; got {image_size}, whose halving "
                         f"stops at {start})")
    if conditional and not num_classes:
        raise ValueError("conditional sngan needs a labelled data set (one sub-folder per class, or labels)")
    k = num_classes if conditional else 0
    g = SNGANGenerator(latent_dim, image_size, channels, g_width, k)
    d = SNGANDiscriminator(image_size, channels, d_width, k)
    return GAN(g, d, latent_dim, k, (channels, image_size, image_size), ema_decay)


ENTRIES = (
    ModelEntry(
        name="sngan", build=sngan, family="gan", trains_with=("adversarial",),
        summary="SNGAN (Miyato et al. 2018): ResNet G and spectrally normalised ResNet D; conditional: projection D",
        latent=LatentSpec(posterior="none"), tiny={"g_width": 4, "d_width": 4, "latent_dim": 8},
        tiny_image_sizes=(16, 28, 32), output_activation="tanh", conditional=when("conditional"),
        sizes=("latent_dim", "g_width", "d_width"), spectral_d=always,
    ),
)
