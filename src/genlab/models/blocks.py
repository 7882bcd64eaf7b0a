"""Building blocks shared by the models: conv stacks whose decoder mirrors the encoder exactly.

Image size is a parameter everywhere, so the decoder cannot assume powers of two: `down_sizes`
records the spatial size after each stride-2 convolution and the transposed convolutions pick the
`output_padding` that lands back on each recorded size (28 -> 14 -> 7 -> 4 -> 7 -> 14 -> 28).
"""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "tanh": nn.Tanh,  # the likelihood papers' MLPs (Kingma & Welling 2014; Burda et al. 2016)
}


class Sigmoid32(nn.Sigmoid):
    """A sigmoid whose output is fp32 under autocast. Its outputs are a Bernoulli decoder's probabilities,
    and the likelihood needs log(1 - p): bf16 resolves p near 1 only to 2^-8, so every p above 0.998 would
    round to 1 and the pixel's log-likelihood to the clamp's floor. A tanh's outputs are pixel values, where
    bf16's resolution near ±1 is the 8-bit pixel's, so tanh keeps the run's precision."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x.float())


OUTPUT_ACTIVATIONS = {"tanh": nn.Tanh, "sigmoid": Sigmoid32, "none": nn.Identity}


def activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)} (got {name!r})")
    return ACTIVATIONS[name]()


def output_activation(name: str) -> nn.Module:
    if name not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output_activation must be one of {sorted(OUTPUT_ACTIVATIONS)} (got {name!r})")
    return OUTPUT_ACTIVATIONS[name]()


def down_sizes(image_size: int, n_down: int, model: str = "model") -> list[int]:
    """Spatial sizes [input, after 1st stride-2 conv, ...]; each 3x3/s2/p1 conv maps n to ceil(n/2)."""
    sizes = [image_size]
    for _ in range(n_down):
        if sizes[-1] < 2:
            break
        sizes.append((sizes[-1] + 1) // 2)
    if len(sizes) <= n_down or sizes[-1] < 1:
        smallest = 2 ** (n_down - 1) + 1 if n_down > 1 else 2
        raise ValueError(
            f"{model} halves the image {n_down} times, so image_size must be at least {smallest} "
            f"(got {image_size}); use a larger image_size or fewer hidden_dims"
        )
    return sizes


def up_padding(size_in: int, size_out: int) -> int:
    """output_padding for a 3x3/s2/p1 transposed conv to go from size_in to size_out."""
    pad = size_out - (2 * size_in - 1)
    if pad not in (0, 1):
        raise ValueError(f"cannot upsample {size_in} to {size_out} with one stride-2 transposed conv")
    return pad


def conv_block(c_in: int, c_out: int, batch_norm: bool, act: str) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(activation(act))
    return nn.Sequential(*layers)


def deconv_block(c_in: int, c_out: int, size_in: int, size_out: int, batch_norm: bool, act: str) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1,
                           output_padding=up_padding(size_in, size_out), bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(activation(act))
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """Stride-2 conv blocks; `sizes` and `out_features` tell the heads what comes out."""

    def __init__(self, channels: int, image_size: int, hidden_dims: tuple[int, ...], batch_norm: bool,
                 act: str, model: str):
        super().__init__()
        self.sizes = down_sizes(image_size, len(hidden_dims), model)
        dims = (channels, *hidden_dims)
        self.net = nn.Sequential(*[conv_block(a, b, batch_norm, act) for a, b in zip(dims, dims[1:])])
        self.out_features = hidden_dims[-1] * self.sizes[-1] ** 2

    def forward(self, x):
        return self.net(x).flatten(1)


class ConvDecoder(nn.Module):
    """Mirror of ConvEncoder: Linear -> reshape -> transposed conv blocks -> 3x3 conv -> output activation."""

    def __init__(self, channels: int, sizes: list[int], hidden_dims: tuple[int, ...], latent_dim: int,
                 batch_norm: bool, act: str, out_act: str):
        super().__init__()
        rev = tuple(reversed(hidden_dims)) + (hidden_dims[0],)
        rsizes = list(reversed(sizes))
        self.start = (rev[0], rsizes[0], rsizes[0])
        self.fc = nn.Linear(latent_dim, rev[0] * rsizes[0] ** 2)
        blocks = [deconv_block(rev[i], rev[i + 1], rsizes[i], rsizes[i + 1], batch_norm, act)
                  for i in range(len(hidden_dims))]
        self.net = nn.Sequential(*blocks, nn.Conv2d(rev[-1], channels, 3, padding=1), output_activation(out_act))

    def forward(self, z):
        return self.net(self.fc(z).view(z.shape[0], *self.start))


class ResidualBlock(nn.Module):
    """Two 3x3 convs with a skip connection (He et al. 2016), keeping channels and size."""

    def __init__(self, ch: int, act: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch), activation(act),
            nn.Conv2d(ch, ch, 3, padding=1, bias=False), nn.BatchNorm2d(ch),
        )
        self.act = activation(act)

    def forward(self, x):
        return self.act(x + self.body(x))
