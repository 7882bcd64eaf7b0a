"""What every metric is computed from: one loaded run, the evaluation settings, and the image sets the
metrics share (the reference images and as many samples, drawn once and reused by every extractor)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genlab.data.loader import to_uint8
from genlab.data.registry import describe_split
from genlab.metrics.metric import Score
from genlab.models.latent import decode_prior_samples

if TYPE_CHECKING:
    from genlab.data import DataBundle
    from genlab.models import Capabilities
    from genlab.run import LoadedRun


@dataclass
class EvalSettings:
    samples: int = 2400  # the β-VAE experiment's count of generated and held-out real images
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    seed: int = 0
    batch_size: int = 128
    images: Path | None = None  # a folder of outside images for reconstruction quality
    class_samples: int = 1000  # generated images per class for class accuracy
    disentanglement: dict[str, Any] = field(default_factory=dict)  # sample counts for MIG / FactorVAE / DCI


class Context:
    def __init__(self, loaded: LoadedRun, settings: EvalSettings, device: torch.device):
        self.loaded, self.s, self.device = loaded, settings, device
        self.model = loaded.model.to(device).eval()

    @property
    def data(self) -> DataBundle:
        return self.loaded.data

    @property
    def caps(self) -> Capabilities:
        return self.loaded.caps

    @property
    def cfg(self):
        return self.loaded.cfg

    @cached_property
    def reference_index(self) -> np.ndarray:
        n = min(self.s.samples, len(self.data.val))
        return np.sort(np.random.default_rng(self.s.seed).choice(len(self.data.val), n, replace=False))

    @property
    def real(self) -> np.ndarray:
        return self.data.val.images[self.reference_index]

    @property
    def real_labels(self) -> np.ndarray | None:
        labels = self.data.val.labels
        return None if labels is None else labels[self.reference_index]

    @cached_property
    def fake(self) -> np.ndarray:
        """As many samples as reference images; conditional models get the reference images' labels."""
        labels = torch.from_numpy(self.real_labels) if self.caps.conditional else None
        batches = decode_prior_samples(self.model, len(self.reference_index), self.s.seed, self.s.batch_size, labels)
        return np.concatenate([to_uint8(self.data.normalizer.to_unit(x.float())) for x in batches])

    def reference_split(self) -> str:
        d = self.cfg.data
        how = describe_split(d, len(self.data.val))
        return f"validation split of {d.name} ({len(self.data.val)} images, {how}); {len(self.reference_index)} " \
               f"drawn with seed {self.s.seed}"


def distribution_scores(ctx: Context, extractor: Any, *, with_kid: bool, fd_name: str = "fd") -> Score:
    """Fréchet distance (and KID) and precision/recall of the shared sample set against the reference images,
    in one extractor's features, with the protocol every such score carries."""
    from genlab.metrics.sample_quality import frechet, kid, precision_recall

    real, fake = extractor.features(ctx.real), extractor.features(ctx.fake)
    name = extractor.name
    label = "FID" if name == "inception-v3-fid" else name if name.lower().startswith("fd") else f"FD-{name}"
    values: dict[str, Any] = {fd_name: frechet(real, fake, name=label)}
    if with_kid:
        values["kid_mean"], values["kid_std"] = kid(real, fake, subsets=ctx.s.kid_subsets,
                                                    subset_size=ctx.s.kid_subset_size, seed=ctx.s.seed)
    values["precision"], values["recall"] = precision_recall(real, fake, k=ctx.s.pr_k)
    protocol = {"n_real": len(real), "n_fake": len(fake), "extractor": extractor.identity(),
                "reference_split": ctx.reference_split(), "pr_k": ctx.s.pr_k,
                "generated": "codes drawn from N(0, I) at once on the CPU with the seed below, decoded, quantised "
                             "to uint8 as if saved to PNG"
                             + ("; labels of the reference images" if ctx.caps.conditional else ""),
                **({"kid_subsets": ctx.s.kid_subsets, "kid_subset_size": ctx.s.kid_subset_size} if with_kid else {})}
    return Score(values, protocol)


def needs_samples(ctx: Context) -> str | None:
    """Sample metrics need codes drawn from a standard-normal prior (what `decode_prior_samples` draws)."""
    if ctx.caps.latent.prior != "standard_normal" or ctx.caps.latent.layout != "vector":
        return f"the model's latent is a {ctx.caps.latent.layout} with a {ctx.caps.latent.prior} prior"
    return None
