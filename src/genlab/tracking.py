"""MLflow as a second live view beside TensorBoard: loss terms while a run trains, then its scores and files.

Optional (`train.mlflow: true`, `pip install "genlab[mlflow]"`). As with TensorBoard, the run folder stays
the record of a run; MLflow lets a user watch, search and compare runs in its tables. A failure to reach
or write to MLflow is a warning, never a failed run.

Store. `train.mlflow_uri: null` logs to `sqlite:///<output root>/mlflow.db`, artifacts beside it in
`<output root>/mlartifacts`, so that one file holds every run under `runs/`, as `tensorboard --logdir
runs` shows them all. SQLite because MLflow 3 keeps its file store (`./mlruns`) in maintenance mode and
refuses to open one unless MLFLOW_ALLOW_FILE_STORE=true is set, while SQLite is the store MLflow itself
defaults to and needs no server. mlflow-skinny writes to it once sqlalchemy and alembic are installed,
which the `mlflow` extra adds; only the viewer needs the full package (`pip install mlflow`, then
`mlflow ui --backend-store-uri sqlite:///runs/mlflow.db`). Any other tracking URI (a server's
`http://host:5000`, another database) is used as given.

Naming. One experiment, "genlab" ($MLFLOW_EXPERIMENT_NAME, MLflow's own variable, chooses another), and
each MLflow run named like its run folder. MLflow compares runs within an experiment: an experiment per
config name would hold one run each, and the output root's name is most often just "runs".

Resume. RUN_DIR/mlflow.json names the store and the MLflow run, so `genlab train --resume` continues
that run (a new one only if the store changed or the run was deleted). MLflow cannot delete a metric's
points, so where history.csv drops the rows an interrupted attempt wrote past its checkpoint and writes
them again, MLflow keeps the values it has and the resumed attempt logs from the first step after them:
each step shows once (with train.deterministic the values are the same ones; an epoch that train.max_steps
left open keeps its early epoch point beside the one a longer resume adds). Params cannot change in
MLflow either: those a resume changes (train.epochs, ...) are tagged `genlab.resumed_with.<key>`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genlab import __version__
from genlab.engine.hook import Hook, StepRecord
from genlab.errors import GenlabError
from genlab.io import atomic_write

if TYPE_CHECKING:
    from genlab.config import RunConfig
    from genlab.engine.loop import Loop
    from genlab.run import RunDir

log = logging.getLogger("genlab")

RUN_FILE = "mlflow.json"  # in the run folder: {"tracking_uri", "experiment_id", "run_id"}
EXPERIMENT = "genlab"
FLUSH_SECONDS = 5.0  # buffered steps reach MLflow at least this often, and at every evaluation and checkpoint
_DATABASE_SCHEMES = {"sqlite", "postgresql", "mysql", "mssql"}  # MLflow's SQLAlchemy stores
_PARAM_CHARS = 6000  # MLflow refuses longer parameter values
_PARAMS_PER_CALL, _METRICS_PER_CALL = 100, 1000  # MLflow's log_batch limits
_NOT_IN_KEYS = re.compile(r"[^\w./\- :]")  # what MLflow refuses in a metric name


def require_mlflow(uri: str | None) -> None:
    """Checked before a run starts, so a missing extra never costs a training run."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise GenlabError('train.mlflow is true but the mlflow package is not installed: install it with pip '
                          'install "genlab[mlflow]" (or pip install mlflow), or set train.mlflow: false.') from None
    scheme = (uri or "sqlite:").split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in _DATABASE_SCHEMES:
        try:
            import alembic  # noqa: F401
            import sqlalchemy  # noqa: F401
        except ImportError:
            store = "the local SQLite store (train.mlflow_uri: null)" if uri is None else f"the store {uri}"
            raise GenlabError(f'train.mlflow logs to {store}, which needs sqlalchemy and alembic besides mlflow: '
                              f'install them with pip install "genlab[mlflow]", set train.mlflow_uri to an MLflow '
                              f'server (http://...), or set train.mlflow: false.') from None


def tracking_uri(cfg: RunConfig, run: RunDir) -> str:
    """train.mlflow_uri, or the SQLite store of the run's output root (absolute: MLflow would resolve a
    relative one against the working directory, which changes between a run and its resume)."""
    if cfg.train.mlflow_uri:
        return cfg.train.mlflow_uri
    return f"sqlite:///{(run.path.parent / 'mlflow.db').resolve()}"


def metric_key(term: str, split: str, scope: str) -> str:
    """The TensorBoard view's tags (`loss/train` per step, `loss/train_epoch`, `loss/val_epoch`,
    `loss/val_eval`), so that both views name a curve alike."""
    suffix = "" if (scope, split) == ("step", "train") else f"_{scope}"
    return f"{_NOT_IN_KEYS.sub('_', term)}/{split}{suffix}"


