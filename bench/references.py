"""The code users would otherwise copy, re-written in plain PyTorch from each reference's published
architecture and defaults, so bench/side_by_side.py can time it beside genlab's real training step.

Each reference is a network, its optimiser and its training step exactly as its source orders them, fed
from a float tensor already in memory in the range its source trains on (a torchvision DataLoader's
output, without the loader: the loader's cost is what the "own process" mode of side_by_side.py adds).
The sources:

- PyTorch-VAE (AntixK), models/beta_vae.py with configs/bhvae.yaml: BetaVAE, loss_type "H", five stride-2
  3x3 convs 32-64-128-256-512 with BatchNorm and LeakyReLU, the same mirrored, latent 128, beta 10,
  Adam(lr 5e-3), batch 64, 64x64 images; the loss is MSE (mean) + beta * kld_weight * KLD (per-image sum,
  batch mean) with kld_weight 0.00025.
- pytorch/examples, dcgan/main.py: the DCGAN of Radford et al. with ngf = ndf = 64, nz = 100, N(0, 0.02)
  init, BCELoss on a sigmoid D, Adam(2e-4, betas (0.5, 0.999)); D on real, D on the detached fake, D
  steps, then G through D on the same fake batch.
- eriklindernoren/PyTorch-GAN, implementations/cgan/cgan.py: an MLP cGAN on 28x28 (G 128-256-512-1024
  with BatchNorm1d(eps 0.8), D 512-512-512 with dropout 0.4, label embeddings of size n_classes), MSE
  (least-squares) adversarial loss, Adam(2e-4, (0.5, 0.999)), G steps first.
- the common PyTorch tutorial conv autoencoder (patrickloeber/pytorch-examples Autoencoder.ipynb, and its
  denoising Fashion-MNIST copies): Conv 1-16-32 (3x3, stride 2) and a 7x7 conv to 64, mirrored with
  transposed convs and a sigmoid, Gaussian noise of std 0.5 added to [0, 1] images (not clamped), MSE
  against the clean image, Adam(1e-3, weight decay 1e-5).
- "at genlab's widths": genlab's own cgan / ae networks (plain nn.Modules) trained by the plain step
  a tutorial writes, so the comparison isolates what genlab's engine adds or saves around the same network.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Reference:
    name: str
    source: str
    batch: int
    make: Callable[[int], Callable[[], None]]  # seed -> one training step on the next batch


class Batches:
    """Cycles through a fixed float tensor in batches, the way an epoch over a preloaded set does."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None, batch: int):
        self.images, self.labels, self.batch, self.i = images, labels, batch, 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.i + self.batch > len(self.images):
            self.i = 0
        s = slice(self.i, self.i + self.batch)
        self.i += self.batch
        return self.images[s], None if self.labels is None else self.labels[s]


