"""`genlab report`: one self-contained HTML page (figures inlined as base64 data URIs, inline CSS, one small
inline script that enlarges a figure on click, no network) for one or more run folders: config summary,
metrics with their protocol, per-epoch losses with their units and figures; with several runs, a comparison
that first says what differs between the runs (data, objective, length), then their final validation values
and scores with units and direction, and figures side by side.

A loss is only comparable between runs that trained on the same data with the same objective: a summed
squared error and a log-likelihood in nats can differ by three orders of magnitude for the same model, so
such rows are marked rather than hidden.
"""

from __future__ import annotations

import base64
import html
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab import __version__
from genlab.config import read_yaml, validate_saved
from genlab.consistency import check_consistency
from genlab.errors import GenlabError
from genlab.history import FIXED, read_history
from genlab.io import atomic_write
from genlab.metrics.comparable import notes, refuse, table_flags
from genlab.metrics.latent_usage import read_stats
from genlab.metrics.store import split_entry
from genlab.objectives import OBJECTIVES
from genlab.objectives.likelihood import decoder_likelihood
from genlab.run import RunDir, summary_of
from genlab.viz.curves import epoch_rows

ORDER = ("samples", "reconstructions", "traversal", "traversal_prior", "interpolation", "tsne", "kl_per_dim",
         "code_usage", "loss_curves")
TITLES = {"samples": "Samples", "reconstructions": "Reconstructions", "traversal": "Latent traversal (held-out code)",
          "traversal_prior": "Latent traversal (from z = 0)", "interpolation": "Interpolation",
          "tsne": "t-SNE of the latent means", "kl_per_dim": "KL per latent dimension and active units",
          "code_usage": "Codebook usage", "loss_curves": "Loss curves"}
# Figures whose text is drawn for a page's width: a grid cell would shrink their labels to a few pixels.
WIDE = frozenset({"loss_curves", "kl_per_dim", "code_usage"})
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CSS = """
body{font:15px/1.45 system-ui,sans-serif;color:#1f2328;background:#fafafa;margin:0 auto;padding:1.5rem 2rem;
max-width:1400px}h2{border-bottom:2px solid #d0d7de;padding-bottom:.25rem}h3{margin:1.4rem 0 .5rem}
.muted{color:#656d76}nav a{margin-right:1rem}section{background:#fff;border:1px solid #d0d7de;border-radius:8px;
padding:.5rem 1.2rem 1.2rem;margin:1.5rem 0}table{border-collapse:collapse;font-size:13px;display:block;overflow-x:auto}
th,td{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}th{background:#f0f3f6}
tr:nth-child(even) td{background:#f8f9fb}td.num{text-align:right;font-variant-numeric:tabular-nums}
td.protocol{font-size:12px;color:#444;max-width:40rem}dt{font-weight:600}dd{margin:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}pre{background:#f6f8fa;padding:.8rem;overflow:auto}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:1rem;align-items:start}
.figs figure.wide{grid-column:1/-1}
.side{display:grid;gap:1rem;overflow-x:auto;align-items:start}
figure{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:.5rem}
figure img{max-width:100%;height:auto;display:block;margin:0 auto;cursor:zoom-in}
figcaption{font-size:13px;margin-top:.3rem}
#zoom{position:fixed;inset:0;background:rgba(20,20,20,.85);overflow:auto;z-index:10;cursor:zoom-out;
display:flex;align-items:flex-start;justify-content:center;padding:2rem}#zoom[hidden]{display:none}
#zoom img{background:#fff;max-width:none;image-rendering:auto}#zoom p{color:#fff;position:fixed;top:.3rem;left:1rem;
margin:0;font-size:13px}td.differs{background:#fff8c5 !important}.units{font-size:13px;color:#444}
.missing{color:#8c959f;font-style:italic;padding:1rem}
.warning{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .8rem}
.note{background:#ddf4ff;border:1px solid #54aeff;border-radius:6px;padding:.5rem .8rem}
"""
# Click a figure: its PNG at full size over the page (scrollable); click again or Escape to close. The
# overlay reuses the figure's data URI, so the page carries each image once.
SCRIPT = """
(() => {
  const zoom = document.getElementById("zoom"), hint = zoom.querySelector("p");
  const close = () => { zoom.hidden = true; zoom.querySelectorAll("img").forEach(i => i.remove()); };
  document.querySelectorAll("figure img").forEach(img => img.addEventListener("click", () => {
    close();
    const big = document.createElement("img");
    big.src = img.src; big.alt = img.alt + " (full size)";
    hint.textContent = img.alt + ": full size; click or press Escape to close";
    zoom.append(big); zoom.hidden = false;
  }));
  zoom.addEventListener("click", close);
  document.addEventListener("keydown", e => { if (e.key === "Escape") close(); });
})();
"""
ZOOM = '<div id="zoom" hidden><p></p></div>'



