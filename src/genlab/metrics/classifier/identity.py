"""Which cached classifier scores a run: a hash of what decides its weights (images, labels, split, recipe).

The run's subsampling (data.limit), augmentation and normalisation are left out on purpose, so every run
on MNIST at 28 px is scored by the same network and the scores stay comparable. Sources whose content does
not depend on where the files sit (Source.canonical) share one entry whatever data.root says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from genlab.data import channels_of
from genlab.data.registry import get_source
from genlab.metrics.classifier.network import RECIPE_VERSION, Recipe
from genlab.paths import classifiers_dir
from genlab.sections import DataConfig

# Fields that change how a generative run uses the data, not which images and labels the data set holds.
_NOT_IN_KEY = ("normalize", "hflip", "limit", "val_limit", "download", "max_skipped_fraction")


def classifier_data_config(cfg: DataConfig) -> DataConfig:
    """The data the classifier learns from: the whole labelled set (no run subsampling, no flips), and for
    MNIST / Fashion-MNIST the official test split as held-out set, so its accuracy is the familiar number."""
    update: dict[str, Any] = {"limit": None, "val_limit": None, "hflip": False, "download": False}
    if get_source(cfg.name).official_test_split:
        update["use_test_split"] = True
    return cfg.model_copy(update=update)


def _key_fields(cfg: DataConfig) -> dict[str, Any]:
    d = cfg.model_dump(mode="json")
    for k in _NOT_IN_KEY:
        d.pop(k, None)
    d["grayscale"] = None
    d["channels"] = channels_of(cfg)  # grayscale None and False mean the same for RGB sets
    source = get_source(cfg.name)
    if source.canonical:
        d.pop("root", None)
    if source.official_test_split:  # the split is fixed, so the fraction and seed do not matter
        d.pop("val_fraction", None)
        d.pop("split_seed", None)
    return d


def cache_key(cfg: DataConfig, recipe: Recipe) -> str:
    blob = json.dumps({"data": _key_fields(classifier_data_config(cfg)), "recipe": asdict(recipe),
                       "recipe_version": RECIPE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def dataset_slug(cfg: DataConfig) -> str:
    """A name people recognise: the set's name, or for folders and .npz files the folder's (file's) name."""
    if not get_source(cfg.name).canonical and cfg.root:
        p = Path(os.path.expanduser(cfg.root.rstrip("/\\")))
        raw = p.stem if p.suffix.lower() == ".npz" else p.name
    else:
        raw = cfg.name
    slug = re.sub(r"[^a-z0-9]+", "-", raw.lower()).strip("-")
    return slug or cfg.name.replace("_", "-")


def cache_paths(cfg: DataConfig, recipe: Recipe) -> tuple[Path, Path]:
    stem = f"{dataset_slug(cfg)}-{cfg.image_size}px-{cache_key(cfg, recipe)[:12]}"
    folder = classifiers_dir()
    return folder / f"{stem}.safetensors", folder / f"{stem}.json"
