"""What the explorer shows, computed from a loaded run: no web code here, so it is testable alone.

VAE family: codes of held-out or uploaded images, the dimensions ranked by mean KL over the held-out
set (the same ranking as the traversal figures), decodes, samples and interpolations.
GANs: z-space directions found by GANSpace (Härkönen et al. 2020): PCA of the generator's first-layer
activations over random z, each principal component mapped back to a direction in z by least
squares; plus truncation (resampling |z| > t) and, for conditional models, a class.
"""

from __future__ import annotations

import contextlib
import io
import math
import time

import numpy as np
import torch
from PIL import Image
from torch import nn

from genlab.data.loader import to_uint8
from genlab.errors import GenlabError
from genlab.run import LoadedRun
from genlab.viz.latent import dimension_ranking, encode_all, slerp

SLIDER_LIMIT = 3.0  # the narrowest slider range: ±3 prior standard deviations, the traversal figures' range
SLIDER_BOUND = 20.0  # what the server accepts: a coordinate beyond 20 prior standard deviations is no code
MAX_SLIDERS = 12
HELD_OUT_SHOWN = 64  # held-out images offered for picking
GANSPACE_SAMPLES = 2000


def png_bytes(images_unit: torch.Tensor, scale: int = 1) -> bytes:
    """(N, C, H, W) in [0, 1] -> one PNG strip, N images side by side, nearest-neighbour upscaled."""
    arr = np.concatenate(list(to_uint8(images_unit)), axis=1)
    img = Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def truncated_normal(n: int, dim: int, truncation: float | None, seed: int) -> torch.Tensor:
    """N(0, I) codes with every |z_i| > truncation redrawn (the truncation trick of Brock et al. 2019)."""
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(n, dim, generator=gen)
    if truncation is not None:
        for _ in range(100):
            bad = z.abs() > truncation
            if not bad.any():
                break
            z[bad] = torch.randn(int(bad.sum()), generator=gen)
        z = z.clamp(-truncation, truncation)
    return z


class _FirstLayerDone(Exception):
    """Raised by the GANSpace hook once it has the first layer's output."""


def _first_layer(generator: nn.Module) -> nn.Module:
    for m in generator.modules():
        if isinstance(m, (nn.Linear, nn.ConvTranspose2d, nn.Conv2d)):
            return m
    raise GenlabError("the generator has no linear or convolutional layer to find principal directions in.")