@dataclass
class RunInfo:
    run: RunDir
    label: str
    config: dict[str, Any]
    history: list[dict[str, str]]
    metrics: dict[str, Any]
    figures: dict[str, Path]
    epoch_figures: list[Path]
    summary: dict[str, Any]  # summary.json (for older runs: what their train.log says of the same facts)
    latent: dict[str, Any] | None = None  # latent_stats.json (VAEs)

    @property
    def counts(self) -> tuple[int, int] | None:
        images = self.summary.get("images")
        return (images["train"], images["validation"]) if images else None


def _fig_key(path: Path) -> tuple[int, str]:
    return (ORDER.index(path.stem) if path.stem in ORDER else len(ORDER), path.stem)


def read_run(path: Path) -> RunInfo:
    """Everything the report shows about one run folder; a missing or foreign folder is a GenlabError."""
    run = RunDir(Path(path))
    if not run.path.exists():
        raise GenlabError(f"run folder {path} does not exist; give a folder that `genlab train` wrote (runs/<name>).")
    if not run.path.is_dir() or not run.config.is_file():
        raise GenlabError(f"{path} is not a genlab run folder (no config.yaml); a report reads the folders that "
                          f"`genlab train` writes (runs/<name>, with config.yaml, history.csv and figures/).")
    config = read_yaml(run.config)
    metrics: dict[str, Any] = {}
    if run.metrics.is_file():
        try:
            metrics = json.loads(run.metrics.read_text())
        except (OSError, ValueError) as exc:
            raise GenlabError(f"{run.metrics} cannot be read as JSON ({exc}); delete it or restore it.") from None
        if not isinstance(metrics, dict):
            raise GenlabError(f"{run.metrics} must hold a JSON object of metric entries, got "
                              f"{type(metrics).__name__}.")
    pngs = sorted(run.figures.glob("*.png"), key=_fig_key) if run.figures.is_dir() else []
    history = read_history(run.history) if run.history.is_file() else []
    return RunInfo(run, str(config.get("name") or run.path.name), config, history, metrics, {p.stem: p for p in pngs},
                   sorted((run.figures / "epochs").glob("*.png")), summary_of(run), read_stats(run.latent_stats))


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in d.items() if v is not None)


def final_validation(rows: list[dict[str, str]]) -> dict[str, str]:
    """The last validation value of every term in history.csv (rows are in the order they were logged)."""
    out: dict[str, str] = {}
    for r in rows:
        if r.get("split") == "val":
            out.update({k: v for k, v in r.items() if k not in FIXED and v not in (None, "")})
    return out


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Cells are HTML already: escaped text, or a whole <td ...> element."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _num(value: Any) -> str:
    return f'<td class="num">{_e(_fmt(value))}</td>'


def _figure(path: Path | None, title: str, label: str, wide: bool = False) -> str:
    cls = ' class="wide"' if wide else ""
    if path is None:
        return f'<figure{cls}><div class="missing">{_e(title)}: not in run {_e(label)}</div></figure>'
    data = path.read_bytes()
    if not data.startswith(PNG_MAGIC):
        return f'<figure{cls}><div class="missing">{_e(path)} is not a PNG file; not shown</div></figure>'
    alt = f"{title} of run {label} ({path.parent.name}/{path.name})"
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure{cls}><img src="{src}" alt="{_e(alt)}" title="{_e(alt)}: click to enlarge">'
            f'<figcaption><b>{_e(label)}</b> · {_e(path.name)} <span class="muted">(click to enlarge)</span>'
            f"</figcaption></figure>")


def _resolved(info: RunInfo):
    """The run's config as this version reads it (defaults filled in), or None for one it refuses; validated
    once per run, as every row of a comparison asks for it."""
    if "resolved" not in info.__dict__:
        try:
            info.__dict__["resolved"] = validate_saved(info.config, "config.yaml")
        except GenlabError:
            info.__dict__["resolved"] = None
    return info.__dict__["resolved"]


