"""The command line: listings, one-paragraph errors with exit code 2, and a tiny real train + resume."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from genlab.cli import main
from genlab.config import PACKAGED_CONFIGS, DataConfig, TrainConfig, packaged_configs
from genlab.data.decode import IMAGE_SUFFIXES
from genlab.models import MODELS

QUICKSTART = str(PACKAGED_CONFIGS / "quickstart.yaml")
TRAIN_KEYS = ", ".join(sorted(TrainConfig.model_fields))

# A tiny quickstart run: 3 steps of 16 images, and a small validation set to keep it fast.
TINY = ["--set", "train.max_steps=3", "--set", "train.batch_size=16",
        "--set", "data.limit=64", "--set", "train.progress=false", "--set", "data.val_limit=16"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Default output (runs/) lands in tmp_path, and data roots resolve without $GENLAB_DATA."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENLAB_DATA", raising=False)


def _fails(capsys, argv: list[str]) -> str:
    """Run the CLI, expect exit 2 with one paragraph on stderr; return that paragraph unwrapped."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert out == ""
    assert err.startswith("genlab: error: ")
    assert "Traceback" not in err
    assert err.endswith("\n") and "\n\n" not in err  # one paragraph
    assert all(len(line) <= 100 or " " not in line for line in err.splitlines())  # wrapped
    return err.strip().replace("\n", " ")


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else b"", p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def _history_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ listings


def test_models_lists_every_registered_model_with_its_arguments(capsys):
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(MODELS)
    assert {"ae", "vae", "beta_vae", "res_vae"} <= set(MODELS)
    assert "ae         hidden_dims=(32, 64, 128), latent_dim=128, batch_norm=False, activation='relu', " \
           "output_activation='tanh'" in lines
    assert "vae        hidden_dims=(32, 64, 128), latent_dim=32, batch_norm=True, activation='leaky_relu', " \
           "output_activation='tanh', prior='standard_normal', prior_components=10" in lines
    assert "beta_vae   hidden_dims=(32, 64, 128, 256, 512), latent_dim=128, batch_norm=True, " \
           "activation='leaky_relu', output_activation='tanh', prior='standard_normal', prior_components=10" in lines
    assert "res_vae    hidden_dims=(32, 64, 128, 256, 512), latent_dim=128, blocks_per_stage=1, " \
           "activation='leaky_relu', output_activation='tanh', prior='standard_normal', prior_components=10, " \
           "bottleneck='dense'" in lines
    assert err == ""


