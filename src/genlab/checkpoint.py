"""Checkpoints that survive crashes and cannot run code when loaded.

A checkpoint is written by genlab.io.atomic_write (a temporary file in the same folder, flushed to
disk, renamed over the old one), so a kill at any moment leaves either the previous complete file or
the new complete file. The state is serialised with torch.save, wrapped with its
SHA-256 and a format version, and always read back with `weights_only=True`: a flipped byte is
reported as corruption, and a crafted pickle is refused instead of executed.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from pathlib import Path
from typing import Any

import torch

from genlab import __version__
from genlab.errors import GenlabError
from genlab.io import atomic_write

FORMAT_VERSION = 1
PAUSE_ENV = "GENLAB_TEST_PAUSE_IN_CHECKPOINT"


def save_atomic(state: dict[str, Any], path: Path) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    blob = buf.getvalue()
    wrapper = {
        "format_version": FORMAT_VERSION,
        "genlab_version": __version__,
        "sha256": hashlib.sha256(blob).hexdigest(),
        "blob": torch.frombuffer(bytearray(blob), dtype=torch.uint8),
    }
    out = io.BytesIO()
    torch.save(wrapper, out)
    payload = out.getbuffer()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            f.write(payload[: len(payload) // 2])
            _test_pause(f)
            f.write(payload[len(payload) // 2:])

    atomic_write(path, write)


def _test_pause(f) -> None:
    """Crash-safety tests set $GENLAB_TEST_PAUSE_IN_CHECKPOINT to a marker path: the write stops half
    way, the marker appears, and the test kills the process exactly there."""
    marker = os.environ.get(PAUSE_ENV)
    if marker:
        f.flush()
        Path(marker).touch()
        time.sleep(3600)


def load(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    if not path.is_file():
        raise GenlabError(f"checkpoint {path} does not exist.")
    try:
        wrapper = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the unpickler raises many types; all mean "not a loadable checkpoint"
        raise GenlabError(_unreadable(path, exc)) from None
    if not isinstance(wrapper, dict) or "format_version" not in wrapper or "blob" not in wrapper:
        raise GenlabError(f"{path} is not a genlab checkpoint (no format version or payload).")
    version = wrapper["format_version"]
    if version > FORMAT_VERSION:
        raise GenlabError(f"{path} was written by genlab {wrapper.get('genlab_version', '?')} in checkpoint "
                          f"format {version}; this genlab ({__version__}) reads formats up to {FORMAT_VERSION}. "
                          f"Upgrade genlab to load it.")
    blob = wrapper["blob"].numpy().tobytes()
    if hashlib.sha256(blob).hexdigest() != wrapper.get("sha256"):
        raise GenlabError(f"{path} is corrupt: its content does not match the SHA-256 recorded when it was "
                          f"written. If the run's other checkpoint is intact, copy best.pt over last.pt to "
                          f"resume from it.")
    try:
        return torch.load(io.BytesIO(blob), map_location=map_location, weights_only=True)
    except Exception as exc:
        raise GenlabError(_unreadable(path, exc)) from None


def _unreadable(path: Path, exc: Exception) -> str:
    full = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # torch's message carries terminal colour codes
    if "weights_only" in full or "Weights only" in full or "Unsupported global" in full:
        # Name what the file asked for, not torch's advice on how to load it anyway.
        found = re.search(r"Unsupported global: GLOBAL (\S+)", full)
        what = f"it asks for {found.group(1)}" if found else full.split("\n")[0][:200]
        return (f"{path} was refused: it contains pickled Python objects that could run code when loaded "
                f"({what}); nothing in it was run. genlab loads only tensors and plain data: use a checkpoint "
                f"that genlab wrote.")
    first = full.split("\n")[0].split(". ")[0].rstrip(".")  # torch appends paragraphs of advice
    return f"{path} is truncated, corrupt or not a checkpoint ({type(exc).__name__}: {first[:200]})."
