"""Loss terms as pure functions, each citing the equation it implements."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse", reduction: str = "sum"
                        ) -> torch.Tensor:
    """Squared error or Bernoulli cross-entropy between a reconstruction and its target.

    reduction "sum": summed over each image's pixels, averaged over the batch: the negative
    log-likelihood (up to constants) of Kingma & Welling 2014, the scale at which β of Higgins et
    al. 2017 is defined. reduction "mean": averaged over every pixel (PyTorch-VAE, the β-VAE experiment): β
    then weighs the KL against a per-pixel error, 1/(C*H*W) times smaller.
    """
    if reduction == "mean":
        return _per_pixel(x_hat, x, kind).mean()
    if reduction == "sum":
        return reconstruction_per_image(x_hat, x, kind).mean()
    raise ValueError(f"unknown reduction {reduction!r}")


def reconstruction_per_image(x_hat: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """(B,) the error summed over each image's pixels: the likelihood of the decoder up to its constant."""
    return _per_pixel(x_hat, x, kind).flatten(1).sum(1)


def _per_pixel(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "mse":
        return F.mse_loss(x_hat.float(), x.float(), reduction="none")
    if kind == "bce":  # CUDA autocast refuses binary_cross_entropy: compute it in fp32 outside autocast
        # The clamp makes the decoder a Bernoulli whose probabilities stay within [1e-6, 1 - 1e-6]: still a
        # normalised likelihood, so the importance-sampled log-likelihood of genlab.metrics.likelihood is the
        # exact bound of the model that was trained.
        with torch.autocast(x.device.type, enabled=False):
            return F.binary_cross_entropy(x_hat.float().clamp(1e-6, 1 - 1e-6), x.float(), reduction="none")
    raise ValueError(f"unknown reconstruction loss {kind!r}")


def gaussian_log_density(z: torch.Tensor, mean: torch.Tensor | None = None, logvar: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """log N(z; mean, diag(exp(logvar))) summed over the last dimension; N(0, I) when mean and logvar are None."""
    z = z.float()
    if mean is None:
        sq, logvar_sum = z.pow(2), 0.0
    else:
        sq = (z - mean.float()).pow(2) / logvar.float().exp()
        logvar_sum = logvar.float().sum(-1)
    return -0.5 * (sq.sum(-1) + logvar_sum + z.shape[-1] * math.log(2 * math.pi))


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) in closed form (Kingma & Welling 2014, appendix B):
    0.5 * sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2), summed over latent dimensions and averaged
    over the batch. Each summand is >= 0, so the term is never negative."""
    return kl_per_dimension(mu, logvar).sum(1).mean()


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B, D) KL contributions; their batch mean per dimension shows which units are in use."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def capacity(step: int, c_max: float, steps: int) -> float:
    """Target KL capacity C rising linearly from 0 to c_max over `steps` (Burgess et al. 2018, sec. 4)."""
    return c_max * min(1.0, step / steps)


def add_gaussian_noise(x: torch.Tensor, std: float, clip: tuple[float, float] | None = None,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """x + std * N(0, I): the corruption of a denoising autoencoder (Vincent et al. 2008)."""
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    noisy = x + std * noise
    return noisy.clamp(*clip) if clip else noisy


def kl_decomposition(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, dataset_size: int
                     ) -> dict[str, torch.Tensor]:
    """The batch's KL split into index-code mutual information, total correlation and dimension-wise KL
    (Chen et al. 2018, Eq. 2), each averaged over the batch; the three sum to the sampled KL estimate.

    q(z_i) = (1/N) Σ_n q(z_i | x_n) over the N training images is estimated from the batch of M as Chen et al.'s
    stratified estimator does: the image's own term with its weight 1/N, the other M - 1 standing for the
    other N - 1 images, each (N - 1) / (N (M - 1)). (Their simpler minibatch-weighted form divides every term
    by N·M, which puts an offset of (D - 1)·log(N·M) into the total correlation's value.) When the batch is
    the whole set the estimate is exact. The marginals q(z_d) are estimated the same way per dimension."""
    z, mean, logvar = z.float(), mean.float(), logvar.float()
    m, n = z.shape[0], max(dataset_size, z.shape[0])
    # log q(z_i,d | x_j) for every pair (i, j) and dimension d: (M, M, D)
    per = -0.5 * ((z[:, None] - mean[None]).pow(2) / logvar[None].exp() + logvar[None] + math.log(2 * math.pi))
    own = torch.eye(m, dtype=torch.bool, device=z.device)
    other = math.log((n - 1) / (n * (m - 1))) if m > 1 else -math.inf
    log_w = torch.where(own, -math.log(n), other)  # (M, M): row i weighs the terms of z_i
    log_q_zx = per.diagonal(dim1=0, dim2=1).sum(0)  # log q(z_i | x_i)
    log_qz = torch.logsumexp(per.sum(2) + log_w, dim=1)
    log_prod_marginals = torch.logsumexp(per + log_w[..., None], dim=1).sum(1)
    log_pz = gaussian_log_density(z)
    return {"mi": (log_q_zx - log_qz).mean(), "tc": (log_qz - log_prod_marginals).mean(),
            "dim_kl": (log_prod_marginals - log_pz).mean()}