def test_configs_lists_the_bundled_configs(capsys):
    assert main(["configs"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == packaged_configs()
    assert "quickstart" in out.splitlines()
    assert err == ""


def test_configs_prints_one_with_its_comments(capsys):
    assert main(["configs", "dae_fashion_mnist_recommended"]) == 0
    out = capsys.readouterr().out
    assert out == (PACKAGED_CONFIGS / "dae_fashion_mnist_recommended.yaml").read_text()
    assert "Loshchilov & Hutter 2017" in out  # the reasons travel with the settings
    assert main(["configs", "dae_fashion_mnist_recomended"]) != 0
    assert "no bundled config named 'dae_fashion_mnist_recomended'" in capsys.readouterr().err


def test_every_recommended_config_explains_itself_and_loads():
    """Each *_recommended config names its seed counterpart, and both validate."""
    from genlab.config import load

    recommended = [n for n in packaged_configs() if n.endswith("_recommended")]
    assert len(recommended) >= 2
    for name in recommended:
        text = (PACKAGED_CONFIGS / f"{name}.yaml").read_text()
        seed = name.removesuffix("_recommended")
        assert f"({seed})" in text, name
        assert load(name).name == name and load(seed)


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: genlab ")
    for command in ("train", "models", "configs"):
        assert command in out


# ------------------------------------------------------------------ bad input: exit 2, one paragraph


def test_unknown_config_key(capsys, tmp_path):
    message = _fails(capsys, ["train", "quickstart", "--set", "train.epoch=3"])
    assert message == (f"genlab: error: {QUICKSTART}: invalid configuration: unknown key 'train.epoch'; "
                       f"did you mean 'train.epochs'? Valid keys here: {TRAIN_KEYS}.")
    assert list(tmp_path.iterdir()) == []  # nothing was created


def test_unknown_data_key_in_a_config_file(capsys, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model: {name: vae}\ndata: {name: digits, imge_size: 28}\n")
    message = _fails(capsys, ["train", str(path)])
    assert message == (f"genlab: error: {path}: invalid configuration: unknown key 'data.imge_size'; did you mean "
                       f"'data.image_size'? Valid keys here: {', '.join(sorted(DataConfig.model_fields))}.")


def test_unknown_config_name(capsys):
    message = _fails(capsys, ["train", "quikstart"])
    assert message == (f"genlab: error: config 'quikstart' not found: it is neither a file nor a bundled config. "
                       f"Did you mean 'quickstart'? Bundled configs: {', '.join(packaged_configs())}.")


def test_bad_set_syntax(capsys):
    message = _fails(capsys, ["train", "--set", "train.epochs"])
    assert message == "genlab: error: --set 'train.epochs': expected key=value, e.g. --set train.epochs=5."


def test_unknown_model_leaves_no_run_folder(capsys, tmp_path):
    out = tmp_path / "runs"
    message = _fails(capsys, ["train", "--out", str(out), "--set", "model.name=vea"])
    assert message == (f"genlab: error: unknown model 'vea'; did you mean 'vae'? "
                       f"Registered models: {', '.join(sorted(MODELS))}.")
    # A half-made folder would make the corrected command fail with "already exists".
    assert not (out / "quickstart").exists()


def test_unknown_model_argument(capsys, tmp_path):
    message = _fails(capsys, ["train", "--out", str(tmp_path), "--set", "model.latnt_dim=4"])
    assert message.startswith("genlab: error: model 'vae' has no argument 'latnt_dim'; did you mean 'latent_dim'? "
                              "Valid arguments: hidden_dims=(32, 64, 128), latent_dim=32, ")
    assert not (tmp_path / "quickstart").exists()


def test_missing_data_root(capsys, tmp_path):
    message = _fails(capsys, ["train", "--out", str(tmp_path / "runs"), "--set", "data.name=image_folder",
                              "--set", "data.root=/nonexistent"])
    assert message == ("genlab: error: data.root '/nonexistent' does not exist (looked for /nonexistent; "
                       "$GENLAB_DATA is not set). Point data.root at the data folder or set $GENLAB_DATA to "
                       "its parent.")
    assert not (tmp_path / "runs" / "quickstart").exists()


def test_relative_data_root_is_looked_up_under_genlab_data(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "shared"))
    message = _fails(capsys, ["train", "--out", str(tmp_path / "runs"), "--set", "data.name=image_folder",
                              "--set", "data.root=faces"])
    assert message == (f"genlab: error: data.root 'faces' does not exist (looked for {tmp_path}/shared/faces; "
                       f"$GENLAB_DATA={tmp_path}/shared). Point data.root at the data folder or set $GENLAB_DATA "
                       f"to its parent.")


def test_data_folder_without_images(capsys, tmp_path):
    empty = tmp_path / "no-images-here"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("not an image")
    message = _fails(capsys, ["train", "--out", str(tmp_path / "runs"), "--set", "data.name=image_folder",
                              "--set", f"data.root={empty}"])
    assert message == (f"genlab: error: data.root {empty} holds no image files (looked recursively for "
                       f"{', '.join(sorted(IMAGE_SUFFIXES))}).")
    assert not (tmp_path / "runs" / "quickstart").exists()


@pytest.mark.parametrize("extra", [[], ["--set", "train.max_steps=6"], ["quickstart"]])
def test_resume_from_a_missing_folder(capsys, tmp_path, extra):
    missing = tmp_path / "runs" / "never-ran"
    message = _fails(capsys, ["train", "--resume", str(missing), *extra])
    assert message == f"genlab: error: cannot resume: run folder {missing} does not exist."


@pytest.mark.parametrize("extra", [[], ["--set", "train.max_steps=6"], ["quickstart"]])
def test_resume_from_a_folder_that_is_not_a_run(capsys, tmp_path, extra):
    folder = tmp_path / "holiday-photos"
    folder.mkdir()
    (folder / "a.txt").write_text("x")
    before = _snapshot(folder)
    message = _fails(capsys, ["train", "--resume", str(folder), *extra])
    assert message == f"genlab: error: cannot resume: {folder} is not a genlab run folder (no config.yaml)."
    assert _snapshot(folder) == before


def test_resume_a_run_without_checkpoint(capsys, tmp_path):
    run = tmp_path / "runs" / "quickstart"
    run.mkdir(parents=True)
    shutil.copy(PACKAGED_CONFIGS / "quickstart.yaml", run / "config.yaml")
    message = _fails(capsys, ["train", "--resume", str(run)])
    assert message == (f"genlab: error: cannot resume {run}: it has no checkpoints/last.pt yet; start it again "
                       f"with --overwrite.")


def test_existing_run_folder_is_not_touched_without_overwrite(capsys, tmp_path):
    out = tmp_path / "my-runs"
    run = out / "quickstart"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("precious: true\n")
    (run / "checkpoints" / "last.pt").write_bytes(bytes(range(256)))
    for p in (run / "config.yaml", run / "checkpoints" / "last.pt", run / "checkpoints", run):
        os.utime(p, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = _snapshot(run)

    message = _fails(capsys, ["train", "quickstart", "--out", str(out)])
    assert message == (f"genlab: error: run folder {run} already exists. Continue it with --resume {run}, "
                       f"replace it with --overwrite, or choose another name with --set name=NEW.")
    assert _snapshot(run) == before
    assert run.stat().st_mtime_ns == 1_000_000_000_000_000_000  # nothing created or removed inside


def test_paths_in_error_messages_are_never_split(capsys, tmp_path):
    deep = tmp_path / ("a-very-long-folder-name-with-hyphens-" * 3) / "never-ran"
    assert main(["train", "--resume", str(deep)]) == 2
    err = capsys.readouterr().err
    assert str(deep) in err.splitlines()  # whole, on a line of its own since it is longer than the width
    assert err.strip().replace("\n", " ") == f"genlab: error: cannot resume: run folder {deep} does not exist."


def test_subprocess_error_exit_code_and_no_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GENLAB_DATA"}
    proc = subprocess.run([sys.executable, "-m", "genlab.cli", "train", "quickstart", "--set", "train.epoch=3"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().replace("\n", " ") == (
        f"genlab: error: {QUICKSTART}: invalid configuration: unknown key 'train.epoch'; "
        f"did you mean 'train.epochs'? Valid keys here: {TRAIN_KEYS}.")
    assert list(tmp_path.iterdir()) == []


def test_the_genlab_command_exits_without_teardown_but_with_every_line_written(tmp_path):
    """`genlab` (cli.entry) leaves with os._exit once its exit handlers ran. Stdout to a pipe is block-buffered,
    so it is what an exit without a flush would cut short; the log file (flushed per record) and the exit
    codes are checked beside it."""
    env = {k: v for k, v in os.environ.items() if k != "GENLAB_DATA"}
    proc = subprocess.run([sys.executable, "-m", "genlab", "train", "quickstart", *TINY, "--out", str(tmp_path),
                           "--set", "train.figures=false", "--set", "train.progress=false"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = (tmp_path / "quickstart" / "train.log").read_text().splitlines()
    out = proc.stdout.strip().splitlines()
    assert out[0] == f"run folder:   {tmp_path / 'quickstart'}" and out[-1].startswith("trained:      3 steps")
    assert "reconstruction_heldout: psnr_mean" in log[-1]  # the run's last record reached its log file
    bad = subprocess.run([sys.executable, "-m", "genlab", "train", "quickstart", "--set", "train.epoch=3"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("genlab: error:")


# ------------------------------------------------------------------ a tiny real run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny quickstart run (3 steps) shared by the tests below; each copies it before changing it."""
    out = tmp_path_factory.mktemp("cli-run")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", "quickstart", "--out", str(out), *TINY])
    assert code == 0, stderr.getvalue()
    return out / "quickstart", stdout.getvalue(), stderr.getvalue()


def _copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest / run.name)
    return dest / run.name


def test_train_writes_the_run_folder(trained):
    run, stdout, stderr = trained
    for name in ("config.yaml", "history.csv", "train.log", "checkpoints/last.pt", "checkpoints/best.pt",
                 "figures/reconstructions.png", "figures/samples.png"):
        assert (run / name).is_file(), name
        assert (run / name).stat().st_size > 0, name
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["name"] == "quickstart"
    assert (saved["train"]["max_steps"], saved["train"]["batch_size"], saved["data"]["limit"]) == (3, 16, 64)
    assert saved["model"] == {"name": "vae", "hidden_dims": [32, 64, 128], "latent_dim": 16}

    lines = stdout.splitlines()
    assert lines[0] == ""
    assert lines[1] == f"run folder:   {run}"
    assert lines[2].startswith(f"checkpoints:  {run / 'checkpoints' / 'last.pt'} (last), "
                               f"{run / 'checkpoints' / 'best.pt'} (best "), lines[2]
    assert f"history:      {run / 'history.csv'}" in lines
    figures = [line for line in lines if line.startswith("figure:")]
    names = ["samples.png", "loss_curves.png", "loss_table.csv", "loss_table.md", "reconstructions.png",
             "traversal.png", "traversal_prior.png", "interpolation.png", "tsne.png", "kl_per_dim.png"]
    assert figures == [f"figure:       {run / 'figures' / name}" for name in names]
    assert any(re.fullmatch(r"validation:   loss=[\d.e+]+, recon=[\d.e+]+, kl=[\d.e+-]+, active_units=\d+, "
                            r"kl_dims_max=[\d.e+-]+", line) for line in lines)
    assert not any(line.startswith("warning:") for line in lines)  # quickstart: settings that fit together
    assert re.fullmatch(r"trained:      3 steps, 48 images in [\d.]+ s \(\d+ images/s\)", lines[-1]), lines[-1]
    assert "Traceback" not in stderr
    assert "(64 train / 16 validation images, 1x32x32)" in stderr

    rows = _history_rows(run)
    assert [(r["scope"], r["split"], r["epoch"], r["step"]) for r in rows] == [
        ("step", "train", "0", "1"), ("step", "train", "0", "2"), ("step", "train", "0", "3"),
        ("epoch", "train", "0", "3"), ("epoch", "val", "0", "3")]


def test_resume_with_a_changed_model_is_refused(trained, tmp_path, capsys):
    run = _copy(trained[0], tmp_path)
    before = _snapshot(run)
    message = _fails(capsys, ["train", "--resume", str(run), "--set", "model.latent_dim=3"])
    assert message == (f"genlab: error: cannot resume {run} with this config: it changes model.latent_dim, which "
                       f"the saved run computed differently. Only train.epochs, train.max_steps and similar "
                       f"run-length settings may change on resume; start a new run instead.")
    assert _snapshot(run) == before


def test_resume_continues_every_step_once(trained, tmp_path, capsys):
    run = _copy(trained[0], tmp_path)
    # epochs=1 caps the run at the 4 batches of one epoch; two epochs leave room for 6 steps.
    code = main(["train", "--resume", str(run), "--set", "train.max_steps=6", "--set", "train.epochs=2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "resumed at step 3 (epoch 1, batch 3)" in err
    assert re.search(r"^trained:      6 steps, 96 images in ", out, re.M), out

    rows = _history_rows(run)
    steps = [int(r["step"]) for r in rows if r["scope"] == "step"]
    assert steps == [1, 2, 3, 4, 5, 6]
    # Step 4 finishes the epoch that max_steps=3 stopped inside; epoch rows appear once per epoch.
    assert [int(r["epoch"]) for r in rows if r["scope"] == "step"] == [0, 0, 0, 0, 1, 1]
    assert [(r["split"], r["epoch"], r["step"]) for r in rows if r["scope"] == "epoch"] == [
        ("train", "0", "4"), ("val", "0", "4"), ("train", "1", "6"), ("val", "1", "6")]
    assert [int(r["images"]) for r in rows if r["scope"] == "step"] == [16, 32, 48, 64, 80, 96]
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert (saved["train"]["max_steps"], saved["train"]["epochs"], saved["name"]) == (6, 2, "quickstart")


# ------------------------------------------------------------------ listings from the registries


@pytest.mark.parametrize(("command", "registry"), [("objectives", "genlab.objectives:OBJECTIVES"),
                                                   ("metrics", "genlab.metrics.registry:METRICS"),
                                                   ("data", "genlab.data.registry:SOURCES")])
def test_each_registry_lists_every_entry_with_its_summary(capsys, command, registry):
    import importlib

    module, name = registry.split(":")
    entries = getattr(importlib.import_module(module), name)
    assert main([command]) == 0
    out = capsys.readouterr().out
    for key, entry in entries.items():
        assert any(line.startswith(key) and entry.summary in line for line in out.splitlines()), key


def test_eval_help_lists_the_registered_metrics(capsys):
    from genlab.metrics.registry import METRICS

    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(f"{name}: {m.summary}" in text for name, m in METRICS.items())


def test_explore_without_flask_names_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "flask" else real(name, *a))
    assert main(["explore", str(tmp_path)]) == 2
    assert 'pip install "genlab[explore]"' in capsys.readouterr().err
