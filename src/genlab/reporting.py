"""`genlab report`: one self-contained HTML page (figures inlined as base64 data URIs, inline CSS, no script,
no network) for one or more run folders: config summary, metrics with their protocol, per-epoch losses and
figures; with several runs, a comparison of final validation values, numeric metrics and figures side by side.
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
from genlab.run import RunDir, summary_of
from genlab.viz.curves import epoch_rows

ORDER = ("samples", "reconstructions", "traversal", "traversal_prior", "interpolation", "tsne", "kl_per_dim",
         "loss_curves")
TITLES = {"samples": "Samples", "reconstructions": "Reconstructions", "traversal": "Latent traversal (held-out code)",
          "traversal_prior": "Latent traversal (from z = 0)", "interpolation": "Interpolation",
          "tsne": "t-SNE of the latent means", "kl_per_dim": "KL per latent dimension and active units",
          "loss_curves": "Loss curves"}
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
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:1rem;align-items:start}
.side{display:grid;gap:1rem;overflow-x:auto;align-items:start}
figure{margin:0;border:1px solid #e5e7eb;border-radius:6px;padding:.5rem}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}figcaption{font-size:13px;margin-top:.3rem}
.missing{color:#8c959f;font-style:italic;padding:1rem}
.warning{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:.5rem .8rem}
"""


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


def _figure(path: Path | None, title: str, label: str) -> str:
    if path is None:
        return f'<figure><div class="missing">{_e(title)}: not in run {_e(label)}</div></figure>'
    data = path.read_bytes()
    if not data.startswith(PNG_MAGIC):
        return f'<figure><div class="missing">{_e(path)} is not a PNG file; not shown</div></figure>'
    alt = f"{title} of run {label} ({path.parent.name}/{path.name})"
    src = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure><img src="{src}" alt="{_e(alt)}" title="{_e(alt)}">'
            f"<figcaption><b>{_e(label)}</b> · {_e(path.name)}</figcaption></figure>")