class Space:
    def __init__(self, loaded: LoadedRun):
        self.loaded = loaded
        self.model = loaded.model.eval()
        self.normalizer = loaded.data.normalizer
        caps = loaded.caps
        if not caps.can_sample:
            raise GenlabError(f"the explorer decodes codes drawn from the model's prior; model {caps.name!r} "
                              f"cannot draw samples: {caps.cannot_sample}.")
        if not caps.latent.traversable:
            raise GenlabError(f"the explorer moves through a flat latent code with an N(0, I) prior; model "
                              f"{caps.name!r} has a {caps.latent.layout} code with a {caps.latent.prior} prior.")
        # No encoder (a GAN): sliders move along principal directions of z; else along code coordinates.
        self.gan = not caps.has_encoder
        self.latent_dim = int(self.model.latent_dim)
        self.num_classes = caps.num_classes
        names = loaded.data.train.class_names
        self.class_names = names if names else [str(c) for c in range(self.num_classes)]
        self.held_out = loaded.data.val.images[:HELD_OUT_SHOWN]
        self.last_decode_ms = 0.0
        if self.gan:
            self.directions, self.direction_scores = self._ganspace()
            self.ranked = list(range(min(MAX_SLIDERS, len(self.directions))))
        else:
            x = self._normalise(loaded.data.val.images[:2000])
            means, logvars = encode_all(self.model, x)
            order, scores = dimension_ranking(means, logvars)
            self.ranked, self.rank_scores = order[:MAX_SLIDERS], scores[:MAX_SLIDERS]
            self.score_name = "KL" if logvars is not None else "var"
            # a slider covers every held-out code of its dimension, in half steps beyond ±3
            reach = means.abs().amax(0) if len(means) else torch.zeros(self.latent_dim)
            self.ranges = {d: max(SLIDER_LIMIT, math.ceil(float(reach[d]) * 2) / 2) for d in self.ranked}

    # -------------------------------------------------------------- shared
    def _normalise(self, images_uint8: np.ndarray) -> torch.Tensor:
        return self.normalizer(torch.from_numpy(np.ascontiguousarray(images_uint8)).permute(0, 3, 1, 2))

    @torch.no_grad()
    def decode(self, z: torch.Tensor, label: int | None = None) -> torch.Tensor:
        """Codes (N, latent_dim) -> images in [0, 1]; the decode time is kept for the latency readout."""
        t = time.perf_counter()
        if self.gan:
            labels = None
            if self.num_classes:
                labels = torch.full((len(z),), self.check_label(label), dtype=torch.long)
            out = self.model.decode(z, labels)
        else:
            out = self.model.decode(z)
        images = self.normalizer.to_unit(out.float())
        self.last_decode_ms = (time.perf_counter() - t) * 1000
        return images

    def check_label(self, label: int | None) -> int:
        if label is None or not 0 <= label < self.num_classes:
            raise GenlabError(f"label must be a class index in 0..{self.num_classes - 1}; got {label}.")
        return label

    def check_code(self, z: list[float]) -> torch.Tensor:
        if len(z) != self.latent_dim or not all(np.isfinite(z)):
            raise GenlabError(f"a code must be {self.latent_dim} finite numbers; got {len(z)}.")
        return torch.tensor(z, dtype=torch.float32).unsqueeze(0)

    def samples(self, n: int, seed: int, truncation: float | None = None, label: int | None = None) -> torch.Tensor:
        """A GAN's z from N(0, I) (truncated if asked); a VAE's codes from its prior, the fitted mixture when
        it has one (models.priors), as its sample figures and `genlab sample` draw them."""
        if self.gan:
            return self.decode(truncated_normal(n, self.latent_dim, truncation, seed), label)
        from genlab.models.latent import draw_codes

        return self.decode(draw_codes(self.model, n, torch.Generator().manual_seed(seed)).float().cpu())

    def prior(self) -> str:
        from genlab.models.latent import prior_description

        return "N(0, I)" if self.gan else prior_description(self.model, short=True)

    # -------------------------------------------------------------- VAE family
    @torch.no_grad()
    def encode_images(self, images_uint8: np.ndarray) -> torch.Tensor:
        """Posterior means: the code a reconstruction decodes (the β-VAE experiment's protocol)."""
        return self.model.encode(self._normalise(images_uint8)).mean.float()

    def held_out_code(self, index: int) -> torch.Tensor:
        if not 0 <= index < len(self.held_out):
            raise GenlabError(f"held-out image index must be in 0..{len(self.held_out) - 1}; got {index}.")
        return self.encode_images(self.held_out[index:index + 1])

    def interpolate(self, z_a: torch.Tensor, z_b: torch.Tensor, steps: int, spherical: bool) -> torch.Tensor:
        ts = [i / (steps - 1) for i in range(steps)]
        path = [slerp(z_a[0], z_b[0], t) if spherical else (1 - t) * z_a[0] + t * z_b[0] for t in ts]
        return self.decode(torch.stack(path))

    # -------------------------------------------------------------- GANs
    @torch.no_grad()
    def _ganspace(self) -> tuple[torch.Tensor, list[float]]:
        from sklearn.decomposition import PCA

        z = truncated_normal(GANSPACE_SAMPLES, self.latent_dim, None, seed=0)
        feats: list[torch.Tensor] = []

        def grab(module, inputs, output) -> None:
            feats.append(output.detach().flatten(1).float())
            raise _FirstLayerDone  # the rest of the generator is not needed: 2,000 whole images cost a minute

        hook = _first_layer(self.model.sampling_generator).register_forward_hook(grab)
        try:
            labels = torch.arange(GANSPACE_SAMPLES) % self.num_classes if self.num_classes else None
            for start in range(0, GANSPACE_SAMPLES, 500):
                with contextlib.suppress(_FirstLayerDone):
                    self.model.decode(z[start:start + 500], None if labels is None else labels[start:start + 500])
        finally:
            hook.remove()
        k = min(MAX_SLIDERS, self.latent_dim)
        pca = PCA(n_components=k, random_state=0).fit(torch.cat(feats).numpy())
        coeffs = pca.transform(torch.cat(feats).numpy())
        coeffs /= coeffs.std(0, keepdims=True)  # unit-variance coordinates: a slider unit is one std
        b, *_ = np.linalg.lstsq(coeffs, z.numpy(), rcond=None)  # z ~ coeffs @ b: b[i] is direction i in z
        directions = torch.from_numpy(b).float()
        directions /= directions.norm(dim=1, keepdim=True)
        return directions, [float(v) for v in pca.explained_variance_ratio_]

    def sliders(self) -> list[dict[str, object]]:
        if self.gan:
            return [{"index": i, "name": f"PC{i + 1}", "score": round(s, 4), "score_name": "explained variance",
                     "min": -SLIDER_LIMIT, "max": SLIDER_LIMIT} for i, s in zip(self.ranked, self.direction_scores)]
        return [{"index": d, "name": f"z{d}", "score": round(s, 4), "score_name": f"mean {self.score_name}",
                 "min": -self.ranges[d], "max": self.ranges[d]} for d, s in zip(self.ranked, self.rank_scores)]

    def apply_sliders(self, base: torch.Tensor, values: dict[int, float]) -> torch.Tensor:
        """VAE: set coordinate d to its value; GAN: move along principal direction i by its value."""
        z = base.clone()
        for key, v in values.items():
            if not -SLIDER_BOUND <= v <= SLIDER_BOUND:
                raise GenlabError(f"slider values must lie in [-{SLIDER_BOUND:g}, {SLIDER_BOUND:g}]; got {v}.")
            if self.gan:
                if not 0 <= key < len(self.directions):
                    raise GenlabError(f"direction index must be in 0..{len(self.directions) - 1}; got {key}.")
                z = z + v * self.directions[key]
            else:
                if not 0 <= key < self.latent_dim:
                    raise GenlabError(f"latent dimension must be in 0..{self.latent_dim - 1}; got {key}.")
                z[0, key] = v
        return z
