"""The explorer in a real headless Chromium: served on a free port, a slider moved, the image re-decoded; errors
shown next to the control that caused them, stale results cleared, the loaded checkpoint named and scored."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlab.explore.app import make_server
from genlab.training import train
from helpers import headless_chromium, tiny_config

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

DECODED_PIXELS = """
const img = document.getElementById('decoded');
if (!img.complete || !img.naturalWidth) return null;
const c = document.createElement('canvas'); c.width = img.naturalWidth; c.height = img.naturalHeight;
const g = c.getContext('2d'); g.drawImage(img, 0, 0);
return Array.from(g.getImageData(0, 0, c.width, c.height).data);"""


def _trained(tmp_path_factory, cfg) -> Path:
    """A tiny run trained on one thread (the browser and the server share the other core)."""
    out = tmp_path_factory.mktemp("explore_browser")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(cfg, out=out)
    finally:
        torch.set_num_threads(threads)
    return out / cfg.name


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    return _trained(tmp_path_factory, tiny_config(name="vae", data={"image_size": 16}))


def test_moving_a_slider_redraws_the_decoded_image(vae_run, tmp_path):
    server = make_server(vae_run, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    browser = headless_chromium(tmp_path)
    try:
        from selenium.webdriver.support.wait import WebDriverWait

        browser.get(f"http://127.0.0.1:{server.server_port}/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.execute_script("return document.querySelectorAll('#sliders input').length") > 0)
        wait.until(lambda b: b.execute_script(DECODED_PIXELS) is not None)
        before = browser.execute_script(DECODED_PIXELS)
        version = browser.execute_script("return document.getElementById('decoded').dataset.version")
        slider = browser.execute_script("return document.querySelector('#sliders input').id")
        browser.execute_script(f"""const s = document.getElementById('{slider}');
            s.value = s.value > 0 ? -{3.0} : {3.0}; s.dispatchEvent(new Event('input'));""")
        wait.until(lambda b: b.execute_script("return document.getElementById('decoded').dataset.version") != version)
        wait.until(lambda b: (p := b.execute_script(DECODED_PIXELS)) is not None and p != before)
        after = np.array(browser.execute_script(DECODED_PIXELS))
        assert np.abs(after - np.array(before)).max() > 0
        latency = float(browser.execute_script("return document.getElementById('latency').textContent"))
        assert latency >= 0
        errors = browser.execute_script("return document.getElementById('error').textContent")
        assert errors == ""
        fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert all(u.startswith(f"http://127.0.0.1:{server.server_port}/") or u.startswith("blob:") for u in fetched)
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "explorer.png"
        time.sleep(0.2)
        assert browser.save_screenshot(str(shot))
    finally:
        browser.quit()
        server.shutdown()
    assert np.asarray(Image.open(shot).convert("L")).std() > 5


def _served(run: Path):
    server = make_server(run, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_errors_appear_next_to_their_control_and_stale_results_are_cleared(vae_run, tmp_path):
    server = _served(vae_run)
    browser = headless_chromium(tmp_path)
    try:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.wait import WebDriverWait

        browser.get(f"http://127.0.0.1:{server.server_port}/")
        wait = WebDriverWait(browser, 60)
        wait.until(lambda b: b.execute_script("return !!document.getElementById('interpolation').getAttribute('src')"))
        js = browser.execute_script
        # the loaded checkpoint is named, with its file and step, and scored by the explorer itself
        step = js("return document.getElementById('checkpoint').textContent")
        assert step.startswith("best (best.pt, step ") and step.endswith(")")
        wait.until(lambda b: js("return document.getElementById('metrics').textContent").count("best, step") >= 2)
        assert "reconstruction_heldout" in js("return document.getElementById('metrics').textContent")
        # numbered thumbnails; sliders whose range covers the code they start from
        assert js("return Array.from(document.querySelectorAll('#picker button span')).slice(0, 3)"
                  ".map(s => s.textContent)") == ["0", "1", "2"]
        ranges = js("""return Array.from(document.querySelectorAll('#sliders input'))
                       .map(i => [Number(i.min), Number(i.max), Number(i.value)]);""")
        assert ranges and all(lo <= v <= hi and hi >= 3 for lo, hi, v in ranges), ranges

        # a failed interpolation: its error beside its button, its old strip gone, nothing elsewhere
        js("document.getElementById('ia').value = 999; document.getElementById('interp').click();")
        wait.until(lambda b: js("return document.getElementById('error-interp').textContent") != "")
        assert "must lie in" in js("return document.getElementById('error-interp').textContent")
        assert js("return document.getElementById('error-interp').closest('#interp-card') !== null")
        assert js("return document.getElementById('interpolation').getAttribute('src')") is None
        assert js("return document.getElementById('error').textContent") == ""
        js("document.getElementById('ia').value = 0; document.getElementById('interp').click();")
        wait.until(lambda b: js("return document.getElementById('error-interp').textContent") == "")

        # a rejected upload (text named .png): said next to the picker, the file box emptied, the image kept
        before = js("return document.getElementById('original').src")
        fake = tmp_path / "notes.png"
        fake.write_text("not an image")
        browser.find_element(By.ID, "upload").send_keys(str(fake))
        wait.until(lambda b: js("return document.getElementById('error-pick').textContent") != "")
        message = js("return document.getElementById('error-pick').textContent")
        assert "notes.png was not used" in message and "not a readable image" in message
        assert "still the previous one" in message
        assert js("return document.getElementById('upload').value") == ""
        assert js("return document.getElementById('original').src") == before
        # a good pick clears the picker's error
        js("document.querySelector('#picker button[data-i=\"3\"]').click();")
        wait.until(lambda b: js("return document.getElementById('error-pick').textContent") == "")
        assert js("return document.querySelector('#picker button.sel').dataset.i") == "3"
        # an accepted upload replaces the image and un-highlights the thumbnail it replaced
        real = tmp_path / "face.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(real)
        browser.find_element(By.ID, "upload").send_keys(str(real))
        wait.until(lambda b: js("return document.getElementById('source').textContent") == "uploaded: face.png")
        assert js("return document.querySelector('#picker button.sel')") is None
        assert js("return document.getElementById('original').src").startswith("data:image/png")
    finally:
        browser.quit()
        server.shutdown()


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    model = {"name": "cgan", "g_width": 8, "d_width": 8, "latent_dim": 8, "label_dim": 4}
    return _trained(tmp_path_factory, tiny_config(name="cgan", model=model, objective={"kind": "adversarial"}))


def test_a_gan_page_moves_along_principal_directions_and_changes_class(gan_run, tmp_path):
    """A GAN has no encoder: the page shows a code with seed, truncation and class instead of held-out images,
    sliders along GANSpace directions, and names and scores its checkpoint as for a VAE."""
    server = _served(gan_run)
    browser = headless_chromium(tmp_path)
    try:
        from selenium.webdriver.support.wait import WebDriverWait

        browser.get(f"http://127.0.0.1:{server.server_port}/")
        wait = WebDriverWait(browser, 60)
        js = browser.execute_script
        wait.until(lambda b: b.execute_script(DECODED_PIXELS) is not None)
        assert js("return document.getElementById('sliders-title').textContent") == "Principal directions"
        assert "PC1" in js("return document.getElementById('sliders').textContent")
        assert js("return [document.getElementById('picker').hidden, document.getElementById('interp-card').hidden,"
                  " document.getElementById('gan-controls').hidden]") == [True, True, False]
        assert js("return document.getElementById('checkpoint').textContent").startswith("best (best.pt, step ")
        wait.until(lambda b: "discriminator" in js("return document.getElementById('metrics').textContent"))

        def changed_by(action: str) -> None:
            before = js(DECODED_PIXELS)
            version = js("return document.getElementById('decoded').dataset.version")
            js(action)
            wait.until(lambda b: js("return document.getElementById('decoded').dataset.version") != version)
            wait.until(lambda b: (p := js(DECODED_PIXELS)) is not None and p != before)

        changed_by("const s = document.querySelector('#sliders input'); s.value = 3; "
                   "s.dispatchEvent(new Event('input'));")
        changed_by("const k = document.getElementById('klass'); k.value = 7; k.dispatchEvent(new Event('change'));")
        changed_by("document.getElementById('seed').value = 5; document.getElementById('reseed').click();")
        assert js("return document.getElementById('error').textContent") == ""
        assert js("return document.getElementById('error-decode').textContent") == ""
    finally:
        browser.quit()
        server.shutdown()
