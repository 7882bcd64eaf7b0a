"""Run configs: bundled configs, `--set` overrides, and errors that name the key, the value and the fix.

Also the model registry, which checks the open `model` section against each constructor's signature.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlab.config import (
    PACKAGED_CONFIGS,
    DataConfig,
    RunConfig,
    TrainConfig,
    apply_overrides,
    incompatible_changes,
    load,
    packaged_configs,
    parse_override,
    read_yaml,
    resolve_config_path,
    validate,
)
from genlab.errors import GenlabError
from genlab.models import MODELS, build_model, model_arguments
from genlab.objectives import OBJECTIVES
from genlab.objectives.reconstruction import ReconstructionConfig

QUICKSTART = str(PACKAGED_CONFIGS / "quickstart.yaml")


def _keys(section) -> str:
    return ", ".join(sorted(section.model_fields))


def _error(spec, overrides=None) -> str:
    with pytest.raises(GenlabError) as info:
        load(spec, overrides)
    return str(info.value)


# ------------------------------------------------------------------ bundled configs


def test_packaged_configs_lists_every_yaml_file_and_quickstart():
    names = packaged_configs()
    assert "quickstart" in names
    assert names == sorted(p.stem for p in PACKAGED_CONFIGS.glob("*.yaml"))
    assert len(names) >= 7


@pytest.mark.parametrize("name", packaged_configs())
def test_every_bundled_config_loads_and_validates(name):
    cfg = load(name)
    raw = read_yaml(PACKAGED_CONFIGS / f"{name}.yaml")
    # the objective it names is one its model trains with, and it sets only that kind's keys
    assert cfg.objective.kind in MODELS[cfg.model.name].trains_with, (name, cfg.objective.kind)
    assert set(raw.get("objective", {})) <= set(OBJECTIVES[cfg.objective.kind].config.model_fields)
    assert cfg.name == (raw.get("name") or name)
    assert cfg.model.name in MODELS, cfg.model.name
    unknown = set(cfg.model.kwargs()) - set(model_arguments(cfg.model.name))
    assert not unknown, f"{name}: model arguments {unknown} are not accepted by {cfg.model.name}"
    # What a run folder stores (config.yaml) validates back to the same config.
    assert validate(cfg.to_dict()) == cfg
    # The path form and the bundled-name form are the same config.
    assert load(PACKAGED_CONFIGS / f"{name}.yaml") == cfg


def test_quickstart_values():
    cfg = load("quickstart")
    assert cfg.name == "quickstart"
    assert cfg.model.name == "vae"
    assert cfg.model.kwargs() == {"hidden_dims": [32, 64, 128], "latent_dim": 16}
    assert (cfg.data.name, cfg.data.image_size, cfg.data.val_fraction) == ("digits", 32, 0.25)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.optim.lr, cfg.optim.scheduler) == (20, 64, 0.002, "cosine")
    assert cfg.output.root == "runs"  # section absent from the file: defaults


# ------------------------------------------------------------------ --set overrides


@pytest.mark.parametrize(("text", "expected"), [
    ("train.epochs=5", (["train", "epochs"], 5)),
    ("optim.lr=0.5", (["optim", "lr"], 0.5)),
    ("optim.lr=1.0e-3", (["optim", "lr"], 0.001)),
    ("a.b=[1, 2.5, true, null, x]", (["a", "b"], [1, 2.5, True, None, "x"])),
    ("a.b={c: 1, d: [2]}", (["a", "b"], {"c": 1, "d": [2]})),
    ("train.progress=false", (["train", "progress"], False)),
    ("data.limit=null", (["data", "limit"], None)),
    ("data.limit=", (["data", "limit"], None)),
    ("name='42'", (["name"], "42")),
    ("name=run=2", (["name"], "run=2")),  # only the first '=' separates key and value
    (" train.seed = 3", (["train", "seed"], 3)),
])
def test_parse_override_reads_yaml_values(text, expected):
    parts, value = parse_override(text)
    assert (parts, value) == expected
    assert type(value) is type(expected[1])  # 5 is an int, 0.5 a float, "42" a str


def test_set_overrides_typed_values():
    cfg = load("quickstart", [
        "train.epochs=3", "optim.lr=1e-4", "optim.betas=[0.5, 0.9]", "train.progress=false",
        "data.grayscale=true", "train.max_steps=7", "train.max_steps=null", "model.hidden_dims=[8, 16]",
        "model.name=ae", "objective.beta=4",
    ])
    assert cfg.train.epochs == 3
    assert cfg.optim.lr == 1e-4
    assert cfg.optim.betas == (0.5, 0.9)
    assert cfg.train.progress is False
    assert cfg.data.grayscale is True
    assert cfg.train.max_steps is None  # the later override wins
    assert cfg.model.name == "ae"
    assert cfg.model.kwargs() == {"hidden_dims": [8, 16], "latent_dim": 16}
    assert cfg.objective.beta == 4.0
    # untouched values keep the file's settings
    assert (cfg.train.batch_size, cfg.data.image_size, cfg.optim.scheduler) == (64, 32, "cosine")


def test_set_creates_missing_sections():
    cfg = load("quickstart", ["output.root=/tmp/elsewhere", "data.random_crops.per_image=2",
                              "data.random_crops.size=16"])
    assert cfg.output.root == "/tmp/elsewhere"
    assert (cfg.data.random_crops.per_image, cfg.data.random_crops.size) == (2, 16)


def test_apply_overrides_leaves_its_input_alone():
    data = {"a": {"b": 1}, "n": None}
    out = apply_overrides(data, ["a.c=2", "x.y.z=3", "n.m=4"])
    assert out == {"a": {"b": 1, "c": 2}, "x": {"y": {"z": 3}}, "n": {"m": 4}}
    assert data == {"a": {"b": 1}, "n": None}


@pytest.mark.parametrize(("override", "prefix"), [
    ("train.epochs.max=3", "train.epochs"),
    ("model.hidden_dims.first=8", "model.hidden_dims"),
    ("data.name.x.y=1", "data.name"),
])
def test_set_below_a_value_is_refused(override, prefix):
    assert _error("quickstart", [override]) == f"--set {override!r}: {prefix} is a value, not a section."


def test_set_without_equals_is_refused():
    assert _error("quickstart", ["train.epochs"]) == (
        "--set 'train.epochs': expected key=value, e.g. --set train.epochs=5.")


@pytest.mark.parametrize("override", ["train..epochs=3", "=3", "train.=3"])
def test_set_with_an_empty_key_part_is_refused(override):
    key = override.split("=")[0]
    assert _error("quickstart", [override]) == f"--set {override!r}: the key {key!r} has an empty part."


# ------------------------------------------------------------------ unknown keys


@pytest.mark.parametrize(("override", "message"), [
    ("train.epoch=3",
     f"unknown key 'train.epoch'; did you mean 'train.epochs'? Valid keys here: {_keys(TrainConfig)}."),
    ("data.imge_size=28",
     f"unknown key 'data.imge_size'; did you mean 'data.image_size'? Valid keys here: {_keys(DataConfig)}."),
    ("objective.bta=2",
     f"unknown key 'objective.bta'; did you mean 'objective.beta'? Valid keys here: {_keys(ReconstructionConfig)}."),
    ("trian.epochs=3", f"unknown key 'trian'; did you mean 'train'? Valid keys here: {_keys(RunConfig)}."),
    ("colour.x=1", f"unknown key 'colour'. Valid keys here: {_keys(RunConfig)}."),
    ("data.random_crops={per_imag: 2, size: 16}",
     "missing required key 'data.random_crops.per_image'. unknown key 'data.random_crops.per_imag'; "
     "did you mean 'data.random_crops.per_image'? Valid keys here: per_image, size."),
])
def test_unknown_key_names_it_and_suggests_the_closest(override, message):
    assert _error("quickstart", [override]) == f"{QUICKSTART}: invalid configuration: {message}"


def test_key_lists_in_messages_are_the_real_ones():
    assert _keys(RunConfig) == "data, model, name, objective, optim, output, prior, train"
    for key in ("epochs", "batch_size", "max_steps", "progress"):
        assert key in TrainConfig.model_fields
    for key in ("image_size", "val_fraction", "limit", "root"):
        assert key in DataConfig.model_fields


def test_unknown_key_in_a_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  name: vae\ndata:\n  name: digits\ntrain:\n  epoch: 3\n  batchsize: 8\n")
    assert _error(path) == (
        f"{path}: invalid configuration: "
        f"unknown key 'train.epoch'; did you mean 'train.epochs'? Valid keys here: {_keys(TrainConfig)}. "
        f"unknown key 'train.batchsize'; did you mean 'train.batch_size'? Valid keys here: {_keys(TrainConfig)}.")


def test_missing_required_sections(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert _error(path) == f"{path}: invalid configuration: missing required key 'model'. missing required key 'data'."


# ------------------------------------------------------------------ wrong types and ranges


@pytest.mark.parametrize(("override", "message"), [
    ("train.epochs=ten", "train.epochs: Input should be a valid integer, unable to parse string as an integer "
                         "(got 'ten')."),
    ("train.batch_size=0", "train.batch_size: Input should be greater than or equal to 1 (got 0)."),
    ("optim.lr=-1", "optim.lr: Input should be greater than 0 (got -1)."),
    ("data.val_fraction=1.5", "data.val_fraction: Input should be less than 1 (got 1.5)."),
    ("data.val_fraction=0", "data.val_fraction: Input should be greater than 0 (got 0)."),
    ("data.image_size=4", "data.image_size: Input should be greater than or equal to 8 (got 4)."),
    ("data.name=digitz", "data.name: unknown data source; did you mean 'digits'? Input should be "
                         "'celeba', 'digits', 'fashion_mnist', 'image_folder', 'mnist', 'npz' or 'shapes' "
                         "(got 'digitz')."),
    ("train.progress=maybe", "train.progress: Input should be a valid boolean, unable to interpret input "
                             "(got 'maybe')."),
])
def test_bad_value_names_the_key_and_the_value(override, message):
    assert _error("quickstart", [override]) == f"{QUICKSTART}: invalid configuration: {message}"


def test_unknown_device_is_refused():
    message = _error("quickstart", ["train.device=gpu"])
    assert message == (f"{QUICKSTART}: invalid configuration: "
                       f"train: device must be auto, cpu, cuda or cuda:N (got 'gpu').")
    assert load("quickstart", ["train.device=cuda:1"]).train.device == "cuda:1"


# ------------------------------------------------------------------ YAML files


def test_yaml_syntax_error_gives_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  name: vae\ndata:\n  name: digits\n   image_size: 32\n")
    assert _error(path) == f"{path}: YAML syntax error at line 5, column 14: mapping values are not allowed here."


def test_yaml_tab_indent_gives_the_line(tmp_path):
    path = tmp_path / "tabs.yaml"
    path.write_text("model:\n  name: vae\ndata:\n\tname: digits\n")
    assert _error(path) == (f"{path}: YAML syntax error at line 4, column 1: "
                            f"found character '\\t' that cannot start any token.")


@pytest.mark.parametrize(("text", "kind"), [("- model\n- data\n", "list"), ("just text\n", "str")])
def test_a_config_must_be_a_mapping(tmp_path, text, kind):
    path = tmp_path / "notamap.yaml"
    path.write_text(text)
    assert _error(path) == (f"{path}: a config must be a mapping of sections (model, data, ...), "
                            f"got a {kind}.")


def test_unknown_config_name_suggests_the_closest_bundled_one():
    bundled = ", ".join(packaged_configs())
    assert _error("quickstrt") == (f"config 'quickstrt' not found: it is neither a file nor a bundled config. "
                                   f"Did you mean 'quickstart'? Bundled configs: {bundled}.")
    assert _error("zzzz") == (f"config 'zzzz' not found: it is neither a file nor a bundled config. "
                              f"Bundled configs: {bundled}.")


def test_a_file_config_takes_its_name_from_the_file_unless_set(tmp_path):
    path = tmp_path / "exp7.yaml"
    path.write_text("model: {name: ae}\ndata: {name: digits}\n")
    assert load(path).name == "exp7"
    assert load(path, ["name=other"]).name == "other"


# ------------------------------------------------------------------ the objective section: one union, by kind


@pytest.mark.parametrize(("section", "key", "owner"), [
    ({"kind": "reconstruction", "real_target": 0.9}, "real_target", "adversarial"),
    ({"kind": "adversarial", "beta": 10}, "beta", "reconstruction"),
    ({"kind": "adversarial", "noise_std": 0.3}, "noise_std", "reconstruction"),
])
def test_a_key_of_another_objective_kind_is_an_error_naming_the_kind(tmp_path, section, key, owner):
    path = tmp_path / "mixed.yaml"
    model = "vae" if section["kind"] == "reconstruction" else "dcgan"
    path.write_text(f"model: {{name: {model}}}\ndata: {{name: digits}}\nobjective: {section}\n")
    message = _error(path)
    assert f"unknown key 'objective.{key}': it belongs to objective.kind '{owner}'" in message
    assert f"this objective's kind is '{section['kind']}'" in message
    own = ", ".join(sorted(OBJECTIVES[section["kind"]].config.model_fields))
    assert f"Valid keys here: {own}." in message


def test_the_objective_kind_defaults_to_the_models_own():
    assert load("quickstart", ["model.name=dcgan", "objective={}"]).objective.kind == "adversarial"
    assert load("quickstart", ["objective={}"]).objective.kind == "reconstruction"
    message = _error("quickstart", ["objective.kind=diffusionn"])
    assert "objective.kind 'diffusionn' is not an objective kind; registered kinds: " in message


def test_ramps_are_given_in_steps_or_epochs_not_both():
    assert load("quickstart", ["objective.kl_warmup_epochs=1.5"]).objective.kl_warmup_epochs == 1.5
    steps = load("quickstart", ["objective.kl_warmup_epochs=null", "objective.kl_warmup_steps=200"]).objective
    assert (steps.kl_warmup_steps, steps.kl_warmup_epochs) == (200, None)
    message = _error("quickstart", ["objective.kl_warmup_steps=5"])  # the file already gives epochs
    assert "objective.kl_warmup_steps or objective.kl_warmup_epochs, not both (got 5 steps and 10.0 epochs)" \
        in message


def test_a_saved_config_of_the_previous_version_loads_without_the_other_kinds_keys():
    """genlab 0.1 stored every objective key of every kind; those had no effect and are dropped."""
    from genlab.config import validate_saved

    old = read_yaml(Path(__file__).parent / "fixtures" / "runs_v0_1" / "cgan" / "config.yaml")
    assert "beta" in old["objective"] and old["objective"]["kind"] == "adversarial"
    with pytest.raises(GenlabError, match="it belongs to objective.kind 'reconstruction'"):
        validate(old)  # as a config a user wrote, it would be refused
    cfg = validate_saved(old, "config.yaml")
    assert cfg.objective.kind == "adversarial" and cfg.objective.real_target == 0.9
    assert "beta" not in cfg.to_dict()["objective"]


# ------------------------------------------------------------------ resuming: which changes are allowed


def test_run_length_changes_are_compatible():
    saved = load("quickstart")
    new = load("quickstart", ["train.epochs=50", "train.max_steps=10", "train.progress=false",
                              "train.checkpoint_every_steps=7", "output.root=/elsewhere", "name=again"])
    assert incompatible_changes(saved, new) == []
    assert incompatible_changes(saved, saved) == []


@pytest.mark.parametrize(("overrides", "changed"), [
    (["model.latent_dim=3"], ["model.latent_dim"]),
    (["data.name=mnist"], ["data.name"]),
    (["model.batch_norm=false"], ["model.batch_norm"]),  # a key only one side has
    (["optim.lr=0.1", "data.image_size=28", "train.epochs=2"], ["data.image_size", "optim.lr"]),
    (["train.batch_size=8", "train.seed=1"], ["train.batch_size", "train.seed"]),
])
def test_changes_that_alter_the_computation_are_reported(overrides, changed):
    assert incompatible_changes(load("quickstart"), load("quickstart", overrides)) == changed


# ------------------------------------------------------------------ model registry


def _build_error(name, kwargs=None, image_size=32, channels=1) -> str:
    with pytest.raises(GenlabError) as info:
        build_model(name, kwargs or {}, image_size=image_size, channels=channels)
    return str(info.value)


def test_registry_holds_the_reconstruction_models():
    assert {"ae", "vae", "beta_vae", "res_vae"} <= set(MODELS)


def test_unknown_model_lists_registered_ones_with_a_suggestion():
    registered = ", ".join(sorted(MODELS))
    assert _build_error("vea") == f"unknown model 'vea'; did you mean 'vae'? Registered models: {registered}."
    assert _build_error("transformer") == f"unknown model 'transformer'. Registered models: {registered}."


def test_unknown_model_argument_suggests_the_closest():
    assert _build_error("vae", {"latent_dims": 3}) == (
        "model 'vae' has no argument 'latent_dims'; did you mean 'latent_dim'? Valid arguments: "
        "hidden_dims=(32, 64, 128), latent_dim=32, batch_norm=True, activation='leaky_relu', "
        "output_activation='tanh', prior='standard_normal', prior_components=10.")
    assert _build_error("ae", {"dropout": 0.1}) == (
        "model 'ae' has no argument 'dropout'. Valid arguments: hidden_dims=(32, 64, 128), latent_dim=128, "
        "batch_norm=False, activation='relu', output_activation='tanh'.")


def test_unknown_argument_from_a_config_is_caught_at_build_time():
    cfg = load("quickstart", ["model.latnt_dim=4"])  # the model section is open: the registry checks it
    assert _build_error(cfg.model.name, cfg.model.kwargs()).startswith(
        "model 'vae' has no argument 'latnt_dim'; did you mean 'latent_dim'? Valid arguments: ")


@pytest.mark.parametrize("key", ["image_size", "channels"])
def test_data_derived_arguments_are_refused_in_the_model_section(key):
    message = _build_error("vae", {key: 3})
    assert message.startswith(f"model.{key} is set by the data section (data.image_size, data.grayscale")
    assert message.endswith("; remove it from the model section.")


@pytest.mark.parametrize("image_size", [8, 16])
def test_image_too_small_for_the_architecture_gives_the_minimum(image_size):
    assert _build_error("beta_vae", image_size=image_size, channels=3) == (
        f"cannot build model 'beta_vae' at {image_size}x{image_size}x3 with its defaults: vae halves the image "
        f"5 times, so image_size must be at least 17 (got {image_size}); use a larger image_size or fewer hidden_dims.")


def test_the_stated_minimum_size_builds_and_round_trips():
    model = build_model("beta_vae", {"hidden_dims": [4, 4, 4, 4, 4], "latent_dim": 2}, image_size=17, channels=3)
    model.eval()
    with torch.no_grad():
        out = model.reconstruct(torch.zeros(2, 3, 17, 17))
    assert out.shape == (2, 3, 17, 17)


def test_bad_argument_value_is_a_genlab_error():
    assert _build_error("vae", {"activation": "swish"}) == (
        "cannot build model 'vae' at 32x32x1 with {'activation': 'swish'}: activation must be one of "
        "['leaky_relu', 'relu', 'silu', 'tanh'] (got 'swish').")


def test_a_bundled_name_resolves_to_the_packaged_file(tmp_path, monkeypatch):
    assert resolve_config_path("quickstart") == PACKAGED_CONFIGS / "quickstart.yaml"
    assert resolve_config_path("quickstart.yaml") == PACKAGED_CONFIGS / "quickstart.yaml"
    monkeypatch.chdir(tmp_path)  # a local file of that name wins over the bundled one
    (tmp_path / "quickstart").write_text("model: {name: ae}\ndata: {name: digits}\n")
    assert resolve_config_path("quickstart") == Path("quickstart")
    assert load("quickstart").model.name == "ae"


def test_a_saved_config_of_this_version_round_trips_unchanged():
    """Only a section written by genlab 0.1 (it has keys of other kinds) is migrated."""
    from genlab.config import validate_saved

    cfg = load("quickstart", ["objective.capacity_max=25", "objective.capacity_steps=10000"])
    again = validate_saved(cfg.to_dict(), "config.yaml")
    assert again == cfg and incompatible_changes(again, cfg) == []
    with pytest.raises(GenlabError, match="did you mean 'objective.beta'"):  # a typo is still reported
        validate_saved({**cfg.to_dict(), "objective": {"kind": "reconstruction", "bta": 2}}, "config.yaml")


def test_a_saved_use_test_split_that_genlab_0_1_ignored_is_cleared():
    from genlab.config import validate_saved

    saved = {**load("quickstart").to_dict()}
    saved["data"] = {**saved["data"], "use_test_split": True}
    assert validate_saved(saved, "config.yaml").data.use_test_split is False


def test_an_unknown_model_is_not_hidden_by_the_objective_section():
    cfg = load("quickstart", ["model.name=vea", "objective={beta: 2}"])  # validates; the model fails when built
    assert cfg.objective.kind == "reconstruction"
    with pytest.raises(GenlabError, match="unknown model 'vea'; did you mean 'vae'"):
        build_model(cfg.model.name, cfg.model.kwargs(), image_size=32, channels=1)
