"""Decoded image sets cached as uint8 .npy files, memory-mapped on the next run.

Decoding thousands of JPEGs (and random crops of large textures) costs seconds to minutes every run;
the decoded, resized arrays are what training reads anyway. The cache key covers every data setting
that changes pixels or the split, and the size and modification time of every file under data.root,
so an edited data set is decoded again rather than served stale. A cache that cannot be written (no
space, read-only) only costs the speed-up; one that cannot be read is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from genlab.data.arrays import ImageSet
from genlab.data.roots import resolve_root
from genlab.data.source import Source
from genlab.paths import cache_dir
from genlab.sections import DataConfig

log = logging.getLogger("genlab.data")

CACHE_VERSION = 1
NOT_IN_KEY = {"cache", "hflip", "normalize", "download", "binarize"}  # applied after decoding, or not about pixels


def data_cache_dir() -> Path:
    return cache_dir() / "data"


def cache_key(cfg: DataConfig, root: Path) -> str:
    h = hashlib.sha256()
    settings = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in NOT_IN_KEY}
    h.update(json.dumps({"version": CACHE_VERSION, "root": str(root.resolve()), "data": settings},
                        sort_keys=True).encode())
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            st = os.stat(os.path.join(folder, name))
            h.update(f"{os.path.relpath(os.path.join(folder, name), root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _entry(cfg: DataConfig, root: Path) -> Path:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in root.resolve().name) or "data"
    return data_cache_dir() / f"{cfg.name}-{stem}-{cfg.image_size}px-{cache_key(cfg, root)[:16]}"


def _save(folder: Path, train: ImageSet, val: ImageSet) -> None:
    need = train.images.nbytes + val.images.nbytes
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if need * 2 > free:
        log.info("decoded images (%.0f MB) not cached: %.0f MB free in %s", need / 1e6, free / 1e6, folder.parent)
        return
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        meta = {"version": CACHE_VERSION}
        for split, s in (("train", train), ("val", val)):
            np.save(tmp / f"{split}_images.npy", s.images)
            if s.labels is not None:
                np.save(tmp / f"{split}_labels.npy", s.labels)
            meta[split] = {"n": len(s), "class_names": s.class_names, "skipped": s.skipped,
                           "labels": s.labels is not None}
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.replace(tmp, folder)  # atomic: a reader sees the whole entry or none
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load(folder: Path) -> tuple[ImageSet, ImageSet]:
    meta = json.loads((folder / "meta.json").read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError(f"cache version {meta.get('version')}")
    sets = []
    for split in ("train", "val"):
        m = meta[split]
        images = np.load(folder / f"{split}_images.npy", mmap_mode="c")  # copy-on-write: never alters the file
        labels = np.load(folder / f"{split}_labels.npy") if m["labels"] else None
        if len(images) != m["n"]:
            raise ValueError(f"{split} holds {len(images)} images, expected {m['n']}")
        sets.append(ImageSet(images, labels, m["class_names"], [tuple(s) for s in m["skipped"]]))
    return sets[0], sets[1]


def writes_cache(cfg: DataConfig, source: Source) -> bool:
    """Sources decoded from files (Source.cached) keep their arrays when data.cache is on; arrays are fast already."""
    return cfg.cache and source.cached


def load_cached(cfg: DataConfig, source: Source, channels: int) -> tuple[ImageSet, ImageSet]:
    if not writes_cache(cfg, source):
        return source.read(cfg, channels)
    root = resolve_root(cfg)
    folder = _entry(cfg, root)
    if folder.is_dir():
        try:
            train, val = _load(folder)
            skipped = train.skipped + val.skipped
            log.info("decoded images from the cache %s (%d train / %d validation)%s", folder, len(train), len(val),
                     f"; {len(skipped)} files were skipped when it was built" if skipped else "")
            return train, val
        except (OSError, ValueError, KeyError) as exc:
            log.warning("data cache %s is unreadable (%s); decoding again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
    train, val = source.read(cfg, channels)
    try:
        _save(folder, train, val)
    except OSError as exc:
        log.warning("decoded images not cached in %s (%s); the run goes on without the cache", folder, exc)
    return train, val
