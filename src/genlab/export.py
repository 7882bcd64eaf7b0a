"""`genlab export`: a trained run as files that another program can load without genlab.

    decoder.pt / .onnx   z -> image            (models with an encoder: the autoencoder family)
    encoder.pt / .onnx   image -> mean[, logvar]
    generator.pt / .onnx z[, labels] -> image  (models without one: the GANs)
    model.safetensors    the full state dict (a GAN's discriminator included), for fine-tuning in genlab
    model.json           how to rebuild the model, the contract of each graph, SHA-256 of each file
    README.md            the model card: model, data, training, every stored score with its protocol, the
                         config, and how to load each file above without genlab (see genlab.model_card)
    samples.png          the run's sample figure, when it has one (shown in the card)
    prior.npz            a fitted ex-post prior's mixture (weights, means, scale_tril), when the model has one
    prior.pt / .onnx     a learned prior over the code grid (vqvae_prior): code-index grid -> logits per cell;
                         model.json's graphs.prior says how to sample through it and the decoder
    codebook.npz         a quantized posterior's codebook (a VQ-VAE's): `codebook` (K, code_dim) and `grid_shape`
                         (code_dim, h, w), what the flat code of encoder and decoder unflattens to

Every graph speaks images in [0, 1] (N, C, H, W, float32), not genlab's normalised range: the decoder
and generator de-normalise and clamp their output, and the encoder normalises its input, so a
consumer needs neither the data set's mean and std nor any genlab code. (model.json still records
the normalisation, for whoever loads the safetensors weights into genlab's own modules.) The batch
dimension is dynamic in both TorchScript and ONNX graphs.

TorchScript files come from `torch.jit.trace`: the models' forward passes have no data-dependent
control flow, and tracing, unlike scripting, accepts the `Posterior` dataclass the encoders return.
A traced module keeps every submodule of what it wraps, so an autoencoder's decoder.pt and encoder.pt
each carry the whole model's weights (only their own path runs); the ONNX graphs hold only what they use.
A GAN's generator.pt wraps the generator alone.
ONNX files come from PyTorch's torch.export-based exporter (`dynamo=True`, the default since
PyTorch 2.9; the TorchScript-based one is deprecated), as one self-contained file each (no external
data), which needs the `onnx` and `onnxscript` packages: `pip install "genlab[export]"`.

Loading without genlab:

    torch.jit.load("decoder.pt")(torch.randn(8, latent_dim))                      # -> (8, C, H, W)
    onnxruntime.InferenceSession("decoder.onnx").run(None, {"z": z})[0]
    safetensors.torch.load_file("model.safetensors")                               # -> state dict
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from genlab import __version__
from genlab.errors import GenlabError
from genlab.io import atomic_write, sha256_of
from genlab.models import Capabilities

FORMATS = ("torchscript", "onnx", "safetensors")
EXPORT_DIR = "export"
MANIFEST = "model.json"
WEIGHTS = "model.safetensors"
CARD = "README.md"
FIGURE = "samples.png"
DIFFUSERS_DIR = "diffusers"  # a diffusion model's U-Net and scheduler, in diffusers' layout
PRIOR = "prior.npz"
CODEBOOK = "codebook.npz"
MANIFEST_FORMAT_VERSION = 1
# Example batch for tracing and torch.export: not 1, which torch.export would specialise as a constant,
# and not a size the tests use, so a batch size baked into a graph shows up as a failure.
TRACE_BATCH = 2
ONNX_PACKAGES = ("onnx", "onnxscript")


class ImageDecoder(nn.Module):
    """z [, labels] -> images in [0, 1]: the model's decode, then genlab's normalisation undone and clamped,
    the same as `Normalizer.to_unit`, so the exported graph's output needs no post-processing."""

    def __init__(self, decode: nn.Module, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.decode = decode
        self.register_buffer("pixel_mean", mean.detach().clone().float())
        self.register_buffer("pixel_std", std.detach().clone().float())

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.decode(z) if labels is None else self.decode(z, labels)
        return (x * self.pixel_std + self.pixel_mean).clamp(0.0, 1.0)


class ImageEncoder(nn.Module):
    """Images in [0, 1] -> posterior mean (and log-variance where the model has one): genlab's
    normalisation is applied inside, so the caller feeds plain [0, 1] pixels."""

    def __init__(self, model: nn.Module, mean: torch.Tensor, std: torch.Tensor, with_logvar: bool):
        super().__init__()
        self.model = model
        self.with_logvar = with_logvar
        # Not "mean"/"std": ONNX initializers are named after buffers, and "mean" is an output's name.
        self.register_buffer("pixel_mean", mean.detach().clone().float())
        self.register_buffer("pixel_std", std.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        posterior = self.model.encode((x - self.pixel_mean) / self.pixel_std)
        if self.with_logvar:
            return posterior.mean, posterior.logvar
        return posterior.mean


class PriorLogits(nn.Module):
    """A learned prior's (B, h, w) int64 code-index grid -> (B, K, h, w) logits of each cell's code given the
    cells before it in raster order (`prior_logits`)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        return self.model.prior_logits(indices)


class _Decode(nn.Module):
    """`model.decode` as a module's forward, for the VAE family, whose decode path spans several submodules."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.model.decode(z)


@dataclass
class Graph:
    """One exported network: the wrapper module, example inputs to trace it with, and its documented contract."""

    name: str
    module: nn.Module
    example: tuple[torch.Tensor, ...]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    files: dict[str, str] = field(default_factory=dict)

    def contract(self) -> dict[str, Any]:
        return {"inputs": self.inputs, "outputs": self.outputs, "files": dict(self.files)}


def export_run(run_dir: Path, formats: list[str] | tuple[str, ...] = FORMATS, *, out: Path | None = None,
               which: str = "best") -> list[Path]:
    """Export a run's `which` checkpoint in `formats` to `out` (default RUN_DIR/export/); returns the files written.

    Each file is written to a temporary name and renamed, so an interrupted export leaves no half-written file.
    model.json is always written, last, and lists only this export's files with their SHA-256, so a consumer
    can tell them from a stale file of an earlier export, or from one an interrupted export replaced. The model
    card (README.md) is written every time, from the same manifest, just before model.json, which lists it too.
    """
    from genlab.run import load_model

    chosen = check_formats(formats)
    if "onnx" in chosen:
        require_onnx()
    loaded = load_model(Path(run_dir), which)  # the checkpoint alone: exporting needs no data set
    parameters = _parameter_counts(loaded.model)  # before the freeze below, which hides what training updated
    # Inference graphs: outputs that do not require grad, so a consumer's `graph(z).numpy()` just works.
    model = loaded.model.cpu().eval().requires_grad_(False)
    out = Path(out) if out is not None else loaded.run.path / EXPORT_DIR
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenlabError(f"cannot create the export folder {out}: {exc.strerror}; choose another with --out."
                          ) from None

    normalizer = loaded.normalizer
    channels = loaded.channels
    mean = normalizer.mean.float().expand(1, channels, 1, 1).clone()
    std = normalizer.std.float().expand(1, channels, 1, 1).clone()
    graphs = build_graphs(model, loaded.caps, mean, std)

    written: list[Path] = []
    with torch.no_grad():
        for graph in graphs:
            if "torchscript" in chosen:
                written.append(_export_torchscript(graph, out))
            if "onnx" in chosen:
                written.append(_export_onnx(graph, out))
    if "safetensors" in chosen:
        written.append(_export_safetensors(model, loaded.cfg.model.name, out))

    if loaded.caps.family == "diffusion":
        written.extend(_export_diffusers(model, out))

    prior_file = _export_prior(model, out)
    if prior_file is not None:
        written.append(prior_file)
    codebook_file = _export_codebook(model, loaded.caps, out)
    if codebook_file is not None:
        written.append(codebook_file)

    figure = _copy_figure(loaded.run.figures / FIGURE, out)
    if figure is not None:
        written.append(figure)

    manifest = _manifest(loaded, model, mean, std, graphs, written, which, parameters, out)
    card = _write_card(manifest, loaded.run.path, out, figure)
    manifest["files"][card.name] = _file_entry(card)
    manifest_path = out / MANIFEST
    atomic_write(manifest_path, json.dumps(manifest, indent=2) + "\n")
    return [*written, card, manifest_path]


def default_formats() -> tuple[list[str], str | None]:
    """Every format this installation can write, and a note when ONNX is left out for lack of its extra."""
    if all(importlib.util.find_spec(m) for m in ONNX_PACKAGES):
        return list(FORMATS), None
    return ([f for f in FORMATS if f != "onnx"],
            'onnx is not installed: exporting TorchScript and safetensors (pip install "genlab[export]" for ONNX too)')


def check_formats(formats: list[str] | tuple[str, ...]) -> list[str]:
    """The requested formats, deduplicated in order; a GenlabError naming the valid ones for anything else."""
    if isinstance(formats, str):
        formats = [formats]
    chosen = list(dict.fromkeys(f.strip().lower() for f in formats))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        what = f"unknown export format {', '.join(repr(f) for f in unknown)}" if unknown else "no export format given"
        raise GenlabError(f"{what}; --format takes one or more of: {', '.join(FORMATS)}.")
    return chosen


def require_onnx() -> None:
    """ONNX export is an optional extra: say how to install it before any file is written."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise GenlabError(f"ONNX export needs the {' and '.join(ONNX_PACKAGES)} packages ({', '.join(missing)} "
                          f"missing here); install them with pip install \"genlab[export]\", or leave onnx out "
                          f"of --format (valid: {', '.join(FORMATS)}).")
    if "dynamo" not in _parameters(torch.onnx.export):
        raise GenlabError(f"ONNX export uses PyTorch's torch.export-based exporter (torch.onnx.export(dynamo=True)), "
                          f"which torch {torch.__version__} lacks; upgrade torch, or leave onnx out of --format.")


def build_graphs(model: nn.Module, caps: Capabilities, mean: torch.Tensor, std: torch.Tensor) -> list[Graph]:
    """The graphs a model exports: a generator for a model without an encoder (a GAN), else a decoder and
    an encoder (with the log-variance output for variational models)."""
    if caps.family == "diffusion":  # its sampler is many network calls in a loop: see _export_diffusers
        return []
    gen = torch.Generator().manual_seed(0)
    latent_dim = int(model.latent_dim)
    channels, height, width = (int(s) for s in model.image_shape)
    z = torch.randn(TRACE_BATCH, latent_dim, generator=gen)
    from genlab.models.latent import prior_description

    drawn = prior_description(model)
    z_spec = {"name": "z", "dtype": "float32", "shape": ["batch", latent_dim],
              "description": "latent code; training used the standard-normal prior N(0, I)"
                             + ("" if drawn == "N(0, I)" else f"; genlab samples from {drawn}, in {PRIOR}")}
    code_description = "posterior mean (the code to decode)"
    if caps.latent.quantized:
        grid = [int(s) for s in model.grid_shape]
        z_spec["description"] = (f"quantised code grid {grid} (code_dim, h, w), flattened channels first: each "
                                 f"code_dim vector is a row of `codebook` in {CODEBOOK} (a grid of code indices k "
                                 f"decodes as codebook[k].transpose to (code_dim, h, w), flattened)")
        code_description = (f"the quantised code: every cell of the {grid} grid replaced by its nearest codebook "
                            f"vector ({CODEBOOK}), flattened channels first")
    image_spec = {"name": "image", "dtype": "float32", "shape": ["batch", channels, height, width], "range": [0, 1],
                  "description": "images in [0, 1], channels first (genlab's normalisation already undone)"}
    if not caps.has_encoder:
        module = ImageDecoder(model.sampling_generator, mean, std).eval()
        if caps.conditional:
            labels = torch.arange(TRACE_BATCH) % caps.num_classes
            label_spec = {"name": "labels", "dtype": "int64", "shape": ["batch"],
                          "range": [0, caps.num_classes - 1], "description": "class index of each image"}
            return [Graph("generator", module, (z, labels), [z_spec, label_spec], [image_spec])]
        return [Graph("generator", module, (z,), [z_spec], [image_spec])]

    graphs = [Graph("decoder", ImageDecoder(_Decode(model), mean, std).eval(), (z,), [z_spec], [image_spec])]
    if caps.has_encoder:
        x = torch.rand(TRACE_BATCH, channels, height, width, generator=gen)
        with_logvar = caps.variational
        code = {"dtype": "float32", "shape": ["batch", latent_dim]}
        outputs = [{"name": "mean", **code, "description": code_description}]
        if with_logvar:
            outputs.append({"name": "logvar", **code, "description": "log-variance of the diagonal Gaussian "
                                                                      "posterior; sample mean + exp(logvar / 2) * eps"})
        image_in = {**image_spec, "description": "images in [0, 1], channels first; normalised inside the graph"}
        graphs.append(Graph("encoder", ImageEncoder(model, mean, std, with_logvar).eval(), (x,), [image_in], outputs))
    if caps.latent.prior == "learned" and caps.can_sample:  # a prior over the code grid (vqvae_prior)
        graphs.append(prior_graph(model, gen))
    return graphs


SAMPLING_NOTE = ("raster-order sampling: start from an all-zero (batch, h, w) int64 grid; for each row i and "
                 "column j in turn, run the prior graph on the grid, draw the cell's code from softmax(logits[:, "
                 ":, i, j] / temperature) and write it at [:, i, j] (h * w passes); then decode the grid with "
                 f"codebook[grid] from {CODEBOOK}, moved to (batch, code_dim, h, w) and flattened channels first, "
                 "through the decoder graph")


def prior_graph(model: nn.Module, gen: torch.Generator) -> Graph:
    """The learned prior as a graph of its own: code-index grid -> logits; SAMPLING_NOTE says how to sample."""
    k, (h, w) = int(model.num_codes), (int(s) for s in model.grid_shape[1:])
    indices = torch.randint(k, (TRACE_BATCH, h, w), generator=gen)
    grid_in = {"name": "indices", "dtype": "int64", "shape": ["batch", h, w], "range": [0, k - 1],
               "description": "a grid of code indices (only the cells before each cell, in raster order, "
                              "affect that cell's logits)"}
    logits = {"name": "logits", "dtype": "float32", "shape": ["batch", k, h, w],
              "description": f"log-probabilities up to a constant of each cell's code; {SAMPLING_NOTE}"}
    return Graph("prior", PriorLogits(model).eval(), (indices,), [grid_in], [logits])


def _export_torchscript(graph: Graph, out: Path) -> Path:
    path = out / f"{graph.name}.pt"
    with warnings.catch_warnings():
        # torch.jit is deprecated in favour of torch.export in recent PyTorch, but TorchScript is still what
        # `torch.jit.load` reads without the defining code; the warning would only alarm the user.
        for category in (FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=category)
        traced = torch.jit.trace(graph.module, graph.example)
        atomic_write(path, lambda tmp: torch.jit.save(traced, str(tmp)))
    graph.files["torchscript"] = path.name
    return path


def _export_onnx(graph: Graph, out: Path) -> Path:
    batch = torch.export.Dim("batch", min=1)
    names_in = [spec["name"] for spec in graph.inputs]
    names_out = [spec["name"] for spec in graph.outputs]

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            # z and labels share one batch Dim; the exporter notes that it keeps one name for both.
            warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
            torch.onnx.export(graph.module, graph.example, str(tmp), input_names=names_in, output_names=names_out,
                              dynamic_shapes=tuple({0: batch} for _ in graph.example), dynamo=True,
                              external_data=False, verbose=False)

    path = out / f"{graph.name}.onnx"
    atomic_write(path, write)
    graph.files["onnx"] = path.name
    return path


def _export_safetensors(model: nn.Module, name: str, out: Path) -> Path:
    from safetensors.torch import save_file

    # Cloned: safetensors refuses tensors that share storage, and a clone never does.
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    path = out / WEIGHTS
    atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata={
        "format": "pt", "genlab_version": __version__, "model": name, "config": MANIFEST}))
    return path


def _export_diffusers(model: nn.Module, out: Path) -> list[Path]:
    """The sampling U-Net (the weight average when there is one) and the DDIM scheduler it was trained for, in
    diffusers' own layout: `UNet2DModel.from_pretrained(out / "diffusers", subfolder="unet")` and
    `DDIMScheduler.from_pretrained(out / "diffusers", subfolder="scheduler")` load them in any program, and
    `DDIMPipeline(unet, scheduler)` samples an unconditional model. Written to a temporary folder and moved."""
    import shutil

    root = out / DIFFUSERS_DIR
    staging = out / f".{DIFFUSERS_DIR}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    model.sampling_unet.save_pretrained(staging / "unet")
    model.sampling_scheduler(model.sample_steps).save_pretrained(staging / "scheduler")
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return sorted(p for p in root.rglob("*") if p.is_file())


def _export_prior(model: nn.Module, out: Path) -> Path | None:
    """A fitted ex-post mixture (genlab.models.priors) as plain arrays, so a consumer of decoder.pt draws codes
    from what genlab samples from: k ~ Categorical(weights), z = means[k] + scale_tril[k] @ N(0, I)."""
    import numpy as np

    prior = getattr(model, "prior", None)
    if prior is None or not bool(getattr(prior, "fitted", False)):
        return None
    path = out / PRIOR

    # The buffer is float32: its weights sum to 1 only to ~1e-7, and numpy's Generator.choice, which a consumer
    # draws k with, refuses p whose float64 sum is off by more than ~1e-8. Renormalised in float64 here.
    weights = prior.weights.double().numpy()
    weights = weights / weights.sum()

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, weights=weights, means=prior.means.double().numpy(),
                     scale_tril=prior.scale_tril.double().numpy())

    atomic_write(path, write)
    return path


def _export_codebook(model: nn.Module, caps: Capabilities, out: Path) -> Path | None:
    """A quantized posterior's codebook as plain arrays, so a consumer can map the encoder's codes to indices
    (nearest row) and code-index grids, such as a prior over them draws, to the decoder's input."""
    import numpy as np

    if not caps.latent.quantized:
        return None
    path = out / CODEBOOK

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, codebook=model.codebook.detach().float().cpu().numpy(),
                     grid_shape=np.asarray([int(s) for s in model.grid_shape], dtype=np.int64))

    atomic_write(path, write)
    return path


def _copy_figure(source: Path, out: Path) -> Path | None:
    """The run's sample figure beside the card that shows it, so the export folder stands on its own."""
    if not source.is_file():
        return None
    return atomic_write(out / FIGURE, lambda tmp: shutil.copyfile(source, tmp))


def _write_card(manifest: dict[str, Any], run_dir: Path, out: Path, figure: Path | None) -> Path:
    from genlab.model_card import model_card

    text = model_card(manifest, run_dir, figure=figure.name if figure is not None else None)
    return atomic_write(out / CARD, text)


def _parameter_counts(model: nn.Module) -> dict[str, Any]:
    """Counted as `genlab train` logs them: trained parameters, and apart from them the frozen ones (a GAN's
    weight-averaged generator copy), which are not more capacity."""
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return {"trained": trained, "frozen": frozen,
            "by_module": {name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()}}


def _file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_of(path), "bytes": path.stat().st_size}


