"""Settings that do not fit together: each rule raised and not raised, the bundled configs, and `genlab train`."""

from __future__ import annotations

import contextlib
import io

import pytest

from genlab.cli import main
from genlab.config import PACKAGED_CONFIGS, load, packaged_configs
from genlab.consistency import check_consistency, range_fit
from genlab.errors import GenlabError
from genlab.training import train
from helpers import tiny_config

GAN = {"model": {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4},
       "objective": {"kind": "adversarial"}}


def _notes(**sections) -> list[str]:
    return check_consistency(tiny_config(**sections))


def _only(notes: list[str], start: str) -> str:
    assert len(notes) == 1 and notes[0].startswith(start), notes
    return notes[0]


# ---------------------------------------------------------------- output activation vs data range


def test_range_fit_of_each_activation_and_normalisation():
    assert range_fit("tanh", "minus_one_one", 3).unreachable == 0 == range_fit("tanh", "minus_one_one", 3).wasted
    assert range_fit("sigmoid", "zero_one", 1).unreachable == 0 == range_fit("sigmoid", "zero_one", 1).wasted
    assert range_fit("tanh", "zero_one", 3).wasted == pytest.approx(0.5)
    assert range_fit("sigmoid", "minus_one_one", 1).unreachable == pytest.approx(0.5)
    imagenet = range_fit("tanh", "imagenet", 3)  # pixels x with |x - mean| < std: 2·std ≈ 0.45 of [0, 1]
    assert imagenet.unreachable == pytest.approx(1 - 2 * (0.229 + 0.224 + 0.225) / 3)
    assert imagenet.data_range == pytest.approx((-0.485 / 0.229, (1 - 0.406) / 0.225))
    assert range_fit("tanh", "imagenet", 1).unreachable == pytest.approx(imagenet.unreachable)


def test_tanh_with_imagenet_normalisation_warns_how_much_it_cannot_reach():
    note = _only(_notes(data={"normalize": "imagenet"}), "model.output_activation 'tanh' produces values in (-1, 1)")
    assert "data.normalize 'imagenet' puts pixels in [-1.99, 2.44]" in note  # 1-channel digits: gray statistics
    assert "cannot produce 55% of the pixel range" in note and "data.normalize: minus_one_one" in note


@pytest.mark.parametrize("normalize", ["minus_one_one", "imagenet"])
def test_sigmoid_with_data_below_zero_is_an_error(normalize):
    cfg = tiny_config(model={"output_activation": "sigmoid"}, data={"normalize": normalize})
    with pytest.raises(GenlabError, match=rf"model.output_activation 'sigmoid' produces values in \(0, 1\), but "
                                          rf"data.normalize '{normalize}'.*Set data.normalize: zero_one"):
        check_consistency(cfg)


def test_tanh_with_zero_one_warns_about_the_wasted_half():
    note = _only(_notes(data={"normalize": "zero_one"}), "model.output_activation 'tanh'")
    assert "puts pixels in [0.00, 1.00]: 50% of its output range is never a pixel value" in note


@pytest.mark.parametrize("activation,normalize", [("tanh", "minus_one_one"), ("sigmoid", "zero_one"),
                                                  ("none", "imagenet"), ("none", "zero_one")])
def test_matching_or_unbounded_outputs_pass(activation, normalize):
    assert _notes(model={"output_activation": activation}, data={"normalize": normalize}) == []


def test_the_autoencoder_is_checked_and_gan_generators_by_their_fixed_tanh():
    _only(_notes(model={"name": "ae"}, data={"normalize": "imagenet"}), "model.output_activation 'tanh'")
    note = _only(_notes(**GAN, data={"normalize": "zero_one"}), "the cgan generator's fixed Tanh output produces")
    assert "Use data.normalize: minus_one_one." in note
    assert _notes(**GAN) == []


# ---------------------------------------------------------------- reduction and the meaning of beta


def test_pixel_mean_reduction_with_a_kl_gives_the_per_image_beta():
    note = _only(_notes(objective={"reduction": "mean", "beta": 4.0, "kld_weight": 0.5}), "objective.reduction 'mean'")
    assert "C·H·W = 1·12·12 = 144" in note and "beta · kld_weight = 4 · 0.5 = 2 says" in note
    assert "this is beta = 288." in note and "Higgins et al. 2017" in note


def test_pixel_mean_reduction_weighs_the_kl_even_at_beta_one():
    assert "this is beta = 144." in _only(_notes(objective={"reduction": "mean"}), "objective.reduction 'mean'")


def test_no_reduction_warning_where_beta_means_what_it_says():
    assert _notes(objective={"reduction": "sum", "beta": 10.0}) == []
    assert _notes(model={"name": "ae"}, objective={"reduction": "mean"}) == []  # no KL term
    assert _notes(objective={"reduction": "mean", "kld_weight": 1 / 144}) == []  # the textbook VAE divided by 144


