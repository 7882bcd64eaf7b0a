"""The bad-input catalogue: one table of user mistakes, each run through `genlab.cli.main` in-process.

Every case must exit with code 2 and print exactly one paragraph on stderr that starts with
"genlab: error:", says what is wrong, where, and what would be valid (a distinctive substring is
checked per case), with no traceback, and must leave the test's folder (including any existing run
folder in it) byte for byte as it was. The last test writes the table to docs/errors.md, so the
documentation of error messages is generated from what genlab really prints and cannot drift:
it fails when the file differs, unless GENLAB_UPDATE_DOCS=1 is set, which rewrites it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import re
import shlex
import shutil
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab import __version__
from genlab.cli import main
from genlab.config import PACKAGED_CONFIGS
from genlab.data import SOURCES
from genlab.metrics.registry import METRICS
from genlab.models import MODELS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
UPDATE_ENV = "GENLAB_UPDATE_DOCS"

# A tiny run of the digits data set: 4 batches of 16, 2 steps, nothing drawn.
TINY = ("--set", "data.limit=64", "--set", "train.batch_size=16", "--set", "train.max_steps=2",
        "--set", "train.progress=false", "--set", "train.figures=false", "--set", "train.epoch_samples=false")
TINY_TEXT = " ".join(TINY)
# A small DCGAN on digits at 16x16 (the bundled cats config with its data and widths swapped out).
GAN = ("dcgan_cats64", "--set", "data.name=digits", "--set", "data.image_size=16", "--set", "model.g_width=8",
       "--set", "model.d_width=8")
RUN = "quickstart"  # the trained run's folder name (the quickstart config names it)


# ---------------------------------------------------------------- files the cases read


def write(rel: str, text: str | bytes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        path = tmp / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)

    return setup


def empty_folder(tmp: Path) -> None:
    (tmp / "no-images" / "sub").mkdir(parents=True)
    (tmp / "no-images" / "sub" / "notes.txt").write_text("not an image\n")


def npz_without_images(tmp: Path) -> None:
    np.savez(tmp / "faces.npz", pictures=np.zeros((4, 8, 8), np.uint8))


def npy_named_npz(tmp: Path) -> None:
    with open(tmp / "faces.npz", "wb") as f:  # np.save would append .npy to the name
        np.save(f, np.zeros((4, 8, 8), np.uint8))


def truncate_last(tmp: Path) -> None:
    last = tmp / RUN / "checkpoints" / "last.pt"
    data = last.read_bytes()
    last.write_bytes(data[: len(data) // 2])


def _rewrap_last(tmp: Path, change: Callable[[dict], None]) -> None:
    last = tmp / RUN / "checkpoints" / "last.pt"
    wrapper = torch.load(last, map_location="cpu", weights_only=True)
    change(wrapper)
    torch.save(wrapper, last)


def newer_format(tmp: Path) -> None:
    def change(w: dict) -> None:
        w["format_version"] = 99
        w["genlab_version"] = "99.0.0"

    _rewrap_last(tmp, change)


def flip_one_byte(tmp: Path) -> None:
    def change(w: dict) -> None:
        blob = w["blob"].clone()
        i = len(blob) // 2
        blob[i] = 255 - int(blob[i])
        w["blob"] = blob

    _rewrap_last(tmp, change)


MARKER = "pwned.txt"  # what the malicious checkpoint would create if it were unpickled with full pickle


class _RunsCode:
    """Unpickling this calls open(marker, "w"): a stand-in for any code an attacker's file could run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def malicious_last(tmp: Path) -> None:
    torch.save({"format_version": 1, "payload": _RunsCode(str(tmp / MARKER))}, tmp / RUN / "checkpoints" / "last.pt")


