"""`genlab eval`: every score a run supports, recomputed from the run folder alone, each with its protocol.

A metric the user names must run or fail with a clear error; a metric chosen by default that cannot run
here (no Inception weights on this machine, a held-out split too small for 2048-d covariances, no
labels to train a domain classifier on) is skipped with the reason in the log, so `genlab eval RUN`
always gives what can be measured.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.data import DataBundle
from genlab.data.loader import to_uint8
from genlab.device import select_device
from genlab.errors import GenlabError
from genlab.figures import LoadedRun, load_run
from genlab.metrics.store import split_entry, update_metrics
from genlab.models import VARIATIONAL, is_gan
from genlab.models.latent import decode_prior_samples

log = logging.getLogger("genlab.eval")

METRICS = ("reconstruction", "latent_usage", "fid", "fd_classifier", "class_accuracy", "fd_randconv",
           "discriminator", "disentanglement")


@dataclass
class EvalSettings:
    samples: int = 2400  # seed 001's count of generated and held-out real images
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    seed: int = 0
    batch_size: int = 128
    images: Path | None = None  # a folder of outside images for reconstruction quality (seed 001)
    class_samples: int = 1000  # generated images per class for class accuracy
    disentanglement: dict[str, Any] = field(default_factory=dict)  # sample counts for MIG / FactorVAE / DCI


class Context:
    """One loaded run and the image sets its metrics share (drawn once, reused by every extractor)."""

    def __init__(self, loaded: LoadedRun, settings: EvalSettings, device: torch.device):
        self.loaded, self.s, self.device = loaded, settings, device
        self.model = loaded.model.to(device).eval()

    @property
    def data(self) -> DataBundle:
        return self.loaded.data

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
        labels = None
        if is_gan(self.model) and self.model.conditional:
            labels = torch.from_numpy(self.real_labels)
        batches = decode_prior_samples(self.model, len(self.reference_index), self.s.seed, self.s.batch_size, labels)
        return np.concatenate([to_uint8(self.data.normalizer.to_unit(x.float())) for x in batches])

    def reference_split(self) -> str:
        d = self.loaded.cfg.data
        how = ("the official test split" if d.use_test_split and d.name in ("mnist", "fashion_mnist")
               else f"rendered independently of training from split_seed {d.split_seed}" if d.name == "shapes"
               else f"{d.val_fraction:.0%} held out with split_seed {d.split_seed}")
        return f"validation split of {d.name} ({len(self.data.val)} images, {how}); {len(self.reference_index)} " \
               f"drawn with seed {self.s.seed}"


def _is_vae_family(ctx: Context) -> bool:
    return hasattr(ctx.model, "encode") and hasattr(ctx.model, "reconstruct")


def _distribution_scores(ctx: Context, extractor: Any, *, with_kid: bool) -> dict[str, Any]:
    from genlab.metrics.sample_quality import frechet, kid, precision_recall

    real, fake = extractor.features(ctx.real), extractor.features(ctx.fake)
    name = extractor.name
    label = "FID" if name == "inception-v3-fid" else name if name.startswith("FD-") else f"FD-{name}"
    values: dict[str, Any] = {"fd": frechet(real, fake, name=label)}
    if with_kid:
        values["kid_mean"], values["kid_std"] = kid(real, fake, subsets=ctx.s.kid_subsets,
                                                    subset_size=ctx.s.kid_subset_size, seed=ctx.s.seed)
    values["precision"], values["recall"] = precision_recall(real, fake, k=ctx.s.pr_k)
    return {**values, "n_real": len(real), "n_fake": len(fake), "extractor": extractor.identity(),
            "reference_split": ctx.reference_split(), "pr_k": ctx.s.pr_k,
            "generated": "codes drawn from N(0, I) at once on the CPU with the seed below, decoded, quantised to "
                         "uint8 as if saved to PNG"
                         + ("; labels of the reference images" if ctx.real_labels is not None
                            and is_gan(ctx.model) and ctx.model.conditional else ""),
            **({"kid_subsets": ctx.s.kid_subsets, "kid_subset_size": ctx.s.kid_subset_size} if with_kid else {})}


def m_reconstruction(ctx: Context) -> dict[str, dict[str, Any]]:
    from genlab.data.sources import decode_files, list_images
    from genlab.metrics.reconstruction import reconstruction_quality

    obj = ctx.loaded.cfg.objective
    kw = {"noise_std": obj.noise_std, "noise_clip": obj.noise_clip, "seed": ctx.s.seed,
          "batch_size": ctx.s.batch_size, "device": ctx.device}
    out = {"reconstruction_heldout": {
        **reconstruction_quality(ctx.model, ctx.data.val.images, ctx.data.normalizer, **kw),
        "reference_split": f"the whole validation split ({len(ctx.data.val)} images)"}}
    if ctx.s.images is not None:
        folder = Path(ctx.s.images)
        if not folder.is_dir():
            raise GenlabError(f"--images {folder} is not a folder; give a folder of image files.")
        files = list_images(folder)
        cfg = ctx.loaded.cfg.data.model_copy(update={"random_crops": None})
        images, _ = decode_files(files, cfg, crop_seed=0)
        if len(images) == 0:
            raise GenlabError(f"--images {folder} holds no readable images ({len(files)} files tried).")
        for path, why in images.skipped:
            log.warning("skipped %s: %s", path, why)
        out["reconstruction_external"] = {
            **reconstruction_quality(ctx.model, images.images, ctx.data.normalizer, **kw),
            "images": str(folder), "n_skipped": len(images.skipped),
            "resize": f"shorter side to {cfg.image_size}, centre crop (as training images)"}
    return out


def m_latent_usage(ctx: Context) -> dict[str, dict[str, Any]]:
    """Active units and KL per dimension of a stored checkpoint, so runs trained before these were logged
    (or another checkpoint than the last epoch's) can be checked for posterior collapse too."""
    from genlab.data import BatchLoader
    from genlab.metrics.latent_usage import measure

    loader = BatchLoader(ctx.data.val.images, None, batch_size=ctx.s.batch_size, shuffle=False, seed=ctx.s.seed,
                         normalizer=ctx.data.normalizer, device=ctx.device)
    usage = measure(ctx.model, (b.images for b in loader.batches()))
    return {"latent_usage": {
        "active_units": usage.active_units, "latent_dim": usage.latent_dim, "kl_total": usage.kl_total,
        "kl_dims_max": max(usage.kl_per_dim), "n_images": usage.n_images,
        "protocol": f"posterior means and log-variances of the clean validation images ({usage.n_images}); "
                    f"a unit is active when the variance of its mean over the images exceeds {usage.threshold:g} "
                    f"(Burda et al. 2016); KL per image summed over dimensions, nats",
    }}


def m_fid(ctx: Context) -> dict[str, dict[str, Any]]:
    from genlab.metrics.inception import InceptionFeatures

    values = _distribution_scores(ctx, InceptionFeatures(ctx.device), with_kid=True)
    values["fid"] = values.pop("fd")
    return {"fid_inception": values}


def _classifier(ctx: Context) -> Any:
    from genlab.metrics.classifier import get_classifier

    return get_classifier(ctx.loaded.cfg.data)


def m_fd_classifier(ctx: Context) -> dict[str, dict[str, Any]]:
    clf = _classifier(ctx)
    values = _distribution_scores(ctx, clf, with_kid=False)
    values["classifier_test_accuracy"] = clf.test_accuracy
    return {clf.name.lower().replace("-", "_"): values}


def m_class_accuracy(ctx: Context) -> dict[str, dict[str, Any]]:
    from genlab.metrics.classifier import class_accuracy

    return {"class_accuracy": class_accuracy(_classifier(ctx), ctx.model, ctx.data.normalizer,
                                             per_class=ctx.s.class_samples, seed=ctx.s.seed)}


def m_fd_randconv(ctx: Context) -> dict[str, dict[str, Any]]:
    from genlab.metrics.proxy import NAME, RandConvExtractor

    values = _distribution_scores(ctx, RandConvExtractor(ctx.data.channels, seed=0, device=ctx.device),
                                  with_kid=False)
    values[NAME] = values.pop("fd")
    return {NAME: values}


def m_discriminator(ctx: Context) -> dict[str, dict[str, Any]]:
    from genlab.data import BatchLoader
    from genlab.metrics.discriminator import discriminator_classification

    loader = BatchLoader(ctx.data.val.images, ctx.data.val.labels, batch_size=ctx.s.batch_size, shuffle=False,
                         seed=ctx.s.seed, normalizer=ctx.data.normalizer, device=ctx.device)
    return {"discriminator_real_vs_fake": {**discriminator_classification(ctx.model, loader, ctx.s.seed),
                                           "real_split": "validation"}}


def m_disentanglement(ctx: Context) -> dict[str, dict[str, Any]]:
    from genlab.data.shapes import ShapesSampler
    from genlab.metrics.disentanglement import dci, factor_vae_score, mig

    norm, model, device = ctx.data.normalizer, ctx.model, ctx.device
    size = ctx.loaded.cfg.data.image_size

    @torch.no_grad()
    def represent(images: np.ndarray) -> np.ndarray:
        from genlab.data.sources import resize_array

        imgs = resize_array(images, size, ctx.data.channels)  # as the run's data layer gave them
        codes = []
        for start in range(0, len(imgs), 256):
            x = norm(torch.from_numpy(np.ascontiguousarray(imgs[start:start + 256])).permute(0, 3, 1, 2).to(device))
            codes.append(model.encode(x).mean.double().cpu().numpy())
        return np.concatenate(codes)

    counts = ctx.s.disentanglement
    common = {"representation": "posterior mean of the model's encoder",
              "resize": f"64x64 renders resized to {size}x{size} ({ctx.data.channels} channel(s)) as in training",
              "data": "genlab procedural shapes (dSprites factors: shape, scale, orientation, x, y at 64x64), "
                      "rendered fresh from the seed"}
    try:
        return {name: {**fn(represent, ShapesSampler(ctx.s.seed), seed=ctx.s.seed, **counts.get(name, {})), **common}
                for name, fn in (("mig", mig), ("factor_vae", factor_vae_score), ("dci", dci))}
    except ValueError as exc:  # bad sample counts, or codes the metrics cannot use (NaN)
        raise GenlabError(f"disentanglement scores of {ctx.loaded.run.path} failed: {exc}") from None


COMPUTE: dict[str, Callable[[Context], dict[str, dict[str, Any]]]] = {
    "reconstruction": m_reconstruction, "latent_usage": m_latent_usage, "fid": m_fid, "fd_classifier": m_fd_classifier,
    "class_accuracy": m_class_accuracy, "fd_randconv": m_fd_randconv, "discriminator": m_discriminator,
    "disentanglement": m_disentanglement,
}


def not_applicable(name: str, ctx: Context) -> str | None:
    """Why a metric does not fit this run, or None when it does."""
    gan = is_gan(ctx.model)
    conditional = gan and ctx.model.conditional
    has_labels = ctx.data.train.labels is not None
    if name == "reconstruction" and not _is_vae_family(ctx):
        return "the model has no encoder to reconstruct with"
    if name == "latent_usage" and ctx.loaded.cfg.model.name not in VARIATIONAL:
        return "the model's encoder has no posterior variance (not a VAE)"
    if name == "discriminator" and not gan:
        return "the model has no discriminator"
    if name == "class_accuracy" and not conditional:
        return "the model is not class-conditional"
    if name == "fd_classifier" and not has_labels:
        return (f"data set {ctx.loaded.cfg.data.name!r} has no labels to train a domain classifier on "
                f"(labelled sets: mnist, fashion_mnist, digits, class folders, npz with labels)")
    if name == "disentanglement" and (ctx.loaded.cfg.data.name != "shapes" or not _is_vae_family(ctx)):
        return "it needs an encoder trained on the procedural shapes set (data.name: shapes)"
    return None


def evaluate_loaded(loaded: LoadedRun, metrics: list[str] | None = None, *, which: str = "best",
                    settings: EvalSettings | None = None, device: str = "auto",
                    strict: bool | None = None) -> dict[str, dict[str, Any]]:
    """strict (default: when metrics are named): a metric that cannot run is an error, not a skip."""
    s = settings or EvalSettings()
    unknown = [m for m in metrics or [] if m not in METRICS]
    if unknown:
        raise GenlabError(f"unknown metric(s) {', '.join(map(repr, unknown))}; valid: {', '.join(METRICS)}.")
    ctx = Context(loaded, s, select_device(device))
    explicit = metrics is not None if strict is None else strict
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for name in metrics or METRICS:  # every named metric is checked before any is computed
        reason = not_applicable(name, ctx)
        if reason and explicit:
            raise GenlabError(f"metric {name!r} does not apply to run {loaded.run.path}: {reason}.")
        if reason:
            log.debug("%s skipped: %s", name, reason)
        else:
            todo.append(name)
    for name in todo:
        try:
            entries = COMPUTE[name](ctx)
        except GenlabError as exc:
            if explicit:
                raise
            log.warning("%s skipped: %s", name, exc)
            continue
        for key, values in entries.items():
            update_metrics(loaded.run.metrics, key, values, checkpoint=which, step=loaded.step, seed=s.seed)
            results[key] = values
            log.info("%s: %s", key, summary(values))
    return results


def evaluate_run(path: Path, metrics: list[str] | None = None, *, which: str = "best",
                 settings: EvalSettings | None = None, device: str = "auto") -> dict[str, dict[str, Any]]:
    return evaluate_loaded(load_run(Path(path), which), metrics, which=which, settings=settings, device=device)


def summary(values: dict[str, Any]) -> str:
    nums, _ = split_entry(values)
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in nums.items())
