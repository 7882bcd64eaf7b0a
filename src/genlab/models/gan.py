"""GANs: the DCGAN of the anime-faces experiment and the conditional GAN of the MNIST experiment, each a
generator + discriminator pair.

A `GAN` module holds both networks so that one state dict, one checkpoint and one registry entry
describe the model; the adversarial objective decides which optimiser updates which half.
Conditioning (when `num_classes` > 0): the generator gets a learned label embedding concatenated to
z; the discriminator gets a learned per-class map of the image's size as an extra input channel.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genlab.models.averaging import keep_average, update_average, with_average
from genlab.models.registry import LatentSpec, ModelEntry, always, when


def dcgan_init(m: nn.Module) -> None:
    """Weights from N(0, 0.02), BatchNorm scale from N(1, 0.02) (Radford et al. 2016, sec. 4)."""
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class LabelMap(nn.Module):
    """Class label -> one extra image channel (a learned size x size map per class)."""

    def __init__(self, num_classes: int, size: int):
        super().__init__()
        self.size = size
        self.embed = nn.Embedding(num_classes, size * size)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.embed(labels).view(-1, 1, self.size, self.size)], 1)


class GAN(nn.Module):
    """Generator and discriminator with the shared sampling API used by figures and metrics.

    ema_decay > 0 keeps a second generator whose weights (and BatchNorm statistics) are an exponential
    moving average of the trained one's (Yazici et al. 2019, "The unusual effectiveness of averaging in
    GAN training"; Karras et al. 2018). Adversarial training makes G's weights orbit rather than settle,
    so one snapshot carries the phase of that orbit it was taken at; the average sits nearer its centre.
    Sampling, figures, metrics and export then use the average; training steps use the live generator.
    The average lives in the state dict, so checkpoints and resumed runs carry it.
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, latent_dim: int, num_classes: int,
                 image_shape: tuple[int, int, int], ema_decay: float = 0.0):
        super().__init__()
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.image_shape = image_shape
        self.generator_ema: nn.Module | None
        keep_average(self, generator, "generator_ema", ema_decay)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def sampling_generator(self) -> nn.Module:
        """The generator that draws images for users: the weight average when there is one."""
        return self.generator if self.generator_ema is None else self.generator_ema

    @torch.no_grad()
    def update_average(self) -> None:
        """Move the average towards the live generator, after each generator step.

        The decay ramps up as min(ema_decay, (1 + t) / (10 + t)) over the first updates (as TensorFlow's
        ExponentialMovingAverage does with num_updates), so the average does not drag the random
        initialisation through a short run.
        """
        if self.generator_ema is not None:
            update_average(self.generator_ema, self.generator, self.ema_updates, self.ema_decay)

    @torch.no_grad()
    def reset_average(self) -> None:
        """Start the average over: a copy of the live generator, no updates counted."""
        if self.generator_ema is not None:
            self.generator_ema.load_state_dict(self.generator.state_dict())
            self.ema_updates.zero_()

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # The average starts as a copy of the generator: a checkpoint from before ema_decay was set
        # resumes with the average taken from there on.
        if self.generator_ema is not None:
            state_dict = with_average(state_dict, "generator", "generator_ema")
        return super().load_state_dict(state_dict, strict, assign)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.sampling_generator(z, labels)

    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
               ) -> torch.Tensor:
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        if self.conditional and labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator, device=device)
        return self.decode(z, labels)

    def discriminate(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One logit per image (real > 0)."""
        return self.discriminator(x, labels)

    def discriminate_with_classes(self, x: torch.Tensor, labels: torch.Tensor | None = None
                                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logit and, for a discriminator with an auxiliary classifier, its class logits (else None)."""
        with_classes = getattr(self.discriminator, "forward_with_classes", None)
        return with_classes(x, labels) if with_classes else (self.discriminator(x, labels), None)


def _check_labels(num_classes: int, labels: torch.Tensor | None) -> None:
    if num_classes and labels is None:
        raise ValueError("this GAN is conditional: pass class labels")


class DCGANGenerator(nn.Module):
    """z (latent_dim x 1 x 1) -> 8x8 by one transposed conv, then stride-2 transposed convs to the
    image size: 4 transposed convs in all at 64x64 (the anime-faces DCGAN); BatchNorm + ReLU, Tanh output."""

    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int, num_classes: int,
                 label_dim: int):
        super().__init__()
        n_up = int(math.log2(image_size // 8))
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, label_dim) if num_classes else None
        c = width * 2 ** (n_up - 1)  # 64x64: 256 at 8x8, 128 at 16x16, 64 at 32x32 (pytorch/examples' widths)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim + (label_dim if num_classes else 0), c, 8, 1, 0,
                                                      bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(self.num_classes, labels)
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], 1)
        return self.net(z.view(z.shape[0], -1, 1, 1))


