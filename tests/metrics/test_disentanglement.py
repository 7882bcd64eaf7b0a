"""MIG, FactorVAE score and DCI: a factorised code scores high, entangled and random codes score low.

As in disentanglement_lib's own tests, the "perfect" representation is scored on a sampler whose
observations are the factors themselves (so the code can be exactly factorised), while the random
representation sees real rendered shapes. Sample counts are small so the file runs in seconds.
"""

from __future__ import annotations

import numpy as np
import pytest

from genlab.data.shapes import FACTOR_NAMES, ShapesSampler
from genlab.metrics.disentanglement import (
    dci,
    dci_from_importance,
    factor_vae_score,
    histogram_discretize,
    mig,
    mig_from_codes,
)


class FactorsAsObservations(ShapesSampler):
    """Observations are the factor indices (float): lets a test write a representation of the truth."""

    def observe(self, factors: np.ndarray) -> np.ndarray:
        return factors.astype(np.float64)


def factorised(x: np.ndarray) -> np.ndarray:
    """One dimension per factor, permuted and rescaled (the metrics must not care), plus a noise-free
    constant dimension that carries nothing."""
    scales = np.array([3.0, 0.5, 0.1, 2.0, 1.0])
    codes = x[:, [2, 0, 4, 1, 3]] * scales[[2, 0, 4, 1, 3]]
    return np.concatenate([codes, np.zeros((len(x), 1))], axis=1)


def entangled(x: np.ndarray) -> np.ndarray:
    """The same information, every dimension a mix of all factors (a random rotation of the standardised factors)."""
    sizes = np.array(ShapesSampler.factor_sizes, dtype=float)
    z = (x - (sizes - 1) / 2) / sizes
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))
    return z @ q


def random_projection(dim: int = 10, seed: int = 0):
    """A fixed random linear map of the pixels: an encoder that learned nothing."""
    w = np.random.default_rng(seed).normal(size=(64 * 64, dim)) / 64.0

    def represent(images: np.ndarray) -> np.ndarray:
        return (images.reshape(len(images), -1) / 255.0) @ w

    return represent


def centroid_encoder(images: np.ndarray) -> np.ndarray:
    """Reads position off real images (column and row centroid) plus the pixel count: pos_x / pos_y are
    each captured by exactly one dimension."""
    mask = images[..., 0] > 0
    area = mask.sum(axis=(1, 2))
    grid = np.arange(64)
    cols = (mask.sum(axis=1) * grid).sum(1) / area
    rows = (mask.sum(axis=2) * grid).sum(1) / area
    return np.stack([cols, rows, np.sqrt(area)], axis=1)


# ---------------------------------------------------------------- MIG


def test_histogram_discretize_bins_each_dimension_over_its_range():
    codes = np.stack([np.linspace(0, 1, 100), np.linspace(-500, 500, 100)], axis=1)
    disc = histogram_discretize(codes, bins=10)
    assert disc.min() == 1 and disc.max() == 10
    assert np.array_equal(disc[:, 0], disc[:, 1])  # scale and offset do not matter
    assert np.bincount(disc[:, 0])[1:].tolist() == [10] * 10


def test_mig_of_known_codes():
    rng = np.random.default_rng(0)
    factors = rng.integers(0, 4, size=(4000, 2))
    # dim 0 copies factor 0; dim 1 copies factor 0 as well; dim 2 copies factor 1.
    codes = np.stack([factors[:, 0], factors[:, 0], factors[:, 1]], axis=1).astype(float)
    result = mig_from_codes(codes, factors, bins=4)
    assert result["mutual_info"].shape == (3, 2)
    np.testing.assert_allclose(result["gaps"], [0.0, 1.0], atol=0.01)  # factor 0 is split over two dims
    np.testing.assert_allclose(result["entropy"], np.log(4), atol=0.01)
    assert result["mig"] == pytest.approx(0.5, abs=0.01)


def test_mig_factorised_high_entangled_and_random_low():
    perfect = mig(factorised, FactorsAsObservations(), n=3000, seed=1)
    mixed = mig(entangled, FactorsAsObservations(), n=3000, seed=1)
    random = mig(random_projection(), ShapesSampler(), n=1000, seed=1)
    assert perfect["mig"] > 0.8
    # Discrete factors with fewer values than bins are captured exactly; 32 or 40 values share 20 bins.
    assert perfect["mig_gap_shape"] > 0.95 and perfect["mig_gap_scale"] > 0.95
    assert mixed["mig"] < 0.4
    assert random["mig"] < 0.1
    assert set(perfect) >= {"mig", "n_samples", "bins", "batch_size", "seed", "protocol"}
    assert [k for k in perfect if k.startswith("mig_gap_")] == [f"mig_gap_{n}" for n in FACTOR_NAMES]
    assert (perfect["n_samples"], perfect["bins"], perfect["seed"]) == (3000, 20, 1)