def malicious_blob(tmp: Path) -> None:
    """A well-formed wrapper with a matching SHA-256 around a payload that would run code."""
    buf = io.BytesIO()
    torch.save({"model": _RunsCode(str(tmp / MARKER))}, buf)
    blob = buf.getvalue()
    import hashlib

    torch.save({"format_version": 1, "genlab_version": __version__, "sha256": hashlib.sha256(blob).hexdigest(),
                "blob": torch.frombuffer(bytearray(blob), dtype=torch.uint8)}, tmp / RUN / "checkpoints" / "last.pt")


def remove_config(tmp: Path) -> None:
    (tmp / RUN / "config.yaml").unlink()


def no_marker(tmp: Path) -> None:
    assert not (tmp / MARKER).exists(), "the checkpoint's code ran"


# ---------------------------------------------------------------- the table


@dataclass(frozen=True)
class Case:
    name: str  # what is wrong, in a few words (the docs' heading)
    argv: tuple[str, ...]  # after `genlab`; {tmp} is the case's own folder
    expect: str  # a distinctive part of the message, with the case's folder written as <tmp>
    setup: Callable[[Path], None] | None = None  # makes files under {tmp} before the snapshot
    run: bool = False  # copy the module's trained run to {tmp}/quickstart first
    check: Callable[[Path], None] | None = None  # extra assertion afterwards


def _scored_runs(tmp: Path, n_fake: dict[str, int | None]) -> None:
    """Run folders holding only an fd_randconv score made at these sample counts (None: no scores at all)."""
    for name, n in n_fake.items():
        (tmp / name).mkdir()
        (tmp / name / "config.yaml").write_text(f"name: {name}\n")
        if n is not None:
            (tmp / name / "metrics.json").write_text(json.dumps({"fd_randconv": {
                "fd_randconv": 1.0, "n_fake": n, "n_real": 350, "score_keys": ["fd_randconv"]}}))


def train(*args: str) -> tuple[str, ...]:
    """`genlab train` with the tiny settings first, so a case's own --set wins over them."""
    return ("train", *TINY, *args)


def resume(*args: str) -> tuple[str, ...]:
    return ("train", "--resume", f"{{tmp}}/{RUN}", *args)


OUT = ("--out", "{tmp}/runs")

