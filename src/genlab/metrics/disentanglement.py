"""Disentanglement scores of a representation against known generative factors: MIG, FactorVAE, DCI.

The three metrics ask different questions, which is why all three are reported (Locatello et al.
2019, "Challenging Common Assumptions in the Unsupervised Learning of Disentangled Representations",
found they often disagree): MIG whether each factor is captured by one code dimension more than by
any other, the FactorVAE score whether holding one factor fixed is visible in one dimension, DCI
whether a classifier's feature importances map dimensions to factors one-to-one. Each function follows
disentanglement_lib's implementation and protocol (the library behind that study) so the numbers can
be compared with published ones; where a default departs from it for speed, the returned dict says so
and the disentanglement_lib value is one argument away.

A representation is any `represent(observations) -> codes (N, D)` function (for an encoder, typically
its posterior mean, as disentanglement_lib scores it). Ground truth comes from a sampler such as
`genlab.data.shapes.ShapesSampler`: factors are drawn first and rendered by `sampler.observe`, so a
metric can hold factors fixed and score codes against them. Every random choice comes from the
metric's `seed`; the sampler's own generator is not used.

Each function returns scores plus the protocol that produced them, named so that
`genlab.metrics.store.split_entry` files them correctly (counts as `n_*`, then `bins`, `batch_size`,
`seed`, `threshold`; text for the rest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from genlab.errors import GenlabError
from genlab.metrics.metric import Metric, Score

if TYPE_CHECKING:
    from genlab.metrics.context import Context

Represent = Callable[[np.ndarray], np.ndarray]

# disentanglement_lib's counts (Locatello et al. 2019, unsupervised_study_v1 metric configs).
DLIB_MIG_SAMPLES = 10000
DLIB_FACTOR_VAE = {"n_train": 10000, "n_eval": 5000, "batch": 64, "n_variance": 10000}
DLIB_DCI = {"n_train": 10000, "n_test": 5000}

ENCODE_BATCH = 256


class GroundTruthSampler(Protocol):
    """What the metrics need from a data set with known factors (ShapesSampler is one)."""

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]

    def sample_factors(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray: ...

    def observe(self, factors: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------- shared


def encode(represent: Represent, sampler: GroundTruthSampler, factors: np.ndarray,
           batch_size: int = ENCODE_BATCH) -> np.ndarray:
    """float64 codes (N, D) of the observations of `factors`, rendered and encoded batch by batch.

    Rendering per batch bounds memory: 10,000 images of 64x64 would fit (40 MB), but the FactorVAE
    score with disentanglement_lib's counts encodes about a million.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    out = []
    for start in range(0, len(factors), batch_size):
        chunk = factors[start:start + batch_size]
        codes = np.asarray(represent(sampler.observe(chunk)), dtype=np.float64)
        if codes.ndim != 2 or len(codes) != len(chunk):
            raise ValueError(f"represent must return codes of shape ({len(chunk)}, D) for {len(chunk)} "
                             f"observations; got {codes.shape}.")
        out.append(codes)
    codes = np.concatenate(out)
    if not np.isfinite(codes).all():
        raise ValueError("represent returned non-finite codes (NaN or inf); the scores would be meaningless.")
    return codes


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1; got {value}.")


def _entropy(p: np.ndarray, axis: int, base: int) -> np.ndarray:
    """Entropy of the normalised rows/columns of a non-negative matrix, in the given base."""
    p = p / p.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=axis) / np.log(base)


# ---------------------------------------------------------------- MIG


