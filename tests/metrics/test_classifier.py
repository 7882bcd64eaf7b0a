"""Domain classifier: training, determinism, the hash-checked cache, Fréchet features and class accuracy.

Everything runs on sklearn's digits at 12 px with a narrow network (a second or two per training); one
classifier is trained per module and shared by the tests that only read it.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import genlab.metrics.classifier.training as training_mod
from genlab.config import DataConfig
from genlab.data import Normalizer, load_data
from genlab.errors import GenlabError
from genlab.io import sha256_of
from genlab.metrics.class_accuracy import class_accuracy
from genlab.metrics.classifier import (
    DomainClassifier,
    cache_key,
    cache_paths,
    dataset_slug,
    get_classifier,
    make_recipe,
    train_classifier,
)
from genlab.metrics.frechet import frechet_distance, gaussian_stats
from genlab.models.gan import cgan, dcgan
from genlab.paths import classifiers_dir

DIGITS = DataConfig.model_validate({"name": "digits", "image_size": 12})
TINY = {"epochs": 1, "min_steps": 60, "batch_size": 64, "width": 8, "feature_dim": 32}


def fd(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(a), *gaussian_stats(b))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These networks are tiny: a second thread only adds synchronisation (and a busy machine makes it worse)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return load_data(DIGITS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> DomainClassifier:
    """One classifier for the read-only tests, cached in a module folder (the per-test cache is fresh)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENLAB_CACHE", str(tmp_path_factory.mktemp("module-cache")))
        return get_classifier(DIGITS, **TINY)


def copy_into_cache(clf: DomainClassifier) -> Path:
    """Put the module classifier's two files where get_classifier looks in this test's private cache."""
    weights, meta = cache_paths(DIGITS, make_recipe(**TINY))
    weights.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(clf.weights_path, weights)
    shutil.copy(clf.weights_path.with_suffix(".json"), meta)
    return weights


class FakeConditional:
    """A 'generator' that returns held-out digit images of class (requested + offset) mod 10, normalised."""

    conditional = True

    def __init__(self, images: np.ndarray, labels: np.ndarray, offset: int = 0, num_classes: int = 10):
        self.num_classes = num_classes
        self.offset = offset
        self.pool = {c: torch.from_numpy(images[labels == c]) for c in range(10)}
        self.norm = Normalizer("minus_one_one", images.shape[-1])

    def sample(self, n, generator=None, labels=None):
        out = []
        for c in labels.tolist():
            pool = self.pool[(c + self.offset) % 10]
            out.append(pool[torch.randint(len(pool), (1,), generator=generator)])
        return self.norm(torch.cat(out).permute(0, 3, 1, 2))


# ---------------------------------------------------------------- training


def test_training_reaches_a_sensible_held_out_accuracy(trained, digits):
    assert trained.test_accuracy > 0.85
    # the recorded accuracy is the one on the held-out split, recomputed here from predictions
    assert np.mean(trained.predict(digits.val.images) == digits.val.labels) == pytest.approx(trained.test_accuracy)
    assert trained.meta["n_test"] == len(digits.val) and trained.meta["n_train"] == len(digits.train)


def test_training_is_deterministic_per_seed_and_leaves_the_global_rng_alone():
    quick = {**TINY, "min_steps": 8}
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a, _ = train_classifier(DIGITS, seed=0, **quick)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's RNG stream is untouched
    b, _ = train_classifier(DIGITS, seed=0, **quick)
    c, _ = train_classifier(DIGITS, seed=1, **quick)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_data_without_labels_is_refused_with_the_labelled_sets_named(tmp_path):
    with pytest.raises(GenlabError, match=r"no labels \(data.labels is false\).*fashion_mnist, mnist"):
        train_classifier(DIGITS.model_copy(update={"labels": False}), **TINY)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "faces.npz", images=rng.integers(0, 256, (40, 12, 12), dtype=np.uint8))
    cfg = DataConfig.model_validate({"name": "npz", "root": str(tmp_path / "faces.npz"), "image_size": 12})
    with pytest.raises(GenlabError, match="'npz'.*has no labels.*Labelled sets"):
        get_classifier(cfg, **TINY)
    assert not classifiers_dir().exists() or not any(classifiers_dir().iterdir())


def test_unknown_or_invalid_recipe_options_are_refused():
    with pytest.raises(GenlabError, match="unknown classifier recipe option.*epoch_count.*valid: batch_size"):
        get_classifier(DIGITS, epoch_count=3)
    with pytest.raises(GenlabError, match="lr=0"):
        make_recipe(lr=0)


# ---------------------------------------------------------------- cache