CASES = [
    # config
    Case("config: unknown key", train("quickstart", *OUT, "--set", "train.epoch=3"),
         "unknown key 'train.epoch'; did you mean 'train.epochs'? Valid keys here: allocator, batch_size, "),
    Case("config: wrong type", train("quickstart", *OUT, "--set", "train.batch_size=many"),
         "train.batch_size: Input should be a valid integer, unable to parse string as an integer (got 'many')."),
    Case("config: value out of range", train("quickstart", *OUT, "--set", "data.val_fraction=1.5"),
         "data.val_fraction: Input should be less than 1 (got 1.5)."),
    Case("config: value not among the choices", train("quickstart", *OUT, "--set", "data.normalize=unit"),
         "data.normalize: Input should be 'minus_one_one', 'zero_one' or 'imagenet' (got 'unit')."),
    Case("config: adversarial objective with a VAE",
         train("quickstart", *OUT, "--set", "objective={kind: adversarial}"),
         "model 'vae' (autoencoder) is not trained by objective.kind 'adversarial'; set objective.kind: "
         "reconstruction."),
    Case("config: a key of another objective kind", train("quickstart", *OUT, "--set", "objective.real_target=0.9"),
         "unknown key 'objective.real_target': it belongs to objective.kind 'adversarial', and this objective's "
         "kind is 'reconstruction'. Valid keys here: beta, "),
    Case("config: a model with no latent dimensions", train("quickstart", *OUT, "--set", "model.latent_dim=0"),
         "model.latent_dim must be a positive integer (a size of the vae model; got 0); its default is 32."),
    Case("config: BCE loss with data in [-1, 1]", train("quickstart", *OUT, "--set", "objective.recon_loss=bce"),
         "objective.recon_loss 'bce' needs targets in [0, 1]: set data.normalize: zero_one (now 'minus_one_one')"),
    Case("config: importance samples with a per-pixel mean",
         train("quickstart", *OUT, "--set", "objective.iw_samples=5", "--set", "objective.reduction=mean"),
         "objective.iw_samples = 5 weighs per-image likelihoods: it needs reduction: sum (got reduction: mean)"),
    Case("config: sigmoid output with data in [-1, 1]",
         train("quickstart", *OUT, "--set", "model.output_activation=sigmoid"),
         "model.output_activation 'sigmoid' produces values in (0, 1), but data.normalize 'minus_one_one' puts pixels "
         "in [-1.00, 1.00]: it cannot produce 50% of the pixel range"),
    Case("config: sigmoid output with ImageNet normalisation",
         train("quickstart", *OUT, "--set", "model.output_activation=sigmoid", "--set", "data.normalize=imagenet"),
         "Set data.normalize: zero_one with a sigmoid, or model.output_activation: tanh with data.normalize: "
         "minus_one_one."),
    Case("config: YAML syntax error", train("{tmp}/broken.yaml", *OUT),
         "<tmp>/broken.yaml: YAML syntax error at line 3, column 11: mapping values are not allowed here.",
         setup=write("broken.yaml", "model:\n  name: vae\ndata: name: digits\ntrain:\n  epochs: 1\n")),
    Case("config: a list instead of a mapping", train("{tmp}/list.yaml", *OUT),
         "<tmp>/list.yaml: a config must be a mapping of sections (model, data, ...), got a list.",
         setup=write("list.yaml", "- model\n- data\n")),
    Case("config: a binary file", train("{tmp}/weights.bin", *OUT),
         "<tmp>/weights.bin is not a text file; a config is YAML text.",
         setup=write("weights.bin", bytes(range(256)) * 4)),
    Case("config: run name with a path in it", train("quickstart", *OUT, "--set", "name=../x"),
         "name: the run folder's name must be one path component: letters, digits, '.', '_', "
         "'+' and '-', starting with a letter or digit (e.g. betavae_cats_b100) (got '../x')."),
    Case("config: unknown best metric", train("quickstart", *OUT, "--set", "train.best_metric=fid"),
         "train.best_metric 'fid' is not computed for this model; choose one of "),
    # command line
    Case("cli: unknown model name", train("quickstart", *OUT, "--set", "model.name=vea"),
         f"unknown model 'vea'; did you mean 'vae'? Registered models: {', '.join(sorted(MODELS))}."),
    Case("cli: unknown bundled config", train("quikstart", *OUT),
         "config 'quikstart' not found: it is neither a file nor a bundled config. Did you mean 'quickstart'? "
         "Bundled configs: "),
    Case("cli: resume from a missing run folder", ("train", "--resume", "{tmp}/runs/never-ran"),
         "cannot resume: run folder <tmp>/runs/never-ran does not exist."),
    Case("cli: resume from a folder without config.yaml", resume(),
         f"cannot resume: <tmp>/{RUN} is not a genlab run folder (no config.yaml).", run=True, setup=remove_config),
    # data
    Case("data: missing root", train("quickstart", *OUT, "--set", "data.name=image_folder",
                                     "--set", "data.root={tmp}/nowhere"),
         "data.root '<tmp>/nowhere' does not exist (looked for <tmp>/nowhere; $GENLAB_DATA is not set). "
         "Point data.root at the data folder"),
    Case("data: folder without images", train("quickstart", *OUT, "--set", "data.name=image_folder",
                                              "--set", "data.root={tmp}/no-images"),
         "data.root <tmp>/no-images holds no image files (looked recursively for .bmp, ", setup=empty_folder),
    Case("data: unknown data set name", train("quickstart", *OUT, "--set", "data.name=cifar10"),
         "data.name: unknown data source. Input should be "
         + ", ".join(repr(n) for n in sorted(SOURCES)[:-1]) + f" or {sorted(SOURCES)[-1]!r} (got 'cifar10')."),
    Case("data: npz without the images array", train("quickstart", *OUT, "--set", "data.name=npz",
                                                     "--set", "data.root={tmp}/faces.npz"),
         "<tmp>/faces.npz has no array 'images'; it holds ['pictures']. Set data.images_key.",
         setup=npz_without_images),
    Case("data: a .npy file named .npz", train("quickstart", *OUT, "--set", "data.name=npz",
                                               "--set", "data.root={tmp}/faces.npz"),
         "<tmp>/faces.npz is a single .npy array, not an .npz archive of named arrays ('images', optional "
         "'labels').", setup=npy_named_npz),
    Case("data: fewer images than one batch", train("quickstart", *OUT, "--set", "data.limit=8"),
         "the training set has 8 images, fewer than one batch (train.batch_size=16); use at least 16 images or "
         "a smaller batch size."),
    # resume
    Case("resume: changed latent size", resume("--set", "model.latent_dim=3"),
         f"cannot resume <tmp>/{RUN} with this config: it changes model.latent_dim, which the saved run computed "
         f"differently.", run=True),
    Case("resume: another model", resume("--set", "model.name=ae"),
         f"cannot resume <tmp>/{RUN} with this config: it changes model.name, ", run=True),
    Case("resume: truncated last.pt", resume(),
         f"<tmp>/{RUN}/checkpoints/last.pt is truncated, corrupt or not a checkpoint", run=True,
         setup=truncate_last),
    Case("resume: checkpoint from a newer genlab", resume(),
         f"<tmp>/{RUN}/checkpoints/last.pt was written by genlab 99.0.0 in checkpoint format 99; this genlab "
         f"(<version>) reads formats up to 1. Upgrade genlab to load it.", run=True, setup=newer_format),
    Case("resume: one flipped byte in the checkpoint", resume(),
         f"<tmp>/{RUN}/checkpoints/last.pt is corrupt: its content does not match the SHA-256 recorded", run=True,
         setup=flip_one_byte),
    Case("resume: a checkpoint that would run code", resume(),
         f"<tmp>/{RUN}/checkpoints/last.pt was refused: it contains pickled Python objects that could run code",
         run=True, setup=malicious_last, check=no_marker),
    Case("resume: a checkpoint payload that would run code", resume(),
         f"<tmp>/{RUN}/checkpoints/last.pt was refused: it contains pickled Python objects that could run code",
         run=True, setup=malicious_blob, check=no_marker),
    Case("run folder: training into an existing run", train("quickstart", "--out", "{tmp}"),
         f"run folder <tmp>/{RUN} already exists. Continue it with --resume <tmp>/{RUN}, replace it with "
         f"--overwrite, or choose another name with --set name=NEW.", run=True),
    Case("run folder: --overwrite with too little data keeps the old run",
         train("quickstart", "--out", "{tmp}", "--overwrite", "--set", "data.limit=8"),
         "the training set has 8 images, fewer than one batch", run=True),
    Case("config: unknown DiffAugment policy", train(*GAN, *OUT, "--set", "objective.diffaugment=color,zoom"),
         "objective.diffaugment: unknown policy 'zoom'; valid: a comma-separated subset of color, translation, "
         "cutout (e.g. 'color,translation,cutout'), or '' for none (got 'color,zoom')."),
    Case("config: label smoothing with the hinge loss", train(*GAN, *OUT, "--set", "objective.loss=hinge"),
         "real_target / fake_target (label smoothing) are targets of the bce loss; loss 'hinge' has none (got "
         "real_target 0.98, fake_target 0). Leave them at 1 and 0, or use loss: bce."),
    Case("config: gradient penalty with a BatchNorm discriminator",
         train(*GAN, *OUT, "--set", "objective.real_target=1", "--set", "objective.loss=wasserstein",
               "--set", "objective.gradient_penalty=10"),
         "objective.gradient_penalty needs a discriminator without BatchNorm: the penalty is on each image's "
         "gradient, and BatchNorm makes D's output for one image depend on the rest of its batch (Gulrajani et "
         "al. 2017, sec. 4). Set model.d_norm: none (or layer), or gradient_penalty: 0"),
    Case("config: an image size SNGAN cannot reach from a small grid",
         train(*GAN, *OUT, "--set", "model.name=sngan", "--set", "data.image_size=36"),
         "sngan doubles from a start grid of 4 to 7 pixels, so image_size must be 4 to 7 times a power of 2 "
         "(16, 28, 32, 48, 64, 96, 128, ...; got 36, whose halving stops at 9)."),
    # a second run over a first one
    Case("prior: the first run's folder is missing",
         ("train", "vqvae_prior", *OUT, "--set", "prior.run={tmp}/runs/vqvae_cats"),
         "prior.run <tmp>/runs/vqvae_cats: no such folder. prior.run names the finished run whose model a "
         "vqvae_prior run is trained over (a model with a quantized posterior: vqvae)"),
    Case("prior: a first run that is not a VQ-VAE",
         ("train", "vqvae_prior", *OUT, "--set", "prior.run={tmp}/quickstart"),
         "prior.run <tmp>/quickstart is a run of model 'vae' (a gaussian posterior); a vqvae_prior run needs a run "
         "of a model with a quantized posterior: vqvae.", run=True),
    # metrics
    Case("metrics: GAN with one validation image", train(*GAN, *OUT, "--set", "data.val_limit=1"),
         "the validation set has 1 image(s); this objective's fd_randconv needs at least 2. Raise "
         "data.val_fraction or data.val_limit."),
    Case("metrics: FID without its weights file", ("eval", "{tmp}/quickstart", "--metrics", "fid"),
         "the FID Inception-v3 weights (TensorFlow's 2015-12-05 FID graph converted for torch-fidelity, the file "
         "torch-fidelity and torchmetrics' FID load) are not on this machine: expected the file "
         "<tmp>/weights/weights-inception-2015-12-05-6726825d.pth", run=True),
    Case("metrics: too few images for a full-rank covariance",
         ("eval", "{tmp}/quickstart", "--metrics", "fd_randconv", "--samples", "20"),
         "needs at least 65 real and 65 generated images for full-rank covariances; got 20 real and 20 generated.",
         run=True),
    Case("metrics: a metric that does not apply to the model",
         ("eval", "{tmp}/quickstart", "--metrics", "class_accuracy"),
         "metric 'class_accuracy' does not apply to run <tmp>/quickstart: the model is not class-conditional.",
         run=True),
    Case("metrics: unknown metric name", ("eval", "{tmp}/quickstart", "--metrics", "psnr"),
         f"unknown metric(s) 'psnr'; valid: {', '.join(METRICS)}.", run=True),
    Case("metrics: no importance samples", ("eval", "{tmp}/quickstart", "--metrics", "nll", "--nll-samples", "0"),
         "--nll-samples must be at least 1; got 0.", run=True),
    Case("metrics: KID subsets of one image", ("eval", "{tmp}/quickstart", "--kid-subset-size", "1"),
         "--kid-subset-size must be at least 2; got 1.", run=True),
    Case("explore: a public address without --allow-remote",
         ("explore", "{tmp}/quickstart", "--host", "0.0.0.0"),
         "--host 0.0.0.0 would expose the explorer (which has no login) beyond this machine; add --allow-remote "
         "if that is intended, or use 127.0.0.1.", run=True),
    Case("compare: a folder that is not a run", ("compare", "{tmp}"),
         "<tmp> is not a genlab run folder (no config.yaml)"),
    Case("compare --strict: runs whose scores were made differently", ("compare", "{tmp}/a", "{tmp}/b", "--strict"),
         "this comparison mixes protocols (--strict refuses): [fd_randconv] generated-image count (n_fake) "
         "differs: 2400 in a; 350 in b.", setup=lambda tmp: _scored_runs(tmp, {"a": 2400, "b": 350})),
    Case("eval --verify: a run with no stored scores", ("eval", "{tmp}/a", "--verify"),
         "<tmp>/a has no stored scores (metrics.json is missing or empty): nothing to verify.",
         setup=lambda tmp: _scored_runs(tmp, {"a": None})),
    # samples on disk
    Case("sample: an output folder that holds other files", ("sample", "{tmp}/quickstart", "--out", "{tmp}/mine"),
         "--out <tmp>/mine is not empty and holds no manifest.json, so it is not a genlab sample set; choose an "
         "empty or new folder.", setup=write("mine/notes.txt", "mine"), run=True),
    Case("sample: labels for a model that is not conditional",
         ("sample", "{tmp}/quickstart", "--labels", "3", "--out", "{tmp}/s"),
         "--labels given, but <tmp>/quickstart's model (vae) is not conditional; leave --labels out.", run=True),
    Case("sample: reconstructions of a folder with no images",
         ("sample", "{tmp}/quickstart", "--reconstruct", "{tmp}/no-images", "--out", "{tmp}/s"),
         "--reconstruct <tmp>/no-images: no image files in it", setup=empty_folder, run=True),
    Case("sample: no samples asked for", ("sample", "{tmp}/quickstart", "-n", "0"),
         "-n and --batch-size must be at least 1 (got -n 0, --batch-size 256).", run=True),
    # sweeps
    Case("sweep: a grid value the config refuses", ("sweep", "quickstart", "--grid", "train.epochs=2,0",
                                                    "--out", "{tmp}/runs"),
         "train.epochs: Input should be greater than or equal to 1"),
    Case("sweep: the seed as a grid key", ("sweep", "quickstart", "--grid", "train.seed=1,2", "--out", "{tmp}/runs"),
         "--grid train.seed: use --seeds."),
    Case("sweep: a grid without values", ("sweep", "quickstart", "--grid", "objective.beta", "--out", "{tmp}/runs"),
         "--grid 'objective.beta': expected key=value1,value2,... e.g. --grid objective.beta=1,4,10."),
    Case("sweep: two runs that would share a folder",
         ("sweep", "quickstart", "--grid", "data.root=a/x,b/x", "--out", "{tmp}/runs"),
         "two runs of this sweep would share the folder name 'quickstart_rootx'"),
]