def histogram_discretize(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """Each code dimension cut into `bins` equal-width bins over its own range (1..bins).

    MIG needs discrete codes to estimate mutual information by counting; disentanglement_lib's
    `_histogram_discretize` bins each dimension over its observed range, which makes the score
    invariant to each dimension's scale and offset.
    """
    out = np.empty(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram(codes[:, d], bins)[1]
        out[:, d] = np.digitize(codes[:, d], edges[:-1])
    return out


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict[str, np.ndarray | float]:
    """MIG of codes (N, D) against factor indices (N, K): the computation without the sampling.

    Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs"): a factor
    is well captured when one dimension carries much more information about it than any other; the gap
    is divided by the factor's entropy so factors with many values do not dominate. Returns `mig`,
    per-factor `gaps`, the (D, K) `mutual_info` matrix and factor `entropy` (nats).
    """
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors)
    n_dims, n_factors = codes.shape[1], factors.shape[1]
    disc = histogram_discretize(codes, bins)
    from sklearn.metrics import mutual_info_score

    mi = np.array([[mutual_info_score(factors[:, k], disc[:, d]) for k in range(n_factors)]
                   for d in range(n_dims)])
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k]) for k in range(n_factors)])
    if (entropy <= 0).any():
        constant = [k for k in range(n_factors) if entropy[k] <= 0]
        raise ValueError(f"factors {constant} take a single value in this sample: their entropy is 0 and MIG is "
                         f"undefined; draw more samples.")
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if n_dims > 1 else np.zeros(n_factors)
    gaps = (top[0] - second) / entropy
    return {"mig": float(gaps.mean()), "gaps": gaps, "mutual_info": mi, "entropy": entropy}


def mig(represent: Represent, sampler: GroundTruthSampler, *, n: int = DLIB_MIG_SAMPLES, bins: int = 20,
        seed: int = 0, batch_size: int = ENCODE_BATCH) -> dict[str, Any]:
    """MIG on n fresh samples, with disentanglement_lib's protocol (10,000 samples, 20 histogram bins).

    Keys: `mig`, `mig_gap_<factor>` per factor, and the protocol. The MI estimate by counting is biased
    upwards with few samples per bin, so scores are comparable only at equal n and bins.
    """
    _check_counts(n=n, bins=bins)
    rng = np.random.default_rng(seed)
    factors = sampler.sample_factors(n, rng)
    result = mig_from_codes(encode(represent, sampler, factors, batch_size), factors, bins)
    return {
        "mig": result["mig"],
        **{f"mig_gap_{name}": float(g) for name, g in zip(sampler.factor_names, result["gaps"])},
        "n_samples": n, "bins": bins, "batch_size": batch_size, "seed": seed,
        "discretizer": "equal-width histogram per code dimension",
        "variant": "disentanglement_lib (Locatello et al. 2019): histogram-discretised posterior means",
        "protocol": "MIG (Chen et al. 2018) as in disentanglement_lib (Locatello et al. 2019): codes of n "
                    "samples, histogram-discretised per dimension, sklearn mutual_info_score with each factor; "
                    "mean over factors of (top-1 minus top-2 MI) / H(factor).",
    }


def _log_marginal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """log q(z_n) = log (1/(M-1)) sum_{m != n} N(z_n; mean_m, exp(logvar_m)) for one dimension, where z_n was
    drawn from image n's own posterior. Leaving that posterior out keeps its density at its own draw (about
    1/sigma, large for sharp posteriors) from counting as information: with it, a noise dimension of sharp
    posteriors seemed to carry 8% of a factor's entropy at n = 10,000."""
    import math

    inv_var, out = torch.exp(-logvar), []
    const = -0.5 * (math.log(2 * math.pi) + logvar)
    for start in range(0, len(z), chunk):
        d = z[start:start + chunk, None] - mean[None, :]
        logp = const[None, :] - 0.5 * d * d * inv_var[None, :]
        rows = torch.arange(len(logp))
        logp[rows, rows + start] = -math.inf
        out.append(torch.logsumexp(logp, dim=1) - math.log(len(mean) - 1))
    return torch.cat(out)