def test_mig_on_rendered_shapes_finds_position():
    result = mig(centroid_encoder, ShapesSampler(), n=1500, seed=0)
    baseline = mig(random_projection(3), ShapesSampler(), n=1500, seed=0)
    assert result["mig_gap_pos_x"] > 0.5 and result["mig_gap_pos_y"] > 0.5
    assert baseline["mig_gap_pos_x"] < 0.2 and baseline["mig_gap_pos_y"] < 0.2


def test_mig_is_seeded():
    a = mig(entangled, FactorsAsObservations(), n=500, seed=3)
    assert a == mig(entangled, FactorsAsObservations(), n=500, seed=3)
    assert a["mig"] != mig(entangled, FactorsAsObservations(), n=500, seed=4)["mig"]


def test_metrics_reject_bad_representations():
    with pytest.raises(ValueError, match="shape"):
        mig(lambda x: x.reshape(-1), FactorsAsObservations(), n=50)
    with pytest.raises(ValueError, match="non-finite"):
        mig(lambda x: np.full((len(x), 2), np.nan), FactorsAsObservations(), n=50)


# ---------------------------------------------------------------- FactorVAE


def test_factor_vae_factorised_perfect_random_low():
    kw = {"n_train": 150, "n_eval": 100, "n_variance": 1000, "seed": 0}
    perfect = factor_vae_score(factorised, FactorsAsObservations(), **kw)
    mixed = factor_vae_score(entangled, FactorsAsObservations(), **kw)
    random = factor_vae_score(random_projection(), ShapesSampler(), n_train=60, n_eval=40, n_variance=500, seed=0)
    assert perfect["factor_vae_score"] > 0.99 and perfect["factor_vae_train_accuracy"] > 0.99
    assert perfect["n_active_dims"] == 5  # the constant dimension is pruned
    # The majority vote only asks which dimension loses most variance, so a rotation of the factors keeps
    # much of the score (0.79 here); it must still lose to the factorised code.
    assert mixed["factor_vae_score"] < 0.9
    assert random["factor_vae_score"] < 0.5
    assert perfect["n_train_votes"] == 150 and perfect["n_vote_batch"] == 64
    assert perfect["n_encodings"] == 250 * 64 + 1000
    assert perfect["threshold"] == 0.05 and "disentanglement_lib" in perfect["protocol"]


def test_factor_vae_prunes_by_standard_deviation():
    # std 0.06 passes disentanglement_lib's threshold of 0.05 on the standard deviation (variance 0.0036).
    small = factor_vae_score(lambda x: 0.06 * factorised(x) / factorised(x).std(0).clip(1e-12),
                             FactorsAsObservations(), n_train=20, n_eval=20, n_variance=2000, seed=0)
    assert small["n_active_dims"] == 5 and small["factor_vae_score"] > 0.9


def test_factor_vae_without_active_dims_scores_zero():
    result = factor_vae_score(lambda x: np.zeros((len(x), 3)), FactorsAsObservations(), n_train=5, n_eval=5,
                              n_variance=100)
    assert result["factor_vae_score"] == 0.0 and result["n_active_dims"] == 0
    assert "pruned" in result["note"]


def test_factor_vae_does_not_depend_on_encoding_batch():
    kw = {"n_train": 30, "n_eval": 20, "n_variance": 300, "seed": 2}
    a = factor_vae_score(entangled, FactorsAsObservations(), batch_size=64, **kw)
    b = factor_vae_score(entangled, FactorsAsObservations(), batch_size=5000, **kw)
    assert a["factor_vae_score"] == b["factor_vae_score"]
    assert a["factor_vae_train_accuracy"] == b["factor_vae_train_accuracy"]


# ---------------------------------------------------------------- DCI