# ---------------------------------------------------------------- running a case


@dataclass(frozen=True)
class Record:
    command: str
    code: int
    message: str


RESULTS: dict[str, Record] = {}


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every folder (None) under `folder`."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def normalise(text: str, tmp: Path) -> str:
    """Machine-specific parts replaced by placeholders, so the catalogue reads the same on every machine."""
    for path in sorted({str(tmp), str(tmp.resolve())}, key=len, reverse=True):
        text = text.replace(path, "<tmp>")
    text = text.replace(str(PACKAGED_CONFIGS), "<genlab>/configs")
    text = text.replace(f"genlab ({__version__})", "genlab (<version>)")
    # Anything else under pytest's temporary root (e.g. the shared trained run) is a <tmp> too.
    return re.sub(r"/[^\s'\"]*/pytest-of-[^/\s]+/pytest-[^/\s]+/[^/\s'\"]+", "<tmp>", text)


def run_case(case: Case, tmp: Path, trained: Path) -> Record:
    if case.run:
        shutil.copytree(trained, tmp / RUN)
    if case.setup:
        case.setup(tmp)
    argv = [a.replace("{tmp}", str(tmp)) for a in case.argv]
    before = snapshot(tmp)
    if case.run:
        assert any(k.startswith(f"{RUN}/") for k in before)

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    out, err = out.getvalue(), err.getvalue()

    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    assert re.match(r"genlab: error:\s", err), err  # a long path may start the next line
    assert err.endswith("\n") and "\n\n" not in err.strip("\n"), err  # one paragraph
    message = normalise(" ".join(err.split("\n")).strip(), tmp)
    assert case.expect in message, message
    assert snapshot(tmp) == before, "the command changed files it should not have touched"
    if case.check:
        case.check(tmp)
    command = " ".join(["genlab", *(shlex.quote(a) for a in argv)])
    command = normalise(command, tmp).replace(TINY_TEXT, "$TINY")
    return Record(command, code, message)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Relative paths land in the case's folder, and data roots resolve without $GENLAB_DATA."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GENLAB_DATA", raising=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """One tiny quickstart run (2 steps); cases that need a run work on their own copy of it."""
    out = tmp_path_factory.mktemp("catalogue-run")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main(["train", "quickstart", "--out", str(out), *TINY])
    assert code == 0, stderr.getvalue()
    assert (out / RUN / "checkpoints" / "last.pt").is_file()
    return out / RUN