def test_capacity_mode_names_gamma():
    note = _only(_notes(objective={"reduction": "mean", "capacity_max": 5.0, "gamma": 100.0}), "objective.reduction")
    assert "objective.gamma = 100 says" in note and "gamma = 1.44e+04" in note


# ---------------------------------------------------------------- learning rates


@pytest.mark.parametrize("name,lr,warns", [("adam", 0.05, True), ("adam", 1e-7, True), ("adam", 0.01, False),
                                           ("adamw", 1e-6, False), ("sgd", 0.5, False), ("sgd", 2.0, True),
                                           ("sgd", 1e-6, True)])
def test_learning_rate_outside_the_usual_range_for_the_optimiser(name, lr, warns):
    notes = _notes(optim={"name": name, "lr": lr})
    if not warns:
        assert notes == []
        return
    low, high = {"adam": ("1e-06", "0.01"), "adamw": ("1e-06", "0.01"), "sgd": ("1e-05", "1")}[name]
    note = _only(notes, f"optim.lr = {lr:g} is far outside the usual range for optim.name {name!r} ({low} to {high})")
    assert ("diverge" if lr > float(high) else "barely move") in note


def test_gan_learning_rates_are_checked_where_they_are_used():
    _only(_notes(**GAN, optim={"lr_d": 0.1}), "optim.lr_d = 0.1 is far outside")
    _only(_notes(**GAN, optim={"lr": 0.1, "lr_d": 2e-4}), "optim.lr = 0.1")  # lr is still G's rate
    assert _notes(**GAN, optim={"lr": 0.1, "lr_g": 1e-4, "lr_d": 2e-4}) == []  # lr unused
    assert _notes(optim={"lr": 0.001, "lr_d": 0.5}) == []  # a VAE ignores lr_d


# ---------------------------------------------------------------- bundled configs and genlab train


def test_the_beta_vae_experiment_gets_the_range_and_reduction_warnings_and_quickstart_none():
    notes = check_consistency(load("betavae_cats"))
    assert len(notes) == 2
    assert notes[0].startswith("model.output_activation 'tanh'") and "data.normalize 'imagenet'" in notes[0]
    assert notes[1].startswith("objective.reduction 'mean'") and "this is beta = 307.2" in notes[1]
    assert check_consistency(load("quickstart")) == []


@pytest.mark.parametrize("name", packaged_configs())
def test_a_bundled_config_that_gets_a_warning_says_so_next_to_the_setting(name):
    notes = check_consistency(load(name))  # never an error
    lines = (PACKAGED_CONFIGS / f"{name}.yaml").read_text().splitlines()
    flagged = {"output_activation", "normalize"} if any("data.normalize" in n for n in notes) else set()
    flagged |= {"reduction"} if any(n.startswith("objective.reduction") for n in notes) else set()
    found = [line for key in flagged for line in lines if line.strip().startswith(f"{key}:")]
    assert bool(found) == bool(flagged), (name, flagged)  # a flagged setting is set in the file itself
    for line in found:  # and every one carries the comment
        assert "the original's, kept on purpose; genlab warns about it" in line, (name, line)
    assert not notes or any("genlab warns about it" in line for line in lines), name


def test_train_refuses_settings_that_cannot_work_before_making_the_run_folder(tmp_path):
    with pytest.raises(GenlabError, match="'sigmoid'"):
        train(tiny_config(model={"output_activation": "sigmoid"}), out=tmp_path)
    assert not (tmp_path / "tiny").exists()


def test_genlab_train_echoes_warnings_before_it_starts_in_the_log_and_in_the_summary(tmp_path):
    stdout, stderr = io.StringIO(), io.StringIO()
    tiny = ["objective.reduction=mean", "data.limit=64", "data.val_limit=16", "train.batch_size=16",
            "train.max_steps=1", "train.progress=false", "train.figures=false", "train.epoch_samples=false"]
    argv = ["train", "quickstart", "--out", str(tmp_path), *(a for s in tiny for a in ("--set", s))]
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        assert main(argv) == 0, stderr.getvalue()
    first = stderr.getvalue().splitlines()[0]
    assert first.startswith("config: objective.reduction 'mean' averages"), first  # before the run starts
    assert "WARNING genlab: config: objective.reduction 'mean'" in (tmp_path / "quickstart" / "train.log").read_text()
    summary = stdout.getvalue()
    assert "\nwarning:      objective.reduction 'mean' averages" in summary
    assert "this is beta = 1024." in " ".join(summary.split())  # 1·32·32 pixels, beta 1