def _data(seed: int, n: int, shape: tuple[int, ...], low: float, classes: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    images = torch.rand((n, *shape), generator=g) * (1 - low) + low
    labels = torch.randint(0, classes, (n,), generator=g) if classes else None
    return images, labels


# ---------------------------------------------------------------- PyTorch-VAE BetaVAE, loss "H"

class PyTorchVAEBetaVAE(nn.Module):
    def __init__(self, in_channels: int = 3, latent_dim: int = 128, hidden_dims=(32, 64, 128, 256, 512)):
        super().__init__()
        enc, c = [], in_channels
        for h in hidden_dims:
            enc.append(nn.Sequential(nn.Conv2d(c, h, 3, stride=2, padding=1), nn.BatchNorm2d(h), nn.LeakyReLU()))
            c = h
        self.encoder = nn.Sequential(*enc)
        self.fc_mu = nn.Linear(hidden_dims[-1] * 4, latent_dim)
        self.fc_var = nn.Linear(hidden_dims[-1] * 4, latent_dim)
        self.decoder_input = nn.Linear(latent_dim, hidden_dims[-1] * 4)
        rev = list(reversed(hidden_dims))
        self.decoder = nn.Sequential(*[
            nn.Sequential(nn.ConvTranspose2d(rev[i], rev[i + 1], 3, stride=2, padding=1, output_padding=1),
                          nn.BatchNorm2d(rev[i + 1]), nn.LeakyReLU())
            for i in range(len(rev) - 1)])
        self.final_layer = nn.Sequential(
            nn.ConvTranspose2d(rev[-1], rev[-1], 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(rev[-1]), nn.LeakyReLU(), nn.Conv2d(rev[-1], in_channels, 3, padding=1), nn.Tanh())
        self.top = hidden_dims[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = torch.flatten(self.encoder(x), start_dim=1)
        mu, log_var = self.fc_mu(h), self.fc_var(h)
        z = torch.randn_like(mu) * torch.exp(0.5 * log_var) + mu
        out = self.decoder(self.decoder_input(z).view(-1, self.top, 2, 2))
        return self.final_layer(out), mu, log_var


def betavae_step(seed: int, beta: float = 10.0, kld_weight: float = 0.00025, lr: float = 0.005,
                 batch: int = 64) -> Callable[[], None]:
    torch.manual_seed(seed)
    model = PyTorchVAEBetaVAE()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = Batches(*_data(seed, 8 * batch, (3, 64, 64), -1.0), batch)
    model.train()

    def step() -> None:
        x, _ = data.next()
        recons, mu, log_var = model(x)
        recons_loss = F.mse_loss(recons, x)
        kld = torch.mean(-0.5 * torch.sum(1 + log_var - mu ** 2 - log_var.exp(), dim=1), dim=0)
        loss = recons_loss + beta * kld_weight * kld
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()  # the reference logs its loss every step

    return step


# ---------------------------------------------------------------- pytorch/examples DCGAN

def _dcgan_init(m: nn.Module) -> None:
    name = m.__class__.__name__
    if name.find("Conv") != -1:
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif name.find("BatchNorm") != -1:
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def examples_dcgan(nz: int = 100, ngf: int = 64, ndf: int = 64, nc: int = 3) -> tuple[nn.Module, nn.Module]:
    g = nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    g.apply(_dcgan_init)
    d.apply(_dcgan_init)
    return g, d


def dcgan_step(seed: int, batch: int = 128, nz: int = 100) -> Callable[[], None]:
    torch.manual_seed(seed)
    net_g, net_d = examples_dcgan(nz)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = Batches(*_data(seed, 8 * batch, (3, 64, 64), -1.0), batch)

    def step() -> None:
        real, _ = data.next()
        b = real.size(0)
        net_d.zero_grad()
        label = torch.full((b,), 1.0)  # the script reads the batch with a DataLoader; see side_by_side --own
        err_d_real = criterion(net_d(real).view(-1), label)
        err_d_real.backward()
        fake = net_g(torch.randn(b, nz, 1, 1))
        label.fill_(0.0)
        err_d_fake = criterion(net_d(fake.detach()).view(-1), label)
        err_d_fake.backward()
        opt_d.step()
        net_g.zero_grad()
        label.fill_(1.0)
        err_g = criterion(net_d(fake).view(-1), label)
        err_g.backward()
        opt_g.step()
        (err_d_real + err_d_fake).item(), err_g.item()  # printed every step by the reference

    return step


# ---------------------------------------------------------------- PyTorch-GAN cgan (MLP, least squares)

class TutorialCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int = 100, n_classes: int = 10, img_shape=(1, 28, 28)):
        super().__init__()
        self.img_shape = img_shape
        self.label_emb = nn.Embedding(n_classes, n_classes)

        def block(i: int, o: int, normalize: bool = True) -> list[nn.Module]:
            layers: list[nn.Module] = [nn.Linear(i, o)]
            if normalize:
                layers.append(nn.BatchNorm1d(o, 0.8))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            return layers

        self.model = nn.Sequential(*block(latent_dim + n_classes, 128, normalize=False), *block(128, 256),
                                   *block(256, 512), *block(512, 1024),
                                   nn.Linear(1024, int(torch.tensor(img_shape).prod())), nn.Tanh())

    def forward(self, noise: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        img = self.model(torch.cat((self.label_emb(labels), noise), -1))
        return img.view(img.size(0), *self.img_shape)


class TutorialCGANDiscriminator(nn.Module):
    def __init__(self, n_classes: int = 10, img_shape=(1, 28, 28)):
        super().__init__()
        self.label_embedding = nn.Embedding(n_classes, n_classes)
        n = int(torch.tensor(img_shape).prod())
        self.model = nn.Sequential(
            nn.Linear(n_classes + n, 512), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 512), nn.Dropout(0.4), nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(512, 1))

    def forward(self, img: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.model(torch.cat((img.view(img.size(0), -1), self.label_embedding(labels)), -1))


def tutorial_cgan_step(seed: int, batch: int = 200, latent: int = 100) -> Callable[[], None]:
    torch.manual_seed(seed)
    gen, disc = TutorialCGANGenerator(latent), TutorialCGANDiscriminator()
    loss = nn.MSELoss()
    opt_g = torch.optim.Adam(gen.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = Batches(*_data(seed, 8 * batch, (1, 28, 28), -1.0, classes=10), batch)

    def step() -> None:
        imgs, labels = data.next()
        b = imgs.shape[0]
        valid, fake = torch.ones(b, 1), torch.zeros(b, 1)
        opt_g.zero_grad()
        z, gen_labels = torch.randn(b, latent), torch.randint(0, 10, (b,))
        gen_imgs = gen(z, gen_labels)
        g_loss = loss(disc(gen_imgs, gen_labels), valid)
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        d_loss = (loss(disc(imgs, labels), valid) + loss(disc(gen_imgs.detach(), gen_labels), fake)) / 2
        d_loss.backward()
        opt_d.step()
        d_loss.item(), g_loss.item()

    return step


# ---------------------------------------------------------------- a cGAN step on genlab's cgan network

def plain_cgan_step(seed: int, batch: int = 200, latent: int = 100) -> Callable[[], None]:
    """pytorch/examples' DCGAN step order and BCE on genlab's cgan networks (the seed experiment's)."""
    from genlab.models.gan import cgan

    torch.manual_seed(seed)
    gan = cgan(image_size=28, channels=1, num_classes=10, latent_dim=latent)
    net_g, net_d = gan.generator, gan.discriminator
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = Batches(*_data(seed, 8 * batch, (1, 28, 28), -1.0, classes=10), batch)

    def step() -> None:
        real, labels = data.next()
        b = real.shape[0]
        ones, zeros = torch.ones(b, 1), torch.zeros(b, 1)
        opt_d.zero_grad()
        fake = net_g(torch.randn(b, latent), labels)
        d_loss = (F.binary_cross_entropy_with_logits(net_d(real, labels).view(b, 1), ones)
                  + F.binary_cross_entropy_with_logits(net_d(fake.detach(), labels).view(b, 1), zeros))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = F.binary_cross_entropy_with_logits(net_d(fake, labels).view(b, 1), ones)
        g_loss.backward()
        opt_g.step()
        d_loss.item(), g_loss.item()

    return step


# ---------------------------------------------------------------- tutorial conv denoising AE (16-32-64)

class TutorialDAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 7))
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 7), nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _dae_step(model: nn.Module, opt: torch.optim.Optimizer, data: Batches, noise: float) -> Callable[[], None]:
    def step() -> None:
        img, _ = data.next()
        noisy = img + noise * torch.randn_like(img)
        loss = F.mse_loss(model(noisy), img)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss.item()

    return step


def tutorial_dae_step(seed: int, batch: int = 128) -> Callable[[], None]:
    torch.manual_seed(seed)
    model = TutorialDAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-5)
    return _dae_step(model, opt, Batches(*_data(seed, 8 * batch, (1, 28, 28), 0.0), batch), 0.5)