def test_catalogue_names_are_unique_and_there_are_enough():
    names = [c.name for c in CASES]
    assert len(set(names)) == len(names)
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=[re.sub(r"\W+", "-", c.name).strip("-") for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, trained: Path):
    RESULTS[case.name] = run_case(case, tmp_path, trained)


# ---------------------------------------------------------------- docs/errors.md from the table


def render(records: list[tuple[str, Record]]) -> str:
    lines = [
        "# Error messages",
        "",
        "<!-- Generated by tests/test_bad_input_catalogue.py from what genlab really prints; do not edit.",
        f"     Regenerate: {UPDATE_ENV}=1 python -m pytest tests/test_bad_input_catalogue.py -->",
        "",
        "A mistake in a config, the data or a run folder stops genlab before it changes anything: it prints",
        "one paragraph that says what is wrong, where, and what would be valid, and exits with code 2",
        "(`genlab --debug ...` shows the traceback instead). Every case below is run by the test suite.",
        "`<tmp>` stands for the folder the command ran in, `<genlab>` for the installed package, and",
        f"`$TINY` for the settings of a tiny run: `{TINY_TEXT}`.",
        "",
    ]
    for name, r in records:
        lines += [f"## {name}", "", "```", f"$ {r.command}",
                  textwrap.fill(r.message, width=100, break_long_words=False, break_on_hyphens=False),
                  f"[exit code {r.code}]", "```", ""]
    return "\n".join(lines)