def objective_settings(info: RunInfo) -> dict[str, Any]:
    """Every key of the run's objective section with its value, defaults included (a default likelihood_std
    of null is a setting too: it makes the reconstruction term a plain squared error)."""
    cfg = _resolved(info)
    if cfg is not None:
        return cfg.objective.model_dump(mode="json")
    obj = dict(info.config.get("objective") or {})
    kind = obj.get("kind", "?")
    own = OBJECTIVES[kind].config.model_fields if kind in OBJECTIVES else obj
    return {k: v for k, v in obj.items() if k in own or k == "kind"}


def term_units(info: RunInfo) -> dict[str, str]:
    cfg = _resolved(info)
    return OBJECTIVES[cfg.objective.kind].units(cfg.objective) if cfg is not None else {}


def train_note(info: RunInfo) -> str | None:
    cfg = _resolved(info)
    return OBJECTIVES[cfg.objective.kind].train_note(cfg.objective) if cfg is not None else None


def data_description(info: RunInfo) -> str:
    data = info.config.get("data") or {}
    size = data.get("image_size")
    parts = [f"{data.get('name', '?')}{' ' + str(data['root']) if data.get('root') else ''} at {size}×{size}"]
    parts += [f"{k} {data[k]}" for k in ("limit", "val_limit", "binarize") if data.get(k) is not None]
    if data.get("random_crops"):
        crops = data["random_crops"]
        parts.append(f"{crops.get('per_image')} random crops of {crops.get('size')} px per image")
    return ", ".join(parts)


def _summary(info: RunInfo) -> str:
    c = info.config
    model, data, obj = dict(c.get("model") or {}), c.get("data") or {}, c.get("objective") or {}
    optim, train, rows = dict(c.get("optim") or {}), c.get("train") or {}, info.history
    kind = obj.get("kind", "?")
    split = ("the official test split" if data.get("use_test_split")
             else f"val_fraction {data.get('val_fraction')}, split_seed {data.get('split_seed')}")
    settings = objective_settings(info)
    shown = ", ".join(f"{k}={_fmt(v)}" for k, v in settings.items() if k != "kind")
    items = {"model": f"{model.pop('name', '?')} ({_kv(model) or 'defaults'})",
             "objective": f"{kind}: {shown}",
             "data": f"{data_description(info)}; {split}",
             "optim": f"{optim.pop('name', '?')} ({_kv(optim)})",
             "training": _kv({k: train.get(k) for k in ("epochs", "max_steps", "batch_size", "seed", "device")})}
    cfg = _resolved(info)
    if cfg is not None and kind == "reconstruction":
        likelihood = decoder_likelihood(cfg.objective)
        items["decoder likelihood"] = likelihood if isinstance(likelihood, str) else likelihood.describe()
    if info.counts:
        items["images"] = f"{info.counts[0]:,} train / {info.counts[1]:,} validation"
    if rows:
        done = len({r["epoch"] for r in rows if r["scope"] == "epoch" and r["split"] == "train"})
        last = max(rows, key=lambda r: int(r["step"]))
        items["trained"] = (f"{last['step']} steps, {int(last['images']):,} images, {float(last['seconds']):.1f} s; "
                            f"{done} of {train.get('epochs', '?')} epochs completed")
    else:
        items["trained"] = "no history.csv yet"
    best = train.get("best_metric") or (OBJECTIVES[kind].default_best_metric if kind in OBJECTIVES else "?")
    items["best checkpoint"] = f"by validation {best} ({train.get('best_mode', 'min')})"
    return "<dl>" + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items.items()) + "</dl>"


