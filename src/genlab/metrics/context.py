"""What every metric is computed from: one loaded run, the evaluation settings, and the image sets the
metrics share (the reference images and as many samples, drawn once and reused by every extractor)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from genlab.data.loader import to_uint8
from genlab.data.registry import describe_split
from genlab.metrics.metric import Score
from genlab.models.latent import sample_batches, sample_source
from genlab.progress import counted

log = logging.getLogger("genlab.eval")

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
    cas_recipe: dict[str, Any] = field(default_factory=dict)  # classifier recipe overrides for CAS (min_steps, ...)
    nll_samples: int = 1000  # importance samples per image for the log-likelihood (Burda et al. 2016 use 5,000)
    nll_images: int | None = None  # held-out images it is estimated on (None: all)
    nll_chunk: int = 8192  # decodes per forward pass: the memory the estimate holds at any k


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
        n = len(self.reference_index)
        batches = counted(sample_batches(self.model, self.caps.latent.flat_prior, n, self.s.seed,
                                         self.s.batch_size, labels), n, "drawing samples")
        return np.concatenate([to_uint8(self.data.normalizer.to_unit(x.float())) for x in batches])

    def reference_split(self) -> str:
        """Which held-out images: the seed is named only when it chose some of them (all of them are the
        same images whatever the seed, so runs scored with other seeds still compare)."""
        d = self.cfg.data
        n_val, n = len(self.data.val), len(self.reference_index)
        how = describe_split(d, n_val)
        drawn = "all of them" if n == n_val else f"{n} drawn with seed {self.s.seed}"
        return f"validation split of {d.name} ({n_val} images, {how}); {drawn}"


# Features pass through sqrtm and k-NN radii: another machine's summation order can move a Fréchet distance
# or KID in its sixth digit, and flip an image across a precision/recall ball (one image in 200: 5e-3).
SHARE_TOLERANCE = 5e-3


def distribution_tolerance(fd_name: str) -> dict[str, float]:
    return {fd_name: 1e-3, "kid_mean": 1e-3, "kid_std": 1e-3, "precision": SHARE_TOLERANCE,
            "recall": SHARE_TOLERANCE}
PAPER_FID_SAMPLES = 50_000  # the count FID tables in papers use (Heusel et al. 2017; Brock et al. 2019; Karras et al.)


def distribution_scores(ctx: Context, extractor: Any, *, fd_name: str = "fd") -> Score:
    """Fréchet distance, KID and precision/recall of the shared sample set against the reference images, in
    one extractor's features, with the protocol every such score carries.

    KID always comes with the Fréchet distance: the Fréchet distance is biased upwards by O(1/N), so it
    compares only at equal N, while KID's estimate is unbiased at any N (Bińkowski et al. 2018), which
    is what small data sets need. Its subsets shrink to half the sample count when that is smaller than
    the subset size."""
    from genlab.metrics.sample_quality import frechet, kid, precision_recall

    real, fake = extractor.features(ctx.real), extractor.features(ctx.fake)
    name = extractor.name
    label = "FID" if name == "inception-v3-fid" else name if name.lower().startswith("fd") else f"FD-{name}"
    n = min(len(real), len(fake))
    # No more samples than the subset size: subsets of half of them, so the subsets still differ and kid_std
    # still says how much the estimate moves from subset to subset (whole-set subsets would all be equal).
    subset = ctx.s.kid_subset_size if n > ctx.s.kid_subset_size else max(2, n // 2)
    values: dict[str, Any] = {fd_name: frechet(real, fake, name=label)}
    values["kid_mean"], values["kid_std"] = kid(real, fake, subsets=ctx.s.kid_subsets, subset_size=subset,
                                                seed=ctx.s.seed)
    values["precision"], values["recall"] = precision_recall(real, fake, k=ctx.s.pr_k)
    below_papers = label == "FID" and len(fake) < PAPER_FID_SAMPLES
    comparable = (f"{label} at {len(fake)} generated and {len(real)} real images compares only with {label} at "
                  f"the same counts: the Fréchet distance falls as N grows (bias O(1/N))"
                  + (f", so it is not comparable with the {PAPER_FID_SAMPLES:,}-sample FID of papers"
                     if below_papers else "")
                  + "; KID is unbiased at any N")
    if below_papers:
        log.warning("FID at %d generated images is not comparable with FID at %s (the count papers report): "
                    "it is biased upwards by O(1/N); compare it only with FIDs at %d, or compare KID", len(fake),
                    f"{PAPER_FID_SAMPLES:,}", len(fake))
    protocol = {"n_real": len(real), "n_fake": len(fake), "extractor": extractor.identity(),
                "reference_split": ctx.reference_split(), "pr_k": ctx.s.pr_k, "comparability": comparable,
                "generated": (f"codes drawn from {sample_source(ctx.model, True)} at once on the CPU with the seed "
                              "below, decoded" if ctx.caps.latent.flat_prior else
                              f"drawn by the model's own sampler from {sample_source(ctx.model, False)}, one "
                              f"generator per batch of {ctx.s.batch_size} seeded from the seed below")
                             + ", quantised to uint8 as if saved to PNG"
                             + ("; labels of the reference images" if ctx.caps.conditional else ""),
                "kid_subsets": ctx.s.kid_subsets, "kid_subset_size": subset}
    return Score(values, protocol)


def needs_samples(ctx: Context) -> str | None:
    """Sample metrics need a model that samples: decoded flat codes of N(0, I) (or a fitted mixture), or a
    model's own learned prior (`sample_batches`)."""
    if not ctx.caps.can_sample:
        return f"the model cannot draw samples: {ctx.caps.cannot_sample}"
    if not ctx.caps.latent.flat_prior and ctx.caps.latent.prior != "learned":
        return f"the model's latent is a {ctx.caps.latent.layout} with a {ctx.caps.latent.prior} prior"
    return None
