"""A trained classifier with the record of how it was made: the Fréchet feature extractor and the class judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab.data import Normalizer
from genlab.errors import GenlabError
from genlab.io import sha256_of
from genlab.metrics.classifier.network import PREPROCESSING, SmallCNN


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