def mig_chen_from_posterior(mean: np.ndarray, logvar: np.ndarray, factors: np.ndarray, seed: int = 0
                            ) -> dict[str, np.ndarray | float]:
    """MIG as Chen et al. 2018 estimate it (their `metric_helpers/mig.py`): the mutual information between
    each code dimension z_j and factor v_k from the encoder's Gaussian posteriors, not from binned means.

    I(z_j; v_k) = H(z_j) - H(z_j | v_k). H(z_j) is a Monte-Carlo estimate with one draw z ~ q(z_j | x_n)
    per image under the aggregate posterior q(z_j) = mean_m q(z_j | x_m); H(z_j | v_k) is the same
    estimate within each group of images that share a value of v_k, weighted by the group's share;
    each image's own posterior is left out of the density its draw is scored under (leave-one-out).
    Gaps are divided by the factor's empirical entropy (nats). Unlike the histogram estimator it sees
    the posterior's spread: a dimension whose mean moves with a factor by less than its noise carries
    little information here and much there.
    """
    mean_t = torch.as_tensor(np.asarray(mean, np.float64))
    logvar_t = torch.as_tensor(np.asarray(logvar, np.float64))
    factors = np.asarray(factors)
    gen = torch.Generator().manual_seed(seed)
    z = mean_t + torch.exp(0.5 * logvar_t) * torch.randn(mean_t.shape, generator=gen, dtype=torch.float64)
    n, n_dims = mean_t.shape
    n_factors = factors.shape[1]
    marginal = np.array([-float(_log_marginal(z[:, j], mean_t[:, j], logvar_t[:, j]).mean()) for j in range(n_dims)])
    conditional = np.zeros((n_dims, n_factors))
    entropy = np.zeros(n_factors)
    for k in range(n_factors):
        values, counts = np.unique(factors[:, k], return_counts=True)
        entropy[k] = float(-(counts / n * np.log(counts / n)).sum())
        if counts.min() < 2:
            raise ValueError(f"a value of factor {k} occurs only once in {n} samples: its conditional entropy "
                             f"needs at least 2 images; draw more samples.")
        for v, c in zip(values, counts):
            idx = torch.from_numpy(np.flatnonzero(factors[:, k] == v))
            for j in range(n_dims):
                h = -float(_log_marginal(z[idx, j], mean_t[idx, j], logvar_t[idx, j]).mean())
                conditional[j, k] += c / n * h
    if (entropy <= 0).any():
        constant = [k for k in range(n_factors) if entropy[k] <= 0]
        raise ValueError(f"factors {constant} take a single value in this sample: their entropy is 0 and MIG is "
                         f"undefined; draw more samples.")
    mi = np.maximum(marginal[:, None] - conditional, 0.0)
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if n_dims > 1 else np.zeros(n_factors)
    gaps = (top[0] - second) / entropy
    return {"mig": float(gaps.mean()), "gaps": gaps, "mutual_info": mi, "entropy": entropy}


def mig_chen(represent_posterior: Represent, sampler: GroundTruthSampler, *, n: int = DLIB_MIG_SAMPLES, seed: int = 0,
             batch_size: int = ENCODE_BATCH) -> dict[str, Any]:
    """MIG with Chen et al. 2018's estimator on n fresh samples; `represent_posterior` returns the posterior's
    means and log-variances side by side, (N, 2D)."""
    _check_counts(n=n)
    rng = np.random.default_rng(seed)
    factors = sampler.sample_factors(n, rng)
    both = encode(represent_posterior, sampler, factors, batch_size)
    d = both.shape[1] // 2
    result = mig_chen_from_posterior(both[:, :d], both[:, d:], factors, seed)
    return {
        "mig_chen": result["mig"],
        **{f"mig_chen_gap_{name}": float(g) for name, g in zip(sampler.factor_names, result["gaps"])},
        "n_samples": n, "batch_size": batch_size, "seed": seed,
        "variant": "Chen et al. 2018: mutual information from the Gaussian posteriors (one draw per image, "
                   "aggregate posterior of the n images), factors drawn uniformly rather than the full grid",
        "protocol": "MIG (Chen et al. 2018) with the paper's own estimator: I(z_j; v_k) = H(z_j) - H(z_j | v_k) "
                    "estimated from q(z|x) of n images; mean over factors of (top-1 minus top-2 MI) / H(factor).",
    }


