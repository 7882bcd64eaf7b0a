"""Pinned weights: found, verified, fetched; and the Inception feature pipeline on a random-weights file.

The real FID weights cannot be downloaded here, so the pipeline test builds torch-fidelity's very
network with random weights, saves it, and pins that file's hash: everything but the numbers is real.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from genlab.errors import GenlabError
from genlab.metrics import weights as W
from genlab.metrics.inception import FEATURE_DIM, InceptionFeatures


def test_missing_weights_error_says_which_file_to_put_where(private_cache):
    with pytest.raises(GenlabError) as err:
        W.verified_path(W.INCEPTION)
    msg = str(err.value)
    expected = private_cache / "weights" / "weights-inception-2015-12-05-6726825d.pth"
    assert str(expected) in msg and "genlab weights fetch inception" in msg and W.INCEPTION.sha256 in msg


def test_wrong_hash_is_reported_as_corruption(private_cache):
    path = W.INCEPTION.path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not the weights")
    with pytest.raises(GenlabError, match="corrupt, truncated or a different network"):
        W.verified_path(W.INCEPTION)


def _local(tmp_path, payload: bytes, sha: str) -> W.WeightsFile:
    src = tmp_path / "served.bin"
    src.write_bytes(payload)
    return dataclasses.replace(W.INCEPTION, filename="test-weights.bin", url=src.as_uri(), sha256=sha)


def test_fetch_verifies_before_keeping_the_file(tmp_path):
    import hashlib

    payload = b"weights" * 1000
    good = _local(tmp_path, payload, hashlib.sha256(payload).hexdigest())
    assert W.fetch(good).read_bytes() == payload
    assert W.verified_path(good) == good.path()

    bad = dataclasses.replace(_local(tmp_path, payload, "0" * 64), filename="other.bin")
    with pytest.raises(GenlabError, match="nothing was kept"):
        W.fetch(bad)
    assert not bad.path().exists() and not list(bad.path().parent.glob("*.tmp"))


def test_the_pinned_file_is_the_one_torch_fidelity_itself_downloads():
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    assert W.INCEPTION.url == fe.URL_INCEPTION_V3 and W.INCEPTION.url.endswith("/" + W.INCEPTION.filename)
    assert W.INCEPTION.sha256.startswith(W.INCEPTION.filename.split("-")[-1].removesuffix(".pth"))


def test_fetch_without_network_names_the_manual_route(tmp_path):
    missing = dataclasses.replace(W.INCEPTION, filename="x.bin", url=(tmp_path / "nowhere.bin").as_uri())
    with pytest.raises(GenlabError, match="copy the file by hand"):
        W.fetch(missing)


@pytest.fixture
def random_inception(monkeypatch, private_cache) -> str:
    """torch-fidelity's Inception-v3 with random weights saved where genlab looks; returns the file's hash."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with pytest.MonkeyPatch.context() as patch:  # undone on exit; the private $GENLAB_CACHE stays set
        patch.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        patch.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd, *a, **k: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("build", ["2048"])
    path = W.INCEPTION.path()
    assert private_cache in path.parents
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return W.sha256_of(path)


def test_inception_features_shape_gray_handling_and_batch_independence(random_inception):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    ext = InceptionFeatures(expected_sha256=random_inception, batch_size=2)
    f = ext.features(rgb)
    assert f.shape == (3, FEATURE_DIM) and f.dtype == np.float64 and np.isfinite(f).all()
    one_batch = InceptionFeatures(expected_sha256=random_inception, batch_size=8).features(rgb)
    np.testing.assert_allclose(f, one_batch, rtol=1e-4, atol=1e-5)
    gray = rgb[..., :1]
    np.testing.assert_allclose(ext.features(gray), ext.features(np.repeat(gray, 3, axis=3)), rtol=1e-5, atol=1e-6)
    ident = ext.identity()
    assert ident["weights_sha256"] == random_inception and "299" in ident["resize"]


def test_inception_refuses_a_file_with_another_hash(random_inception):
    with pytest.raises(GenlabError, match="SHA-256"):
        InceptionFeatures()  # expects the official hash; the random file is not it