def _manifest(loaded, model: nn.Module, mean: torch.Tensor, std: torch.Tensor, graphs: list[Graph],
              written: list[Path], which: str, parameters: dict[str, Any], out: Path) -> dict[str, Any]:
    from genlab.metrics.provenance import generator_weights
    from genlab.models.latent import sample_source

    cfg, caps, normalizer = loaded.cfg, loaded.caps, loaded.normalizer
    # "gan" / "vae" / "autoencoder": what a consumer of model.json needs to know about the graphs
    family = "vae" if caps.variational else caps.family
    checkpoint = loaded.run.checkpoint(which)
    return {
        "format": "genlab-export",
        "format_version": MANIFEST_FORMAT_VERSION,
        "genlab_version": __version__,
        "torch_version": torch.__version__,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # The checkpoint's hash is what metrics.json records beside each score: it tells the scores of these
        # weights from those of another checkpoint of the run.
        "source": {"run": str(loaded.run.path), "checkpoint": which, "step": int(loaded.step),
                   "checkpoint_file": checkpoint.relative_to(loaded.run.path).as_posix(),
                   "checkpoint_sha256": sha256_of(checkpoint)},
        "model": {
            "name": cfg.model.name,
            "summary": caps.entry.summary,
            "kwargs": cfg.model.kwargs(),
            "family": family,
            "latent_dim": int(model.latent_dim),
            "prior": sample_source(model, caps.latent.flat_prior),
            "conditional": caps.conditional,
            "num_classes": caps.num_classes,
            "parameters": parameters,
            "generator_weights": generator_weights(model),
            **({"codebook": {"file": CODEBOOK, "num_codes": int(model.num_codes),
                             "grid_shape": [int(s) for s in model.grid_shape]}} if caps.latent.quantized else {}),
            **({"sampling": SAMPLING_NOTE} if "prior" in {g.name for g in graphs} else {}),
        },
        # Exactly the arguments of genlab.models.build_model that rebuild the module model.safetensors fits.
        "build": {"name": cfg.model.name, "kwargs": cfg.model.kwargs(), "image_size": cfg.data.image_size,
                  "channels": loaded.channels, "num_classes": loaded.data_classes},
        "image": {"channels": loaded.channels, "height": cfg.data.image_size, "width": cfg.data.image_size,
                  "num_classes": loaded.data_classes},
        "normalization": {
            "kind": normalizer.kind, "mean": mean.flatten().tolist(), "std": std.flatten().tolist(),
            "note": "the exported graphs take and return images in [0, 1]; genlab's modules (as in "
                    "model.safetensors) use (x - mean) / std",
        },
        "graphs": {g.name: g.contract() for g in graphs},
        "files": {p.relative_to(out).as_posix(): _file_entry(p) for p in written},
        "config": cfg.to_dict(),
    }


def _parameters(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()
