"""The explorer's scores of the checkpoint it shows.

metrics.json holds what training's end and `genlab eval` computed, each entry naming its checkpoint and
step; the explorer loads `best` by default while training's end scores `last`. Shown side by side without a
word, a reader takes the scores of one set of weights for the images of another. So the page names the
loaded checkpoint, shows the stored entries made on it, and scores it itself, in a background thread on a
copy of the model (the page's decodes go on meanwhile), with the same metrics and settings as the end of
training, kept in memory only: metrics.json stays as the run left it.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from typing import Any

from genlab.run import LoadedRun

log = logging.getLogger("genlab.explore")


def split_stored(metrics: dict[str, Any], sha256: str, step: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(entries made on the loaded weights, entries made on others). An entry records the SHA-256 of the
    checkpoint file it scored, so `last` and `best` saved at one step count as the same weights; an older
    entry without the hash matches by its step."""
    here, other = {}, {}
    for key, entry in metrics.items():
        if not isinstance(entry, dict):
            other[key] = entry
            continue
        recorded = entry.get("checkpoint_sha256")
        same = recorded == sha256 if recorded else entry.get("step") == step
        (here if same else other)[key] = entry
    return here, other


class CheckpointScores:
    """The end-of-training metrics of the loaded checkpoint, computed once in a background thread."""

    def __init__(self, loaded: LoadedRun, stored_here: dict[str, Any]):
        from genlab.metrics.registry import end_of_training

        self.state, self.entries, self.error = "running", {}, ""
        self._loaded = loaded
        stored = {e.get("metric") for e in stored_here.values() if isinstance(e, dict)}
        self.names = [n for n in end_of_training(loaded.caps) if n not in stored]
        self._thread = threading.Thread(target=self._run, name="genlab-explore-scores", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from genlab.evaluate import EvalSettings, evaluate_loaded

        if not self.names:
            self.state = "done"
            return
        try:
            loaded = dataclasses.replace(self._loaded, model=copy.deepcopy(self._loaded.model))
            entries = evaluate_loaded(loaded, self.names, which=loaded.which, strict=False, store=False,
                                      settings=EvalSettings(seed=loaded.cfg.train.seed))
            self.entries = {k: {**v, "checkpoint": loaded.which, "step": loaded.step} for k, v in entries.items()}
            self.state = "done"
        except Exception as exc:  # noqa: BLE001 - the page says why, the explorer keeps working
            log.warning("scoring the loaded checkpoint failed: %s", exc)
            self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        return {"state": self.state, "entries": self.entries, "error": self.error}
