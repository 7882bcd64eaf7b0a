"""Pretrained weights that metrics need: one known file each, pinned by SHA-256, never fetched implicitly.

A metric that downloads inside a computation fails offline and can silently change its network; here a
metric only ever opens a local file whose hash matches, and `genlab weights fetch NAME` is the one place
that touches the network.
"""

from __future__ import annotations

import logging
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from genlab.errors import GenlabError
from genlab.io import atomic_write, sha256_of
from genlab.paths import CACHE_ENV, weights_dir

log = logging.getLogger("genlab.metrics")


@dataclass(frozen=True)
class WeightsFile:
    key: str
    filename: str
    sha256: str
    url: str
    what: str

    def path(self) -> Path:
        return weights_dir() / self.filename


INCEPTION = WeightsFile(
    key="inception",
    filename="weights-inception-2015-12-05-6726825d.pth",
    sha256="6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2",
    url="https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
    what="the FID Inception-v3 weights (TensorFlow's 2015-12-05 FID graph converted for torch-fidelity, "
         "the file torch-fidelity and torchmetrics' FID load)",
)

KNOWN = {w.key: w for w in (INCEPTION,)}


def verified_path(weights: WeightsFile, expected_sha256: str | None = None) -> Path:
    """The local file, after checking its hash; a clear error saying where to put it when absent."""
    path = weights.path()
    expected = expected_sha256 or weights.sha256
    if not path.is_file():
        raise GenlabError(
            f"{weights.what} are not on this machine: expected the file {path} (SHA-256 {expected}). "
            f"Online, run `genlab weights fetch {weights.key}`; offline, copy {weights.filename} from {weights.url} "
            f"into {path.parent} (set ${CACHE_ENV} to use another cache folder). genlab never downloads inside "
            f"a metric.")
    actual = sha256_of(path)
    if actual != expected:
        raise GenlabError(
            f"{path} has SHA-256 {actual}, but {weights.filename} must have {expected}: the file is corrupt, "
            f"truncated or a different network. Delete it and run `genlab weights fetch {weights.key}`.")
    return path


def fetch(weights: WeightsFile, *, timeout: float = 60.0) -> Path:
    """Download to a temporary file, check the hash, then move into place (a partial file is never kept)."""
    dest = weights.path()
    if dest.is_file() and sha256_of(dest) == weights.sha256:
        log.info("%s is already present and verified", dest)
        return dest

    def download(tmp: Path) -> None:
        log.info("downloading %s from %s", weights.filename, weights.url)
        try:
            with urllib.request.urlopen(weights.url, timeout=timeout) as resp, open(tmp, "wb") as out:  # noqa: S310
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
        except OSError as exc:
            raise GenlabError(f"could not download {weights.url} ({exc}); copy the file by hand into "
                              f"{dest} (SHA-256 {weights.sha256}).") from None
        actual = sha256_of(tmp)
        if actual != weights.sha256:
            raise GenlabError(f"the download of {weights.url} has SHA-256 {actual}, expected {weights.sha256}; "
                              f"nothing was kept. Try again, or copy a verified file into {dest}.")

    return atomic_write(dest, download)
