"""BatchLoader order, resume, drop_last and flips; Normalizer ranges."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data import BatchLoader, Normalizer


def numbered(n: int = 10, size: int = 4, channels: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Image i is constant i: its pixels say which image it is, its label too."""
    images = np.repeat(np.arange(n, dtype=np.uint8), size * size * channels).reshape(n, size, size, channels)
    return images, np.arange(n, dtype=np.int64)


def loader(images, labels, **kw) -> BatchLoader:
    opts = {"batch_size": 4, "shuffle": True, "seed": 3, "normalizer": Normalizer("zero_one", images.shape[-1])}
    return BatchLoader(images, labels, **{**opts, **kw})


def ids(batches) -> list[list[int]]:
    return [b.labels.tolist() for b in batches]


def same_batches(a, b) -> bool:
    a, b = list(a), list(b)
    return len(a) == len(b) and all(
        torch.equal(x.images, y.images) and torch.equal(x.labels, y.labels) for x, y in zip(a, b))


def test_batches_hold_the_right_images_in_nchw():
    images, labels = numbered(10)
    for batch in loader(images, labels).batches(0):
        assert batch.images.dtype == torch.float32 and batch.images.shape[1:] == (1, 4, 4)
        assert batch.labels.dtype == torch.int64
        # every image still sits next to its own label after the sorted read and the un-sorting
        values = (batch.images * 255).round().amax(dim=(1, 2, 3)).long()
        assert torch.equal(values, batch.labels)
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(1, 2, 3, 3)  # (N, H, W, C)
    x = next(loader(rgb, None, batch_size=1).batches(0)).images
    assert x.shape == (1, 3, 2, 3)
    assert torch.allclose(x * 255, torch.from_numpy(rgb).permute(0, 3, 1, 2).float())


def test_epoch_is_a_permutation_fixed_by_seed_and_epoch():
    images, labels = numbered(10)
    a, b = loader(images, labels), loader(images, labels)
    assert same_batches(a.batches(2), b.batches(2))
    order = sum(ids(a.batches(0)), [])
    assert sorted(order) == list(range(10)) and order != list(range(10))
    assert order == a.order(0).tolist()  # within each batch too, the permutation's order is kept
    assert order != sum(ids(a.batches(1)), [])  # another epoch, another order
    assert order != sum(ids(loader(images, labels, seed=4).batches(0)), [])  # another seed too
    assert sum(ids(loader(images, labels, shuffle=False).batches(5)), []) == list(range(10))


@pytest.mark.parametrize("hflip", [False, True])
@pytest.mark.parametrize("start", [0, 1, 2, 3])
def test_start_gives_the_tail_of_the_epoch(hflip, start):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (11, 4, 4, 3), dtype=np.uint8)
    a = loader(images, np.arange(11), hflip=hflip)
    full = list(a.batches(epoch=4))
    assert len(full) == 3
    assert same_batches(loader(images, np.arange(11), hflip=hflip).batches(epoch=4, start=start), full[start:])


def test_drop_last_and_len():
    images, labels = numbered(10)
    keep = loader(images, labels, drop_last=False)
    drop = loader(images, labels, drop_last=True)
    assert (len(keep), len(drop)) == (3, 2) and keep.num_images == 10
    assert [len(b) for b in ids(keep.batches(0))] == [4, 4, 2]
    assert [len(b) for b in ids(drop.batches(0))] == [4, 4]
    assert sum(ids(drop.batches(0)), []) == sum(ids(keep.batches(0)), [])[:8]
    assert len(loader(*numbered(8), drop_last=True)) == len(loader(*numbered(8))) == 2
    assert list(keep.batches(0, start=3)) == []


def test_no_labels_give_none():
    images, _ = numbered(5)
    assert all(b.labels is None for b in loader(images, None).batches(0))


def test_hflip_flips_about_half_deterministically():
    n = 400
    images = np.zeros((n, 2, 4, 1), dtype=np.uint8)
    images[:, :, 0] = 255  # white left column, so a flipped image has it on the right
    labels = np.arange(n)

    def flipped(ld, epoch):
        out = []
        for b in ld.batches(epoch):
            left, right = b.images[:, 0, 0, 0], b.images[:, 0, 0, -1]
            assert torch.all((left == 1) ^ (right == 1))  # each image is either as stored or mirrored
            out += [bool(f) for f in right == 1]
        return out

    a = flipped(loader(images, labels, hflip=True, batch_size=64), 0)
    assert 0.4 * n < sum(a) < 0.6 * n
    assert a == flipped(loader(images, labels, hflip=True, batch_size=64), 0)
    assert a != flipped(loader(images, labels, hflip=True, batch_size=64), 1)
    assert sum(flipped(loader(images, labels, hflip=False, batch_size=64), 0)) == 0


