"""`genlab sweep`: the product of settings and seeds as one run folder each, run to the end exactly once.

    runs/<sweep>/sweep.json        what was asked (configs, grid, seeds, overrides, executor) and each
                                   run's name, settings and last known status
    runs/<sweep>/<run>/            an ordinary run folder (`genlab compare runs/<sweep>` reads them all)
    runs/<sweep>/logs/<run>.log    the console output of that run's `genlab train`
    runs/<sweep>/submitit/         job files when the SLURM (or submitit-local) executor ran it

Every run is an ordinary `genlab train` in its own process, so a sweep is exactly the runs a user
could have started by hand. What to do with a run is decided when its job starts, from its folder:
finished runs are skipped, interrupted or failed ones resumed from last.pt, empty ones started again.
So starting a killed sweep again (or SLURM requeueing a job) finishes every run exactly once.

Executors: `local` runs `--jobs N` processes at a time, each with its share of the CPU threads;
`slurm` submits one job per run (or a job array) through submitit, with the partition, time limit and
GPUs per run; SLURM's signal before the limit makes the job stop its training (which checkpoints on
SIGTERM) and requeue itself. `submitit-local` is submitit's own local executor, the same job code
without a cluster (CI tests the cluster path with it).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genlab import __version__
from genlab.engine.signals import EXIT_CODES, SUPERVISED_ENV
from genlab.errors import GenlabError, SweepInterrupted
from genlab.io import atomic_write

log = logging.getLogger("genlab.sweep")

MANIFEST = "sweep.json"
MANIFEST_FORMAT = 1
EXECUTORS = ("local", "slurm", "submitit-local")
SIGNAL_DELAY_S = 120  # SLURM warns a job this long before its time limit (submitit's --signal=USR2@...)
DONE = ("finished", "stopped early")


@dataclass(frozen=True)
class Axis:
    key: str  # a dotted config key, or "config" for the config itself
    values: tuple[Any, ...]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: `genlab train CONFIG --set ... --out ROOT` with its name."""

    name: str
    config: str
    overrides: tuple[str, ...]
    values: dict[str, Any]
    seed: int | None
    root: str  # the sweep folder: the run's output root

    @property
    def path(self) -> Path:
        return Path(self.root) / self.name


@dataclass
class Slurm:
    partition: str | None = None
    time_min: int = 60
    gpus_per_run: int = 0
    cpus_per_run: int | None = None
    array: bool = True
    array_parallelism: int = 64
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- what a sweep is


def parse_axis(text: str) -> Axis:
    """`--grid key=v1,v2,...`: values are YAML scalars (10 is a number, cat-faces a string); a list value is
    written in brackets (`model.hidden_dims=[32,64],[64,128]`)."""
    if "=" not in text:
        raise GenlabError(f"--grid {text!r}: expected key=value1,value2,... e.g. --grid objective.beta=1,4,10.")
    key, raw = (s.strip() for s in text.split("=", 1))
    if not key or not all(key.split(".")):
        raise GenlabError(f"--grid {text!r}: the key {key!r} is empty or has an empty part.")
    parts = _split_top_level(raw)
    if not parts or any(not p.strip() for p in parts):
        raise GenlabError(f"--grid {text!r}: give at least one value and no empty ones, separated by commas.")
    try:
        values = tuple(yaml.safe_load(p) for p in parts)
    except yaml.YAMLError as exc:
        raise GenlabError(f"--grid {text!r}: a value is not valid YAML ({exc}).") from None
    if len(set(map(repr, values))) != len(values):
        raise GenlabError(f"--grid {text!r}: a value appears twice.")
    return make_axis(key, values)


def make_axis(key: str, values: Any) -> Axis:
    """A grid axis given from Python ({key: [values]}), held to what parse_axis holds `--grid` to."""
    if not isinstance(key, str) or not key or not all(key.split(".")):
        raise GenlabError(f"grid key {key!r}: a dotted config key such as 'objective.beta'.")
    if not isinstance(values, (list, tuple)) or not values:
        raise GenlabError(f"grid {key}: give a non-empty list of values (got {values!r}).")
    if len(set(map(repr, values))) != len(values):
        raise GenlabError(f"grid {key}: a value appears twice in {list(values)!r}.")
    return Axis(key, tuple(values))


def _split_top_level(raw: str) -> list[str]:
    """Commas outside brackets separate values."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [*out, cur]


def _slug(value: Any) -> str:
    """A value as part of a folder name: a path's last component, numbers as written, the rest reduced."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", "-"))
    if isinstance(value, str) and ("/" in value or os.sep in value):
        text = Path(value).name or value
    text = re.sub(r"[^A-Za-z0-9.+-]+", "-", str(text)).strip("-.")
    return text or "x"


