"""A denoising diffusion model on diffusers' parts: `UNet2DModel` predicts the noise, `DDPMScheduler` defines the
forward process it was trained on, `DDIMScheduler` samples in a chosen number of steps.

Why diffusers and not a hand-written U-Net: its UNet2DModel and schedulers are what users of this field run and
load, so an exported genlab model (`genlab export`) is a folder diffusers itself reads. diffusers is an
optional extra (`pip install "genlab[diffusion]"`); it is imported only when a diffusion model is built.

The noise x_T is the model's latent: `decode(z, labels)` runs DDIM with eta = 0 (Song et al. 2021), a
deterministic map from the flattened noise z (C·H·W numbers) to an image, so fixed noise gives the same
sample grid every epoch, as a GAN's fixed z does. Class-conditional models (Ho & Salimans 2022) embed
num_classes + 1 labels, the last one meaning "no label"; sampling mixes the two predictions as
eps_uncond + guidance_scale · (eps_cond − eps_uncond), so guidance_scale 1 is the plain conditional model
and 0 the unconditional one. ema_decay > 0 keeps a weight average of the U-Net (Ho et al. 2020 use 0.9999),
which sampling uses.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.models.averaging import keep_average, update_average, with_average
from genlab.models.registry import LatentSpec, ModelEntry, when

INSTALL = 'pip install "genlab[diffusion]"'
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")


def require_diffusers() -> Any:
    """diffusers, or an error that says how to get it (before anything is built or written)."""
    try:
        import diffusers
    except ImportError as exc:
        raise GenlabError(f"diffusion models are built from diffusers' UNet2DModel and schedulers, and diffusers "
                          f"is not installed here ({exc}); install the extra with {INSTALL}") from None
    return diffusers


class DiffusionModel(nn.Module):
    def __init__(self, unet: nn.Module, scheduler: dict[str, Any], image_shape: tuple[int, int, int],
                 num_classes: int, sample_steps: int, guidance_scale: float, ema_decay: float):
        super().__init__()
        self.unet = unet
        self.scheduler_config = dict(scheduler)
        self.image_shape = image_shape
        self.latent_dim = int(image_shape[0] * image_shape[1] * image_shape[2])
        self.num_classes = num_classes
        self.sample_steps = sample_steps
        self.guidance_scale = guidance_scale
        self.unet_ema: nn.Module | None
        keep_average(self, unet, "unet_ema", ema_decay)

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def null_label(self) -> int:
        """The label index meaning "unconditional" (classifier-free guidance's dropped label)."""
        return self.num_classes

    @property
    def sampling_unet(self) -> nn.Module:
        return self.unet if self.unet_ema is None else self.unet_ema

    @property
    def sampler_description(self) -> str:
        """How samples are drawn, for every score's protocol: a score at 20 steps is not one at 50."""
        guided = f", classifier-free guidance {self.guidance_scale:g}" if self.conditional else ""
        clipped = "" if self.scheduler_config.get("clip_sample", True) else ", predicted x_0 not clipped"
        return f"DDIM, {self.sample_steps} steps, eta 0{guided}{clipped}"

    def training_scheduler(self) -> Any:
        return require_diffusers().DDPMScheduler(**self.scheduler_config)

    def sampling_scheduler(self, steps: int) -> Any:
        diffusers = require_diffusers()
        # "trailing" spacing starts every step count at the last training step, pure noise (Lin et al. 2024,
        # table 2); diffusers' default "leading" starts 2 steps at t = T/2 and 1 step at t = 0.
        scheduler = diffusers.DDIMScheduler.from_config(self.training_scheduler().config, timestep_spacing="trailing")
        scheduler.set_timesteps(steps)
        return scheduler

    def predict_noise(self, x_t: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None,
                      unet: nn.Module | None = None) -> torch.Tensor:
        """ε̂(x_t, t[, y]); labels may hold null_label for the unconditional prediction."""
        unet = unet or self.unet
        if self.conditional and labels is None:
            raise ValueError("this diffusion model is conditional: pass class labels (null_label for none)")
        return unet(x_t, t, class_labels=labels if self.conditional else None).sample

    @torch.no_grad()
    def update_average(self) -> None:
        if self.unet_ema is not None:
            update_average(self.unet_ema, self.unet, self.ema_updates, self.ema_decay)

    @torch.no_grad()
    def reset_average(self) -> None:
        if self.unet_ema is not None:
            self.unet_ema.load_state_dict(self.unet.state_dict())
            self.ema_updates.zero_()

    def _guided(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None, guidance: float
                ) -> torch.Tensor:
        unet = self.sampling_unet
        if not self.conditional or guidance == 1.0:
            return self.predict_noise(x, t, labels, unet)
        null = torch.full_like(labels, self.null_label)
        both = self.predict_noise(torch.cat([x, x]), t, torch.cat([labels, null]), unet).float()
        cond, uncond = both.chunk(2)
        return uncond + guidance * (cond - uncond)

    @torch.no_grad()
    def denoise(self, noise: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None,
                guidance: float | None = None, keep: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """DDIM (eta 0) from x_T = noise; returns the images clamped to [-1, 1] and, when keep > 0, about `keep`
        intermediate predictions of x_0 along the way (for the trajectory figure)."""
        if self.conditional and labels is None:
            raise ValueError("this diffusion model is conditional: pass class labels")
        scheduler = self.sampling_scheduler(steps or self.sample_steps)
        guidance = self.guidance_scale if guidance is None else guidance
        x = noise
        kept: list[torch.Tensor] = []
        timesteps = scheduler.timesteps
        marks = set(torch.linspace(0, len(timesteps) - 1, keep).round().long().tolist()) if keep else set()
        for i, t in enumerate(timesteps):
            eps = self._guided(x, t.to(x.device), labels, guidance)
            out = scheduler.step(eps, t, x, eta=0.0)
            x = out.prev_sample
            if i in marks:
                kept.append(out.pred_original_sample.clamp(-1, 1))
        return x.clamp(-1, 1), kept

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.denoise(z.view(z.shape[0], *self.image_shape), labels)[0]

    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
               ) -> torch.Tensor:
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator, device=device)
        if self.conditional and labels is None:
            labels = torch.randint(0, self.num_classes, (n,), generator=generator, device=device)
        return self.decode(z, labels)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # As GAN's: a checkpoint from before ema_decay was set starts the average from its network.
        if self.unet_ema is not None:
            state_dict = with_average(state_dict, "unet", "unet_ema")
        return super().load_state_dict(state_dict, strict, assign)