def flat_params(cfg: RunConfig) -> dict[str, str]:
    """The resolved config as MLflow params: dotted keys (`train.epochs`), values as in JSON (`null`, `[4, 8]`)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = (value if isinstance(value, str) else json.dumps(value))[:_PARAM_CHARS]

    walk("", cfg.to_dict())
    return out


class Tracker:
    """One MLflow run of one run folder: buffered metrics that skip the steps the store already has."""

    def __init__(self, client: Any, run_id: str, stored: set[str] | None = None):
        """stored: the metric keys a continued run already has."""
        self.client, self.run_id = client, run_id
        self.pending: list[Any] = []
        self.flushed_at = time.monotonic()
        self._stored = stored or set()
        self._last: dict[str, int] = {}  # key -> last step in the store, read per key on first use

    def metric(self, key: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        if key not in self._last:
            history = self.client.get_metric_history(self.run_id, key) if key in self._stored else []
            self._last[key] = max((m.step for m in history), default=-1)
        if step > self._last[key]:
            self.pending.append(Metric(key, float(value), int(time.time() * 1000), step))
            self._last[key] = step

    def flush(self) -> None:
        for i in range(0, len(self.pending), _METRICS_PER_CALL):
            self.client.log_batch(self.run_id, metrics=self.pending[i:i + _METRICS_PER_CALL])
        self.pending = []
        self.flushed_at = time.monotonic()

    def due(self) -> bool:
        return time.monotonic() - self.flushed_at >= FLUSH_SECONDS


def connect(run: RunDir, cfg: RunConfig, create: bool = True) -> Tracker | None:
    """The MLflow run RUN_DIR/mlflow.json names in this store, continued; else a new one (None if not create)."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(cfg, run)
    client = MlflowClient(tracking_uri=uri)
    saved = _saved(run)
    if saved.get("tracking_uri") == uri and saved.get("run_id"):
        try:
            found = client.get_run(saved["run_id"])
        except MlflowException:
            found = None
        if found is not None and found.info.lifecycle_stage == "active":
            if create:
                client.update_run(found.info.run_id, status="RUNNING")
                _update_params(client, found, flat_params(cfg))
            return Tracker(client, found.info.run_id, set(found.data.metrics))
        if create:
            log.warning("MLflow run %s is no longer in %s: logging to a new one", saved["run_id"], uri)
    elif saved and create:
        log.info("train.mlflow_uri changed from %s: a new MLflow run in %s", saved.get("tracking_uri"), uri)
    if not create:
        return None
    experiment_id = _experiment(client, default_store=not cfg.train.mlflow_uri, root=run.path.parent)
    tags = {"genlab.run_dir": str(run.path.resolve()), "genlab.version": __version__,
            "genlab.model": cfg.model.name, "genlab.data": cfg.data.name, "genlab.objective": cfg.objective.kind}
    created = client.create_run(experiment_id, run_name=run.path.name, tags=tags)
    run_id = created.info.run_id
    _log_params(client, run_id, flat_params(cfg))
    atomic_write(run.path / RUN_FILE, json.dumps({"tracking_uri": uri, "experiment_id": experiment_id,
                                                  "run_id": run_id}, indent=2) + "\n")
    return Tracker(client, run_id)


