"""genlab from Python: the objects the command line uses, shaped for notebooks and scripts.

    import genlab
    run = genlab.train("betavae_cats", beta=100, epochs=5, name="cats_b100")
    run = genlab.open("runs/cats_b100")
    run.sample(16)                 # Images: shows itself as a grid in a notebook
    run.metrics                    # every stored score with its protocol (a table in a notebook)
    run.figure("traversal")        # drawn when missing; shows itself
    genlab.compare(run, "runs/cats_b10")

Keywords name config keys: a bare key when one section has it (`beta` is objective.beta, `epochs` is
train.epochs), `section__key` when several do or for clarity (`data__root="..."`), or a dict of dotted
keys (`overrides={"objective.beta": 100}`). Values are Python values, not YAML text. Everything here
is a thin layer over the modules the CLI calls, so a notebook and `genlab train` make the same run
folder, and every error is the CLI's GenlabError with the same message.
"""

from __future__ import annotations

import base64
import html
import io
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab.errors import GenlabError

if TYPE_CHECKING:
    import numpy as np
    import torch
    from PIL.Image import Image as PILImage

    from genlab.config import RunConfig
    from genlab.run import LoadedRun, RunDir, TrainedModel

__all__ = ["Figure", "Images", "Run", "Scores", "Table", "compare", "load_config", "open", "report", "train"]

_SECTIONS = ("model", "objective", "data", "optim", "train", "output")


# ---------------------------------------------------------------- configs


def load_config(spec: str | Path | RunConfig = "quickstart", /, *, overrides: Mapping[str, Any] | None = None,
           **keys: Any) -> RunConfig:
    """A validated config: a bundled name or YAML path (or a config to change), with keys set.

    Errors are the CLI's: an unknown or misspelt key names the closest valid one."""
    from genlab.config import RunConfig, load, resolve_config_path, validate

    if isinstance(spec, RunConfig):
        data, source = spec.to_dict(), "config"
    else:
        base = load(spec)  # validates the file as it is first, so its own mistakes are named as its own
        data, source = base.to_dict(), str(resolve_config_path(str(spec)))
    values = {**dict(overrides or {}), **{_dotted(k, data): v for k, v in keys.items()}}
    if not values:
        return validate(data, source)
    return validate(_with_values(data, values), f"{source} with {', '.join(values)}")


def _section_type(section: str) -> type:
    """The section's model class; an optional section (`data` when a prior run supplies it) is `X | None`."""
    from genlab.config import RunConfig

    annotation = RunConfig.model_fields[section].annotation
    members = typing.get_args(annotation) or (annotation,)
    return next(m for m in members if isinstance(m, type) and hasattr(m, "model_fields"))


def _dotted(key: str, data: dict[str, Any]) -> str:
    """The dotted config key a Python keyword stands for (see the module docstring)."""
    from genlab.config import RunConfig, objective_config
    from genlab.models import MODELS, model_arguments

    if "__" in key:
        return key.replace("__", ".")
    if key in RunConfig.model_fields and key not in _SECTIONS:
        return key
    found = []
    kind = (data.get("objective") or {}).get("kind")
    model = (data.get("model") or {}).get("name")
    for section in _SECTIONS:
        if section == "model":
            fields = set(model_arguments(model)) if model in MODELS else set()
        elif section == "objective":
            fields = set(objective_config(kind).model_fields) if kind else set()
        else:
            fields = set(_section_type(section).model_fields)
        if key in fields:
            found.append(f"{section}.{key}")
    if len(found) == 1:
        return found[0]
    if found:
        raise GenlabError(f"keyword {key!r} is ambiguous: it could be {' or '.join(found)}; write "
                          f"{found[0].replace('.', '__')}=... (section__key) to choose.")
    raise GenlabError(f"keyword {key!r} is not a key of any section of this config (model {model!r}, objective "
                      f"kind {kind!r}); `genlab objectives` and `genlab models` list the keys, docs/configuration.md "
                      f"describes them all. Write section__key=... for a key of one section, e.g. train__epochs=5.")


