"""`genlab export`: each exported file, run without genlab's modules, reproduces the trained model's outputs."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab import export as export_mod
from genlab.errors import GenlabError
from genlab.export import FORMATS, TRACE_BATCH, export_run
from genlab.io import sha256_of
from genlab.metrics.store import read_metrics, split_entry
from genlab.models import build_model
from genlab.run import LoadedRun, load_run
from genlab.training import train
from helpers import tiny_config

# torch.jit is deprecated in recent PyTorch but still reads the files consumers are promised they can read.
pytestmark = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.load` is deprecated:FutureWarning")
HAVE_ONNX_EXPORT = all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript"))
# A GAN's generator starts near a constant grey (N(0, 0.02) weights); a higher learning rate makes its images
# differ between codes by far more than the tolerances below within 18 steps, so the comparisons mean something.
TINY_GAN = {"g_width": 8, "d_width": 8, "latent_dim": 8}
GAN_TRAINING = {"objective": {"kind": "adversarial"}, "optim": {"lr": 0.01}}
CASES = {
    "vae": {},
    "ae": {"model": {"name": "ae", "hidden_dims": [4, 8], "latent_dim": 3}},
    "dcgan": {"model": {"name": "dcgan", **TINY_GAN}, "data": {"image_size": 16}, **GAN_TRAINING},
    "cgan": {"model": {"name": "cgan", **TINY_GAN, "label_dim": 4}, **GAN_TRAINING},
}
# Batch sizes other than the traced one (TRACE_BATCH), so a batch size baked into a graph fails.
BATCHES = (1, 5)
assert TRACE_BATCH not in BATCHES


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[Path, list[Path]]]:
    """Trained and exported runs by model kind, filled on first use: each is trained and exported once per module,
    however pytest orders the tests that ask for it."""
    return {}


@pytest.fixture(params=list(CASES))
def exported(request, runs, tmp_path_factory) -> tuple[str, Path, list[Path]]:
    """One tiny trained run of the model kind, exported in every available format."""
    name = request.param
    if name not in runs:
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            outcome = train(tiny_config(name=name, **CASES[name]), out=tmp_path_factory.mktemp(f"export-{name}"))
        finally:
            torch.set_num_threads(threads)
        formats = [f for f in FORMATS if f != "onnx" or HAVE_ONNX_EXPORT]
        runs[name] = outcome.run.path, export_run(outcome.run.path, formats)
    return (name, *runs[name])


def _manifest(run: Path) -> dict:
    return json.loads((run / "export" / "model.json").read_text())


def _inputs(loaded: LoadedRun, batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, loaded.model.latent_dim, generator=gen)
    if loaded.caps.conditional:
        return z, torch.randint(0, loaded.model.num_classes, (batch,), generator=gen)
    return (z,)


@torch.no_grad()
def _reference_images(loaded: LoadedRun, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The genlab model's own output, de-normalised the way figures and metrics do it."""
    return loaded.data.normalizer.to_unit(loaded.model.decode(*inputs))