def _run_section(i: int, info: RunInfo, with_figures: bool) -> str:
    parts = [f'<section class="run" id="run-{i + 1}"><h2>Run {i + 1}: {_e(info.label)}</h2>',
             f'<p class="muted">{_e(info.run.path)}</p><h3>Configuration</h3>', _summary(info),
             "<details><summary>config.yaml</summary><pre>" + _e(info.run.config.read_text()) + "</pre></details>",
             *(f'<p class="warning">Config warning: {_e(note)}</p>' for note in _config_warnings(info.config)),
             "<h3>Per-epoch losses</h3>"]
    cols, rows = epoch_rows(info.history)
    parts.append(_table([_e(c) for c in cols], [[_num(r.get(c, "")) for c in cols] for r in rows]) if rows
                 else '<p class="missing">no completed epoch in history.csv</p>')
    units = term_units(info)
    logged = {c.split("_", 1)[1] for c in cols if c.startswith(("train_", "val_"))}
    listed = [f"{t}: {u}" for t, u in units.items() if t in logged]
    if listed:
        parts.append(f'<p class="units">Units: {_e("; ".join(listed))}.</p>')
    note = train_note(info)
    if note:
        parts.append(f'<p class="note">Training against validation: {_e(note)}</p>')
    if info.latent:
        parts.append("<h3>Latent usage</h3>" + _latent_usage(info.latent))
    if with_figures:
        parts.append("<h3>Figures</h3>")
        parts.append('<div class="figs">' + "".join(_figure(p, TITLES.get(s, s), info.label, s in WIDE)
                                                    for s, p in info.figures.items()) + "</div>"
                     if info.figures else '<p class="missing">no figures (draw them with genlab figures)</p>')
    if info.epoch_figures and with_figures:
        figs = "".join(_figure(p, f"Samples after epoch {p.stem.rsplit('_', 1)[-1]}", info.label)
                       for p in info.epoch_figures)
        parts.append(f"<details><summary>Fixed-noise samples after each epoch ({len(info.epoch_figures)})</summary>"
                     f'<div class="figs">{figs}</div></details>')
    elif info.epoch_figures:  # a comparison would carry every run's every epoch: most of its size, little use
        parts.append(f'<p class="muted">{len(info.epoch_figures)} per-epoch sample grids: in this run\'s own '
                     f"report (genlab report {_e(info.run.path)}).</p>")
    return "".join(parts) + "</section>"


def _config_warnings(config: dict[str, Any]) -> list[str]:
    """What `genlab train` warned about this config before it started (rules of this genlab version)."""
    try:
        return check_consistency(validate_saved(config, "config.yaml"))
    except GenlabError as exc:  # a config this version refuses: say so rather than fail the whole report
        return [str(exc)]


def _latent_usage(stats: dict[str, Any]) -> str:
    """The last end-of-epoch measurement of latent_stats.json, and the collapse warning if training gave one."""
    kl = stats["kl_per_dim"]
    text = (f"{stats.get('active_units', '?')} of {len(kl)} latent dimensions active (variance of the posterior mean "
            f"over {stats.get('n_images', '?')} validation images > {stats.get('threshold', 0.01):g}) after epoch "
            f"{int(stats.get('epoch', 0)) + 1}, step {stats.get('step', '?')}; KL {sum(kl):.4g} nats per image in "
            f"all, largest single dimension {max(kl, default=0.0):.3g}.")
    warning = stats.get("warning")
    return f"<p>{_e(text)}</p>" + (f'<p class="warning">Warning: {_e(warning)}</p>' if warning else "")


def score_label(key: str, entry: Any, name: str) -> str:
    """`psnr_mean (dB, higher is better)`: the unit and direction its metric declares (genlab.metrics)."""
    from genlab.metrics.registry import METRICS

    _, protocol = split_entry(entry)
    metric = METRICS.get(str(protocol.get("metric", ""))) or METRICS.get(key) or METRICS.get(key.rsplit("_", 1)[0])
    if metric is None:
        return name
    bits = [metric.units[name]] if name in metric.units else []
    if name in metric.higher_is_better:
        bits.append("higher is better" if metric.higher_is_better[name] else "lower is better")
    return f"{name} ({', '.join(bits)})" if bits else name


def _metrics(runs: list[RunInfo]) -> str:
    rows = []
    for info in runs:
        for key, entry in info.metrics.items():
            values, protocol = split_entry(entry)
            proto = "; ".join(f"{k}: {_fmt(v)}" for k, v in protocol.items())
            if not values:
                rows.append([_e(info.label), _e(key), "—", "", f'<td class="protocol">{_e(proto)}</td>'])
            for n, (name, value) in enumerate(values.items()):
                lead = [f'<td rowspan="{len(values)}">{_e(x)}</td>' for x in (info.label, key)] if n == 0 else []
                tail = [f'<td class="protocol" rowspan="{len(values)}">{_e(proto)}</td>'] if n == 0 else []
                rows.append([*lead, _e(score_label(key, entry, name)), _num(value), *tail])
    body = (_table(["run", "entry", "metric", "value", "protocol"], rows) if rows
            else '<p class="missing">no metrics.json in these runs</p>')
    return f'<section id="metrics"><h2>Metrics</h2>{body}</section>'