def _short_names(keys: Sequence[str]) -> dict[str, str]:
    """Each grid key's name in run names: its last part, or more parts where two keys end alike."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            short = "-".join(parts[-n:])
            if sum(1 for k in keys if k.split(".")[-n:] == parts[-n:]) == 1:
                break
        out[key] = short
    return out


def expand(configs: Sequence[str], axes: Sequence[Axis], seeds: Sequence[int] | None, root: Path,
           overrides: Sequence[str] = ()) -> list[RunSpec]:
    """Every combination, validated as a config now (a typo fails before anything runs), named from its
    values: <config>_<key><value>..._seed<seed>."""
    from genlab.config import load

    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise GenlabError(f"--grid names a key twice: {', '.join(k for k in keys if keys.count(k) > 1)}.")
    bad = [k for k in keys if k in ("name", "train.seed")]
    if bad:
        raise GenlabError(f"--grid {bad[0]}: {'run names come from the grid' if bad[0] == 'name' else 'use --seeds'}.")
    short = _short_names(keys)
    specs = []
    for config in configs:
        load(config, list(overrides))  # the config exists and its overrides fit, before the grid is tried
        for combo in itertools.product(*(a.values for a in axes)):
            values = dict(zip(keys, combo))
            for seed in (seeds if seeds is not None else [None]):
                parts = [Path(config).stem, *(f"{short[k]}{_slug(v)}" for k, v in values.items())]
                if seed is not None:
                    parts.append(f"seed{seed}")
                name = "_".join(parts)
                sets = [*overrides, *(f"{k}={json.dumps(v)}" for k, v in values.items()),
                        *([f"train.seed={seed}"] if seed is not None else []), f"name={name}"]
                load(config, sets)  # each run's config is valid before any runs
                specs.append(RunSpec(name, str(config), tuple(sets), values, seed, str(root)))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise GenlabError(f"two runs of this sweep would share the folder name {dup!r} (names come from the config "
                          f"files' names and the grid values' folder-name forms); rename a config file or choose "
                          f"grid values that differ in their last path component.")
    return specs


# ---------------------------------------------------------------- one run, whatever its folder holds


def state_of(spec: RunSpec) -> str:
    """"done", "resume" (a checkpoint to continue from) or "start" (nothing, or nothing worth keeping).

    A finished run whose run length the sweep now sets differently (more train.epochs) is resumed; one
    whose folder was trained with other settings is refused, not silently kept as this sweep's result."""
    from genlab.config import incompatible_changes, load
    from genlab.run import RunDir, read_summary

    run = RunDir(spec.path)
    if not run.config.is_file():
        return "start"
    summary = None
    with contextlib.suppress(GenlabError):  # an unreadable summary.json: the checkpoint decides
        summary = read_summary(run)
    status = str((summary or {}).get("status", ""))
    length_changed = False
    if spec.config and run.last.is_file():
        saved, wanted = run.read_config(), load(spec.config, list(spec.overrides))
        bad = incompatible_changes(saved, wanted)
        if bad:
            raise GenlabError(f"{run.path} was trained with other settings than this sweep gives it ({', '.join(bad)} "
                              f"differ); start the sweep with the settings it was started with, or give it another "
                              f"--name.")
        length_changed = (saved.train.epochs, saved.train.max_steps) != (wanted.train.epochs, wanted.train.max_steps)
    if status.startswith(DONE) and not length_changed:
        return "done"
    return "resume" if run.last.is_file() else "start"


def train_command(spec: RunSpec, threads: int | None = None) -> list[str] | None:
    """The `genlab train` that takes this run from where its folder is to its end; None when it is done."""
    state = state_of(spec)
    if state == "done":
        return None
    cmd = [sys.executable, "-m", "genlab", "train"]
    sets = list(spec.overrides) + ([f"train.threads={threads}"] if threads else [])
    if state == "resume":
        cmd += [spec.config, "--resume", str(spec.path)]
    else:
        cmd += [spec.config, "--out", spec.root, "--overwrite"]
    for s in sets:
        cmd += ["--set", s]
    return cmd


