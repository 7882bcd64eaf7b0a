"""Every reader behind genlab.data.load_data, on small files written by the tests (plus one real-data check)."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import numpy as np
import pytest

from genlab.config import DataConfig
from genlab.data import load_data
from genlab.errors import GenlabError


def load(name: str, root=None, **kw):
    return load_data(DataConfig(name=name, root=None if root is None else str(root), **kw))


def solid_colours(images: np.ndarray) -> list[tuple[int, ...]]:
    """The colour of each image, asserting each one is (near) solid."""
    out = []
    for img in images:
        flat = img.reshape(-1, img.shape[-1]).astype(int)
        assert (flat.max(0) - flat.min(0)).max() <= 8, "expected a single-colour image"
        out.append(tuple(int(v) for v in np.round(flat.mean(0))))
    return out


def nearest(colour, palette, tol=10):
    """Index of the palette colour within tol of colour (JPEG shifts colours a little)."""
    d = [max(abs(a - b) for a, b in zip(colour, p)) for p in palette]
    i = int(np.argmin(d))
    assert d[i] <= tol, f"{colour} matches no fixture colour"
    return i


def write_solids(folder: Path, colours, files, suffix=".png", size=(24, 16), start=0) -> list[Path]:
    return [files.solid(folder / f"img{start + i:03d}{suffix}", c, size=size) for i, c in enumerate(colours)]


# ---------------------------------------------------------------- image_folder


def test_folder_skips_broken_files_names_them_and_warns(tmp_path, files, genlab_log):
    root = tmp_path / "imgs"
    write_solids(root, files.distinct_colours(6), files)
    for kind in files.GOOD_KINDS + files.BROKEN_KINDS:
        files.write_kind(root, kind)
    with genlab_log.at_level(logging.WARNING, logger="genlab.data"):
        data = load("image_folder", root, image_size=8)

    assert len(data.train) + len(data.val) == 6 + len(files.GOOD_KINDS)
    assert data.train.images.dtype == np.uint8 and data.train.images.shape[1:] == (8, 8, 3)
    assert data.channels == 3 and data.image_size == 8
    skipped = dict((Path(p).name, why) for p, why in data.train.skipped + data.val.skipped)
    assert set(skipped) == set(files.BROKEN_KINDS)
    assert skipped["truncated.jpg"] == "truncated image data"
    assert skipped["empty.jpg"] == skipped["page.jpg"] == "not an image file Pillow can identify"

    warnings = [r for r in genlab_log.records if r.name == "genlab.data" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert f"skipped 3 of {6 + len(files.GOOD_KINDS) + 3}" in msg
    assert all(name in msg for name in files.BROKEN_KINDS)


def test_too_many_broken_files_raise_naming_one(tmp_path, files):
    root = tmp_path / "imgs"
    write_solids(root, files.distinct_colours(4), files)
    for kind in files.BROKEN_KINDS:
        files.write_kind(root, kind)
    ok = load("image_folder", root, image_size=8)  # 3 of 7 broken: under the default 0.5
    assert len(ok.train) + len(ok.val) == 4
    with pytest.raises(GenlabError) as info:
        load("image_folder", root, image_size=8, max_skipped_fraction=0.4)
    msg = str(info.value)
    assert "3 of 7" in msg and "max_skipped_fraction=0.4" in msg
    assert any(str(root / name) in msg for name in files.BROKEN_KINDS)


def test_empty_folder_is_an_error(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    (root / "notes.txt").write_text("not an image")
    with pytest.raises(GenlabError, match="no image files"):
        load("image_folder", root)


def test_missing_root_names_the_path(tmp_path):
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(GenlabError) as info:
        load("image_folder", missing)
    assert str(missing) in str(info.value) and "does not exist" in str(info.value)


def test_root_is_required_and_must_be_a_folder(tmp_path, files):
    with pytest.raises(GenlabError, match="data.root is required"):
        load("image_folder", None)
    one = files.solid(tmp_path / "one.png", files.RED)
    with pytest.raises(GenlabError, match="is not a folder"):
        load("image_folder", one)


def test_class_subfolders_give_labels(tmp_path, files):
    reds = [(250, 20, 20), (200, 20, 20), (250, 80, 20), (200, 80, 80)]
    blues = [(20, 20, 250), (20, 20, 200), (20, 80, 250), (80, 80, 200)]
    write_solids(tmp_path / "pics" / "cats", reds, files)
    write_solids(tmp_path / "pics" / "dogs", blues, files, start=10)
    data = load("image_folder", tmp_path / "pics", image_size=8)
    assert data.train.class_names == ["cats", "dogs"] and data.num_classes == 2
    for s in (data.train, data.val):
        assert s.labels is not None and s.labels.dtype == np.int64 and len(s.labels) == len(s)
        for colour, label in zip(solid_colours(s.images), s.labels):
            assert label == (0 if colour in reds else 1) and colour in reds + blues
    assert sorted(data.train.labels.tolist() + data.val.labels.tolist()) == [0] * 4 + [1] * 4

    unlabelled = load("image_folder", tmp_path / "pics", image_size=8, labels=False)
    assert unlabelled.train.labels is None and unlabelled.val.labels is None and unlabelled.num_classes is None


def test_loose_images_or_one_class_give_no_labels(tmp_path, files):
    write_solids(tmp_path / "one" / "only", files.distinct_colours(4), files)
    assert load("image_folder", tmp_path / "one", image_size=8).train.labels is None
    write_solids(tmp_path / "mixed" / "a", files.distinct_colours(2), files)
    write_solids(tmp_path / "mixed" / "b", files.distinct_colours(2), files)
    files.solid(tmp_path / "mixed" / "loose.png", files.RED)
    assert load("image_folder", tmp_path / "mixed", image_size=8).train.labels is None


def test_random_crops_multiply_and_split_by_source_file(tmp_path, files):
    colours = files.distinct_colours(8)
    write_solids(tmp_path / "tex", colours, files, size=(40, 30))
    data = load("image_folder", tmp_path / "tex", image_size=8, random_crops={"per_image": 3, "size": 16})
    assert (len(data.train), len(data.val)) == (3 * 6, 3 * 2)  # 2 of 8 files (0.25) go to validation
    assert data.train.images.shape[1:] == (8, 8, 3)
    train_c, val_c = solid_colours(data.train.images), solid_colours(data.val.images)
    assert set(train_c).isdisjoint(val_c)  # no source image in both splits
    assert set(train_c) | set(val_c) == set(colours)
    assert all(train_c.count(c) == 3 for c in set(train_c)) and all(val_c.count(c) == 3 for c in set(val_c))


def test_grayscale_gives_one_channel(tmp_path, files):
    write_solids(tmp_path / "reds", [files.RED] * 4, files)
    gray = load("image_folder", tmp_path / "reds", image_size=8, grayscale=True)
    assert gray.channels == 1 and gray.train.images.shape[1:] == (8, 8, 1)
    assert abs(int(gray.train.images.mean()) - 76) <= 1  # luma of pure red
    assert gray.normalizer.mean.shape == (1, 1, 1, 1)
    rgb = load("image_folder", tmp_path / "reds", image_size=8)
    assert rgb.channels == 3 and rgb.train.images[0, 0, 0].tolist() == list(files.RED)


def test_split_is_deterministic_and_follows_val_fraction(tmp_path, files):
    colours = files.distinct_colours(20)
    write_solids(tmp_path / "many", colours, files)
    a = load("image_folder", tmp_path / "many", image_size=8)
    b = load("image_folder", tmp_path / "many", image_size=8)
    assert (len(a.train), len(a.val)) == (15, 5)
    assert np.array_equal(a.train.images, b.train.images) and np.array_equal(a.val.images, b.val.images)
    val_a = set(solid_colours(a.val.images))
    assert val_a.isdisjoint(solid_colours(a.train.images))
    half = load("image_folder", tmp_path / "many", image_size=8, val_fraction=0.5)
    assert (len(half.train), len(half.val)) == (10, 10)
    seeds = {frozenset(solid_colours(load("image_folder", tmp_path / "many", image_size=8,
                                          split_seed=s).val.images)) for s in range(1, 4)}
    assert len(seeds | {frozenset(val_a)}) > 1  # another seed, another split


def test_high_val_fraction_still_leaves_training_images(tmp_path, files):
    write_solids(tmp_path / "three", files.distinct_colours(3), files)
    data = load("image_folder", tmp_path / "three", image_size=8, val_fraction=0.9)
    assert (len(data.train), len(data.val)) == (1, 2)


# ---------------------------------------------------------------- npz


def _write_npz(path: Path, n=10, size=12, gray=False, **extra) -> tuple[np.ndarray, np.ndarray]:
    shape = (n, size, size) if gray else (n, size, size, 3)
    images = np.zeros(shape, dtype=np.uint8)
    for i in range(n):
        images[i] = 12 * i + 5  # image i is constant 12 i + 5
    labels = (np.arange(n) % 3).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, images=images, labels=labels, **extra)
    return images, labels


@pytest.mark.parametrize("point_at", ["folder", "file"])
def test_npz_rgb_with_labels(tmp_path, point_at):
    path = tmp_path / "arrays" / "set.npz"
    images, labels = _write_npz(path)
    data = load("npz", path if point_at == "file" else path.parent, image_size=12)
    assert (len(data.train), len(data.val)) == (8, 2)
    assert data.channels == 3 and data.train.images.shape[1:] == (12, 12, 3)
    seen = []
    for s in (data.train, data.val):
        assert s.labels.dtype == np.int64
        for img, label in zip(s.images, s.labels):
            i = (int(img[0, 0, 0]) - 5) // 12
            assert np.array_equal(img, images[i]) and label == labels[i]
            seen.append(i)
    assert sorted(seen) == list(range(10))
    assert load("npz", path, image_size=12, labels=False).train.labels is None


def test_npz_gray_and_resize(tmp_path):
    path = tmp_path / "gray.npz"
    images, _ = _write_npz(path, n=6, size=16, gray=True)
    one = load("npz", path, image_size=16, grayscale=True)
    assert one.channels == 1 and one.train.images.shape[1:] == (16, 16, 1)
    assert {int(v) for v in np.unique(np.concatenate([one.train.images, one.val.images]))} == set(
        np.unique(images).tolist())
    three = load("npz", path, image_size=8)
    assert three.channels == 3 and three.train.images.shape[1:] == (8, 8, 3)
    img = three.train.images[0]
    assert (img == img[..., :1]).all() and len(np.unique(img)) == 1  # gray copied to all channels, still flat


def test_npz_wrong_dtype(tmp_path):
    np.savez(tmp_path / "f.npz", images=np.zeros((4, 8, 8, 3), np.float32))
    with pytest.raises(GenlabError, match="must be uint8") as info:
        load("npz", tmp_path / "f.npz", image_size=8)
    assert "float32" in str(info.value)


def test_npz_missing_images_key_lists_the_keys(tmp_path):
    _write_npz(tmp_path / "s.npz")
    with pytest.raises(GenlabError) as info:
        load("npz", tmp_path / "s.npz", images_key="pics")
    msg = str(info.value)
    assert "'pics'" in msg and "'images'" in msg and "'labels'" in msg and "images_key" in msg


def test_npz_folder_without_npz(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(GenlabError, match="no .npz file"):
        load("npz", tmp_path / "nothing")


# ---------------------------------------------------------------- mnist / fashion_mnist


@pytest.mark.parametrize(("name", "layout", "gz"), [
    ("mnist", "plain", True),
    ("mnist", "torchvision", False),
    ("fashion_mnist", "plain", False),
    ("fashion_mnist", "torchvision", True),
])
def test_idx_sets_load(tmp_path, files, name, layout, gz):
    arrays = files.idx_arrays()
    folder = tmp_path / "root"
    if layout == "torchvision":
        folder = folder / {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}[name] / "raw"
    written = files.write_idx_set(folder, arrays, gz)
    assert written["train_images"].suffix == (".gz" if gz else "")
    raw = written["train_images"].read_bytes()
    assert (gzip.decompress(raw) if gz else raw)[:4] == b"\x00\x00\x08\x03"  # an IDX file, gzipped or not

    data = load(name, tmp_path / "root", image_size=28, use_test_split=True)
    assert data.channels == 1
    assert np.array_equal(data.train.images, arrays["train_images"][..., None])
    assert np.array_equal(data.train.labels, arrays["train_labels"].astype(np.int64))
    assert np.array_equal(data.val.images, arrays["test_images"][..., None])  # use_test_split: val is t10k
    assert np.array_equal(data.val.labels, arrays["test_labels"].astype(np.int64))
    assert len(data.train.class_names) == 10 and data.num_classes == 10
    assert (data.train.class_names[0] == "T-shirt/top") == (name == "fashion_mnist")


def test_idx_without_test_split_splits_train_and_resizes(tmp_path, files):
    arrays = files.idx_arrays()
    files.write_idx_set(tmp_path, arrays, gz=True)
    data = load("mnist", tmp_path, image_size=28, use_test_split=False)
    assert (len(data.train), len(data.val)) == (9, 3)
    train_rows = {arrays["train_images"][i].tobytes() for i in range(12)}
    assert all(img[..., 0].tobytes() in train_rows for img in data.val.images)
    small = load("mnist", tmp_path, image_size=14, use_test_split=True)
    assert small.train.images.shape == (12, 14, 14, 1) and small.val.images.shape == (5, 14, 14, 1)


def test_truncated_idx_files(tmp_path, files):
    arrays = files.idx_arrays()
    plain = files.write_idx_set(tmp_path / "plain", arrays, gz=False)
    plain["train_images"].write_bytes(plain["train_images"].read_bytes()[:-100])
    with pytest.raises(GenlabError, match="truncated") as info:
        load("mnist", tmp_path / "plain")
    assert "train-images-idx3-ubyte" in str(info.value)

    zipped = files.write_idx_set(tmp_path / "zipped", arrays, gz=True)
    data = zipped["test_images"].read_bytes()
    zipped["test_images"].write_bytes(data[: len(data) // 2])
    with pytest.raises(GenlabError, match="cannot read IDX file") as info:
        load("mnist", tmp_path / "zipped", use_test_split=True)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)


def test_missing_idx_file_is_named(tmp_path, files):
    written = files.write_idx_set(tmp_path, files.idx_arrays(), gz=True)
    written["test_labels"].unlink()
    assert len(load("fashion_mnist", tmp_path).val) == 3  # the test split is not read unless used
    with pytest.raises(GenlabError) as info:
        load("fashion_mnist", tmp_path, use_test_split=True)
    assert "t10k-labels-idx1-ubyte" in str(info.value) and "FashionMNIST/raw" in str(info.value)


def test_bad_idx_contents(tmp_path, files):
    arrays = files.idx_arrays()
    written = files.write_idx_set(tmp_path / "count", arrays, gz=False)
    files.write_idx(written["train_labels"], arrays["train_labels"][:11], gz=False)
    with pytest.raises(GenlabError, match="12 images but .* 11 labels"):
        load("mnist", tmp_path / "count")
    written = files.write_idx_set(tmp_path / "magic", arrays, gz=False)
    written["train_images"].write_bytes(b"\x00\x00\x0d\x03" + written["train_images"].read_bytes()[4:])
    with pytest.raises(GenlabError, match="bad magic number 00000d03"):
        load("mnist", tmp_path / "magic")


# ---------------------------------------------------------------- celeba


def _celeba_files(folder: Path, colours, files) -> list[Path]:
    return [files.solid(folder / f"{i + 1:06d}.jpg", c, size=(20, 24), quality=95) for i, c in enumerate(colours)]


def test_celeba_torchvision_layout_follows_partition(tmp_path, files):
    colours = files.distinct_colours(10)
    base = tmp_path / "faces" / "celeba"
    paths = _celeba_files(base / "img_align_celeba", colours, files)
    parts = [0] * 5 + [1] * 3 + [2] * 2
    (base / "list_eval_partition.txt").write_text("".join(f"{p.name} {k}\n" for p, k in zip(paths, parts)))
    data = load("celeba", tmp_path / "faces", image_size=8, use_test_split=True)
    assert data.channels == 3 and data.train.images.shape == (5, 8, 8, 3) and len(data.val) == 3
    assert data.train.labels is None
    assert sorted(nearest(c, colours) for c in solid_colours(data.train.images)) == [0, 1, 2, 3, 4]
    assert sorted(nearest(c, colours) for c in solid_colours(data.val.images)) == [5, 6, 7]
    limited = load("celeba", tmp_path / "faces", image_size=8, limit=2, val_limit=1, use_test_split=True)
    assert (len(limited.train), len(limited.val)) == (2, 1)
    unsplit = load("celeba", tmp_path / "faces", image_size=8, use_test_split=False)
    assert len(unsplit.train) + len(unsplit.val) == 10  # no partition: a random split over every file


def test_celeba_plain_and_nested_folders(tmp_path, files):
    _celeba_files(tmp_path / "plain", files.distinct_colours(8), files)
    data = load("celeba", tmp_path / "plain", image_size=8)
    assert (len(data.train), len(data.val)) == (6, 2)
    _celeba_files(tmp_path / "zip" / "img_align_celeba" / "img_align_celeba", files.distinct_colours(4), files)
    nested = load("celeba", tmp_path / "zip", image_size=8)
    assert len(nested.train) + len(nested.val) == 4


# ---------------------------------------------------------------- digits


def test_digits_bundled_with_scikit_learn():
    data = load("digits", image_size=8)
    assert data.channels == 1 and data.train.images.shape[1:] == (8, 8, 1)
    assert data.train.images.dtype == np.uint8
    assert len(data.train) + len(data.val) == 1797 and len(data.val) == round(1797 * 0.25)
    assert set(data.train.labels.tolist()) == set(range(10)) and data.num_classes == 10
    both = np.concatenate([data.train.images, data.val.images])
    assert both.min() == 0 and both.max() == 255
    rgb = load("digits", image_size=16, grayscale=False, limit=10, val_limit=5)
    assert rgb.channels == 3 and rgb.train.images.shape == (10, 16, 16, 3)


# ---------------------------------------------------------------- limits and roots


@pytest.mark.parametrize("name", ["digits", "npz", "mnist", "image_folder"])
def test_limit_and_val_limit_cap_the_counts(tmp_path, files, name):
    if name == "npz":
        _write_npz(tmp_path / "d.npz", n=20)
    elif name == "mnist":
        files.write_idx_set(tmp_path, files.idx_arrays(n_train=20, n_test=8), gz=True)
    elif name == "image_folder":
        write_solids(tmp_path, files.distinct_colours(20), files)
    root = None if name == "digits" else tmp_path
    full = load(name, root, image_size=8)
    assert len(full.train) > 6 and len(full.val) > 2
    data = load(name, root, image_size=8, limit=6, val_limit=2)
    assert (len(data.train), len(data.val)) == (6, 2)
    # the labelled sources keep one label per kept image; a flat folder has none to keep
    labelled = name != "image_folder"
    assert [None if x.labels is None else len(x.labels) for x in (data.train, data.val)] == \
        ([6, 2] if labelled else [None, None])
    again = load(name, root, image_size=8, limit=6, val_limit=2)
    assert np.array_equal(data.train.images, again.train.images)


def test_relative_root_resolves_under_GENLAB_DATA(tmp_path, files, monkeypatch):
    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    write_solids(store / "pics", files.distinct_colours(4), files)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("GENLAB_DATA", str(store))
    data = load("image_folder", "pics", image_size=8)
    assert len(data.train) + len(data.val) == 4
    with pytest.raises(GenlabError) as info:
        load("image_folder", "absent", image_size=8)
    assert f"GENLAB_DATA={store}" in str(info.value) and str(store / "absent") in str(info.value)

    monkeypatch.delenv("GENLAB_DATA")
    with pytest.raises(GenlabError, match="GENLAB_DATA is not set"):
        load("image_folder", "pics", image_size=8)  # now relative to the working directory, where it is not
    monkeypatch.chdir(store)
    assert len(load("image_folder", "pics", image_size=8).train) == 3


# ---------------------------------------------------------------- the real data sets


@pytest.mark.slow
def test_real_data_sets(real_data):
    assert real_data.is_absolute()  # resolved once: a relative $GENLAB_DATA must not be joined twice
    needed = ["fashion-mnist", "cat-faces/images", "batik-megamendung/images", "stanford-cars"]
    absent = [n for n in needed if not (real_data / n).is_dir()]
    if absent:
        pytest.skip(f"GENLAB_DATA={real_data} lacks {', '.join(absent)} (see shared/data/MANIFEST.md)")

    # a relative root: resolved under $GENLAB_DATA
    fm = load("fashion_mnist", "fashion-mnist", image_size=28, use_test_split=True)
    assert (len(fm.train), len(fm.val)) == (60000, 10000)
    assert fm.train.images.shape[1:] == (28, 28, 1) and fm.val.images.shape[1:] == (28, 28, 1)
    assert np.bincount(fm.val.labels).tolist() == [1000] * 10

    batik = load("image_folder", real_data / "batik-megamendung" / "images", image_size=32, grayscale=True,
                 random_crops={"per_image": 2, "size": 128})
    assert batik.train.skipped == [] and batik.val.skipped == []
    assert len(batik.train) + len(batik.val) == 2 * 46
    assert batik.train.images.shape[1:] == (32, 32, 1) and batik.channels == 1

    cars = load("npz", real_data / "stanford-cars", image_size=16)
    assert cars.num_classes == 196 and len(cars.train) + len(cars.val) == 1960
    assert cars.train.images.shape[1:] == (16, 16, 3)

    cats = load("image_folder", real_data / "cat-faces" / "images", image_size=16, limit=40, val_limit=10)
    assert (len(cats.train), len(cats.val)) == (40, 10) and cats.train.skipped == []