def setup_rows(runs: list[RunInfo]) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """What each run is, as rows (label, one text per run), and which of data / objective differ between runs:
    the facts a reader needs before reading any loss side by side. The objective row names the settings
    whose values differ between the runs (each run's section lists them all)."""
    def epochs(r: RunInfo) -> str:
        done = len({x["epoch"] for x in r.history if x["scope"] == "epoch" and x["split"] == "train"})
        steps = max((int(x["step"]) for x in r.history), default=0)
        return f"{done} of {(r.config.get('train') or {}).get('epochs', '?')} ({steps:,} steps)"

    settings = [objective_settings(r) for r in runs]
    keys = list(dict.fromkeys(k for st in settings for k in st if k != "kind"))
    varying = [k for k in keys if len({repr(st.get(k, "—")) for st in settings}) > 1]
    same = len(keys) - len(varying)

    def objective(st: dict[str, Any]) -> str:
        text = str(st.get("kind", "?"))
        own = [k for k in varying if k in st]  # a key of another kind's section is not a setting of this run
        if own:
            text += ": " + ", ".join(f"{k}={_fmt(st[k])}" for k in own)
        return text + (f" ({same} other settings alike)" if varying and same else "")

    def images(r: RunInfo) -> str:
        return f"{r.counts[0]:,} / {r.counts[1]:,}" if r.counts else "—"

    rows = [("model", [str((r.config.get("model") or {}).get("name", "?")) for r in runs]),
            ("data set", [data_description(r) for r in runs]),
            ("images (train / validation)", [images(r) for r in runs]),
            ("objective", [objective(st) for st in settings]),
            ("loss unit", [term_units(r).get("loss", "—") for r in runs]),
            ("epochs trained", [epochs(r) for r in runs])]
    differ = [label for label, texts in rows if label in ("data set", "objective") and len(set(texts)) > 1]
    return rows, differ


def _setup_table_rows(rows: list[tuple[str, list[str]]]) -> list[list[str]]:
    """Cells of a row whose runs differ are highlighted, so the difference is seen before it is read."""
    cls = lambda texts: ' class="differs"' if len(set(texts)) > 1 else ""  # noqa: E731
    return [[_e(label), *(f"<td{cls(texts)}>{_e(t)}</td>" for t in texts)] for label, texts in rows]


def loss_flags(runs: list[RunInfo], finals: list[dict[str, str]], terms: list[str]) -> dict[str, str]:
    """{term: why its final values are not comparable across the runs that have it}. Other data makes every
    loss another quantity; a term whose unit differs (a summed error against a per-pixel mean, another
    likelihood σ) is another quantity; the total loss also weighs its terms by the objective's settings."""
    flags = {}
    for t in terms:
        having = [r for r, f in zip(runs, finals) if t in f]
        if len(having) < 2:
            continue
        if len({data_description(r) for r in having}) > 1:
            flags[t] = "the runs trained on different data"
        elif len({term_units(r).get(t, "?") for r in having}) > 1:
            flags[t] = "its unit differs between the runs"
        elif t == "loss" and len({repr(objective_settings(r)) for r in having}) > 1:
            flags[t] = "it weighs its terms by objective settings that differ between the runs"
    return flags


def _loss_rows(runs: list[RunInfo], finals: list[dict[str, str]], skip: set[str]
               ) -> tuple[list[list[str]], dict[str, str]]:
    """Final validation terms (those no stored score repeats) with their unit, ⚠ where not comparable."""
    units = [term_units(r) for r in runs]
    terms = [t for t in dict.fromkeys(t for f in finals for t in f) if t not in skip]
    flags = loss_flags(runs, finals, terms)
    out = []
    for t in terms:
        distinct = {u.get(t) for u in units if t in u}
        unit = next(iter(distinct)) if len(distinct) == 1 else ""
        label = f"validation {t} (final" + (f", {unit}" if unit else "") + ")"
        out.append([_e("⚠ " * (t in flags) + label), *(_num(f.get(t, "—")) for f in finals)])
    return out, flags