@contextlib.contextmanager
def _file_lock(path: Path, waiting: str | None = None):
    """An exclusive flock on `path` (made if missing); yields its descriptor."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting:
                log.info("%s", waiting)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _run_lock(spec: RunSpec):
    """One training per run folder at a time, across sweeps started twice and SLURM requeues: a lock on
    <sweep>/.locks/<run>, held by the job and by its training process until both have ended."""
    return _file_lock(spec.path.parent / ".locks" / spec.name,
                      f"{spec.name}: another process is training it; waiting for it to end")


def _child_setup() -> None:
    """In the training process before it starts: SIGTERM when the sweep dies without stopping it (Linux), and
    SLURM's early warning (SIGUSR2, sent to every process of the job) left to the job, which answers it by
    stopping this training with SIGTERM so that it checkpoints."""
    signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class RunJob:
    """The job of one run: its `genlab train` in a child process of its own session (a terminal's Ctrl-C
    reaches the sweep, which stops its trainings once, so each checkpoints), stopped with SIGTERM when the
    job must stop. submitit calls `checkpoint` on SLURM's signal before the time limit and requeues what it
    returns: the same job, which resumes the run from its folder. The job records its status in the sweep's
    manifest itself, so SLURM jobs keep it current too."""

    def __init__(self, spec: RunSpec, threads: int | None = None, log_dir: str | None = None):
        self.spec, self.threads, self.log_dir = spec, threads, log_dir
        self._init_state()

    def _init_state(self) -> None:
        self.child: subprocess.Popen | None = None
        self.stopped = False
        self._mutex = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:  # submitit pickles the job; its process state stays behind
        return {"spec": self.spec, "threads": self.threads, "log_dir": self.log_dir}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_state()

    def __call__(self) -> str:
        try:
            status = self._train()
        except Exception as exc:  # a job that cannot even start its training is a failed run, never a silent one
            status = f"failed ({type(exc).__name__}: {str(exc)[:300]})"
        record_status(Path(self.spec.root), self.spec.name, status)
        return status

    def _train(self) -> str:
        with _run_lock(self.spec) as lock_fd:
            cmd = train_command(self.spec, self.threads)  # decided under the lock: an earlier job may just have ended
            if cmd is None:
                return "finished"
            env = {**os.environ, SUPERVISED_ENV: "1",  # this job stops it, and escalates to SIGKILL itself
                   **({"OMP_NUM_THREADS": str(self.threads)} if self.threads else {})}
            logfile = Path(self.log_dir) / f"{self.spec.name}.log" if self.log_dir else None
            if logfile:
                logfile.parent.mkdir(parents=True, exist_ok=True)
            out = logfile.open("a") if logfile else subprocess.DEVNULL
            try:
                with self._mutex:
                    if self.stopped:  # stopped before its training began: nothing to checkpoint
                        return "interrupted"
                    # the child holds the run lock too, so a training orphaned by a killed sweep keeps its folder
                    self.child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                                  pass_fds=(lock_fd,), preexec_fn=_child_setup,
                                                  start_new_session=True)
                code = self.child.wait()
            finally:
                if logfile:
                    out.close()
        if code == 0:
            return "finished"
        return "interrupted" if code in (130, 143) else f"failed (exit {code}; see {logfile})"

    def stop(self, timeout: float = 300.0) -> None:
        """SIGTERM to the training, then wait for its checkpoint; a job not yet training will not start."""
        with self._mutex:
            self.stopped = True
            child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()

    def checkpoint(self, *args: Any, **kwargs: Any):
        """submitit's requeue hook, called on SLURM's signal SIGNAL_DELAY_S before the limit: the training gets
        most of that time to write its checkpoint."""
        import submitit

        self.stop(timeout=SIGNAL_DELAY_S * 0.75)
        return submitit.helpers.DelayedSubmission(RunJob(self.spec, self.threads, self.log_dir))


# ---------------------------------------------------------------- the manifest


def _write_manifest(root: Path, doc: dict[str, Any]) -> None:
    atomic_write(root / MANIFEST, json.dumps(doc, indent=2) + "\n")


def record_status(root: Path, name: str, status: str, **facts: Any) -> None:
    """One run's status into sweep.json, read and written under a lock: jobs of one sweep (threads, processes,
    SLURM jobs on other machines sharing the folder) each update their own entry."""
    if not (root / MANIFEST).is_file():
        return
    with _file_lock(root / ".locks" / MANIFEST):
        doc = read_manifest(root)
        for r in doc["runs"]:
            if r["name"] == name:
                r.update({"status": status, **facts})
        _write_manifest(root, doc)


def read_manifest(root: Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise GenlabError(f"{root} is not a genlab sweep folder (no {MANIFEST}).") from None
    except (OSError, ValueError) as exc:
        raise GenlabError(f"{path} cannot be read as JSON ({exc}); `genlab sweep` writes it again when the "
                          f"sweep is started again.") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise GenlabError(f"{path} is not a sweep manifest (no list of runs).")
    return doc


def sweep_runs(root: Path) -> list[Path]:
    """The run folders of a sweep, in the manifest's order, that exist."""
    return [Path(root) / r["name"] for r in read_manifest(root)["runs"] if (Path(root) / r["name"]).is_dir()]


