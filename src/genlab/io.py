"""Writing files so that a crash never leaves half of one, and naming a file by its content.

Every file genlab writes that something else later trusts (checkpoints, configs, metrics, history rewrites,
exports, cached classifiers, downloaded weights, reports) goes through `atomic_write`: the bytes go to a
temporary file in the same folder, are flushed to disk, and the temporary file is renamed over the
target (atomic on POSIX), so a kill at any moment leaves the old complete file or the new complete one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

Writer = Callable[[Path], None]


def atomic_write(path: Path, content: bytes | str | Writer, *, fsync: bool = True) -> Path:
    """Write `content` (bytes, text, or a function that fills the temporary path it is given) to `path`.

    The temporary name keeps the target's suffix (exporters look at it) and carries the process id, so
    processes writing the same cache entry never share one. It is created with the usual permissions
    (0666 minus the umask), not mkstemp's 0600, so a file in a shared cache stays readable by the group.
    A failure removes the temporary file and leaves the target as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        if callable(content):
            content(tmp)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            with open(tmp, "wb") as f:
                f.write(data)
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        _fsync_dir(path.parent)
    return path


def stale_temporaries(folder: Path) -> list[Path]:
    """Temporary files that a process killed inside `atomic_write` left in `folder`."""
    return sorted(folder.glob(".*.tmp*")) if folder.is_dir() else []


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks so a large checkpoint does not sit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Makes the rename itself durable; some file systems refuse to open or sync a folder, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