def _differ_note(differ: list[str], flags: dict[str, str]) -> str:
    text = f"These runs differ in {' and '.join(differ)} (highlighted above)."
    if flags:
        reasons = "; ".join(f"validation {t}: {why}" for t, why in flags.items())
        text += (f" Rows marked ⚠ are then different quantities, not a ranking ({reasons}); scores made by one "
                 f"protocol on each run's own held-out images are the comparable measure.")
    return text


def _comparison(runs: list[RunInfo]) -> str:
    finals = [final_validation(r.history) for r in runs]
    flags = table_flags({r.label: r.metrics for r in runs})
    scores = [{(k, m): v for k, e in r.metrics.items() for m, v in split_entry(e)[0].items()} for r in runs]
    entries = {k: e for r in runs for k, e in r.metrics.items()}
    names = list(dict.fromkeys(n for s in scores for n in s))
    setup, differ = setup_rows(runs)
    rows = _setup_table_rows(setup)
    loss_rows, lflags = _loss_rows(runs, finals, {m for _, m in names})
    rows += loss_rows
    rows += [[_e("⚠ " * (n[0] in flags) + f"{n[0]} / {score_label(n[0], entries[n[0]], n[1])}"),
              *(_num(s.get(n, "—")) for s in scores)] for n in names]
    if any(r.latent for r in runs):
        rows.append(["posterior collapse warning", *(_e("—" if not r.latent else "yes" if r.latent.get("warning")
                                                        else "no") for r in runs)])
    parts = ['<section id="comparison"><h2>Comparison</h2>', _table(["", *(_e(r.label) for r in runs)], rows)]
    if differ:
        parts.append(f'<div class="warning" id="setup-differs"><p>{_e(_differ_note(differ, lflags))}</p></div>')
    if flags:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes(flags))
        parts.append(f'<div class="warning" id="protocol-mismatches"><p>Rows marked ⚠ compare scores made '
                     f"differently; read them as different measurements, not as a ranking:</p><ul>{items}</ul></div>")
    columns = f"grid-template-columns:repeat({len(runs)},minmax(420px,1fr))"
    for stem in sorted({s for r in runs for s in r.figures}, key=lambda s: _fig_key(Path(s))):
        title = TITLES.get(stem, stem)
        parts.append(_side_by_side(f"<h3>{_e(title)}</h3>", stem, title, runs, columns))
    return "".join(parts) + "</section>"


def _side_by_side(heading: str, stem: str, title: str, runs: list[RunInfo], columns: str) -> str:
    """One figure type of every run: in columns, or one above the other for the multi-panel figures whose
    text a column would shrink below reading size."""
    wide = stem in WIDE
    style = "grid-template-columns:1fr" if wide else columns
    return (f'{heading}<div class="side" style="{style}">'
            + "".join(_figure(r.figures.get(stem), title, r.label, wide) for r in runs) + "</div>")


