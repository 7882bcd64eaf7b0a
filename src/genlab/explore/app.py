"""The explorer's web app (Flask): one page, JSON and PNG routes, bound to loopback by default.

Safe by default: the browser sends numbers and image bytes only, never a path; uploads are limited in
size and type and decoded and re-encoded by Pillow before the model sees them; every asset is served
from here (no CDN), so it works offline.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from genlab.errors import GenlabError

try:  # an optional extra: the one message that says how to get it, wherever this module is imported from
    from flask import Flask, Response, jsonify, request
    from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
except ImportError:
    raise GenlabError('the explorer serves its page with Flask, which is not installed here; install it with '
                      'pip install "genlab[explore]" (or pip install flask).') from None
from genlab.explore.scoring import CheckpointScores, split_stored
from genlab.explore.space import SLIDER_BOUND, SLIDER_LIMIT, Space, png_bytes, truncated_normal
from genlab.metrics.provenance import checkpoint_hash

MAX_UPLOAD_BYTES = 4 * 1024 * 1024
UPLOAD_FORMATS = {"PNG", "JPEG", "WEBP", "BMP", "GIF"}
MAX_UPLOAD_PIXELS = 40_000_000
MAX_STRIP = 16


def _number(value: Any, name: str, low: float, high: float, integer: bool = False) -> float:
    try:
        v = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise GenlabError(f"{name} must be a number; got {value!r}.") from None
    if not (low <= v <= high) or (not integer and not math.isfinite(v)):
        raise GenlabError(f"{name} must lie in [{low}, {high}]; got {value!r}.")
    return v


def _png(images: torch.Tensor, space: Space) -> Response:
    resp = Response(png_bytes(images), mimetype="image/png")
    resp.headers["X-Decode-Ms"] = f"{space.last_decode_ms:.2f}"
    resp.headers["Cache-Control"] = "no-store"
    return resp


def decode_upload(data: bytes, size: int, channels: int) -> np.ndarray:
    """Bytes from the browser -> one uint8 (1, size, size, C) array, or a GenlabError saying why not."""
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
        fmt = img.format
        if fmt not in UPLOAD_FORMATS:
            raise GenlabError(f"uploads must be one of {', '.join(sorted(UPLOAD_FORMATS))} images; got {fmt}.")
        if img.width * img.height > MAX_UPLOAD_PIXELS:  # a decompression bomb is refused before decoding
            raise GenlabError(f"the upload is {img.width}x{img.height} pixels; at most {MAX_UPLOAD_PIXELS:,} "
                              f"are accepted.")
        img.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        raise GenlabError("the upload is not a readable image (PNG, JPEG, WEBP, BMP or GIF).") from None
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "P"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    img = ImageOps.fit(img.convert("L" if channels == 1 else "RGB"), (size, size), Image.BICUBIC)
    arr = np.array(img, dtype=np.uint8)
    return (arr[..., None] if arr.ndim == 2 else arr)[None]


def create_app(space: Space) -> Flask:
    app = Flask("genlab.explore")
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES
    page = resources.files("genlab.explore").joinpath("page.html").read_text()
    cfg = space.loaded.cfg
    loaded = space.loaded

    sha = checkpoint_hash(loaded.run.checkpoint(loaded.which))

    def stored() -> tuple[dict[str, Any], dict[str, Any]]:
        metrics = json.loads(loaded.run.metrics.read_text()) if loaded.run.metrics.is_file() else {}
        return split_stored(metrics, sha, loaded.step)

    scores = CheckpointScores(loaded, stored()[0])
    app.config["genlab.scores"] = scores  # tests wait on it

    @app.errorhandler(GenlabError)
    def bad_request(exc: GenlabError):
        return jsonify(error=str(exc)), 400

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge):
        return jsonify(error=f"uploads are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify(error=exc.description), exc.code

    @app.get("/")
    def index():
        return Response(page, mimetype="text/html")

    @app.get("/api/info")
    def info():
        here, other = stored()
        ckpt = loaded.run.checkpoint(loaded.which)
        return jsonify(
            run=cfg.name, model=cfg.model.name, kind="gan" if space.gan else "vae", latent_dim=space.latent_dim,
            step=loaded.step, checkpoint={"which": loaded.which, "file": ckpt.name, "step": loaded.step},
            prior=space.prior(), sliders=space.sliders(), slider_limit=SLIDER_LIMIT, slider_bound=SLIDER_BOUND,
            classes=space.class_names if space.num_classes else [], held_out=len(space.held_out),
            image_size=cfg.data.image_size, config=cfg.to_dict(), metrics=here, metrics_other=other,
            directions=("GANSpace: principal components of the generator's first-layer activations over 2,000 "
                        "random z, mapped to z by least squares; a slider moves z along one of them"
                        if space.gan else "latent dimensions with the highest mean KL over held-out images; a "
                        "slider sets that coordinate of the code"))

    @app.get("/api/heldout/<int:index>")
    def held_out(index: int):
        if not 0 <= index < len(space.held_out):
            raise GenlabError(f"held-out image index must be in 0..{len(space.held_out) - 1}; got {index}.")
        x = torch.from_numpy(space.held_out[index:index + 1]).permute(0, 3, 1, 2).float() / 255
        return Response(png_bytes(x), mimetype="image/png")

    def _vae_only() -> None:
        if space.gan:
            raise GenlabError("a GAN has no encoder: pick a seed instead of an image.")

    @app.get("/api/scores")
    def checkpoint_scores():
        """The loaded checkpoint's end-of-training scores, computed by this explorer (none are written)."""
        return jsonify(scores.status())

    @app.post("/api/code")
    def code():
        body = request.get_json(silent=True) or {}
        if "index" in body:
            _vae_only()
            z = space.held_out_code(int(_number(body["index"], "index", 0, len(space.held_out) - 1, True)))
        else:
            seed = int(_number(body.get("seed", 0), "seed", 0, 2**31 - 1, True))
            t = body.get("truncation")
            truncation = None if t in (None, "") else _number(t, "truncation", 0.05, 10.0)
            z = truncated_normal(1, space.latent_dim, truncation, seed)
        return jsonify(z=z[0].tolist())

    @app.post("/api/upload")
    def upload():
        _vae_only()
        file = request.files.get("image")
        if file is None:
            raise GenlabError("send the image as multipart form field 'image'.")
        images = decode_upload(file.read(), cfg.data.image_size, space.loaded.data.channels)
        z = space.encode_images(images)
        shown = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
        return jsonify(z=z[0].tolist(), image="data:image/png;base64," + base64.b64encode(png_bytes(shown)).decode())

    @app.post("/api/decode")
    def decode():
        body = request.get_json(silent=True) or {}
        z = space.check_code(list(body.get("z") or []))
        sliders = {int(_number(k, "slider", 0, 10_000, True)): _number(v, "slider value", -SLIDER_BOUND, SLIDER_BOUND)
                   for k, v in (body.get("sliders") or {}).items()}
        label = body.get("label")
        label = None if label in (None, "") else int(_number(label, "label", 0, max(space.num_classes - 1, 0), True))
        return _png(space.decode(space.apply_sliders(z, sliders), label), space)

    @app.get("/api/samples")
    def samples():
        seed = int(_number(request.args.get("seed", 0), "seed", 0, 2**31 - 1, True))
        n = int(_number(request.args.get("n", 8), "n", 1, MAX_STRIP, True))
        t = request.args.get("truncation")
        truncation = None if t in (None, "") else _number(t, "truncation", 0.05, 10.0)
        label = request.args.get("label")
        label = None if label in (None, "") else int(_number(label, "label", 0, max(space.num_classes - 1, 0), True))
        return _png(space.samples(n, seed, truncation, label), space)

    @app.post("/api/interpolate")
    def interpolate():
        _vae_only()
        body = request.get_json(silent=True) or {}
        a = space.held_out_code(int(_number(body.get("a"), "a", 0, len(space.held_out) - 1, True)))
        b = space.held_out_code(int(_number(body.get("b"), "b", 0, len(space.held_out) - 1, True)))
        steps = int(_number(body.get("steps", 8), "steps", 2, MAX_STRIP, True))
        mode = body.get("mode", "linear")
        if mode not in ("linear", "spherical"):
            raise GenlabError(f"mode must be 'linear' or 'spherical'; got {mode!r}.")
        return _png(space.interpolate(a, b, steps, mode == "spherical"), space)

    @app.get("/report")
    def report():
        from genlab.reporting import build_report

        return Response(build_report([space.loaded.run.path]), mimetype="text/html")

    return app


def check_host(host: str, allow_remote: bool) -> None:
    """Loopback unless the user says otherwise: the app has no authentication."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise GenlabError(f"--host {host} would expose the explorer (which has no login) beyond this machine; "
                          f"add --allow-remote if that is intended, or use 127.0.0.1.")


def make_server(run_dir: Path, host: str = "127.0.0.1", port: int = 8765, *, allow_remote: bool = False,
                which: str = "best"):
    """A werkzeug server for the run (port 0 picks a free port); call .serve_forever()."""
    from werkzeug.serving import make_server as werkzeug_server

    from genlab.run import load_run

    check_host(host, allow_remote)
    space = Space(load_run(Path(run_dir), which))
    try:
        return werkzeug_server(host, port, create_app(space), threaded=True)
    except OSError as exc:
        raise GenlabError(f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port.") from None