# ---------------------------------------------------------------- FactorVAE score


def _vote_factors(sampler: GroundTruthSampler, n_votes: int, batch: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For each vote a random factor and `batch` factor rows that share one random value of it."""
    sizes = np.asarray(sampler.factor_sizes)
    fixed = rng.integers(0, len(sizes), n_votes)
    values = rng.integers(0, sizes[fixed])
    factors = sampler.sample_factors(n_votes * batch, rng).reshape(n_votes, batch, len(sizes))
    factors[np.arange(n_votes), :, fixed] = values[:, None]
    return fixed, factors.reshape(n_votes * batch, len(sizes))


def _votes(represent: Represent, sampler: GroundTruthSampler, n_votes: int, batch: int,
           global_var: np.ndarray, active: np.ndarray, rng: np.random.Generator, batch_size: int) -> np.ndarray:
    """(K, D) counts of (fixed factor, dimension of least normalised variance) pairs."""
    counts = np.zeros((len(sampler.factor_sizes), len(global_var)), dtype=np.int64)
    fixed, factors = _vote_factors(sampler, n_votes, batch, rng)
    # Whole votes per represent call: as many as fit in batch_size images, at least one.
    per_call = max(1, batch_size // batch)
    active_idx = np.flatnonzero(active)
    for start in range(0, n_votes, per_call):
        stop = min(n_votes, start + per_call)
        codes = encode(represent, sampler, factors[start * batch:stop * batch], (stop - start) * batch)
        local_var = codes.reshape(stop - start, batch, -1).var(axis=1, ddof=1)
        dims = active_idx[np.argmin(local_var[:, active] / global_var[active], axis=1)]
        np.add.at(counts, (fixed[start:stop], dims), 1)
    return counts


def factor_vae_score(represent: Represent, sampler: GroundTruthSampler, *, n_train: int = 800, n_eval: int = 400,
                     batch: int = 64, n_variance: int = 10000, threshold: float = 0.05, seed: int = 0,
                     batch_size: int = 1024) -> dict[str, Any]:
    """FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", section 4).

    Why it works: if one dimension encodes one factor, fixing that factor shrinks exactly that
    dimension's variance, so the dimension of least (globally normalised) variance predicts which
    factor was fixed; a majority-vote classifier from dimensions to factors then scores near 1. The
    classifier has no parameters to fit, unlike the beta-VAE score's linear classifier, so it cannot
    succeed by combining dimensions.

    n_train and n_eval count VOTES, each costing `batch` encodings (plus n_variance for the global
    variances). disentanglement_lib uses 10,000 / 5,000 votes of 64 (970,000 encodings with the
    variance estimate), 10 to 20 minutes on 2 CPU cores. The defaults here, 800 / 400 votes
    (86,800 encodings), took 70 s (1,250 images/s rendered and encoded) with disentanglement_lib's
    4-conv encoder on 2 cores that a training job was also using; pass `**DLIB_FACTOR_VAE` for the
    published protocol. With 400 evaluation votes the accuracy's standard error is at most 2.5 points.

    Dimensions whose global standard deviation is below `threshold` are pruned as collapsed to the
    prior: disentanglement_lib's `_prune_dims` compares sqrt(variance) >= 0.05 (the threshold is on
    the standard deviation, i.e. variance 0.0025). With no active dimension the score is 0.

    `batch_size` bounds the images per represent call (whole votes are grouped into one call).
    Keys: `factor_vae_score` (evaluation accuracy), `factor_vae_train_accuracy`, `n_active_dims`
    and the protocol.
    """
    _check_counts(n_train=n_train, n_eval=n_eval, n_variance=n_variance, batch_size=batch_size)
    if batch < 2:
        raise ValueError(f"batch must be >= 2 to estimate a variance; got {batch}.")
    rng = np.random.default_rng(seed)
    protocol = {
        "n_train_votes": n_train, "n_eval_votes": n_eval, "n_vote_batch": batch, "n_variance": n_variance,
        "n_encodings": (n_train + n_eval) * batch + n_variance, "threshold": threshold, "seed": seed,
        "batch_size": batch_size, "classifier": "majority vote: each code dimension predicts the factor it "
                                                "was most often the least-variance dimension for",
        "protocol": "FactorVAE score (Kim & Mnih 2018) as in disentanglement_lib (Locatello et al. 2019): global "
                    "variances from n_variance samples, prune dims with std < threshold, each vote fixes one random "
                    "factor over a batch and takes argmin of variance/global variance over active dims; "
                    "majority-vote classifier from train votes, accuracy on eval votes. n_train/n_eval count votes "
                    "(disentanglement_lib: 10000/5000 of 64).",
    }
    global_var = encode(represent, sampler, sampler.sample_factors(n_variance, rng), batch_size).var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= threshold
    if not active.any():
        return {"factor_vae_score": 0.0, "factor_vae_train_accuracy": 0.0, "n_active_dims": 0, **protocol,
                "note": f"no code dimension has a global standard deviation >= {threshold}: every dimension "
                        f"is pruned as collapsed, so the score is 0."}
    train = _votes(represent, sampler, n_train, batch, global_var, active, rng, batch_size)
    classifier = np.argmax(train, axis=0)  # per dimension; a dimension no train vote chose maps to factor 0
    dims = np.arange(train.shape[1])
    evaluation = _votes(represent, sampler, n_eval, batch, global_var, active, rng, batch_size)
    return {
        "factor_vae_score": float(evaluation[classifier, dims].sum() / evaluation.sum()),
        "factor_vae_train_accuracy": float(train[classifier, dims].sum() / train.sum()),
        "n_active_dims": int(active.sum()),
        **protocol,
    }


# ---------------------------------------------------------------- DCI


def dci_importance(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray,
                   factors_test: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(D, K) importance matrix and per-factor train / test accuracies of one GBT classifier per factor.

    Gradient-boosted trees with scikit-learn's defaults are disentanglement_lib's choice: their
    impurity-based importances are non-negative and sum to 1 per factor, as DCI's entropies need,
    and they can use a dimension non-linearly (a lasso, Eastwood & Williams' original, cannot).
    """
    n_factors = factors_train.shape[1]
    importance = np.zeros((codes_train.shape[1], n_factors))
    train_acc, test_acc = np.zeros(n_factors), np.zeros(n_factors)
    for k in range(n_factors):
        if len(np.unique(factors_train[:, k])) < 2:
            raise ValueError(f"factor {k} takes a single value in the training sample; draw more samples.")
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(random_state=seed)
        model.fit(codes_train, factors_train[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        train_acc[k] = np.mean(model.predict(codes_train) == factors_train[:, k])
        test_acc[k] = np.mean(model.predict(codes_test) == factors_test[:, k])
    return importance, train_acc, test_acc


def dci_from_importance(importance: np.ndarray) -> tuple[float, float]:
    """(disentanglement, completeness) of a (D, K) importance matrix (Eastwood & Williams 2018).

    Disentanglement: each dimension should matter for one factor, 1 - H_K(P_d.), weighted by the
    dimension's share of total importance so that dimensions no classifier uses do not count.
    Completeness: each factor should be captured by one dimension, 1 - H_D(P_.k), weighted by the
    factor's share of importance as disentanglement_lib does; since each GBT's importances sum to 1,
    that is the plain mean over factors unless a classifier used no dimension at all. Like
    disentanglement_lib, 1e-11 is added before normalising so an all-zero row or column has
    maximal entropy rather than an undefined one.
    """
    r = np.asarray(importance, dtype=np.float64)
    n_dims, n_factors = r.shape
    per_dim = 1.0 - _entropy(r + 1e-11, axis=1, base=n_factors) if n_factors > 1 else np.ones(n_dims)
    per_factor = 1.0 - _entropy(r + 1e-11, axis=0, base=n_dims) if n_dims > 1 else np.ones(n_factors)
    weights = r if r.sum() > 0 else np.ones_like(r)
    dim_share = weights.sum(axis=1) / weights.sum()
    factor_share = weights.sum(axis=0) / weights.sum()
    return float(per_dim @ dim_share), float(per_factor @ factor_share)


def dci(represent: Represent, sampler: GroundTruthSampler, *, n_train: int = 2000, n_test: int = 1000,
        seed: int = 0, batch_size: int = ENCODE_BATCH) -> dict[str, Any]:
    """DCI disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A Framework for
    the Quantitative Evaluation of Disentangled Representations"), with disentanglement_lib's counts.

    Why: a predictor of each factor from the code reveals which dimensions it relies on; a disentangled
    code is one whose importance matrix is close to a permutation. Informativeness is reported as
    accuracy (higher is better) like disentanglement_lib, on n_test held-out samples.

    Cost: one 100-stage GradientBoostingClassifier per factor, one tree per class and stage (3 + 6 +
    40 + 32 + 32 = 113 trees per stage on the shapes factors), single-threaded. On 2 shared CPU cores
    with a 10-dimensional code, 2,000 / 1,000 samples took 100 s (40 s of it the 40-class orientation);
    fitting time grows about linearly with n_train, so disentanglement_lib's 10,000 / 5,000 would take
    about 10 minutes. Hence the smaller defaults, 2,000 / 1,000; pass `**DLIB_DCI` for the published
    counts. With 1,000 test samples an accuracy's standard error is at most 1.6 points.
    Keys: `dci_disentanglement`, `dci_completeness`, `dci_informativeness` (mean test accuracy),
    `dci_informativeness_train`, `dci_accuracy_<factor>` (test accuracy per factor) and the protocol.
    """
    _check_counts(n_train=n_train, n_test=n_test)
    rng = np.random.default_rng(seed)
    f_train = sampler.sample_factors(n_train, rng)
    f_test = sampler.sample_factors(n_test, rng)
    c_train = encode(represent, sampler, f_train, batch_size)
    c_test = encode(represent, sampler, f_test, batch_size)
    importance, train_acc, test_acc = dci_importance(c_train, f_train, c_test, f_test, seed=seed)
    disentanglement, completeness = dci_from_importance(importance)
    return {
        "dci_disentanglement": disentanglement,
        "dci_completeness": completeness,
        "dci_informativeness": float(test_acc.mean()),
        "dci_informativeness_train": float(train_acc.mean()),
        **{f"dci_accuracy_{name}": float(a) for name, a in zip(sampler.factor_names, test_acc)},
        "n_train": n_train, "n_test": n_test, "batch_size": batch_size, "seed": seed,
        "classifier": "sklearn GradientBoostingClassifier() defaults (100 stages, depth 3), one per factor",
        "protocol": "DCI (Eastwood & Williams 2018) as in disentanglement_lib (Locatello et al. 2019): one "
                    "gradient-boosted classifier per factor on codes of n_train samples, importance matrix from "
                    "feature_importances_, disentanglement and completeness from its normalised entropies, "
                    "informativeness = mean accuracy on n_test held-out samples (disentanglement_lib: "
                    "n_train 10000, n_test 5000).",
    }


# ---------------------------------------------------------------- as a metric of a trained run

# Which keys of each function's result are scores (the rest is its protocol).
_SCORES = {"mig": "mig", "mig_chen": "mig_chen", "factor_vae": "factor_vae_", "dci": "dci_"}


def _applies(ctx: Context) -> str | None:
    from genlab.data.registry import SOURCES

    if SOURCES[ctx.cfg.data.name].factors is None or not ctx.caps.has_encoder:
        with_factors = ", ".join(n for n, s in SOURCES.items() if s.factors is not None)
        return (f"it needs an encoder trained on a data set with known generative factors (data.name: "
                f"{with_factors}), such as the procedural shapes set")
    return None


def _counts(counts: dict[str, dict[str, int]], name: str) -> dict[str, int]:
    """Chen et al.'s MIG takes the sample count set for MIG unless it has its own."""
    if name == "mig_chen" and name not in counts:
        return {k: v for k, v in counts.get("mig", {}).items() if k in ("n", "batch_size")}
    return counts.get(name, {})


def _compute(ctx: Context) -> dict[str, Score]:
    from genlab.data.arrays import resize_array
    from genlab.data.registry import SOURCES

    sampler_for = SOURCES[ctx.cfg.data.name].factors

    norm, model, device = ctx.data.normalizer, ctx.model, ctx.device
    size = ctx.cfg.data.image_size

    @torch.no_grad()
    def posterior(images: np.ndarray, with_logvar: bool) -> np.ndarray:
        imgs = resize_array(images, size, ctx.data.channels)  # as the run's data layer gave them
        codes = []
        for start in range(0, len(imgs), 256):
            x = norm(torch.from_numpy(np.ascontiguousarray(imgs[start:start + 256])).permute(0, 3, 1, 2).to(device))
            q = model.encode(x)
            codes.append(torch.cat([q.mean, q.logvar], 1) if with_logvar else q.mean)
        return torch.cat(codes).double().cpu().numpy()

    def represent(images: np.ndarray) -> np.ndarray:
        return posterior(images, False)

    def represent_posterior(images: np.ndarray) -> np.ndarray:
        return posterior(images, True)

    counts = ctx.s.disentanglement
    common = {"representation": "posterior mean of the model's encoder",
              "resize": f"64x64 renders resized to {size}x{size} ({ctx.data.channels} channel(s)) as in training",
              "data": "genlab procedural shapes (dSprites factors: shape, scale, orientation, x, y at 64x64), "
                      "rendered fresh from the seed"}
    runs: list[tuple[str, Callable[..., dict[str, Any]], Represent, dict[str, str]]] = [
        ("mig", mig, represent, common), ("factor_vae", factor_vae_score, represent, common),
        ("dci", dci, represent, common)]
    if ctx.caps.latent.posterior == "gaussian":  # Chen et al.'s estimator needs the posterior's spread
        runs.insert(1, ("mig_chen", mig_chen, represent_posterior,
                        {**common, "representation": "Gaussian posterior of the model's encoder (means and "
                                                     "variances)"}))
    out = {}
    try:
        for name, fn, rep, extra in runs:
            result = fn(rep, sampler_for(ctx.s.seed), seed=ctx.s.seed, **_counts(counts, name))
            values = {k: v for k, v in result.items() if k.startswith(_SCORES[name])}
            out[name] = Score(values, {**{k: v for k, v in result.items() if k not in values}, **extra})
    except ValueError as exc:  # bad sample counts, or codes the metrics cannot use (NaN)
        raise GenlabError(f"disentanglement scores of {ctx.loaded.run.path} failed: {exc}") from None
    return out


METRIC = Metric(name="disentanglement", summary="MIG (disentanglement_lib's and Chen et al.'s estimators), FactorVAE "
                "score and DCI on the procedural shapes set",
                compute=_compute, applies=_applies,
                higher_is_better={"mig": True, "mig_chen": True, "factor_vae_score": True, "dci_disentanglement": True,
                                  "dci_completeness": True, "dci_informativeness": True})