def _summary(info: RunInfo) -> str:
    c = info.config
    model, data, obj = dict(c.get("model") or {}), c.get("data") or {}, c.get("objective") or {}
    optim, train, rows = dict(c.get("optim") or {}), c.get("train") or {}, info.history
    kind = obj.get("kind", "?")
    limits = {k: data.get(k) for k in ("root", "limit", "val_limit")}
    size = data.get("image_size")
    split = ("the official test split" if data.get("use_test_split")
             else f"val_fraction {data.get('val_fraction')}, split_seed {data.get('split_seed')}")
    own = OBJECTIVES[kind].config.model_fields if kind in OBJECTIVES else {}  # an older config has every kind's keys
    items = {"model": f"{model.pop('name', '?')} ({_kv(model) or 'defaults'})",
             "objective": f"{kind}: {_kv({k: v for k, v in obj.items() if k != 'kind' and k in own})}",
             "data": f"{data.get('name', '?')} at {size}×{size}; {_kv(limits)}; {split}",
             "optim": f"{optim.pop('name', '?')} ({_kv(optim)})",
             "training": _kv({k: train.get(k) for k in ("epochs", "max_steps", "batch_size", "seed", "device")})}
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
    if info.latent:
        parts.append("<h3>Latent usage</h3>" + _latent_usage(info.latent))
    if with_figures:
        parts.append("<h3>Figures</h3>")
        parts.append('<div class="figs">' + "".join(_figure(p, TITLES.get(s, s), info.label)
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
                rows.append([*lead, _e(name), _num(value), *tail])
    body = (_table(["run", "entry", "metric", "value", "protocol"], rows) if rows
            else '<p class="missing">no metrics.json in these runs</p>')
    return f'<section id="metrics"><h2>Metrics</h2>{body}</section>'


def _comparison(runs: list[RunInfo]) -> str:
    finals = [final_validation(r.history) for r in runs]
    terms = list(dict.fromkeys(t for f in finals for t in f))
    flags = table_flags({r.label: r.metrics for r in runs})
    scores = [{(k, m): v for k, e in r.metrics.items() for m, v in split_entry(e)[0].items()} for r in runs]
    names = list(dict.fromkeys(n for s in scores for n in s))
    rows = [["model", *(_e((r.config.get("model") or {}).get("name", "?")) for r in runs)],
            ["steps trained", *(_num(max((int(x["step"]) for x in r.history), default=0)) for r in runs)]]
    rows += [[_e(f"validation {t} (final)"), *(_num(f.get(t, "—")) for f in finals)] for t in terms]
    rows += [[_e("⚠ " * (n[0] in flags) + f"{n[0]} / {n[1]}"), *(_num(s.get(n, "—")) for s in scores)]
             for n in names]
    if any(r.latent for r in runs):
        rows.append(["posterior collapse warning", *(_e("—" if not r.latent else "yes" if r.latent.get("warning")
                                                        else "no") for r in runs)])
    parts = ['<section id="comparison"><h2>Comparison</h2>', _table(["", *(_e(r.label) for r in runs)], rows)]
    if flags:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes(flags))
        parts.append(f'<div class="warning" id="protocol-mismatches"><p>Rows marked ⚠ compare scores made '
                     f"differently; read them as different measurements, not as a ranking:</p><ul>{items}</ul></div>")
    columns = f"grid-template-columns:repeat({len(runs)},minmax(300px,1fr))"
    for stem in sorted({s for r in runs for s in r.figures}, key=lambda s: _fig_key(Path(s))):
        title = TITLES.get(stem, stem)
        parts.append(f'<h3>{_e(title)}</h3><div class="side" style="{columns}">'
                     + "".join(_figure(r.figures.get(stem), title, r.label) for r in runs) + "</div>")
    return "".join(parts) + "</section>"


def _seed_comparison(groups: list, runs: list[RunInfo]) -> str:
    """Runs that differ only in the seed as one column each: every score and final validation term as
    mean ± std over the seeds (genlab.seed_groups), figures from the group's first seed."""
    from genlab.seed_groups import cell, group_scores

    flags = table_flags({r.label: r.metrics for r in runs})
    scores = [group_scores(g) for g in groups]
    finals = [[final_validation(r.history) for r in g.runs] for g in groups]
    terms = list(dict.fromkeys(t for fs in finals for f in fs for t in f))
    names = list(dict.fromkeys(n for sc in scores for n in sc))
    rows = [["model", *(_e((g.runs[0].config.get("model") or {}).get("name", "?")) for g in groups)],
            ["seeds", *(_e(", ".join(map(str, g.seeds))) for g in groups)]]
    rows += [[_e(f"validation {t} (final)"), *(_e(cell([_to_float(f[t]) for f in fs if t in f], len(fs)))
                                                for fs in finals)] for t in terms]
    rows += [[_e("⚠ " * (n[0] in flags) + f"{n[0]} / {n[1]}"), *(_e(sc.get(n, "—")) for sc in scores)]
             for n in names]
    parts = ['<section id="comparison"><h2>Comparison: mean ± std over seeds</h2>',
             '<p class="muted">Runs whose configs differ only in train.seed share a column; std is over seeds '
             '(ddof 1), n the seeds that have the score.</p>',
             _table(["", *(_e(g.label) for g in groups)], rows)]
    if flags:
        items = "".join(f"<li>{_e(n)}</li>" for n in notes(flags))
        parts.append(f'<div class="warning" id="protocol-mismatches"><p>Rows marked ⚠ compare scores made '
                     f"differently; read them as different measurements, not as a ranking:</p><ul>{items}</ul></div>")
    columns = f"grid-template-columns:repeat({len(groups)},minmax(300px,1fr))"
    firsts = [g.runs[0] for g in groups]
    for stem in sorted({s for r in firsts for s in r.figures}, key=lambda s: _fig_key(Path(s))):
        title = TITLES.get(stem, stem)
        parts.append(f'<h3>{_e(title)} (first seed of each)</h3><div class="side" style="{columns}">'
                     + "".join(_figure(r.figures.get(stem), title, r.label) for r in firsts) + "</div>")
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
            f"<body>{''.join(body)}</body></html>\n")


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