def expand_run_dirs(paths: Sequence[Path]) -> list[Path]:
    """Run folders given to compare / report, with a sweep folder standing for its runs."""
    out: list[Path] = []
    for p in paths:
        out.extend(sweep_runs(p) if (Path(p) / MANIFEST).is_file() else [Path(p)])
    return out


# ---------------------------------------------------------------- running a sweep


def default_jobs() -> int:
    return 1  # each training already uses every core it is given: on a small machine one at a time is fastest


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def run_sweep(configs: str | Sequence[str], grid: Sequence[str] | dict[str, Sequence[Any]] = (), *,
              seeds: int | Sequence[int] | None = None, overrides: Sequence[str] = (), name: str | None = None,
              out: str | Path = "runs", executor: str = "local", jobs: int | None = None,
              slurm: Slurm | None = None, dry_run: bool = False) -> Path:
    """Run (or continue) a sweep; returns its folder. `grid`: "key=v1,v2" strings or {key: [values]};
    `seeds`: a count (train.seed 0..N-1) or the seeds themselves."""
    configs = [configs] if isinstance(configs, (str, Path)) else [str(c) for c in configs]
    if not configs:
        raise GenlabError("a sweep needs at least one config.")
    axes = [make_axis(k, v) for k, v in grid.items()] if isinstance(grid, dict) else [parse_axis(g) for g in grid]
    seed_list = _seeds(seeds)
    if executor not in EXECUTORS:
        raise GenlabError(f"--executor must be one of {', '.join(EXECUTORS)} (got {executor!r}).")
    sweep_name = name or "_".join([Path(configs[0]).stem, *(a.key.split(".")[-1] for a in axes), "sweep"])
    root = Path(out) / sweep_name
    specs = expand(configs, axes, seed_list, root, overrides)
    previous = read_manifest(root) if (root / MANIFEST).is_file() else None
    if previous is not None and [r["name"] for r in previous["runs"]] != [s.name for s in specs]:
        raise GenlabError(f"{root} holds a sweep of other runs ({len(previous['runs'])} runs, not these "
                          f"{len(specs)}); give this sweep another --name, or the same grid to continue it.")
    planned = {s.name: _planned(s) for s in specs}  # also refuses run folders trained with other settings
    if dry_run:
        for s in specs:
            print(f"{s.name}: {planned[s.name]}  ({' '.join(s.overrides)})")
        return root
    root.mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    old = {r["name"]: r for r in (previous or {}).get("runs", [])}
    with _file_lock(root / ".locks" / MANIFEST):
        _write_manifest(root, {
            "format": MANIFEST_FORMAT, "genlab_version": __version__,
            "created": (previous or {}).get("created", time.strftime("%Y-%m-%dT%H:%M:%S%z")),
            "configs": configs, "grid": {a.key: list(a.values) for a in axes}, "seeds": seed_list,
            "overrides": list(overrides), "executor": executor,
            "runs": [{**asdict(s), "overrides": list(s.overrides), "status": planned[s.name],
                      **({"job_id": old[s.name]["job_id"]} if "job_id" in old.get(s.name, {}) else {})}
                     for s in specs]})
    todo = [s for s in specs if planned[s.name] != "finished"]
    for s in specs:
        if s not in todo:
            log.info("%s: finished before, skipped", s.name)
    if executor == "local":
        _run_local(todo, jobs or default_jobs(), root)
    else:
        _run_submitit(todo, executor, slurm or Slurm(), root, old)
    if executor == "slurm":
        return root
    statuses = {r["name"]: r["status"] for r in read_manifest(root)["runs"]}
    failed = [s.name for s in specs if statuses.get(s.name) != "finished"]
    if failed:
        raise GenlabError(f"{len(failed)} of {len(specs)} runs of {root} did not finish: {', '.join(failed)} "
                          f"({'; '.join(sorted({statuses.get(n, '?') for n in failed}))}). Their logs are in "
                          f"{root / 'logs'}; start the same sweep again to continue them.")
    return root


def _planned(spec: RunSpec) -> str:
    return {"done": "finished", "resume": "to resume", "start": "to start"}[state_of(spec)]


def _seeds(seeds: int | Sequence[int] | None) -> list[int] | None:
    if seeds is None:
        return None
    if isinstance(seeds, int):
        if seeds < 1:
            raise GenlabError(f"--seeds must be at least 1 (got {seeds}).")
        return list(range(seeds))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise GenlabError(f"--seeds must list distinct seeds (got {seeds!r}).")
    return out


