"""Domain classifiers: a small CNN that genlab trains once per labelled data set and caches, for two scores.

Offline machines cannot fetch Inception weights, and Inception's ImageNet features say little about 28x28
digits anyway. A classifier trained on the data set itself gives (1) a feature space for a Fréchet distance,
reported under the extractor's own name (e.g. FD-mnist-classifier), never as "FID", since its numbers are
not comparable with FID in papers; and (2) an independent judge of whether a conditional model draws the
class it was asked for. Its own held-out test accuracy travels with every score, so a reader can tell how
much to trust the judge.

A cached classifier is identified by a hash of what decides its weights: the images and labels it sees
(data set, root, size, channels, crops, split) and its training recipe. The run's subsampling (data.limit),
augmentation and normalisation are left out on purpose, so every run on MNIST at 28 px is scored by the
same network and the scores stay comparable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genlab import __version__
from genlab.config import DataConfig
from genlab.data import BatchLoader, ImageSet, Normalizer, channels_of, load_data
from genlab.data.loader import to_uint8
from genlab.errors import GenlabError
from genlab.metrics.weights import sha256_of
from genlab.paths import CACHE_ENV, classifiers_dir

log = logging.getLogger("genlab.metrics")

# Bump when the architecture, the preprocessing or the training loop changes in a way that changes weights:
# it is part of the cache key, so old files are then simply not found (and retrained) instead of misused.
RECIPE_VERSION = 1

# Fixed, not fitted to the data: the same uint8 image always gives the same input, whatever the data set.
PREPROCESSING = "uint8 / 255 to [0, 1], then (x - 0.5) / 0.5 per channel (fixed, not fitted); no resizing"

# Sets whose split is the official one: the held-out accuracy is then the number others report.
OFFICIAL_TEST_SPLIT = ("mnist", "fashion_mnist")
# Sets whose content does not depend on where the files sit, so one cache entry serves every root.
CANONICAL = ("digits", "mnist", "fashion_mnist")
# Fields that change how a generative run uses the data, not which images and labels the data set holds.
_NOT_IN_KEY = ("normalize", "hflip", "limit", "val_limit", "download", "max_skipped_fraction")

LABELLED_SETS = ("digits, mnist, fashion_mnist, image_folder with one sub-folder per class, "
                 "npz with a labels array (data.labels_key)")


@dataclass(frozen=True)
class Recipe:
    """How the classifier is trained; every field is part of the cache key."""

    epochs: int = 3
    # Small sets (digits: 10 batches per epoch) are repeated until at least this many optimiser steps,
    # or the one-cycle schedule ends before the network has converged.
    min_steps: int = 300
    batch_size: int = 128
    lr: float = 1e-2  # the one-cycle peak; BatchNorm keeps it stable
    weight_decay: float = 5e-4
    # Random translation by up to this many pixels: the only augmentation, kept light so the features stay
    # sensitive to how generated images are placed.
    shift: int = 1
    width: int = 16  # channels 16-32-64: ~100k weights, a few tens of ms per batch of 128 on one CPU core
    feature_dim: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        non_negative = ("seed", "shift", "weight_decay")
        bad = [f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)
               if not (getattr(self, f.name) >= 0 if f.name in non_negative else getattr(self, f.name) > 0)]
        if bad:
            raise GenlabError(f"classifier recipe values must be positive ({', '.join(non_negative)}: >= 0); "
                              f"got {', '.join(bad)}.")


def make_recipe(**overrides: Any) -> Recipe:
    names = {f.name for f in fields(Recipe)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise GenlabError(f"unknown classifier recipe option(s) {', '.join(unknown)}; valid: "
                          f"{', '.join(sorted(names))}.")
    return Recipe(**overrides)


class SmallCNN(nn.Module):
    """Three conv blocks (the last two at 1/2 and 1/4 resolution), adaptive pooling so any size >= 8
    works, then a `feature_dim` layer whose activations are the Fréchet features, then a linear head."""

    def __init__(self, channels: int, num_classes: int, width: int = 16, feature_dim: int = 128):
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        w = width
        self.body = nn.Sequential(*block(channels, w), nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2),
                                  *block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(3), nn.Flatten())
        self.embed = nn.Sequential(nn.Linear(4 * w * 9, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Linear(feature_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


# ---------------------------------------------------------------- cache identity


def classifier_data_config(cfg: DataConfig) -> DataConfig:
    """The data the classifier learns from: the whole labelled set (no run subsampling, no flips), and for
    MNIST / Fashion-MNIST the official test split as held-out set, so its accuracy is the familiar number."""
    update: dict[str, Any] = {"limit": None, "val_limit": None, "hflip": False, "download": False}
    if cfg.name in OFFICIAL_TEST_SPLIT:
        update["use_test_split"] = True
    return cfg.model_copy(update=update)


def _key_fields(cfg: DataConfig) -> dict[str, Any]:
    d = cfg.model_dump(mode="json")
    for k in _NOT_IN_KEY:
        d.pop(k, None)
    d["grayscale"] = None
    d["channels"] = channels_of(cfg)  # grayscale None and False mean the same for RGB sets
    if cfg.name in CANONICAL:
        d.pop("root", None)
    if cfg.name in OFFICIAL_TEST_SPLIT:  # the split is fixed, so the fraction and seed do not matter
        d.pop("val_fraction", None)
        d.pop("split_seed", None)
    return d


def cache_key(cfg: DataConfig, recipe: Recipe) -> str:
    blob = json.dumps({"data": _key_fields(classifier_data_config(cfg)), "recipe": asdict(recipe),
                       "recipe_version": RECIPE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def dataset_slug(cfg: DataConfig) -> str:
    """A name people recognise: the set's name, or for folders and .npz files the folder's (file's) name."""
    if cfg.name in ("image_folder", "npz") and cfg.root:
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


# ---------------------------------------------------------------- the extractor


class DomainClassifier:
    """A trained SmallCNN with the record of how it was made; the Fréchet extractor and the class judge."""

    def __init__(self, net: SmallCNN, meta: dict[str, Any], weights_path: Path,
                 device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.net = net.to(self.device, memory_format=torch.channels_last).eval()
        self.meta = meta
        self.weights_path = Path(weights_path)
        self.normalizer = Normalizer("minus_one_one", int(meta["channels"]))

    @property
    def name(self) -> str:
        return f"FD-{self.meta['dataset']}-classifier"

    @property
    def test_accuracy(self) -> float:
        return float(self.meta["test_accuracy"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def class_names(self) -> list[str]:
        return list(self.meta["class_names"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the uint8 images it takes."""
        s, c = int(self.meta["image_size"]), int(self.meta["channels"])
        return s, s, c

    @property
    def feature_dim(self) -> int:
        return int(self.meta["recipe"]["feature_dim"])

    def identity(self) -> dict[str, Any]:
        m = self.meta
        return {"name": self.name, "weights": self.weights_path.name, "weights_sha256": m["weights_sha256"],
                "test_accuracy": self.test_accuracy, "n_test": m["n_test"], "n_train": m["n_train"],
                "test_split": m["test_split"], "input_size": m["image_size"], "input_channels": m["channels"],
                "num_classes": self.num_classes, "feature_dim": self.feature_dim,
                "feature_layer": "penultimate fully connected layer, after ReLU", "preprocessing": PREPROCESSING,
                "recipe_version": m["recipe_version"]}

    def _check(self, images: np.ndarray) -> None:
        want = self.input_shape
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4 \
                or tuple(images.shape[1:]) != want:
            got = (f"{images.dtype} array of shape {tuple(images.shape)}" if isinstance(images, np.ndarray)
                   else type(images).__name__)
            raise GenlabError(f"{self.name} ({self.weights_path.name}) takes uint8 images of shape "
                              f"(N, {want[0]}, {want[1]}, {want[2]}) (N, H, W, C); got a {got}. Generate or load "
                              f"the images at the data set's image_size and channels, or use a classifier trained "
                              f"at that size.")

    @torch.no_grad()
    def _run(self, images: np.ndarray, batch_size: int, fn) -> np.ndarray:
        self._check(images)
        out = []
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).permute(0, 3, 1, 2)
            x = self.normalizer(x.to(self.device)).contiguous(memory_format=torch.channels_last)
            out.append(fn(x).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0,))

    def features(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Penultimate-layer activations, float64 (N, feature_dim), in the model's eval mode."""
        f = self._run(images, batch_size, lambda x: self.net.features(x).double())
        return f if len(images) else np.zeros((0, self.feature_dim))

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        p = self._run(images, batch_size, lambda x: self.net(x).argmax(1))
        return p.astype(np.int64)

    @classmethod
    def load(cls, weights_path: Path, device: torch.device | str = "cpu") -> DomainClassifier:
        """Only after the weights' SHA-256 matches the record: a half-written or edited file must not score."""
        from safetensors.torch import load_file

        weights_path = Path(weights_path)
        meta_path = weights_path.with_suffix(".json")
        if not weights_path.is_file():
            raise GenlabError(f"classifier weights {weights_path} do not exist; train the classifier with "
                              f"get_classifier (or copy the .safetensors file and its .json record there).")
        try:
            meta = json.loads(meta_path.read_text())
            expected = meta["weights_sha256"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GenlabError(f"cannot read the classifier record {meta_path} ({exc}); delete it and "
                              f"{weights_path.name} to retrain the classifier.") from None
        actual = sha256_of(weights_path)
        if actual != expected:
            raise GenlabError(f"classifier weights {weights_path} are corrupt: SHA-256 {actual}, but "
                              f"{meta_path.name} records {expected}. Delete both files to retrain the "
                              f"classifier.")
        net = SmallCNN(int(meta["channels"]), int(meta["num_classes"]), int(meta["recipe"]["width"]),
                       int(meta["recipe"]["feature_dim"]))
        try:
            net.load_state_dict(load_file(str(weights_path)))
        except (RuntimeError, OSError, ValueError) as exc:
            raise GenlabError(f"classifier weights {weights_path} do not fit the network recorded in "
                              f"{meta_path.name} ({exc}); delete both files to retrain.") from None
        return cls(net, meta, weights_path, device)


# ---------------------------------------------------------------- training


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


def _labelled(cfg: DataConfig) -> tuple[ImageSet, ImageSet, int, list[str]]:
    data = load_data(cfg)
    if data.train.labels is None:
        why = " (data.labels is false)" if not cfg.labels else ""
        raise GenlabError(f"data set {cfg.name!r}{f' at {cfg.root}' if cfg.root else ''} has no labels{why}, so "
                          f"genlab cannot train a domain classifier on it. Labelled sets: {LABELLED_SETS}.")
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


def _fit(loader: BatchLoader, channels: int, num_classes: int, rec: Recipe, dev: torch.device
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
    train, val, k, names = _labelled(cfg)
    ch, dev = channels_of(cfg), torch.device(device)
    loader = BatchLoader(train.images, train.labels, batch_size=rec.batch_size, shuffle=True, seed=rec.seed,
                         normalizer=Normalizer("minus_one_one", ch), drop_last=len(train) >= rec.batch_size,
                         device=dev)
    t0 = time.perf_counter()
    with _threads(threads):
        net, n_epochs, steps = _fit(loader, ch, k, rec, dev)
    seconds = time.perf_counter() - t0
    probe = DomainClassifier(net, {"channels": ch, "image_size": cfg.image_size, "dataset": dataset_slug(cfg)},
                             Path("unsaved"), dev)
    pred = probe.predict(val.images)
    split = ("official test split" if cfg.name in OFFICIAL_TEST_SPLIT
             else f"validation split ({cfg.val_fraction:.0%} held out, split_seed {cfg.split_seed})")
    meta = {"dataset": dataset_slug(cfg), "data_name": cfg.name, "root": cfg.root, "image_size": cfg.image_size,
            "channels": ch, "num_classes": k, "class_names": names,
            "test_accuracy": float((pred == val.labels).mean()), "n_train": len(train), "n_test": len(val),
            "test_split": split, "epochs_run": n_epochs, "steps": steps,
            "train_seconds": round(seconds, 1), "trained_on": dev.type, "recipe": asdict(rec),
            "recipe_version": RECIPE_VERSION, "data_key_fields": _key_fields(cfg), "preprocessing": PREPROCESSING,
            "created_with": f"genlab {__version__}, torch {torch.__version__}"}
    return net.cpu(), meta


def _atomic_write(path: Path, write) -> None:
    """Via a per-process temporary name (not mkstemp, whose 0600 mode would hide the file in a shared cache)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save_classifier(net: SmallCNN, meta: dict[str, Any], weights_path: Path) -> dict[str, Any]:
    """Weights first, record second, each by rename: a crash leaves no record pointing at a partial file."""
    from safetensors.torch import save

    weights_path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    _atomic_write(weights_path, lambda p: Path(p).write_bytes(save(state)))  # save_file would write 0600
    meta = {**meta, "weights_sha256": sha256_of(weights_path)}
    _atomic_write(weights_path.with_suffix(".json"),
                  lambda p: Path(p).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n"))
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
    net, meta = train_classifier(data_cfg, device=device, threads=threads, **asdict(rec))
    meta = save_classifier(net, meta, weights_path)
    log.info("classifier %s: test accuracy %.4f on %d images (%s), trained in %.0f s",
             weights_path.name, meta["test_accuracy"], meta["n_test"], meta["test_split"], meta["train_seconds"])
    return DomainClassifier(net, meta, weights_path, device)


# ---------------------------------------------------------------- class accuracy of conditional samples


def _model_device(model: Any) -> torch.device:
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration, TypeError):
        return torch.device("cpu")


@torch.no_grad()
def class_accuracy(classifier: DomainClassifier, model: Any, normalizer: Normalizer, *, per_class: int = 1000,
                   seed: int = 0, batch_size: int = 250) -> dict[str, Any]:
    """Share of samples drawn *for* class c that the independent classifier puts in class c, per class.

    Per class rather than overall, because a conditional model that ignores one label hides behind the
    others in a pooled number; the worst class is named for the same reason.
    """
    if not getattr(model, "conditional", False):
        raise GenlabError("class accuracy needs a class-conditional model (a GAN built with conditional: true); "
                          "this model does not take labels.")
    k_model, k_clf = int(getattr(model, "num_classes", 0)), classifier.num_classes
    if k_model != k_clf:
        raise GenlabError(f"the model generates {k_model} classes but {classifier.name} "
                          f"({classifier.weights_path.name}) knows {k_clf}; both must come from the same "
                          f"labelled data set.")
    if per_class < 1 or batch_size < 1:
        raise GenlabError(f"class accuracy needs per_class >= 1 and batch_size >= 1; got {per_class} and "
                          f"{batch_size}.")
    device = _model_device(model)
    was_training = bool(getattr(model, "training", False))
    if isinstance(model, nn.Module):
        model.eval()
    gen = torch.Generator(device=device).manual_seed(seed)
    names, accs = classifier.class_names, {}
    try:
        for c in range(k_clf):
            correct = 0
            for start in range(0, per_class, batch_size):
                n = min(batch_size, per_class - start)
                labels = torch.full((n,), c, dtype=torch.long, device=device)
                images = to_uint8(normalizer.to_unit(model.sample(n, generator=gen, labels=labels)))
                correct += int((classifier.predict(images, batch_size) == c).sum())
            accs[names[c]] = correct / per_class
    finally:
        if isinstance(model, nn.Module):
            model.train(was_training)
    worst = min(accs, key=accs.get)
    return {"class_accuracy_mean": float(np.mean(list(accs.values()))), "class_accuracy": accs,
            "worst_class": worst, "worst_class_accuracy": accs[worst], "n_per_class": per_class, "seed": seed,
            "classifier": classifier.identity(), "classifier_test_accuracy": classifier.test_accuracy,
            "protocol": f"for each of the {k_clf} classes, {per_class} samples drawn with that label "
                        f"(torch.Generator seeded with {seed}), mapped to [0, 1] by the data normaliser, quantised "
                        f"to uint8 and labelled by {classifier.name} (its own test accuracy "
                        f"{classifier.test_accuracy:.4f}); accuracy is the share given the requested class, the "
                        f"mean is unweighted over classes."}


__all__ = ["PREPROCESSING", "RECIPE_VERSION", "DomainClassifier", "Recipe", "SmallCNN", "cache_key",
           "cache_paths", "class_accuracy", "classifier_data_config", "dataset_slug", "get_classifier",
           "make_recipe", "save_classifier", "train_classifier"]
