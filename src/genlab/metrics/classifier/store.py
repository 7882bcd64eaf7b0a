"""The classifier cache: weights (safetensors) and their record (JSON), written so a crash leaves no record
pointing at a partial file, and loaded only after the weights' hash matches the record."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from genlab.errors import GenlabError
from genlab.io import atomic_write, sha256_of
from genlab.metrics.classifier import training
from genlab.metrics.classifier.extractor import DomainClassifier
from genlab.metrics.classifier.identity import cache_paths, dataset_slug
from genlab.metrics.classifier.network import RECIPE_VERSION, SmallCNN, make_recipe
from genlab.paths import CACHE_ENV
from genlab.sections import DataConfig

log = logging.getLogger("genlab.metrics")


def save_classifier(net: SmallCNN, meta: dict[str, Any], weights_path: Path) -> dict[str, Any]:
    """Weights first, record second, each by rename: a crash leaves no record pointing at a partial file."""
    from safetensors.torch import save

    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    atomic_write(weights_path, save(state))  # save_file would write 0600, hiding the file in a shared cache
    meta = {**meta, "weights_sha256": sha256_of(weights_path)}
    atomic_write(weights_path.with_suffix(".json"), json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def get_classifier(data_cfg: DataConfig, *, train_if_missing: bool = True, device: torch.device | str = "cpu",
                   threads: int | None = None, **recipe: Any) -> DomainClassifier:
    """The cached classifier for this data set, size and recipe; trained and cached first when absent."""
    rec = make_recipe(**recipe)
    weights_path, meta_path = cache_paths(data_cfg, rec)
    if weights_path.is_file() and meta_path.is_file():
        return DomainClassifier.load(weights_path, device)
    if not train_if_missing:
        raise GenlabError(f"no trained classifier for {data_cfg.name!r} at {data_cfg.image_size} px: expected "
                          f"{weights_path} (and {meta_path.name}). Run the evaluation once with training allowed, "
                          f"or copy both files from a machine that has them (set ${CACHE_ENV} to use another "
                          f"cache folder).")
    log.info("training the %s domain classifier (%d px, recipe v%d); it is cached as %s",
             dataset_slug(data_cfg), data_cfg.image_size, RECIPE_VERSION, weights_path)
    net, meta = training.train_classifier(data_cfg, device=device, threads=threads, **asdict(rec))
    meta = save_classifier(net, meta, weights_path)
    log.info("classifier %s: test accuracy %.4f on %d images (%s), trained in %.0f s",
             weights_path.name, meta["test_accuracy"], meta["n_test"], meta["test_split"], meta["train_seconds"])
    return DomainClassifier(net, meta, weights_path, device)