D_NORMS = {
    "batch": lambda c: [nn.BatchNorm2d(c)],
    "none": lambda c: [],
    "layer": lambda c: [nn.GroupNorm(1, c)],
}


class DCGANDiscriminator(nn.Module):
    """Stride-2 convs down to 4x4 (4 of them at 64x64), LeakyReLU 0.2, BatchNorm after the first,
    then a 4x4 conv to a single logit (the sigmoid lives in the loss).

    spectral_norm: every conv's weight divided by its largest singular value, and no BatchNorm
    (Miyato et al. 2018): D becomes 1-Lipschitz per layer, so it cannot win outright by sharpening its
    decision, the failure the anime-faces experiment's original settings show (D's loss on fakes near 0,
    G's loss climbing).

    norm: "batch" (the DCGAN's), "none", or "layer" (each image's features normalised over channels and
    positions, GroupNorm with one group): a critic trained with a gradient penalty needs each image's
    output to depend on that image alone, which BatchNorm breaks (Gulrajani et al. 2017, sec. 4).
    None means batch, or none under spectral_norm.
    """

    def __init__(self, image_size: int, channels: int, width: int, num_classes: int, spectral_norm: bool = False,
                 norm: str | None = None):
        super().__init__()
        norm = norm or ("none" if spectral_norm else "batch")
        if norm not in D_NORMS:
            raise ValueError(f"d_norm must be one of {', '.join(D_NORMS)} (got {norm!r})")
        n_down = int(math.log2(image_size // 4))
        self.labels = LabelMap(num_classes, image_size) if num_classes else None
        self.num_classes = num_classes
        c_in, c = channels + (1 if num_classes else 0), width
        layers: list[nn.Module] = [nn.Conv2d(c_in, c, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(n_down - 1):
            layers += [nn.Conv2d(c, c * 2, 4, 2, 1, bias=norm == "none"), *D_NORMS[norm](c * 2),
                       nn.LeakyReLU(0.2, True)]
            c *= 2
        layers += [nn.Conv2d(c, 1, 4, 1, 0, bias=False), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.spectral_norm = spectral_norm

    def apply_spectral_norm(self) -> None:
        """After initialisation: the parametrisation keeps the initialised weight as its `original`."""
        for m in self.net:
            if isinstance(m, nn.Conv2d):
                nn.utils.parametrizations.spectral_norm(m)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(self.num_classes, labels)
        if self.labels is not None:
            x = self.labels(x, labels)
        return self.net(x).view(-1)


def dcgan(*, image_size: int, channels: int, num_classes: int = 0, latent_dim: int = 100, g_width: int = 64,
          d_width: int = 64, conditional: bool = False, label_dim: int = 50, d_spectral_norm: bool = False,
          d_norm: str | None = None, ema_decay: float = 0.0) -> GAN:
    valid = [8 * 2**k for k in range(1, 6)]
    if image_size not in valid:
        raise ValueError(f"dcgan doubles from 8x8, so image_size must be one of {valid} (got {image_size})")
    if conditional and not num_classes:
        raise ValueError("conditional dcgan needs a labelled data set (one sub-folder per class, or labels)")
    k = num_classes if conditional else 0
    g = DCGANGenerator(latent_dim, image_size, channels, g_width, k, label_dim)
    d = DCGANDiscriminator(image_size, channels, d_width, k, d_spectral_norm, d_norm)
    model = GAN(g, d, latent_dim, k, (channels, image_size, image_size), ema_decay)
    model.apply(dcgan_init)
    model.reset_average()  # after init, which reached the copy too
    if d_spectral_norm:
        d.apply_spectral_norm()
    return model


class CGANGenerator(nn.Module):
    """The MNIST experiment's generator: [z, label embedding] -> dense to (width x S/4 x S/4) -> 3 transposed convs
    (BatchNorm + LeakyReLU between) -> Tanh."""

    def __init__(self, latent_dim: int, image_size: int, channels: int, width: int, num_classes: int,
                 label_dim: int):
        super().__init__()
        self.s0 = image_size // 4
        self.width = width
        self.num_classes = num_classes
        self.embed = nn.Embedding(num_classes, label_dim)
        self.fc = nn.Sequential(nn.Linear(latent_dim + label_dim, width * self.s0 ** 2, bias=False),
                                nn.BatchNorm1d(width * self.s0 ** 2), nn.LeakyReLU(0.2, True))
        self.net = nn.Sequential(
            nn.ConvTranspose2d(width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True),
            nn.ConvTranspose2d(width, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2),
            nn.LeakyReLU(0.2, True),
            nn.ConvTranspose2d(width // 2, channels, 3, 1, 1), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        _check_labels(self.num_classes, labels)
        h = self.fc(torch.cat([z, self.embed(labels)], 1))
        return self.net(h.view(-1, self.width, self.s0, self.s0))


class CGANDiscriminator(nn.Module):
    """The MNIST experiment's discriminator: [image, label map] -> 3 convs (BatchNorm + LeakyReLU) -> dense ->
    one logit.

    conditioning "projection" (Miyato & Koyama 2018) drops the label map and adds the inner product of
    a learned class embedding with the image features to the logit: D must then judge whether the
    image fits its class, not only whether it is real, which is what class accuracy measures.

    aux_classifier adds a second head that predicts the class from the same features (AC-GAN, Odena
    et al. 2017); the adversarial objective trains it on real images and G to make it recognise G's
    images as their labels.
    """

    def __init__(self, image_size: int, channels: int, width: int, num_classes: int,
                 conditioning: str = "label_map", aux_classifier: bool = False):
        super().__init__()
        if conditioning not in ("label_map", "projection"):
            raise ValueError(f"d_conditioning must be 'label_map' or 'projection' (got {conditioning!r})")
        self.num_classes = num_classes
        self.labels = LabelMap(num_classes, image_size) if conditioning == "label_map" else None
        s = image_size // 4
        self.net = nn.Sequential(  # features, then the last layer: the unconditional logit
            nn.Conv2d(channels + (self.labels is not None), width // 2, 4, 2, 1), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width // 2, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True),
            nn.Conv2d(width, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.LeakyReLU(0.2, True),
            nn.Flatten(), nn.Linear(width * s * s, 1),
        )
        self.class_embed = nn.Embedding(num_classes, width * s * s) if self.labels is None else None
        if self.class_embed is not None:  # Embedding's default N(0, 1) over thousands of features would
            nn.init.normal_(self.class_embed.weight, 0.0, 0.02)  # swamp the logit at the start
        self.aux = nn.Linear(width * s * s, num_classes) if aux_classifier else None

    def forward_with_classes(self, x: torch.Tensor, labels: torch.Tensor | None = None
                             ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The real/fake logit and, with aux_classifier, the class logits of the same features."""
        _check_labels(self.num_classes, labels)
        h = self.net[:-1](x if self.labels is None else self.labels(x, labels))
        logit = self.net[-1](h)
        if self.class_embed is not None:
            logit = logit + (self.class_embed(labels) * h).sum(1, keepdim=True)
        return logit.view(-1), None if self.aux is None else self.aux(h)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_with_classes(x, labels)[0]


def cgan(*, image_size: int, channels: int, num_classes: int = 0, latent_dim: int = 100, g_width: int = 64,
         d_width: int = 64, label_dim: int = 50, d_conditioning: str = "label_map", aux_classifier: bool = False,
         ema_decay: float = 0.0) -> GAN:
    if not num_classes:
        raise ValueError("cgan needs a labelled data set (mnist, fashion_mnist, npz with labels, or one "
                         "sub-folder per class)")
    if image_size % 4:
        raise ValueError(f"cgan upsamples twice from image_size/4, so image_size must be a multiple of 4 "
                         f"(got {image_size})")
    g = CGANGenerator(latent_dim, image_size, channels, g_width, num_classes, label_dim)
    d = CGANDiscriminator(image_size, channels, d_width, num_classes, d_conditioning, aux_classifier)
    model = GAN(g, d, latent_dim, num_classes, (channels, image_size, image_size), ema_decay)
    model.apply(dcgan_init)
    model.reset_average()  # after init, which reached the copy too
    return model


_GAN_LATENT = LatentSpec(posterior="none")  # z from N(0, I); no encoder
_GAN_SIZES = ("latent_dim", "g_width", "d_width", "label_dim")

ENTRIES = (
    ModelEntry(
        name="dcgan", build=dcgan, family="gan", trains_with=("adversarial",),
        summary="DCGAN (Radford et al. 2016) at 16 to 256 px; conditional: true adds labels to G and D",
        latent=_GAN_LATENT, tiny={"g_width": 8, "d_width": 8, "latent_dim": 8}, tiny_image_sizes=(16, 32, 64),
        output_activation="tanh", conditional=when("conditional"), sizes=_GAN_SIZES,
        spectral_d=when("d_spectral_norm"),
    ),
    ModelEntry(
        name="cgan", build=cgan, family="gan", trains_with=("adversarial",),
        summary="conditional GAN of the MNIST experiment: label embedding into G, label map (or projection) into D",
        latent=_GAN_LATENT, tiny={"g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4},
        tiny_image_sizes=(16, 28, 32), output_activation="tanh", conditional=always, sizes=_GAN_SIZES,
    ),
)
