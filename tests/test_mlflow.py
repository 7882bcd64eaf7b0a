"""The optional MLflow view: tiny runs logged to a real local store, read back with MLflow's own client."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from genlab.errors import GenlabError
from genlab.history import read_history
from genlab.metrics.store import read_metrics, split_entry
from genlab.tracking import RUN_FILE
from genlab.training import train
from helpers import one_thread, tiny_config, with_overrides

pytest.importorskip("mlflow", reason="the optional mlflow extra is not installed")
pytest.importorskip("sqlalchemy", reason="the optional mlflow extra is not installed")


def _mlflow_run(run_path):
    from mlflow.tracking import MlflowClient

    saved = json.loads((run_path / RUN_FILE).read_text())
    client = MlflowClient(tracking_uri=saved["tracking_uri"])
    return client, client.get_run(saved["run_id"])


def _steps(client, run_id, key):
    return [m.step for m in client.get_metric_history(run_id, key)]


def _rows(run, scope, split):
    return [r for r in read_history(run.history) if r["scope"] == scope and r["split"] == split]


def test_history_config_scores_and_figures_reach_mlflow(tmp_path):
    with one_thread():
        out = train(tiny_config(train={"mlflow": True, "epochs": 2, "figures": True, "epoch_samples": True}),
                    out=tmp_path)
    client, found = _mlflow_run(out.run.path)
    run_id = found.info.run_id
    assert json.loads((out.run.path / RUN_FILE).read_text())["tracking_uri"] == f"sqlite:///{tmp_path}/mlflow.db"
    assert found.info.run_name == "tiny" and found.info.status == "FINISHED"
    assert client.get_experiment(found.info.experiment_id).name == "genlab"
    params = found.data.params
    assert params["train.epochs"] == "2" and params["model.hidden_dims"] == "[4, 8]"
    assert params["train.mlflow_uri"] == "null" and params["name"] == "tiny"

    for key, scope, split in (("loss/train", "step", "train"), ("kl/train", "step", "train"),
                              ("loss/train_epoch", "epoch", "train"), ("loss/val_epoch", "epoch", "val")):
        rows = _rows(out.run, scope, split)
        history = client.get_metric_history(run_id, key)
        assert [m.step for m in history] == [int(r["step"]) for r in rows], key
        term = key.split("/")[0]
        assert [m.value for m in history] == pytest.approx([float(r[term]) for r in rows], rel=1e-5), key

    scores = read_metrics(out.run.metrics)
    assert scores, "the tiny VAE run stores end-of-training scores"
    for entry, doc in scores.items():
        values, _ = split_entry(doc)
        for name, value in values.items():
            key = f"score/{entry}" if name == entry else f"score/{entry}/{name}"
            assert found.data.metrics[key] == pytest.approx(value), key

    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "summary.json", "metrics.json", "figures"} <= artifacts
    figures = {a.path for a in client.list_artifacts(run_id, "figures") if not a.is_dir}
    figures |= {a.path for a in client.list_artifacts(run_id, "figures/epochs")}
    on_disk = {p.relative_to(out.run.path).as_posix() for p in out.run.figures.rglob("*.png")}
    assert on_disk and figures == on_disk and "figures/epochs/samples_002.png" in figures
    (tmp_path / "back").mkdir()
    logged = json.loads(Path(client.download_artifacts(run_id, "metrics.json", str(tmp_path / "back"))).read_text())
    assert logged == scores  # every entry with its protocol
    assert found.data.tags["genlab.status"] == "finished"


def test_resume_continues_the_mlflow_run_without_logging_a_step_twice(tmp_path):
    cfg = tiny_config(train={"mlflow": True, "epochs": 2})
    with one_thread():
        first = train(cfg, out=tmp_path, stop_after_steps=3)
        run_id = _mlflow_run(first.run.path)[1].info.run_id
        last = first.run.last
        shutil.copy(last, tmp_path / "step3.pt")
        train(None, resume=first.run.path, stop_after_steps=5)  # logs steps 4 and 5, checkpoint at 5 ...
        shutil.copy(tmp_path / "step3.pt", last)  # ... which a kill lost: the last checkpoint is step 3 again
        train(with_overrides(cfg, "train.epochs=3"), resume=first.run.path)
    client, found = _mlflow_run(first.run.path)
    assert found.info.run_id == run_id and found.info.status == "FINISHED"
    assert len(client.search_runs([found.info.experiment_id])) == 1
    steps = _steps(client, run_id, "loss/train")
    assert steps == [int(r["step"]) for r in _rows(first.run, "step", "train")] == list(range(1, 19))
    assert _steps(client, run_id, "loss/val_epoch") == [int(r["step"]) for r in _rows(first.run, "epoch", "val")]
    # params keep what the run started with; what the resume changed is a tag
    assert found.data.params["train.epochs"] == "2"
    assert found.data.tags["genlab.resumed_with.train.epochs"] == "3"


def test_an_unusable_store_is_a_warning_not_a_failed_run(tmp_path):
    (tmp_path / "a_file").write_text("not a folder\n")
    uri = f"sqlite:///{tmp_path}/a_file/mlflow.db"
    with one_thread():
        out = train(tiny_config(train={"mlflow": True, "mlflow_uri": uri, "epochs": 1}), out=tmp_path)
    assert out.result.progress.step == 6 and not (out.run.path / RUN_FILE).exists()
    summary = json.loads(out.run.summary.read_text())
    assert summary["status"] == "finished"
    assert [w["kind"] for w in summary["warnings"]].count("mlflow") == 1


def test_missing_mlflow_is_reported_before_the_run_starts(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # import mlflow -> ImportError
    with pytest.raises(GenlabError, match=r'pip install "genlab\[mlflow\]"'):
        train(tiny_config(name="no_mlflow", train={"mlflow": True}), out=tmp_path)
    assert not (tmp_path / "no_mlflow").exists()


def test_the_sqlite_store_without_sqlalchemy_is_reported_before_the_run_starts(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(GenlabError, match=r"needs sqlalchemy and alembic"):
        train(tiny_config(name="no_sql", train={"mlflow": True}), out=tmp_path)
    assert not (tmp_path / "no_sql").exists()
