"""Images from a trained model, as files an outside evaluator reads: `genlab sample` and `Run.sample`.

A sample set is a folder of PNGs (000000.png, ...) and manifest.json, which says what made them: the
run, the checkpoint with its SHA-256 and step, the seed, each image's label, and which generator
weights drew them (a GAN's weight average or its live weights). Nothing here reads the training data:
the checkpoint alone rebuilds the model (genlab.run.load_model).

Codes are drawn in one piece and decoded in batches, so the same seed gives the same images whatever
the batch size; conditional models cycle through the labels asked for (all classes by default).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genlab import __version__
from genlab.data.loader import to_uint8
from genlab.errors import GenlabError
from genlab.io import atomic_write, sha256_of
from genlab.models.latent import prior_phrase, sample_batches, sample_source
from genlab.progress import counted
from genlab.run import TrainedModel

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1


@dataclass
class Drawn:
    """Images in [0, 1] (N, C, H, W) with the label each was drawn for (None: unconditional)."""

    images: torch.Tensor
    labels: list[int] | None
    source: str
    generator_weights: str


def parse_labels(spec: str | list[int | str] | None, trained: TrainedModel) -> list[int] | None:
    """`--labels`: None or "all" for every class in turn; else class indices or class names, cycled."""
    caps = trained.caps
    if not caps.conditional:
        if spec not in (None, "all"):
            raise GenlabError(f"--labels given, but {trained.run.path}'s model ({caps.name}) is not conditional; "
                              f"leave --labels out.")
        return None
    k = caps.num_classes
    if spec is None or spec == "all":
        return list(range(k))
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = trained.class_names or [str(c) for c in range(k)]
    out = []
    for item in items:
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            label = int(item)
        elif item in names:
            label = names.index(item)
        else:
            raise GenlabError(f"--labels: {item!r} is neither a class index (0..{k - 1}) nor a class name "
                              f"({', '.join(names[:20])}{', ...' if len(names) > 20 else ''}).")
        if not 0 <= label < k:
            raise GenlabError(f"--labels: class {label} is out of range; the model has classes 0..{k - 1}.")
        out.append(label)
    if not out:
        raise GenlabError("--labels is empty; give class indices or names separated by commas, or 'all'.")
    return out


@contextlib.contextmanager
def generator_weights(model: torch.nn.Module, live: bool) -> Iterator[str]:
    """Which generator draws: the weight average where the model keeps one, unless `live` asks for the
    trained weights (what the discriminator last saw)."""
    from genlab.metrics.provenance import generator_weights as described

    attribute = next((a for a in ("generator_ema", "unet_ema") if getattr(model, a, None) is not None), None)
    if not live or attribute is None:
        yield described(model)
        return
    average = getattr(model, attribute)
    setattr(model, attribute, None)
    try:
        yield "live weights (--live; the weight average was not used)"
    finally:
        setattr(model, attribute, average)


@torch.no_grad()
def draw(trained: TrainedModel, n: int, *, seed: int = 0, labels: list[int] | None = None, live: bool = False,
         batch_size: int = 256, device: str | torch.device = "cpu") -> Drawn:
    """n images from the prior (or, for a model with a learned prior, its own sampler)."""
    if n < 1:
        raise GenlabError(f"the number of samples must be at least 1 (got {n}).")
    require_sampler(trained)
    model = trained.model.to(device).eval()
    caps = trained.caps
    per_image = None if labels is None else [labels[i % len(labels)] for i in range(n)]
    flat = caps.latent.flat_prior
    lb = None if per_image is None else torch.tensor(per_image)
    with generator_weights(model, live) as weights:
        # flat codes are drawn in one piece; a learned prior samples itself, one seeded generator per batch
        chunks = list(counted(sample_batches(model, flat, n, seed, batch_size, lb if caps.conditional else None),
                              n, "drawing samples"))
    images = torch.cat([trained.normalizer.to_unit(c.float()).cpu() for c in chunks])
    source = prior_phrase(model) if flat else sample_source(model, flat)
    return Drawn(images, per_image, source, weights)


def require_sampler(trained: TrainedModel) -> None:
    """A model whose entry says it cannot sample (a VQ-VAE without a learned prior) is refused with that reason."""
    if not trained.caps.can_sample:
        raise GenlabError(f"{trained.run.path}'s model ({trained.caps.name}) cannot draw samples: "
                          f"{trained.caps.cannot_sample}. Reconstructions need no prior: genlab sample "
                          f"{trained.run.path} --reconstruct FOLDER.")


def require_encoder(trained: TrainedModel) -> None:
    if not trained.caps.has_encoder:
        raise GenlabError(f"{trained.run.path}'s model ({trained.caps.name}) has no encoder, so it cannot "
                          f"reconstruct images; draw samples instead (leave out --reconstruct).")


def read_folder_images(folder: Path, trained: TrainedModel, limit: int | None = None) -> tuple[np.ndarray, list[str]]:
    """Every image under `folder`, decoded as the run's data section decodes its sources (size, channels,
    center crop); unreadable files are refused by name, since a reconstruction set must be complete."""
    from genlab.data.decode import Geometry, describe_failure, fit_square, open_image, to_array
    from genlab.data.folder import list_images

    require_encoder(trained)
    if not folder.is_dir():
        raise GenlabError(f"--reconstruct {folder}: no such folder.")
    files = list_images(folder)[:limit]
    if not files:
        raise GenlabError(f"--reconstruct {folder}: no image files in it (looked for .png, .jpg, .webp, ... "
                          f"recursively).")
    d = trained.cfg.data
    geom = Geometry(d.image_size, trained.channels == 1, d.center_crop)
    arrays, bad = [], []
    for f in files:
        try:
            arrays.append(to_array(fit_square(open_image(f, geom.grayscale), geom)))
        except Exception as exc:  # Pillow raises many types for bad files; each is reported by name
            bad.append(f"{f} ({describe_failure(exc)})")
    if bad:
        raise GenlabError(f"--reconstruct {folder}: {len(bad)} file(s) cannot be read: {'; '.join(bad[:5])}"
                          f"{' ...' if len(bad) > 5 else ''}. Remove them or point at another folder.")
    return np.stack(arrays), [str(f.relative_to(folder)) for f in files]


@torch.no_grad()
def reconstruct(trained: TrainedModel, images_uint8: np.ndarray, *, batch_size: int = 256,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """Reconstructions in [0, 1] from the posterior mean (what the β-VAE experiment scores)."""
    require_encoder(trained)
    model = trained.model.to(device).eval()
    out = []
    for start in range(0, len(images_uint8), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images_uint8[start:start + batch_size])).permute(0, 3, 1, 2)
        out.append(trained.normalizer.to_unit(model.reconstruct(trained.normalizer(x).to(device)).float()).cpu())
    return torch.cat(out)


def check_output(out: Path, overwrite: bool) -> None:
    """A sample folder may replace only an earlier sample set, and only when asked: nothing else is lost."""
    if out.exists() and not out.is_dir():
        raise GenlabError(f"--out {out} is a file; choose a folder.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise GenlabError(f"--out {out} is not empty and holds no {MANIFEST}, so it is not a genlab sample "
                              f"set; choose an empty or new folder.")
        if not overwrite:
            raise GenlabError(f"--out {out} already holds a sample set; replace it with --overwrite or choose "
                              f"another folder.")


def write_set(out: Path, images: torch.Tensor, trained: TrainedModel, *, overwrite: bool = False,
              **facts: Any) -> Path:
    """PNG files and manifest.json, written beside `out` and moved into place complete: an earlier set there
    is replaced only then, so a failure half way leaves the earlier set as it was."""
    import shutil
    import tempfile

    check_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        manifest = _write_files(new, images, trained, dict(facts))
        if out.exists():
            old = out.with_name(f".{out.name}.old-{new.name.rsplit('-', 1)[-1]}")
            out.rename(old)
            new.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            new.rename(out)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return out / manifest


def _write_files(folder: Path, images: torch.Tensor, trained: TrainedModel, facts: dict[str, Any]) -> str:
    from PIL import Image

    pixels = to_uint8(images)
    width = max(6, len(str(len(pixels) - 1)))
    labels = facts.pop("labels", None)
    sources = facts.pop("sources", None)
    names = trained.class_names
    entries = []
    for i, arr in enumerate(pixels):
        file = f"{i:0{width}d}.png"
        Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr).save(folder / file)
        entry: dict[str, Any] = {"file": file}
        if labels is not None:
            entry["label"] = labels[i]
            if names:
                entry["class_name"] = names[labels[i]]
        if sources is not None:
            entry["source"] = sources[i]
        entries.append(entry)
    ckpt = trained.run.checkpoint(trained.which)
    manifest = {
        "format": MANIFEST_FORMAT,
        "genlab_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": str(trained.run.path),
        "model": trained.cfg.model.name,
        "checkpoint": {"which": trained.which, "file": str(ckpt), "sha256": sha256_of(ckpt), "step": trained.step},
        **facts,
        "count": len(entries),
        "image_shape": list(pixels.shape[1:]),
        "images": entries,
    }
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    return MANIFEST