def test_docs_errors_md_matches_the_catalogue(tmp_path_factory, trained: Path):
    records = []
    for case in CASES:  # the table's order, never sorted
        if case.name not in RESULTS:  # run on its own (e.g. -k docs): run the missing cases here
            RESULTS[case.name] = run_case(case, tmp_path_factory.mktemp("case"), trained)
        records.append((case.name, RESULTS[case.name]))
    text = render(records)
    if os.environ.get(UPDATE_ENV) == "1":
        DOCS.write_text(text)
        return
    assert DOCS.is_file(), f"{DOCS} is missing; write it with {UPDATE_ENV}=1"
    assert DOCS.read_text() == text, (f"{DOCS} differs from the error catalogue; if the messages changed on "
                                      f"purpose, regenerate it with {UPDATE_ENV}=1")


def test_normalise_hides_machine_specific_paths(tmp_path: Path):
    text = f"{tmp_path}/x and /tmp/pytest-of-alice/pytest-7/catalogue-run0/quickstart and {PACKAGED_CONFIGS}/a.yaml"
    assert normalise(text, tmp_path) == "<tmp>/x and <tmp>/quickstart and <genlab>/configs/a.yaml"


def test_pickle_stand_in_really_runs_code(tmp_path: Path):
    """The malicious cases prove something only if their payload does run under a full unpickler."""
    pickle.loads(pickle.dumps(_RunsCode(str(tmp_path / MARKER)))).close()
    assert (tmp_path / MARKER).exists()