def ddpm(*, image_size: int, channels: int, num_classes: int = 0, widths: tuple[int, ...] = (64, 128, 128),
         layers_per_block: int = 2, attention: tuple[bool, ...] | None = None, norm_groups: int = 32,
         conditional: bool = False, timesteps: int = 1000, beta_schedule: str = "linear",
         sample_steps: int = 50, guidance_scale: float = 2.0, ema_decay: float = 0.0,
         clip_sample: bool = True) -> DiffusionModel:
    diffusers = require_diffusers()
    if beta_schedule not in BETA_SCHEDULES:
        raise ValueError(f"beta_schedule must be one of {', '.join(BETA_SCHEDULES)} (the schedules both the DDPM "
                         f"trainer and the DDIM sampler implement); got {beta_schedule!r}")
    if not widths:
        raise ValueError("widths needs at least one level, e.g. [64, 128, 128]")
    widths = tuple(int(w) for w in widths)
    attention = tuple(attention) if attention is not None else tuple(i == len(widths) - 2 for i in range(len(widths)))
    if len(attention) != len(widths):
        raise ValueError(f"attention needs one true/false per level of widths ({len(widths)}); got {len(attention)}")
    if any(w % norm_groups for w in widths):
        raise ValueError(f"every width must be a multiple of norm_groups {norm_groups} (GroupNorm); got {widths}")
    if image_size % 2 ** (len(widths) - 1):
        raise ValueError(f"the U-Net halves the image {len(widths) - 1} times for {len(widths)} widths, so "
                         f"image_size must be a multiple of {2 ** (len(widths) - 1)} (got {image_size})")
    if conditional and not num_classes:
        raise ValueError("conditional ddpm needs a labelled data set (one sub-folder per class, or labels)")
    if not isinstance(clip_sample, bool):  # bool("no") is True: a quoted value would silently clip
        raise ValueError(f"clip_sample must be true or false; got {clip_sample!r}")
    if sample_steps < 1 or sample_steps > timesteps:
        raise ValueError(f"sample_steps must be between 1 and timesteps ({timesteps}); got {sample_steps}")
    k = num_classes if conditional else 0
    unet = diffusers.UNet2DModel(
        sample_size=image_size, in_channels=channels, out_channels=channels, block_out_channels=widths,
        layers_per_block=layers_per_block, norm_num_groups=norm_groups,
        down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        up_block_types=tuple("AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        num_class_embeds=k + 1 if k else None,
    )
    scheduler = {"num_train_timesteps": timesteps, "beta_schedule": beta_schedule, "prediction_type": "epsilon",
                 "clip_sample": clip_sample}
    return DiffusionModel(unet, scheduler, (channels, image_size, image_size), k, sample_steps, guidance_scale,
                          ema_decay)


ENTRIES = (
    ModelEntry(
        name="ddpm", build=ddpm, family="diffusion", trains_with=("diffusion",),
        summary="denoising diffusion (Ho et al. 2020) on diffusers' UNet2DModel, DDIM sampling, classifier-free "
                "guidance when conditional",
        latent=LatentSpec(layout="noise", posterior="none"),
        tiny={"widths": (8, 16), "layers_per_block": 1, "norm_groups": 4, "attention": (False, True),
              "timesteps": 20, "sample_steps": 3},
        tiny_image_sizes=(16, 28, 32), output_activation="tanh", conditional=when("conditional"),
        sizes=("widths", "layers_per_block", "norm_groups", "timesteps", "sample_steps"),
    ),
)