def _real_images(loaded: LoadedRun, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Held-out images in [0, 1] (what an encoder graph takes) and normalised (what genlab's encode takes)."""
    uint8 = torch.from_numpy(loaded.data.val.images[:batch]).permute(0, 3, 1, 2).contiguous()
    return uint8.float() / 255.0, loaded.data.normalizer(uint8)


def _graph_name(loaded: LoadedRun) -> str:
    return "decoder" if loaded.caps.has_encoder else "generator"


def test_export_writes_every_file_with_its_hash(exported):
    name, run, written = exported
    out = run / "export"
    graphs = ["generator"] if name in ("dcgan", "cgan") else ["decoder", "encoder"]
    expected = {f"{g}.pt" for g in graphs} | {"model.safetensors", "model.json", "README.md"}
    if HAVE_ONNX_EXPORT:
        expected |= {f"{g}.onnx" for g in graphs}
    assert {p.name for p in written} == expected
    assert {p.name for p in out.iterdir()} == expected  # no temporary or external-data file left behind
    manifest = _manifest(run)
    assert set(manifest["graphs"]) == set(graphs)
    assert set(manifest["files"]) == expected - {"model.json"}
    for file, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_of(out / file), file
        assert entry["bytes"] == (out / file).stat().st_size
    loaded = load_run(run)
    assert manifest["source"]["step"] == loaded.step > 0
    assert manifest["model"]["latent_dim"] == loaded.model.latent_dim
    image = manifest["graphs"][graphs[0]]["outputs"][0]
    assert image["shape"] == ["batch", *loaded.model.image_shape]
    assert image["range"] == [0, 1]
    # every case states its graphs' inputs and outputs: z (and labels for the conditional one) in, an image out;
    # the autoencoders' encoders give the mean, and the variational one its log-variance too
    conditional = name == "cgan"
    assert [i["name"] for i in manifest["graphs"][graphs[0]]["inputs"]] == (["z", "labels"] if conditional
                                                                             else ["z"])
    assert manifest["model"]["conditional"] is conditional
    encoder_outputs = {"vae": ["mean", "logvar"], "ae": ["mean"]}.get(name)
    assert [o["name"] for o in manifest["graphs"].get("encoder", {}).get("outputs", [])] == (encoder_outputs or [])
    assert manifest["normalization"]["mean"] == [0.5] and manifest["normalization"]["std"] == [0.5]


def test_torchscript_matches_the_model(exported):
    _, run, _ = exported
    loaded = load_run(run)
    graph = torch.jit.load(str(run / "export" / f"{_graph_name(loaded)}.pt"))
    for batch in BATCHES:
        inputs = _inputs(loaded, batch, seed=batch)
        want = _reference_images(loaded, inputs)
        with torch.no_grad():
            got = graph(*inputs)
        assert got.shape == (batch, *loaded.model.image_shape)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    # The comparison means something: other codes give other images, by far more than the tolerance, and the
    # graph's output is the de-normalised one (genlab's raw output lies in [-1, 1], not [0, 1]).
    assert (want[0] - want[-1]).abs().max() > 5e-3
    with torch.no_grad():
        raw = loaded.model.decode(*inputs)
    assert (got - raw).abs().max() > 0.1


@pytest.mark.parametrize("exported", ["vae", "ae"], indirect=True)  # GANs have no encoder
@pytest.mark.parametrize("batch", BATCHES)
def test_torchscript_encoder_matches_the_model(exported, batch):
    name, run, _ = exported
    loaded = load_run(run)
    unit, normalised = _real_images(loaded, batch)
    with torch.no_grad():
        posterior = loaded.model.encode(normalised)
        got = torch.jit.load(str(run / "export" / "encoder.pt"))(unit)
    want = (posterior.mean, posterior.logvar) if posterior.logvar is not None else posterior.mean
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


@pytest.mark.skipif(not HAVE_ONNX_EXPORT, reason="onnx and onnxscript are needed to export ONNX")
def test_onnx_matches_the_model(exported):
    ort = pytest.importorskip("onnxruntime")
    _, run, _ = exported
    loaded = load_run(run)
    session = ort.InferenceSession(str(run / "export" / f"{_graph_name(loaded)}.onnx"),
                                   providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    for batch in (1, 7):
        inputs = _inputs(loaded, batch, seed=batch)
        (got,) = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
        want = _reference_images(loaded, inputs).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.skipif(not HAVE_ONNX_EXPORT, reason="onnx and onnxscript are needed to export ONNX")
@pytest.mark.parametrize("exported", ["vae", "ae"], indirect=True)  # GANs have no encoder
def test_onnx_encoder_matches_the_model(exported):
    ort = pytest.importorskip("onnxruntime")
    name, run, _ = exported
    loaded = load_run(run)
    session = ort.InferenceSession(str(run / "export" / "encoder.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == (["mean", "logvar"] if name == "vae" else ["mean"])
    for batch in (1, 7):
        unit, normalised = _real_images(loaded, batch)
        got = session.run(None, {"image": unit.numpy()})
        with torch.no_grad():
            posterior = loaded.model.encode(normalised)
        want = [posterior.mean] + ([posterior.logvar] if posterior.logvar is not None else [])
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w.numpy(), atol=1e-4, rtol=0)


def test_safetensors_rebuild_from_model_json_alone(exported):
    from safetensors.torch import load_file

    _, run, _ = exported
    manifest = _manifest(run)
    build = manifest["build"]
    model = build_model(build["name"], build["kwargs"], image_size=build["image_size"],
                        channels=build["channels"], num_classes=build["num_classes"])
    model.load_state_dict(load_file(str(run / "export" / "model.safetensors")))  # strict: every key, no extra
    model.eval()
    mean = torch.tensor(manifest["normalization"]["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(manifest["normalization"]["std"]).view(1, -1, 1, 1)
    loaded = load_run(run)
    for batch in BATCHES:
        inputs = _inputs(loaded, batch, seed=10 + batch)
        with torch.no_grad():
            got = (model.decode(*inputs) * std + mean).clamp(0, 1)
        torch.testing.assert_close(got, _reference_images(loaded, inputs), atol=1e-6, rtol=0)


@pytest.mark.parametrize("exported", ["cgan"], indirect=True)  # one model shows it; this one also takes labels
def test_exported_files_load_without_genlab(exported, tmp_path):
    """A fresh interpreter in which `import genlab` fails runs the graphs and reads the weights."""
    _, run, _ = exported
    loaded = load_run(run)
    z, labels = _inputs(loaded, 3, seed=3)
    np.save(tmp_path / "z.npy", z.numpy())
    np.save(tmp_path / "labels.npy", labels.numpy())
    np.save(tmp_path / "want.npy", _reference_images(loaded, (z, labels)).numpy())
    script = textwrap.dedent(f"""
        import sys
        sys.modules["genlab"] = None  # any import of genlab now raises ImportError
        import numpy as np, torch
        from safetensors.torch import load_file
        d, t = {str(run / "export")!r}, {str(tmp_path)!r}
        z, labels, want = (np.load(f"{{t}}/{{n}}.npy") for n in ("z", "labels", "want"))
        got = torch.jit.load(f"{{d}}/generator.pt")(torch.from_numpy(z), torch.from_numpy(labels)).numpy()
        assert np.abs(want[0] - want[1]).max() > 1e-2  # distinct images: the comparisons below are not vacuous
        assert np.abs(got - want).max() < 1e-5, np.abs(got - want).max()
        if {HAVE_ONNX_EXPORT!r}:
            import onnxruntime as ort
            s = ort.InferenceSession(f"{{d}}/generator.onnx", providers=["CPUExecutionProvider"])
            got = s.run(None, {{"z": z, "labels": labels}})[0]
            assert np.abs(got - want).max() < 1e-4, np.abs(got - want).max()
        assert any(k.startswith("generator.") for k in load_file(f"{{d}}/model.safetensors"))
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_decoder_graph_clamps_what_the_model_overshoots():
    """Trained tanh models stay inside [0, 1] anyway; a linear output (output_activation: none) need not."""

    class Overshoot(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z.view(-1, 1, 2, 2) * 3.0

    z = torch.linspace(-2, 2, 8).view(2, 4)
    got = export_mod.ImageDecoder(Overshoot(), torch.full((1, 1, 1, 1), 0.5), torch.full((1, 1, 1, 1), 0.5))(z)
    torch.testing.assert_close(got, (z.view(-1, 1, 2, 2) * 1.5 + 0.5).clamp(0, 1))
    assert got.min() == 0 and got.max() == 1


# ------------------------------------------------------------------ the model card (README.md)

# Runs every python block it is given (JSON on stdin) in a clean namespace of its own, in an interpreter where
# `import genlab` fails, and reports every array the block left behind: the card's promise, executed.
RUN_SNIPPETS = textwrap.dedent("""
    import json, sys
    sys.modules["genlab"] = None
    import numpy as np
    report = []
    for code in json.load(sys.stdin):
        ns = {"__name__": "__card__"}
        exec(compile(code, "<model card snippet>", "exec"), ns)
        arrays = {}
        for key, value in ns.items():
            if isinstance(value, np.ndarray) or type(value).__name__ == "Tensor":
                a = np.asarray(value.detach() if hasattr(value, "detach") else value)
                arrays[key] = {"shape": list(a.shape), "dtype": str(a.dtype), "min": float(a.min()),
                               "max": float(a.max()), "spread": float(a.std())}
        if isinstance(ns.get("state"), dict):
            arrays["state"] = sorted(ns["state"])
        report.append(arrays)
    print(json.dumps(report))
""")


def _card(run: Path) -> str:
    return (run / "export" / "README.md").read_text()


def _python_blocks(card: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", card, flags=re.S | re.M)


def _shown(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def test_model_card_describes_model_data_training_scores_and_config(exported):
    name, run, _ = exported
    card, manifest = _card(run), _manifest(run)
    assert manifest["files"]["README.md"]["sha256"] == sha256_of(run / "export" / "README.md")
    size = manifest["image"]["height"]
    assert f"`{name}`" in card and "`digits`" in card and f"{size} x {size} px, 1 channel" in card
    assert "| training images | 96 |" in card and "| validation images | 24 |" in card
    source = manifest["source"]
    assert source["checkpoint_sha256"] == sha256_of(run / "checkpoints" / "best.pt")
    assert source["checkpoint_sha256"] in card and f"| its step | {source['step']} |" in card
    assert f"{manifest['model']['parameters']['trained']:,} trained" in card
    assert manifest["genlab_version"] in card and manifest["exported_at"] in card
    assert "| status | finished |" in card and "| epochs completed | 3 |" in card
    assert (run / "config.yaml").read_text().strip() in card
    metrics = read_metrics(run / "metrics.json")
    assert metrics  # the tiny runs score themselves at the end of training: the loop below checks something
    for entry, stored in metrics.items():
        values, protocol = split_entry(stored)
        assert f"`{entry}`" in card
        for key, value in values.items():
            assert f"{key} = {_shown(value)}" in card, (entry, key)
        for key, value in protocol.items():
            if key in ("metric", "protocol"):
                continue
            keys = [f"{key}.{sub}" for sub in value] if key in ("extractor", "classifier") else [key]
            assert all(f"| {k} |" in card for k in keys), (entry, key)
    # every table keeps its columns: any | inside a cell is escaped
    for table in re.findall(r"(?:^\|.*\|\n)+", card, flags=re.M):
        widths = {len(re.findall(r"(?<!\\)\|", row)) for row in table.splitlines()}
        assert len(widths) == 1, table


def test_model_card_snippets_run_without_genlab(exported):
    """Each loading snippet of the card, run as written from the export folder by an interpreter without genlab,
    loads its file and returns what the card and model.json say: shapes, dtypes, images in [0, 1]."""
    from safetensors.torch import load_file

    _, run, _ = exported
    out = run / "export"
    card, manifest = _card(run), _manifest(run)
    blocks = _python_blocks(card)
    chosen, expect = [], []
    for contract in manifest["graphs"].values():
        for fmt, file in contract["files"].items():
            call = f'torch.jit.load("{file}"' if fmt == "torchscript" else f'ort.InferenceSession("{file}"'
            (code,) = [b for b in blocks if call in b]
            chosen.append(code)
            expect.append(contract["outputs"])
    (weights,) = [b for b in blocks if 'load_file("model.safetensors")' in b and "from genlab" not in b]
    chosen.append(weights)
    assert len(chosen) == len(manifest["files"]) - 1  # one per exported file but the card itself
    proc = subprocess.run([sys.executable, "-c", RUN_SNIPPETS], input=json.dumps(chosen), capture_output=True,
                          text=True, timeout=120, cwd=out, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    *graphs, state = json.loads(proc.stdout.splitlines()[-1])
    for arrays, outputs in zip(graphs, expect):
        for spec in outputs:
            got = arrays[spec["name"]]
            assert got["shape"] == [4 if d == "batch" else d for d in spec["shape"]], spec["name"]
            assert got["dtype"] == "float32" and got["spread"] > 0
            if spec.get("range") == [0, 1]:
                assert got["min"] >= 0.0 and got["max"] <= 1.0
    assert state["state"] == sorted(load_file(str(out / "model.safetensors")))


@pytest.mark.parametrize("exported", ["ae"], indirect=True)
def test_model_card_of_an_unscored_run_says_how_to_score_it(exported, tmp_path):
    """A run without metrics.json, exported in one format: the card names `genlab eval` and shows only the
    snippet of the file written. The run's sample figure travels with the card."""
    _, run, _ = exported
    copy = tmp_path / "unscored"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("export"))
    (copy / "metrics.json").unlink()
    (copy / "figures").mkdir(exist_ok=True)
    (copy / "figures" / "samples.png").write_bytes(b"\x89PNG not really")
    written = export_run(copy, ["safetensors"])
    assert [p.name for p in written] == ["model.safetensors", "samples.png", "README.md", "model.json"]
    assert (copy / "export" / "samples.png").read_bytes() == b"\x89PNG not really"
    assert set(_manifest(copy)["files"]) == {"model.safetensors", "samples.png", "README.md"}
    card = _card(copy)
    assert "![samples drawn by the run](samples.png)" in card
    assert "no metrics.json" in card and f"`genlab eval {copy}`" in card
    assert "torch.jit.load" not in card and "InferenceSession" not in card
    assert 'load_file("model.safetensors")' in card


# ------------------------------------------------------------------ refusals, before anything is written


@pytest.mark.parametrize("formats", [["torchscript", "tflite"], ["ONNX", "pickle"], []])
def test_unknown_format_is_refused_before_loading(tmp_path, formats):
    with pytest.raises(GenlabError) as err:
        export_run(tmp_path / "no-such-run", formats, out=tmp_path / "out")
    message = str(err.value)
    assert "torchscript, onnx, safetensors" in message
    assert ("'tflite'" in message) if "tflite" in formats else True
    assert not (tmp_path / "out").exists()


def test_missing_onnx_names_the_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    with pytest.raises(GenlabError, match=r'pip install "genlab\[export\]"'):
        export_run(tmp_path / "no-such-run", ["safetensors", "onnx"], out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    export_mod.check_formats(["safetensors"])  # the other formats need nothing extra


def test_missing_run_folder_is_a_user_error(tmp_path):
    with pytest.raises(GenlabError, match="does not exist"):
        export_run(tmp_path / "no-such-run", ["safetensors"])


def test_cli_export_without_onnx_writes_the_rest(tmp_path, monkeypatch, capsys):
    import importlib.util

    from genlab.cli import main

    run = train(tiny_config(name="vae", **CASES["vae"]), out=tmp_path).run.path
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else
                        real_find_spec(name, *a))
    assert main(["export", str(run), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "onnx is not installed" in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["README.md", "decoder.pt", "encoder.pt",
                                                                      "model.json", "model.safetensors"]