def test_cache_is_written_once_then_reused(genlab_log, monkeypatch):
    genlab_log.set_level(logging.INFO, logger="genlab.metrics")
    first = get_classifier(DIGITS, **TINY)
    weights = first.weights_path
    assert weights.parent == classifiers_dir()
    assert re.fullmatch(r"digits-12px-[0-9a-f]{12}\.safetensors", weights.name)
    assert "training the digits domain classifier" in genlab_log.text and str(weights) in genlab_log.text
    meta = json.loads(weights.with_suffix(".json").read_text())
    assert meta["weights_sha256"] == sha256_of(weights)
    assert meta["test_accuracy"] == first.test_accuracy and meta["class_names"] == [str(i) for i in range(10)]
    assert meta["created_with"].startswith("genlab ") and meta["recipe"]["width"] == TINY["width"]
    assert not list(weights.parent.glob("*.tmp"))

    def no_training(*args, **kwargs):
        raise AssertionError("get_classifier retrained although the cache holds the classifier")

    monkeypatch.setattr(training_mod, "train_classifier", no_training)
    mtime = weights.stat().st_mtime_ns
    second = get_classifier(DIGITS, **TINY)
    assert weights.stat().st_mtime_ns == mtime
    images = load_data(DIGITS).val.images[:50]
    np.testing.assert_array_equal(first.features(images), second.features(images))
    # a different recipe is a different file: it must train (and here hits the stub)
    with pytest.raises(AssertionError, match="retrained"):
        get_classifier(DIGITS, **{**TINY, "seed": 1})


def test_a_flipped_byte_in_the_weights_is_caught(trained):
    weights = copy_into_cache(trained)
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01
    weights.write_bytes(bytes(data))
    with pytest.raises(GenlabError, match=r"corrupt: SHA-256 .*Delete both files") as err:
        get_classifier(DIGITS, **TINY)
    assert str(weights) in str(err.value)


def test_an_unreadable_record_is_a_genlab_error(trained):
    weights = copy_into_cache(trained)
    weights.with_suffix(".json").write_text("{not json")
    with pytest.raises(GenlabError, match=r"cannot read the classifier record .*\.json"):
        get_classifier(DIGITS, **TINY)


def test_copied_cache_files_load_without_training(trained, monkeypatch):
    copy_into_cache(trained)
    monkeypatch.setattr(training_mod, "train_classifier", lambda *a, **k: pytest.fail("trained"))
    assert get_classifier(DIGITS, **TINY).identity() == trained.identity()


def test_missing_classifier_without_training_names_the_expected_file():
    weights, _ = cache_paths(DIGITS, make_recipe(**TINY))
    with pytest.raises(GenlabError, match="no trained classifier") as err:
        get_classifier(DIGITS, train_if_missing=False, **TINY)
    assert str(weights) in str(err.value)


def test_cache_key_follows_images_and_recipe_not_run_settings():
    rec = make_recipe(**TINY)
    base = cache_key(DIGITS, rec)
    # how a run uses the data does not change the classifier
    for update in ({"limit": 100}, {"val_limit": 10}, {"hflip": True}, {"normalize": "zero_one"},
                   {"grayscale": True}):
        assert cache_key(DIGITS.model_copy(update=update), rec) == base, update
    # what the images and labels are, and how the network is trained, does
    for update in ({"image_size": 16}, {"split_seed": 1}, {"val_fraction": 0.5}, {"grayscale": False}):
        assert cache_key(DIGITS.model_copy(update=update), rec) != base, update
    assert cache_key(DIGITS, make_recipe(**{**TINY, "lr": 0.02})) != base
    mnist = DataConfig.model_validate({"name": "mnist", "root": "mnist", "image_size": 28})
    # MNIST always uses the official test split, wherever its files are
    assert cache_key(mnist, rec) == cache_key(mnist.model_copy(update={"root": "/elsewhere/MNIST",
                                                                        "use_test_split": True,
                                                                        "split_seed": 4}), rec)


def test_names_come_from_the_data_set_or_its_folder():
    assert dataset_slug(DataConfig.model_validate({"name": "fashion_mnist", "root": "fm"})) == "fashion-mnist"
    assert dataset_slug(DataConfig.model_validate({"name": "image_folder", "root": "/d/Stanford Cars/"})) \
        == "stanford-cars"
    assert dataset_slug(DataConfig.model_validate({"name": "npz", "root": "x/My_Shapes.npz"})) == "my-shapes"
    weights, meta = cache_paths(DataConfig.model_validate({"name": "mnist", "root": "m", "image_size": 28}),
                                make_recipe())
    assert weights.name.startswith("mnist-28px-") and meta.suffix == ".json"


# ---------------------------------------------------------------- features


def test_identity_describes_the_extractor(trained):
    ident = trained.identity()
    assert trained.name == ident["name"] == "FD-digits-classifier"
    assert ident["weights"] == trained.weights_path.name
    assert ident["weights_sha256"] == sha256_of(trained.weights_path)
    assert (ident["input_size"], ident["input_channels"], ident["feature_dim"]) == (12, 1, TINY["feature_dim"])
    assert ident["test_accuracy"] == trained.test_accuracy and "(x - 0.5) / 0.5" in ident["preprocessing"]