def _run_local(todo: list[RunSpec], jobs: int, root: Path) -> None:
    """`jobs` runs at a time; SIGINT or SIGTERM stops them all (each checkpoints) and stops the sweep."""
    if jobs < 1:
        raise GenlabError(f"--jobs must be at least 1 (got {jobs}).")
    threads = max(1, cpu_count() // jobs)
    lock, running, received = threading.Lock(), {}, []
    pending = list(todo)

    def worker() -> None:
        while True:
            with lock:
                if received or not pending:
                    return
                spec = pending.pop(0)
                job = running[spec.name] = RunJob(spec, threads, str(root / "logs"))
            log.info("%s: starting", spec.name)  # its state is decided under the run lock, in the job
            status = job()  # records its status in sweep.json, failures included
            log.info("%s: %s", spec.name, status)
            with lock:
                running.pop(spec.name, None)

    def stop(signum, frame) -> None:
        with lock:
            received.append(signal.Signals(signum).name)
            jobs_now = list(running.values())
        for job in jobs_now:
            threading.Thread(target=job.stop, daemon=True).start()  # in parallel: each waits for its checkpoint

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        pool = [threading.Thread(target=worker, daemon=True) for _ in range(min(jobs, len(todo)))]
        for t in pool:
            t.start()
        while any(t.is_alive() for t in pool):
            for t in pool:
                t.join(0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if received:
        raise SweepInterrupted(received[0], EXIT_CODES.get(received[0], 1), str(root))


def _run_submitit(todo: list[RunSpec], executor: str, slurm: Slurm, root: Path, old: dict[str, dict]) -> None:
    try:
        import submitit
    except ImportError:
        raise GenlabError('--executor slurm and submitit-local need submitit: pip install "genlab[sweep]" '
                          '(or pip install submitit).') from None
    if executor == "slurm":
        todo = [s for s in todo if not _queued(submitit, root, old.get(s.name, {}).get("job_id"), s.name)]
    if not todo:
        return
    cluster = "local" if executor == "submitit-local" else "slurm"
    # a run longer than its time limit is requeued as often as it needs (submitit's default stops at 3)
    ex = submitit.AutoExecutor(folder=root / "submitit", cluster=cluster, slurm_max_num_timeout=1000)
    params: dict[str, Any] = {"timeout_min": slurm.time_min, "name": root.name}
    if executor == "slurm":
        params.update({"slurm_partition": slurm.partition, "gpus_per_node": slurm.gpus_per_run,
                       "tasks_per_node": 1, "cpus_per_task": slurm.cpus_per_run or 4,
                       "slurm_array_parallelism": slurm.array_parallelism, "slurm_signal_delay_s": SIGNAL_DELAY_S,
                       **slurm.extra})
        params = {k: v for k, v in params.items() if v is not None}
    ex.update_parameters(**params)
    threads = slurm.cpus_per_run if executor == "slurm" else max(1, cpu_count() // len(todo))
    calls = [RunJob(s, threads, str(root / "logs")) for s in todo]
    if slurm.array or executor == "submitit-local":
        with ex.batch():
            jobs = [ex.submit(c) for c in calls]
    else:
        jobs = [ex.submit(c) for c in calls]
    for spec, job in zip(todo, jobs):
        log.info("%s: submitted as job %s", spec.name, job.job_id)
        record_status(root, spec.name, "submitted", job_id=str(job.job_id))
    if executor == "slurm":
        print(f"submitted {len(jobs)} jobs to SLURM ({', '.join(j.job_id for j in jobs[:5])}"
              f"{', ...' if len(jobs) > 5 else ''}); `genlab sweep` with the same arguments again shows what is "
              f"done and resubmits what is not; logs: {root / 'logs'}")
        return
    for spec, job in zip(todo, jobs):
        try:
            job.result()  # the job recorded its own status
        except Exception as exc:  # submitit re-raises a job that died outside RunJob's own handling
            record_status(root, spec.name, f"failed ({type(exc).__name__}: {str(exc)[:200]})")


def _queued(submitit, root: Path, job_id: str | None, name: str) -> bool:
    """A run whose SLURM job is still pending or running is not submitted again."""
    if not job_id:
        return False
    try:
        state = submitit.SlurmJob(folder=root / "submitit", job_id=job_id).state
    except Exception:  # sacct unavailable or the job forgotten: submit again (the run lock keeps it single)
        return False
    if state in ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED"):
        log.info("%s: job %s is %s; not submitted again", name, job_id, state)
        return True
    return False
