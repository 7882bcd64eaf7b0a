"""Training a domain classifier on a labelled data set's training split, tested on its held-out split."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genlab import __version__
from genlab.data import BatchLoader, ImageSet, Normalizer, channels_of, load_data
from genlab.data.registry import SOURCES, get_source
from genlab.errors import GenlabError
from genlab.metrics.classifier.extractor import DomainClassifier
from genlab.metrics.classifier.identity import _key_fields, classifier_data_config, dataset_slug
from genlab.metrics.classifier.network import PREPROCESSING, RECIPE_VERSION, Recipe, SmallCNN, make_recipe
from genlab.sections import DataConfig

log = logging.getLogger("genlab.metrics")


def labelled_sets() -> str:
    """In words, which data sets can train a classifier (for error messages)."""
    return (", ".join(sorted(n for n, s in SOURCES.items() if s.canonical))
            + ", image_folder with one sub-folder per class, npz with a labels array (data.labels_key)")


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image by its own (dy, dx) in [-s, s]; edges replicate, so backgrounds stay background."""
    if max_shift == 0:
        return x
    b, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), mode="replicate")
    off = torch.randint(0, 2 * s + 1, (b, 2), generator=gen).to(x.device)
    rows = (off[:, 0:1] + torch.arange(h, device=x.device)).view(b, 1, h, 1).expand(b, x.shape[1], h, w + 2 * s)
    x = padded.gather(2, rows)
    cols = (off[:, 1:2] + torch.arange(w, device=x.device)).view(b, 1, 1, w).expand(b, x.shape[1], h, w)
    return x.gather(3, cols)


def labelled_splits(cfg: DataConfig) -> tuple[ImageSet, ImageSet, int, list[str]]:
    data = load_data(cfg)
    if data.train.labels is None:
        why = " (data.labels is false)" if not cfg.labels else ""
        raise GenlabError(f"data set {cfg.name!r}{f' at {cfg.root}' if cfg.root else ''} has no labels{why}, so "
                          f"genlab cannot train a domain classifier on it. Labelled sets: {labelled_sets()}.")
    if data.val.labels is None or len(data.val) == 0:
        raise GenlabError(f"data set {cfg.name!r} has no labelled held-out images to test a classifier on; "
                          f"raise data.val_fraction (now {cfg.val_fraction}).")
    k = data.num_classes or 0
    if k < 2:
        raise GenlabError(f"data set {cfg.name!r} has {k} class(es); a classifier needs at least 2.")
    names = data.train.class_names or [str(i) for i in range(k)]
    return data.train, data.val, k, list(names)


@contextlib.contextmanager
def _threads(n: int | None):
    """CPU threads for training only; the caller's setting comes back afterwards."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fit_network(loader: BatchLoader, channels: int, num_classes: int, rec: Recipe, dev: torch.device
         ) -> tuple[SmallCNN, int, int]:
    """AdamW with a one-cycle schedule: the shortest reliable route to a converged small CNN (no tuning of
    the number of epochs per data set). Returns (network in eval mode, epochs run, optimiser steps)."""
    steps_per_epoch = len(loader)
    n_epochs = max(rec.epochs, math.ceil(rec.min_steps / steps_per_epoch))
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(rec.seed)
        net = SmallCNN(channels, num_classes, rec.width, rec.feature_dim).to(dev, memory_format=torch.channels_last)
        opt = torch.optim.AdamW(net.parameters(), lr=rec.lr, weight_decay=rec.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=rec.lr, total_steps=n_epochs * steps_per_epoch)
        aug = torch.Generator().manual_seed(rec.seed + 1)
        net.train()
        for epoch in range(n_epochs):
            total, count = 0.0, 0
            for batch in loader.batches(epoch):
                x = _shift(batch.images, rec.shift, aug).contiguous(memory_format=torch.channels_last)
                loss = F.cross_entropy(net(x), batch.labels)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total, count = total + float(loss.detach()) * len(batch.labels), count + len(batch.labels)
            log.debug("classifier epoch %d/%d: train loss %.4f", epoch + 1, n_epochs, total / max(count, 1))
    return net.eval(), n_epochs, n_epochs * steps_per_epoch


def train_classifier(data_cfg: DataConfig, *, epochs: int = Recipe.epochs, seed: int = Recipe.seed,
                     device: torch.device | str = "cpu", threads: int | None = None, **recipe: Any
                     ) -> tuple[SmallCNN, dict[str, Any]]:
    """Train on the labelled training split and test on the held-out one; returns (network, record).

    Deterministic for a given seed, device and thread count: initialisation and augmentation use their own
    seeded generators inside a forked RNG (the caller's global RNG state is left as it was), and the batch
    order comes from (seed, epoch). Extra keyword arguments are Recipe fields (min_steps, batch_size, lr, ...).
    `threads` (torch CPU threads while training) is not part of the recipe: it changes speed, not the recipe.
    """
    rec = make_recipe(epochs=epochs, seed=seed, **recipe)
    cfg = classifier_data_config(data_cfg)
    train, val, k, names = labelled_splits(cfg)
    ch, dev = channels_of(cfg), torch.device(device)
    loader = BatchLoader(train.images, train.labels, batch_size=rec.batch_size, shuffle=True, seed=rec.seed,
                         normalizer=Normalizer("minus_one_one", ch), drop_last=len(train) >= rec.batch_size,
                         device=dev)
    t0 = time.perf_counter()
    with _threads(threads):
        net, n_epochs, steps = fit_network(loader, ch, k, rec, dev)
    seconds = time.perf_counter() - t0
    probe = DomainClassifier(net, {"channels": ch, "image_size": cfg.image_size, "dataset": dataset_slug(cfg)},
                             Path("unsaved"), dev)
    pred = probe.predict(val.images)
    split = ("official test split" if get_source(cfg.name).official_test_split
             else f"validation split ({cfg.val_fraction:.0%} held out, split_seed {cfg.split_seed})")
    meta = {"dataset": dataset_slug(cfg), "data_name": cfg.name, "root": cfg.root, "image_size": cfg.image_size,
            "channels": ch, "num_classes": k, "class_names": names,
            "test_accuracy": float((pred == val.labels).mean()), "n_train": len(train), "n_test": len(val),
            "test_split": split, "epochs_run": n_epochs, "steps": steps,
            "train_seconds": round(seconds, 1), "trained_on": dev.type, "recipe": asdict(rec),
            "recipe_version": RECIPE_VERSION, "data_key_fields": _key_fields(cfg), "preprocessing": PREPROCESSING,
            "created_with": f"genlab {__version__}, torch {torch.__version__}"}
    return net.cpu(), meta