def test_flipped_image_is_the_mirror_of_the_stored_one():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (64, 3, 5, 3), dtype=np.uint8)
    plain = loader(images, np.arange(64), hflip=False, batch_size=64)
    flip = loader(images, np.arange(64), hflip=True, batch_size=64)
    p, f = next(plain.batches(0)), next(flip.batches(0))
    assert torch.equal(p.labels, f.labels)  # flips do not change the order
    mirrored = [torch.equal(a.flip(-1), b) and not torch.equal(a, b) for a, b in zip(p.images, f.images)]
    same = [torch.equal(a, b) for a, b in zip(p.images, f.images)]
    assert all(m or s for m, s in zip(mirrored, same)) and 16 < sum(mirrored) < 48


@pytest.mark.parametrize("channels", [1, 3])
def test_minus_one_one_maps_black_and_white(channels):
    norm = Normalizer("minus_one_one", channels)
    x = torch.tensor([0, 255, 51], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, channels, 1, 3)
    y = norm(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert torch.allclose(y[0, :, 0], torch.tensor([-1.0, 1.0, -0.6]).expand(channels, 3))
    assert torch.allclose(norm.to_unit(y), x.float() / 255)
    assert norm.output_range() == (-1.0, 1.0)
    assert torch.equal(norm.to_unit(torch.tensor([[-3.0, 3.0]]).view(1, 1, 1, 2)).flatten(), torch.tensor([0.0, 1.0]))


def test_zero_one_and_imagenet():
    x = torch.tensor([0, 128, 255], dtype=torch.uint8).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    zo = Normalizer("zero_one", 3)
    assert torch.allclose(zo(x)[0, 0, 0], torch.tensor([0.0, 128 / 255, 1.0]))
    inet = Normalizer("imagenet", 3)
    y = inet(x)
    assert torch.allclose(y[0, :, 0, 0], -torch.tensor([0.485, 0.456, 0.406]) / torch.tensor([0.229, 0.224, 0.225]))
    assert torch.allclose(inet.to_unit(y), x.float() / 255, atol=1e-6)
    gray = Normalizer("imagenet", 1)
    mean, std = (0.485 + 0.456 + 0.406) / 3, (0.229 + 0.224 + 0.225) / 3
    assert gray.mean.shape == gray.std.shape == (1, 1, 1, 1)
    assert gray.mean.item() == pytest.approx(mean) and gray.std.item() == pytest.approx(std)
    g = gray(torch.tensor([[[[0, 255]]]], dtype=torch.uint8))
    assert g.flatten().tolist() == pytest.approx([-mean / std, (1 - mean) / std])
    lo, hi = gray.output_range()
    assert (lo, hi) == (pytest.approx(-mean / std), pytest.approx((1 - mean) / std))


def test_placement_policy_keeps_small_sets_on_the_gpu_and_pins_the_rest():
    from genlab.data.loader import choose_placement

    gib = 1 << 30
    assert choose_placement(10 * gib, torch.device("cpu")) == "host"
    assert choose_placement(1 * gib, torch.device("cuda:0"), free_device_bytes=40 * gib) == "device"
    assert choose_placement(20 * gib, torch.device("cuda:0"), free_device_bytes=40 * gib) == "pinned"
    assert choose_placement(11 * gib, torch.device("cuda", 1), free_device_bytes=40 * gib) == "pinned"


def test_device_resident_path_gives_the_same_batches(monkeypatch):
    """The GPU-resident indexing path, run on the CPU by forcing its placement: same images, order, flips."""
    from genlab.data import loader as L

    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (50, 6, 6, 3), dtype=np.uint8), rng.integers(0, 5, 50)
    kw = dict(batch_size=8, shuffle=True, seed=3, normalizer=L.Normalizer("minus_one_one", 3), hflip=True)
    host = list(L.BatchLoader(images, labels, **kw).batches(epoch=2, start=1))
    monkeypatch.setattr(L, "choose_placement", lambda *a, **k: "device")
    resident = L.BatchLoader(images, labels, **kw)
    assert resident.placement == "device" and resident._on_device is not None
    for a, b in zip(host, resident.batches(epoch=2, start=1), strict=True):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
