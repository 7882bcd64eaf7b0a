"""Every explorer route through Flask's test client, on a tiny trained VAE and a tiny conditional GAN."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.errors import GenlabError
from genlab.explore.app import MAX_UPLOAD_BYTES, check_host, create_app, decode_upload
from genlab.explore.scoring import split_stored
from genlab.explore.space import Space, truncated_normal
from genlab.io import sha256_of
from genlab.run import load_run
from genlab.training import train
from helpers import tiny_config


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore_runs")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(tiny_config(name="vae"), out=out)
        train(tiny_config(name="cgan", model={"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8,
                                              "label_dim": 4}, objective={"kind": "adversarial"}), out=out)
    finally:
        torch.set_num_threads(threads)
    return {"vae": out / "vae", "cgan": out / "cgan"}


@pytest.fixture(scope="module")
def vae(runs):
    space = Space(load_run(runs["vae"]))
    return space, create_app(space).test_client()


@pytest.fixture(scope="module")
def gan(runs):
    space = Space(load_run(runs["cgan"]))
    return space, create_app(space).test_client()


def _png(resp) -> np.ndarray:
    assert resp.status_code == 200 and resp.mimetype == "image/png", resp.get_data()[:200]
    return np.asarray(Image.open(io.BytesIO(resp.data)))


def _upload(client, data: bytes, name: str = "x.png"):
    return client.post("/api/upload", data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _image_bytes(fmt: str = "PNG", size=(30, 20), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                    ).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


def test_page_and_info(vae):
    space, client = vae
    page = client.get("/")
    assert page.status_code == 200 and b"<script>" in page.data and b"http" not in page.data.split(b"<script>")[0]
    info = client.get("/api/info").get_json()
    assert info["kind"] == "vae" and info["latent_dim"] == 3 and info["held_out"] == len(space.held_out)
    assert [s["index"] for s in info["sliders"]] == space.ranked and info["sliders"][0]["score_name"] == "mean KL"
    assert info["config"]["name"] == "vae"
    assert info["checkpoint"] == {"which": "best", "file": "best.pt", "step": space.loaded.step}


def test_the_loaded_checkpoint_is_named_and_scored_without_touching_metrics_json(runs, vae):
    """Training's end scores `last`; the explorer loads `best`. Stored entries are split by the weights they
    scored, and the explorer scores its own checkpoint in memory with the end-of-training metrics."""
    space, client = vae
    stored = (runs["vae"] / "metrics.json").read_text()
    info = client.get("/api/info").get_json()
    same = sha256_of(runs["vae"] / "checkpoints" / "best.pt") == sha256_of(runs["vae"] / "checkpoints" / "last.pt")
    assert ("reconstruction_heldout" in info["metrics"]) == same
    assert ("reconstruction_heldout" in info["metrics_other"]) != same
    client.application.config["genlab.scores"].wait(120)
    scores = client.get("/api/scores").get_json()
    assert scores["state"] == "done", scores
    if not same:
        entry = scores["entries"]["reconstruction_heldout"]
        assert entry["step"] == space.loaded.step and entry["checkpoint"] == "best"
        assert entry["checkpoint_sha256"] == sha256_of(runs["vae"] / "checkpoints" / "best.pt")
        assert "latent_usage" in scores["entries"]
    assert (runs["vae"] / "metrics.json").read_text() == stored


def test_stored_entries_are_told_apart_by_the_weights_they_scored():
    metrics = {"a": {"checkpoint": "last", "step": 9, "checkpoint_sha256": "x"},
               "b": {"checkpoint": "best", "step": 9, "checkpoint_sha256": "y"},
               "c": {"checkpoint": "last", "step": 5}, "d": 0.5}
    here, other = split_stored(metrics, "x", 5)
    assert set(here) == {"a", "c"} and set(other) == {"b", "d"}


def test_held_out_code_decode_and_sliders(vae):
    space, client = vae
    img = _png(client.get("/api/heldout/2"))
    assert img.shape[:2] == (12, 12)
    z = client.post("/api/code", json={"index": 2}).get_json()["z"]
    assert len(z) == 3
    plain = client.post("/api/decode", json={"z": z})
    assert float(plain.headers["X-Decode-Ms"]) >= 0
    d = space.ranked[0]
    moved = _png(client.post("/api/decode", json={"z": z, "sliders": {str(d): 3.0}}))
    assert not np.array_equal(_png(plain), moved)  # a slider changes the decoded image
    expected = space.decode(space.apply_sliders(torch.tensor([z]), {d: 3.0}))
    assert np.array_equal(moved, (expected[0, 0].clamp(0, 1) * 255).round().byte().numpy())


def test_samples_and_interpolation(vae):
    _, client = vae
    strip = _png(client.get("/api/samples?seed=3&n=5"))
    assert strip.shape[:2] == (12, 60)
    assert np.array_equal(strip, _png(client.get("/api/samples?seed=3&n=5")))  # the shown seed reproduces
    lin = _png(client.post("/api/interpolate", json={"a": 0, "b": 1, "mode": "linear", "steps": 4}))
    sph = _png(client.post("/api/interpolate", json={"a": 0, "b": 1, "mode": "spherical", "steps": 4}))
    assert lin.shape[:2] == (12, 48) and np.array_equal(lin[:, :12], sph[:, :12])  # same endpoints


def test_upload_is_decoded_resized_and_encoded(vae):
    _, client = vae
    for fmt in ("PNG", "JPEG", "WEBP"):
        resp = _upload(client, _image_bytes(fmt), f"x.{fmt.lower()}")
        body = resp.get_json()
        assert resp.status_code == 200 and len(body["z"]) == 3 and body["image"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(("data", "status", "message"), [
    (b"<html>not an image</html>", 400, "not a readable image"),
    (b"", 400, "not a readable image"),
    (_image_bytes("TIFF"), 400, "uploads must be one of"),
    (b"\x89PNG" + b"0" * (MAX_UPLOAD_BYTES + 10), 413, "limited to 4 MB"),
])
def test_refused_uploads(vae, data, status, message):
    _, client = vae
    resp = _upload(client, data)
    assert resp.status_code == status and message in resp.get_json()["error"]


def test_decompression_bomb_is_refused():
    big = io.BytesIO()
    Image.new("L", (8000, 8000)).save(big, format="PNG")  # 64 Mpx, a few KB compressed
    with pytest.raises(GenlabError, match="8000x8000 pixels; at most 40,000,000"):
        decode_upload(big.getvalue(), 12, 1)


@pytest.mark.parametrize(("method", "url", "body", "message"), [
    ("get", "/api/heldout/999", None, "held-out image index must be in"),
    ("post", "/api/code", {"index": -1}, "index must lie in"),
    ("post", "/api/decode", {"z": [0.0]}, "a code must be 3 finite numbers"),
    ("post", "/api/decode", {"z": [0, 0, 0], "sliders": {"0": 25}}, "slider value must lie in"),
    ("post", "/api/decode", {"z": [0, 0, 0], "sliders": {"7": 1}}, "latent dimension must be in 0..2"),
    ("get", "/api/samples?n=100", None, "n must lie in [1, 16]"),
    ("get", "/api/samples?seed=abc", None, "seed must be a number"),
    ("post", "/api/interpolate", {"a": 0, "b": 1, "mode": "cubic"}, "mode must be 'linear' or 'spherical'"),
    ("get", "/api/nowhere", None, "not found"),
    ("get", "/../../etc/passwd", None, "not found"),
])
def test_bad_requests_get_a_clear_json_error(vae, method, url, body, message):
    _, client = vae
    resp = getattr(client, method)(url, json=body) if body is not None else getattr(client, method)(url)
    assert resp.status_code in (400, 404) and message.lower() in resp.get_json()["error"].lower()


def test_report_route(vae):
    _, client = vae
    resp = client.get("/report")
    assert resp.status_code == 200 and b"genlab report" in resp.data


def test_gan_directions_truncation_and_classes(gan):
    space, client = gan
    info = client.get("/api/info").get_json()
    assert info["kind"] == "gan" and info["classes"] == [str(i) for i in range(10)]
    assert "GANSpace" in info["directions"] and info["sliders"][0]["name"] == "PC1"
    ratios = [s["score"] for s in info["sliders"]]
    assert ratios == sorted(ratios, reverse=True)
    z = client.post("/api/code", json={"seed": 4, "truncation": 0.5}).get_json()["z"]
    assert max(abs(v) for v in z) <= 0.5
    a = _png(client.post("/api/decode", json={"z": z, "label": 1}))
    b = _png(client.post("/api/decode", json={"z": z, "label": 7}))
    c = _png(client.post("/api/decode", json={"z": z, "label": 1, "sliders": {"0": 3}}))
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    assert client.post("/api/decode", json={"z": z, "label": 10}).status_code == 400
    assert _png(client.get("/api/samples?seed=1&n=4&truncation=0.7&label=3")).shape[1] == 48
    for url in ("/api/upload", "/api/interpolate"):
        assert "GAN has no encoder" in client.post(url, json={}).get_json()["error"]


def test_gan_directions_need_only_the_first_layer(runs):
    """GANSpace fits on the first layer's output: the rest of the generator (a minute for 2,000 SNGAN
    images at 64x64) must not run while the explorer starts."""
    loaded = load_run(runs["cgan"])
    generator = loaded.model.sampling_generator
    last = [m for m in generator.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d)][-1]
    calls = []
    handle = last.register_forward_hook(lambda m, i, o: calls.append(o.shape))
    try:
        space = Space(loaded)
        assert calls == [] and len(space.directions) > 0
        assert torch.allclose(space.directions.norm(dim=1), torch.ones(len(space.directions)))
        space.decode(torch.zeros(1, space.latent_dim), 0)  # the hook is gone: decoding runs it all again
    finally:
        handle.remove()
    assert len(calls) == 1


def test_truncation_bounds_every_coordinate():
    z = truncated_normal(500, 16, 1.0, seed=0)
    assert z.abs().max() <= 1.0 and z.std() < 0.7  # a truncated normal is narrower than N(0, 1)


def test_non_loopback_host_needs_an_explicit_flag():
    check_host("127.0.0.1", False)
    check_host("::1", False)
    check_host("localhost", False)
    with pytest.raises(GenlabError, match="--allow-remote"):
        check_host("0.0.0.0", False)
    check_host("0.0.0.0", True)


def test_cli_refuses_a_public_address_before_loading_anything(runs, capsys):
    from genlab.cli import main

    assert main(["explore", str(runs["vae"]), "--host", "0.0.0.0"]) == 2
    assert "--allow-remote" in " ".join(capsys.readouterr().err.split())


def test_slider_ranges_cover_the_held_out_codes_and_samples_come_from_the_prior(vae):
    from genlab.models.latent import draw_codes

    space, client = vae
    codes = space.encode_images(space.loaded.data.val.images)
    for s in client.get("/api/info").get_json()["sliders"]:
        assert s["max"] >= max(3.0, float(codes[:, s["index"]].abs().max())) and s["min"] == -s["max"]
    expected = space.decode(draw_codes(space.model, 4, torch.Generator().manual_seed(5)))
    assert torch.equal(space.samples(4, 5), expected)