def _saved(run: RunDir) -> dict[str, Any]:
    try:
        doc = json.loads((run.path / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _experiment(client: Any, default_store: bool, root: Path) -> str:
    from mlflow.exceptions import MlflowException

    name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or EXPERIMENT
    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # MLflow would put a SQLite store's artifacts in ./mlruns of whatever the working directory is
    location = (root / "mlartifacts").resolve().as_uri() if default_store else None
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # another run created it meanwhile
        found = client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def _log_params(client: Any, run_id: str, params: dict[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for i in range(0, len(items), _PARAMS_PER_CALL):
        client.log_batch(run_id, params=items[i:i + _PARAMS_PER_CALL])


def _update_params(client: Any, found: Any, params: dict[str, str]) -> None:
    """A resumed run's config: keys new since (a genlab upgrade) as params, changed ones as tags."""
    from mlflow.entities import RunTag

    old = found.data.params
    _log_params(client, found.info.run_id, {k: v for k, v in params.items() if k not in old})
    tags = [RunTag(f"genlab.resumed_with.{k}", v) for k, v in params.items() if k in old and old[k] != v]
    if tags:
        client.log_batch(found.info.run_id, tags=tags)


class MLflowHook(Hook):
    """Rank 0 only (train._hooks adds it there). Logs what history.csv gets, when it gets it: a step row
    every train.log_every_steps, and per evaluation the epoch's training means and the validation values.
    Connects at the first step, after `--overwrite` emptied the folder and a resume read its checkpoint."""

    name = "mlflow"

    def __init__(self, run: RunDir, cfg: RunConfig):
        self.run, self.cfg, self.every = run, cfg, cfg.train.log_every_steps
        self.tracker: Tracker | None = None
        self.loop: Loop | None = None  # the loop to warn through, also from state_dict, which has none
        self.broken = False

    def _guard(self, action: Callable[[], None]) -> None:
        """MLflow's failures stop the view, not the run: one warning, then nothing more is sent."""
        if self.broken:
            return
        try:
            action()
        except Exception as exc:
            self.broken, self.tracker = True, None
            message = (f"MLflow logging stopped ({type(exc).__name__}: {str(exc)[:300]}); training goes on, and "
                       f"history.csv, metrics.json and figures/ are complete as always.")
            if self.loop is not None:
                self.loop.warn("mlflow", message)
            else:
                log.warning(message)

    def _open(self, loop: Loop) -> Tracker | None:
        self.loop = loop
        if self.tracker is None and not self.broken:
            def connect_now() -> None:
                self.tracker = connect(self.run, self.cfg)

            self._guard(connect_now)
        return self.tracker

    def _add(self, loop: Loop, scope: str, split: str, terms: dict[str, float], flush: bool) -> None:
        tracker = self._open(loop)
        if tracker is None:
            return
        step = loop.progress.step

        def add() -> None:
            for term, value in terms.items():
                tracker.metric(metric_key(term, split, scope), value, step)
            if flush or tracker.due():
                tracker.flush()

        self._guard(add)

    def on_step(self, loop: Loop, record: StepRecord) -> None:
        if record.values is not None and record.step % self.every == 0:
            self._add(loop, "step", "train", record.values, flush=False)

    def on_evaluation(self, loop: Loop, scope: str, values: dict[str, float]) -> None:
        if scope == "epoch":
            self._add(loop, "epoch", "train", loop.progress.epoch_means(), flush=False)
        self._add(loop, scope, "val", values, flush=True)

    def state_dict(self) -> dict[str, Any]:
        """Called as a checkpoint is written: flush, so that the store holds every step the checkpoint
        covers; a resume then logs from the first step the store lacks without leaving a gap."""
        self._flush()
        return {}

    def _flush(self) -> None:
        if self.tracker is not None and self.tracker.pending:
            self._guard(self.tracker.flush)

    def close(self, loop: Loop) -> None:
        self._flush()
        self.tracker = None  # a later fit of the same loop connects again


def log_end_of_training(run: RunDir, cfg: RunConfig) -> None:
    """After summary.json is written: the end-of-training scores, the files and the run's status go to the
    MLflow run the live view logged to. Never raises: a failure is a logged warning."""
    try:
        tracker = connect(run, cfg, create=False)
        if tracker is not None:  # None: the live view never reached MLflow, and warned why
            _log_results(tracker, run)
    except Exception as exc:
        log.warning("MLflow: could not log the end of training (%s: %s); the run folder has everything.",
                    type(exc).__name__, str(exc)[:300])


def _log_results(tracker: Tracker, run: RunDir) -> None:
    """metrics.json's numeric values as `score/<entry>[/<value>]` at the step they were computed at, the
    entries with their protocols as the metrics.json artifact, then figures/, config.yaml, summary.json."""
    from genlab.metrics.store import read_metrics, split_entry
    from genlab.run import read_summary

    summary = read_summary(run) or {}
    step = int(summary.get("progress", {}).get("steps", 0))
    for entry_name, entry in read_metrics(run.metrics).items():
        values, protocol = split_entry(entry)
        at = protocol.get("step")
        at = at if isinstance(at, int) and not isinstance(at, bool) else step
        for name, value in values.items():
            key = entry_name if name == entry_name else f"{entry_name}/{name}"
            tracker.metric(f"score/{_NOT_IN_KEYS.sub('_', key)}", value, at)
    tracker.flush()
    client, run_id = tracker.client, tracker.run_id
    for path in (run.config, run.summary, run.metrics):
        if path.is_file():
            client.log_artifact(run_id, str(path))
    for png in sorted(run.figures.rglob("*.png")) if run.figures.is_dir() else []:
        client.log_artifact(run_id, str(png), artifact_path=png.parent.relative_to(run.path).as_posix())
    status = str(summary.get("status", "finished"))
    client.set_tag(run_id, "genlab.status", status)
    client.set_terminated(run_id, _run_status(status))


def _run_status(status: str) -> str:
    """summary.json's status as MLflow's: a run stopped early by design finished; an interrupted one was killed."""
    if status.startswith("interrupted"):
        return "KILLED"
    return "FAILED" if status.startswith("failed") else "FINISHED"
