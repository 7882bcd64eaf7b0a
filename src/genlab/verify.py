"""`genlab eval --verify`: recompute every stored score of a run from the checkpoint and settings it
records, and say which moved.

The check a reviewer runs before trusting a table: a score made during training, on other weights
than the file now holds, by other code, or on data that changed since, shows up here as moved, stale
or unverifiable, each with its reason. Nothing is written: metrics.json stays as it was.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.device import select_device
from genlab.errors import GenlabError
from genlab.metrics.comparable import NOT_RECORDED, mismatches
from genlab.metrics.context import Context
from genlab.metrics.provenance import checkpoint_hash, making, settings_from_record
from genlab.metrics.registry import METRICS
from genlab.metrics.store import SCORE_KEYS, read_metrics, split_entry
from genlab.run import LoadedRun, RunDir, load_run

OK, MOVED, STALE, UNVERIFIABLE, FAILED, CHANGED = "ok", "moved", "stale", "unverifiable", "failed", "changed"


@dataclass
class Check:
    entry: str
    value: str  # the value's name, or "—" for a whole entry that could not be recomputed
    stored: float | None
    recomputed: float | None
    tolerance: float | None
    status: str
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status == OK

    @property
    def difference(self) -> float | None:
        if self.stored is None or self.recomputed is None:
            return None
        return self.recomputed - self.stored


def within(stored: float, recomputed: float, tolerance: float) -> bool:
    return abs(recomputed - stored) <= tolerance * max(1.0, abs(stored))


def _whole(entry: str, status: str, reason: str) -> Check:
    return Check(entry, "—", None, None, None, status, reason)


def _group_key(entry: dict[str, Any]) -> tuple[str, str, str] | None:
    if not all(k in entry for k in ("metric", "eval_settings", "checkpoint")):
        return None
    return entry["metric"], entry["checkpoint"], json.dumps(entry["eval_settings"], sort_keys=True)


def verify_run(path: Path, metrics: list[str] | None = None, *, device: str | None = None) -> list[Check]:
    """One Check per stored value (or per entry that cannot be recomputed), in metrics.json's order.

    device None: each score is recomputed on the device it was made on when this machine has it. Samples
    are drawn from generators on the model's device, so a score made on CUDA is recomputed from other
    samples on the CPU; the checks then say so."""
    run = RunDir(Path(path))
    doc = read_metrics(run.metrics)
    if not doc:
        raise GenlabError(f"{path} has no stored scores ({run.metrics.name} is missing or empty): nothing to verify. "
                          f"`genlab eval {path}` computes them.")
    unknown = sorted({e["metric"] for e in doc.values() if isinstance(e, dict) and e.get("metric")} - set(METRICS))
    if metrics is not None:
        doc = {k: e for k, e in doc.items() if isinstance(e, dict) and e.get("metric") in metrics}
        if not doc:
            raise GenlabError(f"{path} stores no score made by {', '.join(metrics)}.")
    checks: dict[str, list[Check]] = {}
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for key, entry in doc.items():
        group = _group_key(entry) if isinstance(entry, dict) else None
        if group is None:
            checks[key] = [_whole(key, UNVERIFIABLE, "stored without the metric's name and settings (written before "
                                                      "genlab 0.3); `genlab eval` again records them")]
        elif group[0] in unknown:
            checks[key] = [_whole(key, UNVERIFIABLE, f"made by metric {group[0]!r}, which this genlab does not have")]
        else:
            groups.setdefault((*group, str(entry.get("device", "cpu"))), []).append(key)
    loaded: dict[str, LoadedRun] = {}
    hashes: dict[str, str | None] = {}  # one read of each checkpoint file, however many metrics scored it
    for (metric, which, settings_json, made_on), keys in groups.items():
        dev = _device(device, made_on)
        try:
            found = _recompute(run, loaded, hashes, dev, doc, metric, which, settings_json, keys)
        except Exception as exc:  # noqa: BLE001 - one entry that cannot be recomputed must not hide the others
            why = str(exc) if isinstance(exc, GenlabError) else f"{type(exc).__name__}: {exc}"
            found = {k: [_whole(k, FAILED, why)] for k in keys}
        note = "" if str(dev) == made_on else f" (made on {made_on}, recomputed on {dev}: samples drawn on another " \
                                                 f"device differ; verify where it was made, or pass --device)"
        for key, result in found.items():
            checks[key] = [c if c.passed or not note else Check(c.entry, c.value, c.stored, c.recomputed,
                                                                 c.tolerance, c.status, c.reason + note)
                           for c in result]
    return [c for key in doc for c in checks[key]]


def _device(requested: str | None, made_on: str):
    if requested is not None:
        return select_device(requested)
    try:
        return select_device(made_on)
    except GenlabError:
        return select_device("cpu")


def _equal(stored: float, new: float, tolerance: float) -> bool:
    if math.isnan(stored) or math.isnan(new):
        return math.isnan(stored) and math.isnan(new)  # a NaN that reproduces is reproduced
    return within(stored, new, tolerance)


def _recompute(run: RunDir, loaded: dict[str, LoadedRun], hashes: dict[str, str | None], device, doc: dict[str, Any],
               metric: str, which: str, settings_json: str, keys: list[str]) -> dict[str, list[Check]]:
    if which not in ("best", "last"):
        raise GenlabError(f"the entry names checkpoint {which!r}; genlab scores 'best' or 'last'")
    ckpt = run.checkpoint(which)
    if which not in hashes:
        hashes[which] = checkpoint_hash(ckpt)
    now = hashes[which]
    recorded = {k: doc[k].get("checkpoint_sha256") for k in keys}
    stale = {k: h for k, h in recorded.items() if h != now}
    out: dict[str, list[Check]] = {}
    for k, h in stale.items():
        why = (f"checkpoints/{ckpt.name} is gone" if now is None else
               f"checkpoints/{ckpt.name} changed since the score was made (sha256 {h[:12] if h else 'not recorded'}… "
               f"then, {now[:12]}… now)")
        out[k] = [_whole(k, STALE, why + "; `genlab eval` scores the weights it holds now")]
    keys = [k for k in keys if k not in stale]
    if not keys:
        return out
    if which not in loaded:
        loaded[which] = load_run(run.path, which)
    ctx = Context(loaded[which], settings_from_record(json.loads(settings_json)), device)
    m = METRICS[metric]
    reason = m.applies(ctx)
    if reason:
        raise GenlabError(f"metric {metric!r} no longer applies: {reason}")
    fresh = m.compute(ctx)
    for key in keys:
        stored, _ = split_entry(doc[key])
        if key not in fresh:
            out[key] = [_whole(key, FAILED, f"metric {metric!r} no longer produces this entry")]
            continue
        new = fresh[key].values
        made_now = {**making(ctx, m, new, now), **fresh[key].protocol}
        changed = [r for r in mismatches({"then": doc[key], "now": made_now}) if NOT_RECORDED not in r]
        out[key] = [_whole(key, CHANGED, "the protocol changed: " + "; ".join(changed))] if changed else []
        for name in doc[key].get(SCORE_KEYS, list(stored)):
            if name not in stored:
                continue  # a per-class dict: its mean and worst class are values of their own
            tolerance = m.tolerance_of(name)
            if not isinstance(new.get(name), (int, float)):
                out[key].append(Check(key, name, stored[name], None, tolerance, FAILED, "not recomputed"))
                continue
            ok = _equal(float(stored[name]), float(new[name]), tolerance)
            out[key].append(Check(key, name, float(stored[name]), float(new[name]), tolerance, OK if ok else MOVED,
                                  "" if ok else f"moved by more than {tolerance:g} × max(1, |stored|)"))
    return out


def render_checks(checks: list[Check]) -> str:
    from genlab.comparison import render

    def num(v: float | None) -> str:
        return "—" if v is None else f"{v:.6g}"

    rows = [[c.entry, c.value, num(c.stored), num(c.recomputed), num(c.difference),
             "—" if c.tolerance is None else f"{c.tolerance:g}", c.status + (f": {c.reason}" if c.reason else "")]
            for c in checks]
    table = render(["entry", "value", "stored", "recomputed", "difference", "tolerance", "status"], rows)
    failed = [c for c in checks if not c.passed]
    tail = (f"all {len(checks)} values reproduced within their tolerance\n" if not failed else
            f"{len(failed)} of {len(checks)} values did not reproduce\n")
    return table + tail
