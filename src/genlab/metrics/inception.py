"""FID's feature extractor: Inception-v3 pool3 (2048-d) with the TensorFlow-compatible resize to 299x299.

The network is torch-fidelity's port, the reference that FID numbers in papers agree with; genlab only
decides where its weights come from (a hash-checked local file, see metrics.weights) and how images reach it.
"""

from __future__ import annotations

import numpy as np
import torch

from genlab.metrics.weights import INCEPTION, sha256_of, verified_path

FEATURE_DIM = 2048


class InceptionFeatures:
    """uint8 NHWC images -> 2048-d features; gray images are repeated to three channels (stated in identity)."""

    name = "inception-v3-fid"

    def __init__(self, device: torch.device | str = "cpu", *, batch_size: int = 50,
                 expected_sha256: str | None = None):
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = verified_path(INCEPTION, expected_sha256)
        # torch-fidelity unpickles the file itself; that is safe only because its hash was checked above.
        self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(path)).to(device)
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.sha256 = expected_sha256 or INCEPTION.sha256
        self.file = path

    def identity(self) -> dict[str, object]:
        return {"name": self.name, "implementation": "torch-fidelity FeatureExtractorInceptionV3, pool3",
                "weights": self.file.name, "weights_sha256": self.sha256, "feature_dim": FEATURE_DIM,
                "resize": "bilinear to 299x299, TensorFlow-1.x compatible (torch-fidelity)",
                "gray_images": "repeated to 3 channels"}

    @torch.no_grad()
    def features(self, images: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(images), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + self.batch_size])).permute(0, 3, 1, 2)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            (f,) = self.net(x.contiguous().to(self.device))
            out.append(f.double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FEATURE_DIM))


__all__ = ["FEATURE_DIM", "InceptionFeatures", "sha256_of"]
