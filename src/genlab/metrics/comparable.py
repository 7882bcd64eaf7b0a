"""Whether stored scores of one entry, from several runs, were made the same way.

Tables that mix sample counts, reference splits, resizers, feature weights, k or BatchNorm modes are
how published numbers stop meaning anything: FID at 2,400 images is not FID at 50,000, and a
discriminator scored in eval mode is not the one scored on batch statistics. `genlab compare`, `report`
and `results` mark each such row and say why; with --strict they refuse.
"""

from __future__ import annotations

import json
from typing import Any

from genlab.errors import GenlabError

# Protocol keys whose values must agree for two scores of one entry to be compared, and what they are.
FIELDS: dict[str, str] = {
    "n_real": "real-image count", "n_fake": "generated-image count", "n_images": "image count",
    "n_samples": "sample count", "n_per_class": "samples per class", "n_train": "training-sample count",
    "n_test": "test-sample count",
    "reference_split": "reference split", "real_split": "real split", "test_split": "test split",
    "pr_k": "k of precision/recall", "kid_subset_size": "KID subset size", "kid_subsets": "KID subset count",
    "bins": "histogram bins", "binarisation": "binarisation", "threshold": "threshold",
    "model_mode": "model mode", "likelihood": "likelihood", "importance_samples": "importance samples",
    "variant": "estimator variant", "sampler": "sampler (steps, guidance)",
}
# Not here, though every score records it: `generator_weights`. A weight average is part of the model being
# compared (the recommended GAN configs add one), like its learning rate, not of how it was measured.
# Parts of a feature extractor's identity (a dict) and what a difference in them means.
EXTRACTOR_FIELDS: dict[str, str] = {"resize": "resizer", "weights": "feature weights",
                                    "weights_sha256": "feature weights", "name": "feature extractor",
                                    "feature_dim": "feature dimensions", "implementation": "feature extractor",
                                    "preprocessing": "preprocessing"}
NOT_RECORDED = "not recorded"


def mode_category(mode: Any) -> str | None:
    """What a model_mode text means for comparison: "batch statistics" or "eval"; None for a network without
    BatchNorm, whose modes compute the same function and so agree with either."""
    if not isinstance(mode, str):
        return mode
    if "no BatchNorm" in mode:
        return None
    return "batch statistics" if mode.startswith("batch statistics") else mode.split(" (")[0]


def _text(value: Any) -> str:
    if value is None:
        return NOT_RECORDED
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _short(value: str, width: int = 60) -> str:
    return value if len(value) <= width else value[:width - 1] + "…"


def _differs(field: str, what: str, per_run: dict[str, Any]) -> str | None:
    texts = {label: _text(v) for label, v in per_run.items()}
    if len(set(texts.values())) < 2:
        return None
    by_value: dict[str, list[str]] = {}
    for label, t in texts.items():
        by_value.setdefault(t, []).append(label)
    shown = "; ".join(f"{_short(t)} in {_who(labels)}" for t, labels in by_value.items())
    return f"{what} ({field}) differs: {shown}"


def _who(labels: list[str]) -> str:
    """Runs that agree on a value, named in full up to three (a sweep's sixteen runs stay one line)."""
    if len(labels) <= 3:
        return " and ".join([", ".join(labels[:-1]), labels[-1]]) if len(labels) > 1 else labels[0]
    return f"{', '.join(labels[:2])} and {len(labels) - 2} more"


def mismatches(entries: dict[str, Any]) -> list[str]:
    """Why the scores of one entry in these runs ({run label: stored entry}) are not comparable; [] when they
    are. A field one run records and another does not counts as a difference: nobody can say they agree."""
    stored = {label: e for label, e in entries.items() if isinstance(e, dict)}
    if len(stored) < 2:
        return []
    reasons = []
    for field, what in FIELDS.items():
        if field == "model_mode":
            modes = {label: mode_category(e.get(field)) for label, e in stored.items()
                     if field not in e or mode_category(e[field]) is not None}
            reason = _differs(field, what, modes) if any(field in e for e in stored.values()) else None
            if reason:
                reasons.append(reason)
            continue
        if any(field in e for e in stored.values()):
            reason = _differs(field, what, {label: e.get(field) for label, e in stored.items()})
            if reason:
                reasons.append(reason)
    for holder in ("extractor", "classifier"):
        if not any(isinstance(e.get(holder), dict) for e in stored.values()):
            continue
        for field, what in EXTRACTOR_FIELDS.items():
            per_run = {label: (e.get(holder) or {}).get(field) if isinstance(e.get(holder), dict) else None
                       for label, e in stored.items()}
            reason = _differs(f"{holder}.{field}", what, per_run)
            if reason and reason not in reasons:
                reasons.append(reason)
    return reasons


def table_flags(runs: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """{entry: reasons} over every entry stored by two or more of these runs ({run label: metrics.json})."""
    names = list(dict.fromkeys(k for doc in runs.values() for k in doc))
    flags = {}
    for name in names:
        reasons = mismatches({label: doc[name] for label, doc in runs.items() if name in doc})
        if reasons:
            flags[name] = reasons
    return flags


def refuse(flags: dict[str, list[str]], what: str) -> None:
    """--strict: a table with any flagged row is an error naming every row and why."""
    if flags:
        rows = "; ".join(f"[{entry}] {r}" for entry, reasons in flags.items() for r in reasons)
        raise GenlabError(f"{what} mixes protocols (--strict refuses): {rows}. Re-score the runs alike with "
                          f"`genlab eval` (same --samples, --seed and checkpoint), or drop --strict to see the "
                          f"table with these rows marked.")


def notes(flags: dict[str, list[str]]) -> list[str]:
    return [f"⚠ {entry}: {r}" for entry, reasons in flags.items() for r in reasons]
