"""`genlab results`: seed vs recommended read from run folders; targets judged on the recommended run."""

from __future__ import annotations

import json
from pathlib import Path

from genlab.cli import main
from genlab.objectives.adversarial import AdversarialConfig, CollapseMonitor
from genlab.results import results_rows

HEADER = "scope,split,epoch,step,images,seconds,loss_d,loss_g\n"


def _run(root: Path, name: str, seconds: float, accuracy: float | None, worst: float, log: str = "") -> None:
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"name: {name}\n")
    rows = "".join(f"epoch,val,{e},{10 * (e + 1)},{100 * (e + 1)},{seconds * (e + 1) / 5},1.0,2.0\n"
                   for e in range(5))
    (run / "history.csv").write_text(HEADER + rows)
    if accuracy is not None:
        (run / "metrics.json").write_text(json.dumps({"class_accuracy": {
            "class_accuracy_mean": accuracy, "worst_class_accuracy": worst, "checkpoint": "last", "step": 50}}))
    (run / "train.log").write_text(log)


def _row(rows, experiment: str, measure: str) -> list[str]:
    return next(r for r in rows if r[0].startswith(experiment) and r[1] == measure)


def test_values_come_from_the_run_folders_and_targets_are_judged(tmp_path):
    _run(tmp_path, "cgan_mnist", 1000.0, 0.9427, 0.79)
    _run(tmp_path, "cgan_mnist_recommended", 900.0, 0.985, 0.94)
    _, rows, _ = results_rows(tmp_path)
    assert _row(rows, "Conditional GAN", "epochs")[2:4] == ["5", "5"]
    assert _row(rows, "Conditional GAN", "training wall time (s)")[2:4] == ["1000", "900"]
    assert _row(rows, "Conditional GAN", "mean class accuracy")[2:] == ["0.9427", "0.9850", "≥ 0.98", "yes"]
    assert _row(rows, "Conditional GAN", "worst class accuracy")[2:] == ["0.7900", "0.9400", "≥ 0.95", "no"]
    # absent runs and absent scores are dashes, never a guess
    assert _row(rows, "DCGAN", "collapse warnings")[2:4] == ["—", "—"]
    assert _row(rows, "Conditional GAN", "FD-mnist-classifier")[2:4] == ["—", "—"]


def test_collapse_warnings_are_counted_from_the_log(tmp_path):
    monitor = CollapseMonitor(AdversarialConfig( collapse_check_every=1, collapse_patience=1))
    message = monitor.check(5, {"loss_d": 0.0, "loss_g": 50.0})  # the real warning, as the engine logs it
    _run(tmp_path, "dcgan_anime64", 10.0, None, 0.0, log=f"x\nWARNING {message}\n" * 2)
    _run(tmp_path, "dcgan_anime64_recommended", 10.0, None, 0.0, log="fine\n")
    _, rows, _ = results_rows(tmp_path)
    assert _row(rows, "DCGAN", "collapse warnings")[2:] == ["2", "0", "0", "yes"]


def test_cli_prints_markdown_and_refuses_a_missing_folder(tmp_path, capsys):
    _run(tmp_path, "cgan_mnist", 1000.0, 0.9427, 0.79)
    assert main(["results", str(tmp_path), "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| experiment | measure | original settings | recommended | target | reached |")
    assert "| Conditional GAN, MNIST | mean class accuracy | 0.9427 | — | ≥ 0.98 | — |" in out
    assert main(["results", str(tmp_path / "nowhere")]) != 0
    assert "holds the run folders" in capsys.readouterr().err


def test_dcgan_distance_is_judged_against_the_seed_run(tmp_path):
    for name, fd in (("dcgan_anime64", 1.40), ("dcgan_anime64_recommended", 1.10)):
        _run(tmp_path, name, 10.0, None, 0.0)
        (tmp_path / name / "metrics.json").write_text(json.dumps({"fd_randconv": {"fd_randconv": fd}}))
    _, rows, _ = results_rows(tmp_path)
    assert _row(rows, "DCGAN", "fd_randconv (lower is better)")[2:] == ["1.400", "1.100", "below the original's", "yes"]
    (tmp_path / "dcgan_anime64_recommended" / "metrics.json").write_text(
        json.dumps({"fd_randconv": {"fd_randconv": 1.5}}))
    _, rows, _ = results_rows(tmp_path)
    assert _row(rows, "DCGAN", "fd_randconv (lower is better)")[5] == "no"
    (tmp_path / "dcgan_anime64" / "metrics.json").unlink()  # nothing to compare with: not judged
    _, rows, _ = results_rows(tmp_path)
    assert _row(rows, "DCGAN", "fd_randconv (lower is better)")[5] == "—"