def _with_values(data: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    from genlab.config import apply_overrides

    out = apply_overrides(data, [])  # a deep copy
    for dotted, value in values.items():
        parts = dotted.split(".")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise GenlabError(f"{dotted}: {'.'.join(parts[: i + 1])} is a value, not a section.")
            node = child
        node[parts[-1]] = list(value) if isinstance(value, tuple) else value
    return out


# ---------------------------------------------------------------- training


def train(spec: str | Path | RunConfig = "quickstart", /, *, out: str | Path | None = None, overwrite: bool = False,
          overrides: Mapping[str, Any] | None = None, **keys: Any) -> Run:
    """Train a run as `genlab train` does (same run folder, checkpoints, scores and figures) and open it.

    In a notebook the progress bar is a widget when ipywidgets is installed (`pip install "genlab[notebook]"`)."""
    from genlab.training import train as run_training

    cfg = load_config(spec, overrides=overrides, **keys)
    _console_logging()
    outcome = run_training(cfg, out=Path(out) if out is not None else None, overwrite=overwrite)
    return Run(outcome.run.path)


def _console_logging() -> None:
    from genlab.cli import setup_logging

    setup_logging()


def open(path: str | Path, checkpoint: str = "best") -> Run:  # noqa: A001 - genlab.open(path) reads as intended
    """A run folder that `genlab train` (or `genlab.train`) wrote."""
    run = Run(Path(path), checkpoint)
    run.run.read_config()  # a folder that is not a run is refused here, not at first use
    return run


# ---------------------------------------------------------------- things that show themselves


def _png(image: PILImage) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@dataclass
class Images:
    """A batch of images in [0, 1], (N, C, H, W) float, with the label each was drawn for.

    `tensor` feeds other code; `numpy()` is uint8 (N, H, W, C) as PNG files hold it; in a notebook the
    batch shows as a grid."""

    tensor: torch.Tensor
    labels: list[int] | None = None
    class_names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tensor)

    def __getitem__(self, index: int | slice) -> Images:
        index = slice(index, index + 1 or None) if isinstance(index, int) else index
        labels = None if self.labels is None else self.labels[index]
        return Images(self.tensor[index], labels, self.class_names)

    def numpy(self) -> np.ndarray:
        from genlab.data.loader import to_uint8

        return to_uint8(self.tensor)

    def grid(self, nrow: int = 8, scale: int = 2) -> PILImage:
        """One picture of the batch, `nrow` images a row, each pixel `scale` pixels wide."""
        from PIL import Image
        from torchvision.utils import make_grid

        g = make_grid(self.tensor.float(), nrow=nrow, padding=2, pad_value=1.0)
        arr = (g.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        img = Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        return img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST) if scale > 1 else img

    def _repr_png_(self) -> bytes:
        return _png(self.grid())