def test_frechet_distance_in_feature_space_separates_classes(trained, digits):
    images, labels = digits.train.images, digits.train.labels
    zeros, ones = images[labels == 0], images[labels == 1]
    f0 = trained.features(zeros)
    assert f0.shape == (len(zeros), TINY["feature_dim"]) and f0.dtype == np.float64
    assert abs(fd(f0, trained.features(zeros.copy()))) < 1e-6
    between = fd(f0, trained.features(ones))
    rng = np.random.default_rng(0)
    mixed = images[rng.permutation(len(images))]
    within = fd(trained.features(mixed[: len(mixed) // 2]), trained.features(mixed[len(mixed) // 2:]))
    assert between > 1.0 and between > 10 * within


def test_predictions_and_features_refuse_images_of_another_shape_or_type(trained, digits):
    good = digits.val.images[:4]
    assert trained.predict(good).dtype == np.int64
    for bad in (np.zeros((4, 16, 16, 1), np.uint8), np.zeros((4, 12, 12, 3), np.uint8), good.astype(np.float32),
                good[..., 0]):
        with pytest.raises(GenlabError, match=r"takes uint8 images of shape \(N, 12, 12, 1\)"):
            trained.features(bad)
    with pytest.raises(GenlabError, match=r"shape \(4, 16, 16, 1\)"):
        trained.predict(np.zeros((4, 16, 16, 1), np.uint8))


# ---------------------------------------------------------------- class accuracy


def test_class_accuracy_is_high_for_faithful_and_low_for_shifted_classes(trained, digits):
    norm = Normalizer("minus_one_one", 1)
    faithful = class_accuracy(trained, FakeConditional(digits.val.images, digits.val.labels), norm,
                              per_class=30, seed=0)
    shifted = class_accuracy(trained, FakeConditional(digits.val.images, digits.val.labels, offset=1), norm,
                             per_class=30, seed=0)
    assert faithful["class_accuracy_mean"] > 0.8
    assert shifted["class_accuracy_mean"] < 0.2
    assert set(faithful["class_accuracy"]) == {str(i) for i in range(10)}
    assert faithful["class_accuracy_mean"] == pytest.approx(np.mean(list(faithful["class_accuracy"].values())))
    assert faithful["worst_class_accuracy"] == min(faithful["class_accuracy"].values())
    assert faithful["class_accuracy"][faithful["worst_class"]] == faithful["worst_class_accuracy"]
    assert faithful["n_per_class"] == 30 and faithful["classifier"] == trained.identity()
    assert "FD-digits-classifier" in faithful["protocol"]
    again = class_accuracy(trained, FakeConditional(digits.val.images, digits.val.labels), norm, per_class=30,
                           seed=0, batch_size=7)
    assert again["class_accuracy"] == faithful["class_accuracy"]  # same draws whatever the batch size


def test_class_accuracy_refuses_models_it_cannot_judge(trained, digits):
    norm = Normalizer("minus_one_one", 1)
    unconditional = FakeConditional(digits.val.images, digits.val.labels)
    unconditional.conditional = False
    with pytest.raises(GenlabError, match="class-conditional"):
        class_accuracy(trained, unconditional, norm, per_class=2)
    with pytest.raises(GenlabError, match="generates 7 classes but FD-digits-classifier.*knows 10"):
        class_accuracy(trained, FakeConditional(digits.val.images, digits.val.labels, num_classes=7), norm,
                       per_class=2)
    big = load_data(DIGITS.model_copy(update={"image_size": 16})).val
    with pytest.raises(GenlabError, match=r"\(N, 12, 12, 1\).*shape \(2, 16, 16, 1\)"):
        class_accuracy(trained, FakeConditional(big.images, big.labels), norm, per_class=2)


def test_class_accuracy_drives_a_real_conditional_gan_and_restores_its_mode(trained):
    model = cgan(image_size=12, channels=1, num_classes=10, latent_dim=8, g_width=8, d_width=8, label_dim=4)
    model.train()
    out = class_accuracy(trained, model, Normalizer("minus_one_one", 1), per_class=3, seed=0)
    assert model.training  # evaluated in eval mode, handed back as it came
    assert len(out["class_accuracy"]) == 10 and all(0.0 <= v <= 1.0 for v in out["class_accuracy"].values())
    again = class_accuracy(trained, model, Normalizer("minus_one_one", 1), per_class=3, seed=0)
    assert again["class_accuracy"] == out["class_accuracy"]
    plain = dcgan(image_size=16, channels=1, g_width=4, d_width=4, latent_dim=4)
    with pytest.raises(GenlabError, match="class-conditional"):
        class_accuracy(trained, plain, Normalizer("minus_one_one", 1), per_class=2)
