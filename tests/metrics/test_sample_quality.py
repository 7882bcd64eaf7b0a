"""Distribution scores against closed forms and known behaviour, on synthetic feature sets."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.errors import GenlabError
from genlab.metrics.frechet import frechet_distance, gaussian_stats
from genlab.metrics.sample_quality import frechet, kid, precision_recall


def test_frechet_of_identical_sets_is_zero():
    f = np.random.default_rng(0).normal(size=(500, 16))
    assert abs(frechet(f, f.copy())) < 1e-8


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    # commuting covariances: Tr(S1 + S2 - 2 sqrt(S1 S2)) = sum (sqrt(a) - sqrt(b))^2
    expected = 1.0 + 0.0 + 4.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_matches_closed_form_for_rotated_gaussians():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 1.0, 2.0, 0.5])
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T  # same eigenvectors, so they commute
    mu = np.zeros(4)
    expected = float(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, abs=1e-8)


def test_frechet_distance_matches_the_symmetric_form_for_non_commuting_covariances():
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
    s1, s2 = a @ a.T + np.eye(5), b @ b.T + 0.5 * np.eye(5)
    assert not np.allclose(s1 @ s2, s2 @ s1)

    def sqrt_psd(m):
        w, v = np.linalg.eigh(m)
        return (v * np.sqrt(np.clip(w, 0, None))) @ v.T

    root = sqrt_psd(s1)
    expected = np.trace(s1) + np.trace(s2) - 2 * np.trace(sqrt_psd(root @ s2 @ root))  # Tr((S1^½ S2 S1^½)^½)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected + np.sum((mu1 - mu2) ** 2), rel=1e-8)


def test_frechet_of_samples_approaches_the_population_value():
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 1.0, size=(20000, 2))
    y = rng.normal([3.0, 0.0], [2.0, 1.0], size=(20000, 2))
    expected = 9.0 + (1 - 2) ** 2  # mean shift 3 in x, std 1 -> 2 in x
    assert frechet(x, y) == pytest.approx(expected, rel=0.05)
    assert frechet(x, y) == pytest.approx(frechet_distance(*gaussian_stats(x), *gaussian_stats(y)))


def test_frechet_needs_more_samples_than_dimensions():
    f = np.zeros((64, 64))
    with pytest.raises(GenlabError, match="at least 65 real and 65 generated"):
        frechet(f, f)


def test_kid_is_unbiased_for_one_distribution():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    mean, std = kid(real, fake, subsets=300, subset_size=20, seed=0)
    # A biased (V-statistic) estimate with m = 20 would sit near +E[k(x,x)]/m, far above this band.
    assert abs(mean) < 4 * std / np.sqrt(300)
    shifted_mean, _ = kid(real, fake + 1.0, subsets=50, subset_size=20, seed=0)
    assert shifted_mean > 10 * std


def test_kid_matches_the_textbook_unbiased_mmd():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 5)), rng.normal(0.5, 1.0, size=(30, 5))
    k = lambda a, b: (a @ b.T / 5 + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    m = len(x)
    expected = ((kxx.sum() - np.trace(kxx)) + (kyy.sum() - np.trace(kyy))) / (m * (m - 1)) - 2 * kxy.mean()
    mean, std = kid(x, y, subsets=3, subset_size=30, seed=0)  # a subset of all 30 is the whole set
    assert mean == pytest.approx(expected, rel=1e-9) and std == pytest.approx(0.0, abs=1e-12)


def test_kid_names_the_minimum_sample_count():
    f = np.zeros((50, 4))
    with pytest.raises(GenlabError, match="at least 100 real and 100 generated"):
        kid(f, f, subset_size=100)
    with pytest.raises(GenlabError, match="at least 2"):
        kid(f, f, subset_size=1)


def test_precision_recall_of_identical_and_disjoint_sets():
    rng = np.random.default_rng(5)
    real = rng.normal(size=(300, 4))
    assert precision_recall(real, real.copy()) == (1.0, 1.0)
    assert precision_recall(real, real + 100.0) == (0.0, 0.0)


def test_precision_recall_tell_mode_collapse_from_noise():
    rng = np.random.default_rng(6)
    real = np.concatenate([rng.normal(-5, 1, size=(200, 2)), rng.normal(5, 1, size=(200, 2))])
    collapsed = rng.normal(-5, 1, size=(400, 2))  # every sample real-looking, half the modes missing
    p, r = precision_recall(real, collapsed)
    assert p > 0.9 and 0.3 < r < 0.7
    noisy = rng.normal(0, 6, size=(400, 2))  # covers everything, mostly off the data
    p2, r2 = precision_recall(real, noisy)
    assert p2 < 0.5 and r2 > 0.8


def test_precision_recall_do_not_depend_on_the_chunk_size():
    rng = np.random.default_rng(7)
    real, fake = rng.normal(size=(257, 3)), rng.normal(0.3, 1.2, size=(190, 3))
    assert precision_recall(real, fake, chunk=1024) == precision_recall(real, fake, chunk=17)


def test_mismatched_feature_widths_are_refused():
    with pytest.raises(GenlabError, match="one width"):
        precision_recall(np.zeros((10, 3)), np.zeros((10, 4)))


class _Extractor:
    def __init__(self, name: str):
        self.name = name

    def features(self, images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.float64)

    def identity(self) -> dict:
        return {"name": self.name}


def _ctx(n: int, kid_subset_size: int = 1000):
    from types import SimpleNamespace

    from genlab.metrics.context import EvalSettings
    from genlab.models.registry import LatentSpec

    rng = np.random.default_rng(0)
    return SimpleNamespace(real=rng.normal(size=(n, 4)), fake=rng.normal(0.3, 1.0, size=(n, 4)),
                           s=EvalSettings(kid_subset_size=kid_subset_size, kid_subsets=10),
                           caps=SimpleNamespace(conditional=False, latent=LatentSpec()),
                           reference_split=lambda: "validation",
                           model=None)  # no model: codes from N(0, I), as prior_description says


@pytest.mark.parametrize("name", ["inception-v3-fid", "fd_randconv", "mnist-classifier"])
def test_kid_always_comes_with_a_frechet_distance_even_below_its_subset_size(name):
    from genlab.metrics.context import distribution_scores

    score = distribution_scores(_ctx(60), _Extractor(name))
    assert {"fd", "kid_mean", "kid_std", "precision", "recall"} <= set(score.values)
    assert score.protocol["kid_subset_size"] == 30  # the 1000-image default shrinks to half the samples
    assert score.values["kid_mean"] > 0 and score.values["kid_std"] > 0  # the sets differ; so do the subsets


def test_fid_below_the_papers_count_warns_and_says_so_in_its_protocol(genlab_log):
    from genlab.metrics.context import distribution_scores

    score = distribution_scores(_ctx(60), _Extractor("inception-v3-fid"), fd_name="fid")
    assert "not comparable with the 50,000-sample FID of papers" in score.protocol["comparability"]
    assert any("FID at 60 generated images is not comparable with FID at 50,000" in r.getMessage()
               for r in genlab_log.records)
    other = distribution_scores(_ctx(60), _Extractor("fd_randconv"))
    assert "50,000" not in other.protocol["comparability"] and "same counts" in other.protocol["comparability"]