def test_dci_from_importance_extremes():
    d, c = dci_from_importance(np.eye(4))
    assert d == pytest.approx(1.0) and c == pytest.approx(1.0)
    d, c = dci_from_importance(np.full((4, 4), 0.25))
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(0.0, abs=1e-6)
    # One dimension used for all factors: complete (each factor in one dimension) but not disentangled.
    one = np.zeros((4, 4))
    one[0] = 1.0
    d, c = dci_from_importance(one)
    assert d == pytest.approx(0.0, abs=1e-6) and c == pytest.approx(1.0)
    # A dimension no classifier uses (a collapsed latent) carries no weight: still perfectly disentangled,
    # as in disentanglement_lib (an unweighted mean over dimensions would give 2/3).
    d, c = dci_from_importance(np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    assert d == pytest.approx(1.0) and c == pytest.approx(1.0)
    # By hand: rows weighted by their share of importance (0.45, 0.55), columns by theirs (0.5, 0.5).
    d, c = dci_from_importance(np.array([[0.9, 0.0], [0.1, 1.0], [0.0, 0.0]]))
    h_row1 = -(1 / 11 * np.log2(1 / 11) + 10 / 11 * np.log2(10 / 11))
    h_col0 = -(0.9 * np.log(0.9) + 0.1 * np.log(0.1)) / np.log(3)
    assert d == pytest.approx(0.45 * 1.0 + 0.55 * (1 - h_row1), abs=1e-6)
    assert c == pytest.approx(0.5 * (1 - h_col0) + 0.5 * 1.0, abs=1e-6)


class TinyGrid:
    """Three factors of 2, 3 and 4 values observed as themselves: few classes keep the boosted trees cheap."""

    factor_names = ("a", "b", "c")
    factor_sizes = (2, 3, 4)

    def sample_factors(self, n, rng=None):
        return np.stack([rng.integers(0, k, n) for k in self.factor_sizes], axis=1)

    def observe(self, factors):
        return factors.astype(np.float64)


def noise_code(x: np.ndarray) -> np.ndarray:
    """Codes that carry nothing about the factors: an encoder that learned nothing."""
    return np.random.default_rng(len(x) + int(x.sum())).normal(size=(len(x), 3))


def test_dci_factorised_high():
    result = dci(lambda x: x[:, ::-1] * [1.0, 5.0, 0.2], TinyGrid(), n_train=150, n_test=100, seed=0)
    assert result["dci_disentanglement"] > 0.9 and result["dci_completeness"] > 0.9
    assert result["dci_informativeness"] > 0.99 and result["dci_informativeness_train"] > 0.99
    assert [k for k in result if k.startswith("dci_accuracy_")] == ["dci_accuracy_a", "dci_accuracy_b",
                                                                   "dci_accuracy_c"]
    assert (result["n_train"], result["n_test"], result["seed"]) == (150, 100, 0)
    assert "GradientBoostingClassifier" in result["classifier"] and "disentanglement_lib" in result["protocol"]


def test_dci_noise_and_entangled_low():
    noise = dci(noise_code, TinyGrid(), n_train=150, n_test=100, seed=0)
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    mixed = dci(lambda x: (x - [0.5, 1.0, 1.5]) @ q, TinyGrid(), n_train=150, n_test=100, seed=0)
    assert noise["dci_disentanglement"] < 0.3 and noise["dci_completeness"] < 0.3
    assert noise["dci_informativeness"] < 0.6  # chance is (1/2 + 1/3 + 1/4) / 3 = 0.36
    assert noise["dci_informativeness_train"] > noise["dci_informativeness"] + 0.2  # trees overfit noise
    assert mixed["dci_disentanglement"] < 0.6
    assert mixed["dci_informativeness"] > 0.9  # the information is all there, just not one factor per dim


# ---------------------------------------------------------------- the two MIG estimators


class SmallGrid(FactorsAsObservations):
    """Factors with at most 20 values, so the 20-bin histogram loses nothing and both estimators can reach 1."""

    factor_sizes = (3, 6, 10, 8, 8)

    def sample_factors(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        rng = rng or np.random.default_rng(0)
        return np.stack([rng.integers(0, size, n) for size in self.factor_sizes], axis=1)


def _both_migs(represent_posterior, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    from genlab.metrics.disentanglement import mig_chen

    sampler = SmallGrid()
    dlib = mig(lambda obs: represent_posterior(obs)[:, :5], sampler, n=n, seed=seed)["mig"]
    chen = mig_chen(represent_posterior, sampler, n=n, seed=seed)["mig_chen"]
    return dlib, chen


def test_both_mig_variants_score_codes_that_are_the_factors_near_one():
    """Each dimension is one factor, with a posterior spread far below the spacing of its values."""
    dlib, chen = _both_migs(lambda obs: np.concatenate([obs, np.full(obs.shape, np.log(0.05 ** 2))], 1))
    assert dlib > 0.95 and chen > 0.9 and abs(dlib - chen) < 0.1, (dlib, chen)


def test_both_mig_variants_score_a_model_that_ignores_the_factors_near_zero():
    """A collapsed encoder: every posterior is (nearly) the prior, whatever the image."""
    rng = np.random.default_rng(1)
    dlib, chen = _both_migs(lambda obs: np.concatenate([0.01 * rng.normal(size=obs.shape), np.zeros(obs.shape)], 1))
    assert dlib < 0.05 and chen < 0.05, (dlib, chen)


def test_chen_mig_sees_the_posterior_spread_the_histogram_ignores():
    """Means that follow the factors but drown in their own noise: the histogram of means calls that
    disentangled, the posterior-based estimate does not. Why both variants are reported, named."""
    dlib, chen = _both_migs(lambda obs: np.concatenate([obs, np.full(obs.shape, np.log(30.0 ** 2))], 1))
    assert dlib > 0.95 and chen < 0.2, (dlib, chen)


def test_mig_entries_name_their_variant():
    from genlab.metrics.disentanglement import mig_chen

    sampler = SmallGrid()
    a = mig(lambda obs: obs, sampler, n=200)
    b = mig_chen(lambda obs: np.concatenate([obs, np.zeros(obs.shape)], 1), sampler, n=200)
    assert a["variant"].startswith("disentanglement_lib") and b["variant"].startswith("Chen et al. 2018")
