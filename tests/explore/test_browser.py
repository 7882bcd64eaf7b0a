"""The explorer in a real headless Chromium: served on a free port, a slider moved, the image re-decoded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
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


def test_moving_a_slider_redraws_the_decoded_image(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(tiny_config(name="vae", data={"image_size": 16}), out=tmp_path)
    finally:
        torch.set_num_threads(threads)
    server = make_server(tmp_path / "vae", "127.0.0.1", 0)
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