@dataclass(frozen=True)
class Figure:
    """A figure file of a run; shows itself in a notebook."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.stem

    def _repr_png_(self) -> bytes:
        return self.path.read_bytes()


class Scores(dict):
    """metrics.json: entry -> its values and protocol; a table in a notebook."""

    def values_of(self, entry: str) -> dict[str, Any]:
        """The numbers of one entry, without its protocol."""
        from genlab.metrics.store import split_entry

        if entry not in self:
            raise GenlabError(f"no score {entry!r}; this run has {', '.join(self) or 'none yet (run evaluate())'}.")
        return split_entry(self[entry])[0]

    def _repr_html_(self) -> str:
        from genlab.metrics.store import split_entry

        if not self:
            return "<p>no scores yet: <code>run.evaluate()</code> computes them.</p>"
        rows = []
        for key, entry in self.items():
            values, protocol = split_entry(entry)
            shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
            made = ", ".join(f"{k}: {protocol[k]}" for k in ("checkpoint", "step", "samples", "reference_split",
                                                             "model_mode") if k in protocol)
            rows.append(f"<tr><td>{html.escape(key)}</td><td>{html.escape(shown)}</td>"
                        f"<td><small>{html.escape(made)}</small></td></tr>")
        return ("<table><tr><th>score</th><th>values</th><th>made with</th></tr>" + "".join(rows) + "</table>")


@dataclass
class Table:
    """A comparison table (genlab.compare): text when printed, HTML in a notebook, CSV by `csv()`."""

    header: list[str]
    rows: list[list[str]]
    flags: dict[str, list[str]]

    def __str__(self) -> str:
        from genlab.comparison import render, row_entry, with_flags

        header, rows = with_flags(self.header, self.rows, self.flags, row_entry, 0, "text")
        notes = [f"⚠ {k}: {'; '.join(v)}" for k, v in self.flags.items()]
        return render(header, rows, "text") + "".join(f"{n}\n" for n in notes)

    def csv(self) -> str:
        from genlab.comparison import render, row_entry, with_flags

        return render(*with_flags(self.header, self.rows, self.flags, row_entry, 0, "csv"), "csv")

    def _repr_html_(self) -> str:
        from genlab.comparison import FLAG, row_entry

        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(
            f"<td>{html.escape((FLAG if i == 0 and row_entry(r) in self.flags else '') + c)}</td>"
            for i, c in enumerate(r)) + "</tr>" for r in self.rows)
        notes = "".join(f"<li>{html.escape(k)}: {html.escape('; '.join(v))}</li>" for k, v in self.flags.items())
        warning = f"<p>⚠ made differently:</p><ul>{notes}</ul>" if notes else ""
        return f"<table><tr>{head}</tr>{body}</table>{warning}"


# ---------------------------------------------------------------- a run folder


class Run:
    """One run folder: its config, history, scores and figures, and its model for sampling and encoding.

    The model is loaded from the checkpoint on first use (`checkpoint`: "best" or "last"); sampling and
    decoding read no data set, while reconstructing held-out images, scoring and drawing figures do."""

    def __init__(self, path: str | Path, checkpoint: str = "best"):
        from genlab.run import RunDir

        self.run: RunDir = RunDir(Path(path))
        self.run.checkpoint(checkpoint)  # "best" or "last", checked now
        self.checkpoint = checkpoint

    def __repr__(self) -> str:
        return f"genlab.Run({str(self.path)!r})"

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def name(self) -> str:
        return self.config.name or self.path.name

    @cached_property
    def config(self) -> RunConfig:
        return self.run.read_config()

    @property
    def summary(self) -> dict[str, Any]:
        """summary.json: status, image counts, steps, timings, best checkpoint, warnings."""
        from genlab.run import summary_of

        return summary_of(self.run)

    @property
    def status(self) -> str:
        return str(self.summary.get("status", "unknown (no summary.json)"))

    @property
    def metrics(self) -> Scores:
        from genlab.metrics.store import read_metrics

        return Scores(read_metrics(self.run.metrics) if self.run.metrics.is_file() else {})

    def history(self, scope: str = "epoch", split: str | None = None) -> list[dict[str, Any]]:
        """history.csv rows of one scope ("epoch" or "step"), optionally one split ("train" or "val"),
        numbers as floats."""
        from genlab.history import read_history

        if scope not in ("epoch", "step"):
            raise GenlabError(f"scope must be 'epoch' or 'step' (got {scope!r}).")
        rows = read_history(self.run.history) if self.run.history.is_file() else []
        return [{k: _number(v) for k, v in r.items() if v != ""} for r in rows
                if r["scope"] == scope and (split is None or r["split"] == split)]

    # ------------------------------------------------------------ the model
    @cached_property
    def trained(self) -> TrainedModel:
        from genlab.run import load_model

        return load_model(self.path, self.checkpoint)

    @property
    def model(self) -> torch.nn.Module:
        return self.trained.model

    def _loaded(self) -> LoadedRun:
        from genlab.data import load_data
        from genlab.run import LoadedRun

        t = self.trained
        return LoadedRun(t.run, t.cfg, t.model, load_data(t.cfg.data), t.step, t.caps, t.which)

    def sample(self, n: int = 16, *, seed: int = 0, labels: Iterable[int | str] | str | None = None,
               live: bool = False, out: str | Path | None = None, overwrite: bool = False) -> Images:
        """n images from the prior; conditional models cycle through `labels` (default every class).
        `out`: also write them as PNG files with manifest.json, as `genlab sample` does."""
        from genlab.sampling import draw, parse_labels, write_set

        t = self.trained
        parsed = parse_labels(labels if labels is None or isinstance(labels, str) else list(labels), t)
        drawn = draw(t, n, seed=seed, labels=parsed, live=live)
        if out is not None:
            write_set(Path(out), drawn.images, t, overwrite=overwrite, kind="samples", source=drawn.source,
                      seed=seed, generator_weights=drawn.generator_weights, labels=drawn.labels)
        return Images(drawn.images, drawn.labels, t.class_names)

    def decode(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> Images:
        """Codes (N, latent_dim) to images; a conditional GAN takes one label per code."""
        import torch

        t = self.trained
        with torch.no_grad():
            out = t.model.decode(z) if labels is None else t.model.decode(z, labels)
        return Images(t.normalizer.to_unit(out.float()), None if labels is None else labels.tolist(), t.class_names)

    def encode(self, images: Images | torch.Tensor | np.ndarray) -> torch.Tensor:
        """Posterior means (N, latent_dim) of images in [0, 1] (N, C, H, W) or uint8 (N, H, W, C)."""
        import torch

        t = self._encoder()
        with torch.no_grad():
            return t.model.encode(self._model_input(images)).mean

    def reconstruct(self, images: Images | torch.Tensor | np.ndarray | None = None, n: int = 8) -> Images:
        """Reconstructions from the posterior mean; without images, of the first n held-out images."""
        import torch

        t = self._encoder()
        if images is None:
            images = self.held_out(n)
        with torch.no_grad():
            return Images(t.normalizer.to_unit(t.model.reconstruct(self._model_input(images)).float()))

    def held_out(self, n: int = 8) -> Images:
        """The first n validation images, as training held them out (reads the data set)."""
        import torch

        from genlab.data import load_data

        val = load_data(self.config.data).val
        x = torch.from_numpy(val.images[:n]).permute(0, 3, 1, 2).float() / 255.0
        labels = None if val.labels is None else [int(v) for v in val.labels[:n]]
        return Images(x, labels, list(val.class_names or []))

    def _encoder(self) -> TrainedModel:
        t = self.trained
        if not t.caps.has_encoder:
            raise GenlabError(f"{self.path}'s model ({t.caps.name}) has no encoder; it can sample and decode only.")
        return t

    def _model_input(self, images: Images | torch.Tensor | np.ndarray) -> torch.Tensor:
        """[0, 1] float NCHW (or uint8 NHWC, as arrays and PNG files hold images) to the model's range."""
        import numpy as np
        import torch

        t = self.trained
        if isinstance(images, Images):
            images = images.tensor
        if isinstance(images, np.ndarray):
            if images.dtype != np.uint8 or images.ndim != 4:
                raise GenlabError(f"image arrays must be uint8 (N, H, W, C); got {images.dtype} {images.shape}.")
            images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        c, s = t.channels, t.cfg.data.image_size
        if images.ndim != 4 or tuple(images.shape[1:]) != (c, s, s):
            raise GenlabError(f"this model takes images of shape (N, {c}, {s}, {s}) in [0, 1]; got "
                              f"{tuple(images.shape)}.")
        return (images.float() - t.normalizer.mean.to(images.device)) / t.normalizer.std.to(images.device)

    # ------------------------------------------------------------ scores, figures, continuing
    def evaluate(self, *metrics: str, device: str = "auto", **settings: Any) -> Scores:
        """Compute scores into metrics.json, as `genlab eval` does (none named: every one that applies);
        settings are EvalSettings fields (samples, seed, ...). Returns the entries computed."""
        from genlab.evaluate import EvalSettings, evaluate_loaded

        results = evaluate_loaded(self._loaded(), list(metrics) or None, which=self.checkpoint,
                                  settings=EvalSettings(**settings), device=device)
        return Scores(results)

    def figures(self) -> list[Figure]:
        """Every figure the run folder holds."""
        return [Figure(p) for p in sorted(self.run.figures.glob("*.png"))] if self.run.figures.is_dir() else []

    def figure(self, name: str, redraw: bool = False) -> Figure:
        """One figure (`genlab figures` names them), drawn from this checkpoint when missing or `redraw`."""
        from genlab.viz import FIGURES

        if name not in FIGURES:
            raise GenlabError(f"unknown figure {name!r}; choose from {', '.join(FIGURES)}.")
        path = self.run.figures / f"{name}.png"
        if redraw or not path.is_file():
            from genlab.figures import render

            loaded = self._loaded()
            render(loaded.model, loaded.data, loaded.cfg, loaded.run, (name,), caps=loaded.caps)
            if not path.is_file():
                raise GenlabError(f"figure {name!r} does not apply to {self.path}'s model ({loaded.caps.name}).")
        return Figure(path)

    def resume(self, *, overrides: Mapping[str, Any] | None = None, **keys: Any) -> Run:
        """Continue training (e.g. `run.resume(epochs=20)`): only run-length keys may change."""
        from genlab.config import migrate_saved, read_yaml, validate
        from genlab.training import train as run_training

        saved = migrate_saved(read_yaml(self.run.config))
        values = {**dict(overrides or {}), **{_dotted(k, saved): v for k, v in keys.items()}}
        cfg = validate(_with_values(saved, values), f"{self.run.config} with {', '.join(values)}") if values else None
        _console_logging()
        run_training(cfg, resume=self.path)
        return Run(self.path, self.checkpoint)

    def export(self, formats: Iterable[str] | None = None, out: str | Path | None = None) -> list[Path]:
        """TorchScript, ONNX and safetensors files usable without genlab, as `genlab export` writes them."""
        from genlab.export import default_formats, export_run

        chosen = list(formats) if formats is not None else default_formats()[0]
        return export_run(self.path, chosen, out=Path(out) if out else None, which=self.checkpoint)

    def _repr_html_(self) -> str:
        s = self.summary
        progress = s.get("progress", {})
        facts = [("model", self.config.model.name), ("data", self.config.data.name), ("status", self.status),
                 ("steps", progress.get("steps", "?")), ("epochs", progress.get("epochs_completed", "?"))]
        rows = "".join(f"<tr><th align=left>{k}</th><td>{html.escape(str(v))}</td></tr>" for k, v in facts)
        samples = self.run.figures / "samples.png"
        img = (f'<img src="data:image/png;base64,{base64.b64encode(samples.read_bytes()).decode()}" width=360>'
               if samples.is_file() else "")
        return (f"<div><b>{html.escape(self.name)}</b> <code>{html.escape(str(self.path))}</code>"
                f"<table>{rows}</table>{self.metrics._repr_html_()}{img}</div>")


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


# ---------------------------------------------------------------- several runs


def _path(run: Run | str | Path) -> Path:
    return run.path if isinstance(run, Run) else Path(run)


def compare(*runs: Run | str | Path) -> Table:
    """Every stored score of several runs in one table; rows whose scores were made differently are marked."""
    from genlab.comparison import compare_table

    if not runs:
        raise GenlabError("compare needs at least one run (a Run or a run folder path).")
    return Table(*compare_table([_path(r) for r in runs]))


def report(*runs: Run | str | Path, out: str | Path = "report.html", strict: bool = False) -> Path:
    """One self-contained HTML page of the runs, as `genlab report` writes it."""
    from genlab.reporting import write_report

    return write_report([_path(r) for r in runs], Path(out), strict=strict)
