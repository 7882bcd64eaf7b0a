"""The importance-sampled log-likelihood of a VAE: the number every VAE table on MNIST prints.

log p(x) ≥ log (1/k) Σ_k p(x, z_k) / q(z_k | x), z_k ~ q(z | x) (Burda et al. 2016, Eq. 8): a lower bound
that tightens to log p(x) as k grows, where the ELBO (k = 1) stays an upper bound on the NLL. It is computed
with the decoder likelihood and the N(0, I) prior the run was trained with, k samples per image drawn in
chunks of a fixed number of decodes, so memory stays flat at any k.

Continuous data are dequantised (Theis et al. 2016): 8-bit pixels v become y = (v + u) / 256, u ~ U(0, 1)
once per pixel, mapped to the model's normalised units, and log P(v) ≥ log p(y) - D·log 256, the change of
variables being the normalisation's Jacobian. Binarised data are scored as the binary images they are.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from genlab.data import Normalizer
from genlab.metrics.metric import Metric, Score
from genlab.objectives.likelihood import DecoderLikelihood, decoder_likelihood, log_weights

if TYPE_CHECKING:
    from genlab.metrics.context import Context

LEVELS = 256  # 8-bit pixels


@torch.no_grad()
def importance_sampled(model: nn.Module, x: torch.Tensor, likelihood: DecoderLikelihood, k: int,
                       decodes_per_chunk: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,) the k-sample bound on log p(x) and the mean log weight (a one-sample ELBO estimate), both in
    float64, for a batch of normalised images. The log weights are combined chunk by chunk with a running
    log-sum-exp, so only decodes_per_chunk decodes are held at once."""
    post = model.encode(x)
    per_chunk = max(1, decodes_per_chunk // len(x))
    running = torch.full((len(x),), -math.inf, dtype=torch.float64, device=x.device)
    weight_sum = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    for start in range(0, k, per_chunk):
        m = min(per_chunk, k - start)
        lw = log_weights(model, x, post, m, likelihood, generator).total().double()
        running = torch.logaddexp(running, torch.logsumexp(lw, 0))
        weight_sum += lw.sum(0)
    return running - math.log(k), weight_sum / k


def dequantised(images_uint8: torch.Tensor, normalizer: Normalizer, generator: torch.Generator
                ) -> tuple[torch.Tensor, float]:
    """Normalised y = norm((v + u) / 256) for NCHW uint8 v, and the log-Jacobian per image, log |dy/dv| summed
    over pixels with v in [0, 256): -D·log 256 - Σ log std (the normalisation divides by std)."""
    u = torch.rand(images_uint8.shape, generator=generator, device=images_uint8.device)
    unit = (images_uint8.float() + u) / LEVELS
    mean, std = normalizer.mean.to(unit.device), normalizer.std.to(unit.device)
    _, c, h, w = images_uint8.shape
    log_std = float(torch.log(std).expand(1, c, 1, 1).sum()) * h * w
    log_jacobian = -c * h * w * math.log(LEVELS) - log_std
    return (unit - mean) / std, log_jacobian


def log_likelihood(model: nn.Module, images: np.ndarray, normalizer: Normalizer, likelihood: DecoderLikelihood,
                   *, k: int, binary: bool, seed: int, batch_size: int = 100, decodes_per_chunk: int = 8192,
                   device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Per image (N,): the importance-sampled log P(v) of the uint8 NHWC images and the ELBO estimate, nats.
    Binary images (0/255) are scored as they are; others are dequantised."""
    model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    bound, elbo = [], []
    for start in range(0, len(images), batch_size):
        v = torch.from_numpy(images[start:start + batch_size]).permute(0, 3, 1, 2).to(device)
        if binary:
            x, log_jacobian = normalizer(v), 0.0
        else:
            x, log_jacobian = dequantised(v, normalizer, gen)
        b, e = importance_sampled(model, x, likelihood, k, decodes_per_chunk, gen)
        # log P(v) = log p(y) + log |dy/dv| (a density of y in normalised units turned into one of v's bins)
        bound.append((b + log_jacobian).cpu().numpy())
        elbo.append((e + log_jacobian).cpu().numpy())
    return np.concatenate(bound), np.concatenate(elbo)


def _applies(ctx: Context) -> str | None:
    if not ctx.caps.variational or ctx.caps.latent.layout != "vector":
        return "the model has no Gaussian posterior over a code vector to importance-sample"
    like = decoder_likelihood(ctx.cfg.objective)
    if isinstance(like, str):
        return like
    if like.kind == "bernoulli" and ctx.cfg.data.binarize is None:
        return ("a Bernoulli decoder is a likelihood of binary pixels, and these images are gray: train on "
                "data.binarize: dynamic (or static) to score it")
    return None


def _compute(ctx: Context) -> dict[str, Score]:
    like = decoder_likelihood(ctx.cfg.objective)
    assert isinstance(like, DecoderLikelihood)
    images = ctx.data.val.images
    if ctx.s.nll_images is not None and ctx.s.nll_images < len(images):
        index = np.sort(np.random.default_rng(ctx.s.seed).choice(len(images), ctx.s.nll_images, replace=False))
        images, which = images[index], f"{len(index)} drawn with seed {ctx.s.seed}"
    else:
        which = "all of them"
    binary = ctx.cfg.data.binarize is not None
    k = ctx.s.nll_samples
    bound, elbo = log_likelihood(ctx.model, images, ctx.data.normalizer, like, k=k, binary=binary,
                                 seed=ctx.s.seed, batch_size=min(ctx.s.batch_size, 100),
                                 decodes_per_chunk=ctx.s.nll_chunk, device=ctx.device)
    dims = int(np.prod(images.shape[1:]))
    nll = -bound
    values: dict[str, Any] = {
        "nll_nats": float(nll.mean()), "nll_sem": float(nll.std(ddof=1) / math.sqrt(len(nll))) if len(nll) > 1
        else 0.0,
        "neg_elbo_nats": float(-elbo.mean()), "bits_per_dim": float(nll.mean() / (dims * math.log(2))),
    }
    d = ctx.cfg.data
    protocol = {
        "importance_samples": k, "n_images": len(nll), "likelihood": like.describe(),
        "estimator": "log (1/k) Σ p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x) (Burda et al. 2016, Eq. 8); prior "
                     "N(0, I), the one the run was trained with; nll_sem is the standard error over images",
        "reference_split": f"validation split of {d.name} ({len(ctx.data.val)} images); {which}",
        "pixels": "binary, scored as they are" if binary else
                  f"8-bit, dequantised: y = (v + u) / {LEVELS}, u ~ U(0, 1) once per pixel; log P(v) >= log p(y) "
                  f"- D log {LEVELS}, with the normalisation's Jacobian (D = {dims})",
        "decodes_per_chunk": ctx.s.nll_chunk,
    }
    return {"nll": Score(values, protocol)}


METRIC = Metric(
    name="nll", summary="NLL by importance sampling (Burda et al. 2016) in nats and bits per dim, validation split",
    compute=_compute, applies=_applies,
    higher_is_better={"nll_nats": False, "neg_elbo_nats": False, "bits_per_dim": False},
    units={"nll_nats": "nats per image", "nll_sem": "nats per image", "neg_elbo_nats": "nats per image",
           "bits_per_dim": "bits per dimension"},
    tolerance=1e-4, by_default=False,
)
