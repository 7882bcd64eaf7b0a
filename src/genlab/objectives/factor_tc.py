"""FactorVAE's total-correlation penalty (Kim & Mnih 2018): a discriminator tells codes q(z) from codes whose
dimensions were shuffled across the batch (samples of prod_j q(z_j)), and the density-ratio trick turns its
logits into an estimate of TC = KL(q(z) || prod_j q(z_j)) that the VAE pays γ times.

The discriminator is training machinery, not part of the model: it lives here, with its own Adam (the paper's
lr 1e-4, betas (0.5, 0.9)), its weights travel in the checkpoint's objective state, and it is never exported.
Its step follows the VAE's on the same batch's codes, detached (Algorithm 2; one batch for both sides, as in
disentanglement_lib's implementation, whose counts the MIG scores follow).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.objectives.optim import Stepper


class TCDiscriminator(nn.Module):
    """[FC hidden, LeakyReLU 0.2] x layers, FC 2: logit 0 = "from q(z)", logit 1 = "dimensions permuted"
    (the paper's appendix: six layers of 1,000 units)."""

    def __init__(self, latent_dim: int, hidden: int = 1000, layers: int = 6):
        super().__init__()
        dims = [latent_dim] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(dims, dims[1:]):
            body += [nn.Linear(a, b), nn.LeakyReLU(0.2, inplace=True)]
        self.net = nn.Sequential(*body, nn.Linear(dims[-1], 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def permute_dims(z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each dimension shuffled across the batch on its own: the joint's dependence between dimensions is gone,
    each marginal q(z_j) kept (Kim & Mnih 2018, Algorithm 1)."""
    b, d = z.shape
    keys = torch.rand(b, d, generator=generator, device=z.device) if generator is not None \
        else torch.rand(b, d, device=z.device)
    return torch.gather(z, 0, keys.argsort(dim=0))


def tc_estimate(logits: torch.Tensor) -> torch.Tensor:
    """E[log D(z) / (1 - D(z))] with D the softmax's first class: the logit difference, batch mean."""
    logits = logits.float()
    return (logits[:, 0] - logits[:, 1]).mean()


def discriminator_loss(logits_joint: torch.Tensor, logits_permuted: torch.Tensor) -> torch.Tensor:
    joint = torch.zeros(len(logits_joint), dtype=torch.long, device=logits_joint.device)
    return 0.5 * (F.cross_entropy(logits_joint.float(), joint) + F.cross_entropy(logits_permuted.float(), 1 - joint))


class FactorTC:
    """The discriminator, its optimiser and its step; `tc(z)` is the VAE's penalty term (gradient into z)."""

    def __init__(self, latent_dim: int, device: torch.device, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.5, 0.9), hidden: int = 1000, layers: int = 6):
        self.discriminator = TCDiscriminator(latent_dim, hidden, layers).to(device)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=lr, betas=betas)

    def tc(self, z: torch.Tensor) -> torch.Tensor:
        return tc_estimate(self.discriminator(z))

    def terms(self, z: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The discriminator's loss and accuracy on the codes `z` (detached) and their permutation."""
        z = z.detach()
        joint, permuted = self.discriminator(z), self.discriminator(permute_dims(z, generator))
        accuracy = 0.5 * ((joint.argmax(1) == 0).float().mean() + (permuted.argmax(1) == 1).float().mean())
        return {"tc_d_loss": discriminator_loss(joint, permuted), "tc_d_accuracy": accuracy}

    def step(self, z: torch.Tensor, stepper: Stepper) -> dict[str, torch.Tensor]:
        terms = self.terms(z)
        stepper.step(terms["tc_d_loss"], self.optimizer, terms)
        return {k: v.detach() for k, v in terms.items()}