def plain_dae_step(seed: int, batch: int = 128) -> Callable[[], None]:
    """The tutorial's step on genlab's ae network at the seed experiment's widths (32-64-128, latent 128)."""
    from genlab.models.autoencoder import AutoEncoder

    torch.manual_seed(seed)
    model = AutoEncoder(image_size=28, channels=1, hidden_dims=(32, 64, 128), latent_dim=128)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    class Reconstruct(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, x):
            return self.m.reconstruct(x)

    return _dae_step(Reconstruct(), opt, Batches(*_data(seed, 8 * batch, (1, 28, 28), -1.0), batch), 0.3)


REFERENCES: dict[str, tuple[Reference, ...]] = {
    "beta_vae64": (Reference("PyTorch-VAE BetaVAE", "AntixK/PyTorch-VAE models/beta_vae.py, loss H", 64,
                             betavae_step),),
    "dcgan64": (Reference("examples DCGAN", "pytorch/examples dcgan/main.py", 128, dcgan_step),),
    "cgan28": (Reference("tutorial cGAN (MLP)", "eriklindernoren/PyTorch-GAN cgan.py", 200, tutorial_cgan_step),
               Reference("plain cGAN, genlab widths", "genlab's cgan network, a plain step", 200, plain_cgan_step)),
    "dae28": (Reference("tutorial DAE 16-32-64", "PyTorch tutorial conv autoencoder", 128, tutorial_dae_step),
              Reference("plain DAE, genlab widths", "genlab's ae network, a plain step", 128, plain_dae_step)),
}
