"""The model card `genlab export` writes as README.md beside the exported files.

An export folder travels without its run folder, so the card carries what a reader of it would otherwise
have to dig out of config.yaml, summary.json and metrics.json: what the model is, what it was trained on
and for how long, every stored score with the protocol that made it (a score without its sample count or
reference split cannot be compared with anyone else's), and how to run each exported file without genlab.

Everything about the model and its graphs comes from the export's manifest (model.json), so the card and
the machine-readable contract never disagree; only the run's history (summary.json, metrics.json,
config.yaml) is read from the run folder. The loading snippets are generated from the graphs' recorded
inputs and outputs, and the tests execute them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from genlab.errors import GenlabError
from genlab.metrics.comparable import EXTRACTOR_FIELDS, FIELDS
from genlab.metrics.store import read_metrics, split_entry
from genlab.run import RunDir, summary_of

# Batch of the loading examples: small, and not the export's trace batch, so it also shows the batch is free.
EXAMPLE_BATCH = 4
FAMILIES = {"gan": "generative adversarial network (generator and discriminator)",
            "vae": "variational autoencoder (Gaussian encoder, decoder)",
            "autoencoder": "autoencoder (deterministic encoder, decoder)",
            "diffusion": "denoising diffusion model (a U-Net that predicts the noise, sampled by DDIM)"}
# What the protocol fields every stored score carries mean, beyond the comparability fields of comparable.py.
PROTOCOL_FIELDS: dict[str, str] = {
    "checkpoint": "checkpoint scored", "step": "training step of the weights scored",
    "checkpoint_sha256": "SHA-256 of the checkpoint file scored", "seed": "sampling seed",
    "extractor": "feature extractor", "classifier": "classifier",
    "generator_weights": "generator weights that made the samples", "device": "device",
    "eval_settings": "settings of the evaluation (genlab eval --verify recomputes with them)",
    "verify_tolerance": "tolerance of genlab eval --verify", "versions": "library versions",
    "genlab_version": "genlab version",
}
_FIRST = [*FIELDS, "extractor", "classifier", "checkpoint", "step", "checkpoint_sha256", "seed"]


def model_card(manifest: dict[str, Any], run_dir: Path, *, figure: str | None = None) -> str:
    """Markdown of the card for the export described by `manifest` (model.json's content) of the run in
    `run_dir`; `figure` names an image file in the export folder to show as the run's samples."""
    run = RunDir(Path(run_dir))
    sections = [_title(manifest, run), _model(manifest), _data(manifest, run), _training(manifest, run)]
    if figure:
        sections.append(_figure(figure))
    sections += [_scores(manifest, run), _loading(manifest), _config(manifest, run), _provenance(manifest)]
    return "\n\n".join(s.rstrip("\n") for s in sections) + "\n"


# ---------------------------------------------------------------- sections


def _title(manifest: dict[str, Any], run: RunDir) -> str:
    m, src = manifest["model"], manifest["source"]
    what = FAMILIES.get(m["family"], m["family"])
    return (f"# Model card: {run.path.name} ({m['name']})\n\n"
            f"A {what} trained with genlab and exported by `genlab export` from the `{src['checkpoint']}` "
            f"checkpoint (step {src['step']}) of the run folder `{src['run']}`. The exported graphs run "
            f"without genlab: see [Using the exported files](#using-the-exported-files).")


def _model(manifest: dict[str, Any]) -> str:
    m = manifest["model"]
    rows = [("registered model", f"`{m['name']}`" + (f": {m['summary']}" if m.get("summary") else "")),
            ("family", f"{m['family']}: {FAMILIES.get(m['family'], m['family'])}"),
            ("latent size", f"{m['latent_dim']} (z ~ {m.get('prior', 'N(0, I)')})" if m.get("latent_dim") else "none")]
    if m.get("conditional"):
        rows.append(("conditional", f"yes: {m['num_classes']} classes, labels 0..{m['num_classes'] - 1}"))
    else:
        rows.append(("conditional", "no"))
    kwargs = m.get("kwargs") or {}
    rows.append(("architecture arguments (config `model` section)",
                 ", ".join(f"{k}={_compact(v)}" for k, v in kwargs.items()) or "the defaults"))
    params = m.get("parameters")
    if params:
        rows.append(("parameters", _parameters(params)))
    if m.get("generator_weights") and m["family"] == "gan":
        rows.append(("weights the graphs run", m["generator_weights"]))
    image = manifest["image"]
    rows.append(("image shape", f"{image['channels']} x {image['height']} x {image['width']} (C x H x W)"))
    return "## Model\n\n" + _table(("", ""), rows)


def _parameters(params: dict[str, Any]) -> str:
    text = f"{params['trained']:,} trained"
    if params.get("frozen"):
        text += f" (+{params['frozen']:,} not trained: a GAN's weight-averaged generator)"
    parts = params.get("by_module") or {}
    if parts:
        text += "; by module: " + ", ".join(f"{name} {n:,}" for name, n in parts.items())
    return text


def _data(manifest: dict[str, Any], run: RunDir) -> str:
    cfg = (manifest.get("config") or {}).get("data") or {}
    image, norm = manifest["image"], manifest["normalization"]
    summary, note = _summary(run)
    images = summary.get("images") or {}
    rows = [("data source", f"`{cfg.get('name', 'not recorded')}`"),
            ("root", f"`{cfg['root']}`" if cfg.get("root") else "none (a built-in or downloaded source)"),
            ("image size", f"{image['height']} x {image['width']} px, {image['channels']} channel"
                           f"{'s' if image['channels'] != 1 else ''}"),
            ("classes", str(image["num_classes"]) if image.get("num_classes") else "none (unlabelled)"),
            ("normalisation (inside genlab)", f"{norm['kind']}: (x - {_compact(norm['mean'])}) / "
                                              f"{_compact(norm['std'])}; the exported graphs take and return "
                                              f"[0, 1] pixels"),
            ("training images", _count(images.get("train"), note)),
            ("validation images", _count(images.get("validation"), note))]
    return "## Data\n\n" + _table(("", ""), rows) + "\nThe data settings in full are in the configuration below."


def _training(manifest: dict[str, Any], run: RunDir) -> str:
    src = manifest["source"]
    summary, note = _summary(run)
    progress = summary.get("progress") or {}
    plan = summary.get("plan") or {}
    objective = ((manifest.get("config") or {}).get("objective") or {}).get("kind")
    rows = []
    if objective:
        rows.append(("objective", f"`{objective}`"))
    rows.append(("status", summary.get("status") or note or "not recorded"))
    if progress:
        planned = f" of {plan['total_steps']:,} planned" if plan.get("total_steps") else ""
        rows += [("epochs completed", f"{progress.get('epochs_completed', 'not recorded')}"),
                 ("steps", f"{progress.get('steps', 0):,}{planned}"),
                 ("images seen", f"{progress.get('images', 0):,}")]
        if progress.get("training_seconds") is not None:
            rows.append(("training time", f"{progress['training_seconds']:.1f} s"))
    else:
        rows.append(("progress", note or "not recorded"))
    best = summary.get("best") or {}
    if best.get("metric"):
        at = f": {_value(best['value'])} at step {best.get('step')}" if best.get("value") is not None else ""
        rows.append(("best checkpoint chosen by", f"{best['metric']} ({best.get('mode', 'min')}){at}"))
    rows += [("checkpoint exported", f"`{src.get('checkpoint_file', src['checkpoint'])}` ({src['checkpoint']})"),
             ("its step", str(src["step"])),
             ("its SHA-256", f"`{src['checkpoint_sha256']}`" if src.get("checkpoint_sha256") else "not recorded")]
    text = "## Training\n\n" + _table(("", ""), rows)
    warnings = summary.get("warnings") or []
    if warnings:
        shown = "\n".join(f"- {_inline(w.get('message', w))}" for w in warnings[:10])
        more = f"\n- … and {len(warnings) - 10} more (summary.json lists them all)" if len(warnings) > 10 else ""
        text += f"\nWarnings the run gave:\n\n{shown}{more}\n"
    return text


def _figure(figure: str) -> str:
    return (f"## Samples\n\n![samples drawn by the run]({figure})\n\n"
            f"`{figure}`: fixed-seed samples from the run's figures (`genlab figures`), drawn from the weights "
            f"the figure was last made with, which need not be the exported checkpoint.")


def _scores(manifest: dict[str, Any], run: RunDir) -> str:
    head = "## Scores\n\n"
    try:
        doc = read_metrics(run.metrics)
    except (OSError, ValueError) as exc:
        return head + f"metrics.json of the run could not be read ({_inline(exc)}); score the run again with " \
                      f"`genlab eval {run.path}`."
    if not doc:
        return head + (f"This run has no stored scores (no metrics.json). Score it with `genlab eval {run.path}` "
                       f"and export again to include them here.")
    exported = manifest["source"].get("checkpoint_sha256")
    split = {name: split_entry(entry) for name, entry in doc.items()}
    shared = _shared({name: protocol for name, (_, protocol) in split.items()})
    rows, details = [], []
    for name, (values, protocol) in split.items():
        shown = ", ".join(f"{k} = {_value(v)}" for k, v in values.items()) or "no numeric value"
        rows.append((f"`{name}`", shown, _scored_on(protocol, exported)))
        details.append(_protocol(name, {k: v for k, v in protocol.items() if k not in shared}))
    if shared:
        details.append("#### Shared by every score above\n\n" + _table(("field", "value", "meaning"),
                                                                       _protocol_rows(shared)))
    intro = (f"Every score stored in the run's metrics.json ({len(doc)} entr{'y' if len(doc) == 1 else 'ies'}), "
             f"with the protocol that made it: scores made with other sample counts, reference splits, feature "
             f"extractors or model modes are not comparable (`genlab compare` checks). Rescore with "
             f"`genlab eval {run.path}`.\n\n")
    return (head + intro + _table(("entry", "value(s)", "scored on"), rows)
            + "\n### Protocol of each score\n\n" + "\n".join(details))


def _scored_on(protocol: dict[str, Any], exported: str | None) -> str:
    where = protocol.get("checkpoint", "checkpoint not recorded")
    if protocol.get("step") is not None:
        where = f"{where}, step {protocol['step']}"
    sha = protocol.get("checkpoint_sha256")
    if sha and exported:
        where += ": the exported checkpoint" if sha == exported else ": another checkpoint file than the exported one"
    return where


def _shared(protocols: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Bookkeeping fields every entry records alike (library versions, evaluation settings), shown once rather
    than once per score. What decides comparability (FIELDS, the checkpoint) stays in each entry's own table,
    where a reader of one score looks for it."""
    if len(protocols) < 2:
        return {}
    first, *rest = protocols.values()
    keep = {*_FIRST, "metric", "protocol"}
    return {k: v for k, v in first.items() if k not in keep and all(k in p and p[k] == v for p in rest)}


def _protocol(name: str, protocol: dict[str, Any]) -> str:
    text = f"#### `{name}`\n\n"
    if protocol.get("metric"):
        text += f"Metric `{protocol['metric']}`. "
    if isinstance(protocol.get("protocol"), str):
        text += _inline(protocol["protocol"])
    rows = _protocol_rows({k: v for k, v in protocol.items() if k not in ("metric", "protocol")})
    return text.rstrip() + "\n\n" + (_table(("field", "value", "meaning"), rows) if rows else "")


def _protocol_rows(fields: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The comparability fields first, in comparable.py's order and with its names for them, then the rest."""
    order = [k for k in _FIRST if k in fields] + sorted(k for k in fields if k not in _FIRST)
    rows = []
    for key in order:
        value = fields[key]
        if key in ("extractor", "classifier") and isinstance(value, dict):
            rows += [(f"{key}.{sub}", _compact(part), EXTRACTOR_FIELDS.get(sub, "")) for sub, part in value.items()]
        else:
            rows.append((key, _compact(value), FIELDS.get(key) or PROTOCOL_FIELDS.get(key, "")))
    return rows


# ---------------------------------------------------------------- loading without genlab


def _loading(manifest: dict[str, Any]) -> str:
    files = manifest.get("files") or {}
    graphs = manifest.get("graphs") or {}
    what = {}
    for graph, contract in graphs.items():
        for fmt, file in contract.get("files", {}).items():
            what[file] = f"{graph}, {'TorchScript' if fmt == 'torchscript' else 'ONNX'}"
    kinds = {".safetensors": "state dict (safetensors)", ".png": "figure", ".npz": "arrays (numpy .npz)"}
    rows = [(f"`{f}`", what.get(f, next((k for end, k in kinds.items() if f.endswith(end)), "")),
             f"{e['bytes']:,}", f"`{e['sha256']}`") for f, e in files.items()]
    rows.append(("`model.json`", "the machine-readable contract: model, graphs, normalisation, file hashes", "", ""))
    text = ("## Using the exported files\n\nRun the snippets from this folder (the paths are relative). Every "
            "graph takes and returns images in [0, 1] as float32 N x C x H x W, any batch size; genlab's "
            "normalisation happens inside the graphs, so neither genlab nor the data set's statistics are needed.\n\n"
            + _table(("file", "what", "bytes", "SHA-256"), rows))
    for graph, contract in graphs.items():
        text += f"\n### {graph}\n\n" + _contract(contract)
        for fmt, file in contract.get("files", {}).items():
            if file not in files:
                continue
            if fmt == "torchscript":
                text += "\nTorchScript (`pip install torch`):\n\n" + _code(_torchscript(graph, file, contract))
            elif fmt == "onnx":
                text += ("\nONNX with onnxruntime (`pip install onnxruntime numpy`):\n\n"
                         + _code(_onnx(file, contract)))
    weights = [f for f in files if f.endswith(".safetensors") and "/" not in f]
    for file in weights:
        text += "\n" + _safetensors(file, manifest)
    if any(f.startswith("diffusers/") for f in files):
        text += "\n" + _diffusers(manifest)
    return text


def _diffusers(manifest: dict[str, Any]) -> str:
    """A diffusion model's sampler is a loop over the network, not one graph: diffusers runs it."""
    m = manifest["model"]
    steps = m["kwargs"].get("sample_steps", 50)
    if m.get("conditional"):
        code = (f"import torch\nfrom diffusers import DDIMScheduler, UNet2DModel\n\n"
                f"unet = UNet2DModel.from_pretrained('diffusers', subfolder='unet').eval()\n"
                f"scheduler = DDIMScheduler.from_pretrained('diffusers', subfolder='scheduler')\n"
                f"scheduler.set_timesteps({steps})\n"
                f"labels = torch.arange({EXAMPLE_BATCH}) % {m['num_classes']}\n"
                f"null = torch.full_like(labels, {m['num_classes']})  # the label meaning 'no label'\n"
                f"guidance = {m['kwargs'].get('guidance_scale', 2.0)}\n"
                f"x = torch.randn({EXAMPLE_BATCH}, unet.config.in_channels, unet.config.sample_size, "
                f"unet.config.sample_size)\n"
                f"with torch.no_grad():\n"
                f"    for t in scheduler.timesteps:\n"
                f"        cond, uncond = unet(torch.cat([x, x]), t, class_labels=torch.cat([labels, null]))"
                f".sample.chunk(2)\n"
                f"        x = scheduler.step(uncond + guidance * (cond - uncond), t, x).prev_sample\n"
                f"images = (x.clamp(-1, 1) + 1) / 2  # N x C x H x W in [0, 1]\n")
    else:
        code = (f"import torch\nfrom diffusers import DDIMPipeline, DDIMScheduler, UNet2DModel\n\n"
                f"unet = UNet2DModel.from_pretrained('diffusers', subfolder='unet')\n"
                f"scheduler = DDIMScheduler.from_pretrained('diffusers', subfolder='scheduler')\n"
                f"pipe = DDIMPipeline(unet=unet, scheduler=scheduler)\n"
                f"images = pipe(batch_size={EXAMPLE_BATCH}, num_inference_steps={steps}, "
                f"generator=torch.Generator().manual_seed(0), output_type='np').images  # N x H x W x C in [0, 1]\n")
    return ("### diffusers\n\nThe U-Net (the weight average when the run kept one) and its DDIM scheduler, in "
            "diffusers' own folders; genlab's samples are these with eta 0 (`pip install diffusers torch`):\n\n"
            + _code(code))


def _contract(contract: dict[str, Any]) -> str:
    rows = [(direction, f"`{spec['name']}`", spec.get("dtype", ""), _shape(spec["shape"]),
             _compact(spec["range"]) if "range" in spec else "", spec.get("description", ""))
            for direction, specs in (("input", contract["inputs"]), ("output", contract["outputs"]))
            for spec in specs]
    return _table(("", "name", "dtype", "shape", "range", "meaning"), rows)


def _torchscript(graph: str, file: str, contract: dict[str, Any]) -> str:
    var = _identifier(graph)
    lines = ["import torch", "", f"{var} = torch.jit.load({json.dumps(file)}, map_location=\"cpu\")"]
    lines += [f"{_identifier(s['name'])} = {_torch_input(s)}  # {_about(s)}" for s in contract["inputs"]]
    args = ", ".join(_identifier(s["name"]) for s in contract["inputs"])
    lines += ["with torch.no_grad():", f"    {_targets(contract)} = {var}({args})"]
    lines += [f"# {_identifier(s['name'])}: {_about(s)}" for s in contract["outputs"]]
    return "\n".join(lines)


def _onnx(file: str, contract: dict[str, Any]) -> str:
    lines = ["import numpy as np", "import onnxruntime as ort", "",
             f"session = ort.InferenceSession({json.dumps(file)}, providers=[\"CPUExecutionProvider\"])",
             "rng = np.random.default_rng(0)"]
    lines += [f"{_identifier(s['name'])} = {_numpy_input(s)}  # {_about(s)}" for s in contract["inputs"]]
    feed = ", ".join(f"{json.dumps(s['name'])}: {_identifier(s['name'])}" for s in contract["inputs"])
    outputs = contract["outputs"]
    targets = f"({_identifier(outputs[0]['name'])},)" if len(outputs) == 1 else _targets(contract)
    lines.append(f"{targets} = session.run(None, {{{feed}}})")
    lines += [f"# {_identifier(s['name'])}: {_about(s)}" for s in outputs]
    return "\n".join(lines)


def _safetensors(file: str, manifest: dict[str, Any]) -> str:
    build = manifest.get("build") or {}
    load = "\n".join(["from safetensors.torch import load_file", "",
                      f"state = load_file({json.dumps(file)})  # {{parameter name: tensor}}, genlab's state dict"])
    rebuild = "\n".join([
        "import json", "", "from genlab.models import build_model", "from safetensors.torch import load_file", "",
        "build = json.load(open(\"model.json\"))[\"build\"]",
        "model = build_model(build[\"name\"], build[\"kwargs\"], image_size=build[\"image_size\"],",
        "                    channels=build[\"channels\"], num_classes=build[\"num_classes\"])",
        f"model.load_state_dict(load_file({json.dumps(file)}))"])
    name = build.get("name", manifest["model"]["name"])
    whole = " (its discriminator included)" if manifest["model"]["family"] == "gan" else ""
    return (f"### {file}\n\nThe full state dict of `{name}`{whole}, for fine-tuning or inspection "
            f"(`pip install safetensors torch`):\n\n"
            + _code(load)
            + "\nInside genlab, model.json's `build` section rebuilds the module it fits; genlab's modules work in "
              "the normalised range, (x - mean) / std with model.json's `normalization`:\n\n" + _code(rebuild))


def _torch_input(spec: dict[str, Any]) -> str:
    dims = ", ".join(str(d) for d in _example_shape(spec["shape"]))
    if spec.get("dtype") == "int64":
        low, high = spec.get("range", [0, 1])
        return f"torch.randint({low}, {high + 1}, ({dims},))"
    if spec.get("range") == [0, 1]:
        return f"torch.rand({dims})"
    return f"torch.randn({dims})"


def _numpy_input(spec: dict[str, Any]) -> str:
    dims = ", ".join(str(d) for d in _example_shape(spec["shape"]))
    shape = f"({dims},)" if "," not in dims else f"({dims})"
    if spec.get("dtype") == "int64":
        low, high = spec.get("range", [0, 1])
        return f"rng.integers({low}, {high + 1}, size={shape}, dtype=np.int64)"
    if spec.get("range") == [0, 1]:
        return f"rng.random({shape}, dtype=np.float32)"
    return f"rng.standard_normal({shape}, dtype=np.float32)"


def _about(spec: dict[str, Any]) -> str:
    """A snippet's comment on one tensor: its example dtype and shape, range, and what it is (first clause)."""
    text = f"{spec['dtype']} {_shape(spec['shape'], EXAMPLE_BATCH)}"
    if "range" in spec:
        text += f" in {_compact(spec['range'])}"
    description = str(spec.get("description", "")).split(";")[0].strip()
    return f"{text}: {description}" if description else text


def _targets(contract: dict[str, Any]) -> str:
    return ", ".join(_identifier(s["name"]) for s in contract["outputs"])


def _example_shape(shape: list[Any]) -> list[int]:
    return [EXAMPLE_BATCH if d == "batch" else int(d) for d in shape]


def _shape(shape: list[Any], batch: int | None = None) -> str:
    dims = [str(batch if d == "batch" and batch else d) for d in shape]
    return f"({dims[0]},)" if len(dims) == 1 else "(" + ", ".join(dims) + ")"


def _identifier(name: str) -> str:
    ident = re.sub(r"\W", "_", str(name))
    return ident if ident.isidentifier() else f"_{ident}"


# ---------------------------------------------------------------- config and provenance


def _config(manifest: dict[str, Any], run: RunDir) -> str:
    if run.config.is_file():
        text, where = run.config.read_text(), "the run's config.yaml"
    else:
        text, where = yaml.safe_dump(manifest.get("config") or {}, sort_keys=False), "the checkpoint's embedded config"
    return f"## Configuration\n\nThe resolved configuration ({where}), every default filled in:\n\n" + _code(text,
                                                                                                          "yaml")


def _provenance(manifest: dict[str, Any]) -> str:
    rows = [("genlab", manifest.get("genlab_version", "not recorded")),
            ("torch", manifest.get("torch_version", "not recorded")),
            ("exported at", manifest.get("exported_at", "not recorded")),
            ("export format", f"{manifest.get('format')} {manifest.get('format_version')}")]
    return "## Provenance\n\n" + _table(("", ""), rows)


# ---------------------------------------------------------------- markdown helpers


def _summary(run: RunDir) -> tuple[dict[str, Any], str | None]:
    """summary.json (or what train.log says of it) and, where something is missing, a note saying why."""
    try:
        summary = summary_of(run)
    except GenlabError as exc:
        return {}, f"not recorded ({_inline(exc)})"
    if not summary:
        return {}, "not recorded (the run has no summary.json)"
    # A summary read back from train.log (runs of genlab 0.1) has image counts and warnings, nothing else.
    return summary, "not recorded (the run predates summary.json)" if summary.get("source") else None


def _count(n: Any, note: str | None) -> str:
    return f"{n:,}" if isinstance(n, int) else (note or "not recorded")


def _value(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return str(v) if isinstance(v, int) else f"{v:.6g}"


def _compact(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=isinstance(value, dict), default=str)
    if value is None:
        return "none"
    return _value(value)


def _inline(text: Any) -> str:
    return " ".join(str(text).split())


def _cell(text: Any) -> str:
    """One table cell: a `|` would end the cell and a newline the row."""
    return _inline(text).replace("|", "\\|")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _code(text: str, lang: str = "python") -> str:
    """A fenced block, its fence longer than any run of backticks inside, so no content can close it early."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}\n"