def _seed_comparison(groups: list, runs: list[RunInfo]) -> str:
    """Runs that differ only in the seed as one column each: every score and final validation term as
    mean ± std over the seeds (genlab.seed_groups), figures from the group's first seed."""
    from genlab.seed_groups import cell, group_scores

    flags = table_flags({r.label: r.metrics for r in runs})
    scores = [group_scores(g) for g in groups]
    finals = [[final_validation(r.history) for r in g.runs] for g in groups]
    terms = list(dict.fromkeys(t for fs in finals for f in fs for t in f))
    names = list(dict.fromkeys(n for sc in scores for n in sc))
    setup, differ = setup_rows([g.runs[0] for g in groups])
    setup = [r for r in setup if r[0] != "epochs trained"]
    entries = {k: e for g in groups for r in g.runs for k, e in r.metrics.items()}
    rows = [*_setup_table_rows(setup), ["seeds", *(_e(", ".join(map(str, g.seeds))) for g in groups)]]
    score_names = {m for _, m in names}
    shown = [t for t in terms if t not in score_names]
    lflags = loss_flags([g.runs[0] for g in groups], [fs[0] if fs else {} for fs in finals], shown)
    rows += [[_e("⚠ " * (t in lflags) + f"validation {t} (final)"),
              *(_e(cell([_to_float(f[t]) for f in fs if t in f], len(fs))) for fs in finals)] for t in shown]
    rows += [[_e("⚠ " * (n[0] in flags) + f"{n[0]} / {score_label(n[0], entries.get(n[0]), n[1])}"),
              *(_e(sc.get(n, "—")) for sc in scores)] for n in names]
    parts = ['<section id="comparison"><h2>Comparison: mean ± std over seeds</h2>',
             '<p class="muted">Runs whose configs differ only in train.seed share a column; std is over seeds '
             '(ddof 1), n the seeds that have the score.</p>',
             _table(["", *(_e(g.label) for g in groups)], rows)]
    if differ:
        parts.append(f'<div class="warning" id="setup-differs"><p>{_e(_differ_note(differ, lflags))}</p></div>')
    if flags:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes(flags))
        parts.append(f'<div class="warning" id="protocol-mismatches"><p>Rows marked ⚠ compare scores made '
                     f"differently; read them as different measurements, not as a ranking:</p><ul>{items}</ul></div>")
    columns = f"grid-template-columns:repeat({len(groups)},minmax(420px,1fr))"
    firsts = [g.runs[0] for g in groups]
    for stem in sorted({s for r in firsts for s in r.figures}, key=lambda s: _fig_key(Path(s))):
        title = TITLES.get(stem, stem)
        parts.append(_side_by_side(f"<h3>{_e(title)} (first seed of each)</h3>", stem, title, firsts, columns))
    return "".join(parts) + "</section>"


def _to_float(text: str) -> float | str:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text


def build_report(run_dirs: list[Path], *, strict: bool = False, per_run: bool = False) -> str:
    """strict: refuse runs whose scores of one entry were made differently (genlab.metrics.comparable).
    A sweep folder stands for its runs; runs that differ only in the seed are compared as mean ± std."""
    from genlab.seed_groups import group_by_seed, grouped
    from genlab.sweeps import expand_run_dirs

    if not run_dirs:
        raise GenlabError("genlab report needs at least one run folder.")
    runs = [read_run(p) for p in expand_run_dirs([Path(p) for p in run_dirs])]
    if not runs:
        raise GenlabError(f"{', '.join(map(str, run_dirs))}: the sweep has no run folders yet; run it first.")
    labels = [r.label for r in runs]
    for r in runs:  # two runs of the same name are told apart by their folder
        if labels.count(r.label) > 1:
            r.label = f"{r.label} ({r.run.path})"
    if strict:
        refuse(table_flags({r.label: r.metrics for r in runs}), "this report")
    multi = len(runs) > 1
    title = "genlab report: " + ", ".join(r.label for r in runs)
    nav = '<a href="#comparison">comparison</a>' * multi + '<a href="#metrics">metrics</a>'
    nav += "".join(f'<a href="#run-{i + 1}">{_e(r.label)}</a>' for i, r in enumerate(runs))
    body = [f"<h1>{_e(title)}</h1>", f'<p class="muted">generated {time.strftime("%Y-%m-%d %H:%M:%S")} by genlab '
            f"{_e(__version__)} from {len(runs)} run folder{'s' * multi}</p><nav>{nav}</nav>"]
    groups = group_by_seed(runs)
    if multi:
        body.append(_seed_comparison(groups, runs) if grouped(groups) and not per_run else _comparison(runs))
    body.append(_metrics(runs))
    body += [_run_section(i, r, with_figures=not multi) for i, r in enumerate(runs)]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{CSS}</style></head>'
            f"<body>{''.join(body)}{ZOOM}<script>{SCRIPT}</script></body></html>\n")


def write_report(run_dirs: list[Path], output: Path, *, strict: bool = False, per_run: bool = False) -> Path:
    """Build the page and write it atomically to `output`; an unwritable path is a GenlabError."""
    page = build_report(run_dirs, strict=strict, per_run=per_run)
    output = Path(output)
    if output.is_dir():
        raise GenlabError(f"cannot write the report to {output}: it is a folder; give a file name such as "
                          f"{output / 'report.html'} with -o.")
    if output.parent.exists() and not output.parent.is_dir():
        raise GenlabError(f"cannot write the report to {output}: {output.parent} is a file, not a folder.")
    try:
        atomic_write(output, page)
    except OSError as exc:
        raise GenlabError(f"cannot write the report to {output}: {exc.strerror or exc}. Choose another path "
                          f"with -o.") from None
    return output
