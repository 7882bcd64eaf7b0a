"""Tiny configs shared by the engine and objective tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from genlab.config import RunConfig, apply_overrides, validate


def tiny_config(**sections: dict[str, Any]) -> RunConfig:
    base = {
        "name": "tiny",
        "model": {"name": "vae", "hidden_dims": [4, 8], "latent_dim": 3},
        "objective": {"kind": "reconstruction", "beta": 1.0},
        "data": {"name": "digits", "image_size": 12, "limit": 96, "val_limit": 24, "hflip": True},
        "optim": {"lr": 0.003, "scheduler": "cosine"},
        "train": {"epochs": 3, "batch_size": 16, "seed": 1, "deterministic": True, "progress": False,
                  "figures": False, "epoch_samples": False, "checkpoint_every_steps": 4},
    }
    for key, value in sections.items():
        replace = not isinstance(value, dict) or (key == "model" and value.get("name", "vae") != "vae") or (
            key == "objective" and value.get("kind", "reconstruction") != "reconstruction")
        base[key] = value if replace else {**base[key], **value}
    return validate(base)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Tiny trainings on one CPU thread (faster than two for tensors this small), the caller's setting after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def with_overrides(cfg: RunConfig, *overrides: str) -> RunConfig:
    return validate(apply_overrides(cfg.to_dict(), list(overrides)))


CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1280,900")


def find_chromium() -> str | None:
    import os
    import shutil
    from pathlib import Path

    import pytest

    explicit = os.environ.get("GENLAB_CHROMIUM")
    if explicit:
        if not (Path(explicit).is_file() and os.access(explicit, os.X_OK)):
            pytest.fail(f"GENLAB_CHROMIUM={explicit} is not an executable file")
        return explicit
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def headless_chromium(tmp_path):
    """A selenium-driven headless Chromium (caller quits it); skips with the reason where none is installed."""
    import shutil
    from pathlib import Path

    import pytest

    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium binary: not at /usr/bin/chromium, not on PATH, GENLAB_CHROMIUM unset "
                    "(apt-get install chromium chromium-driver)")
    driver_path = shutil.which("chromedriver") or next(
        (p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if Path(p).is_file()), None)
    assert driver_path, f"Chromium found at {chromium} but no chromedriver (apt-get install chromium-driver)"
    try:
        from selenium import webdriver
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[dev]'")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=driver_path, log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(60)
    return browser
