"""decode.py on the files real folders hold: CMYK, palettes, alpha, 16-bit, EXIF rotation, junk."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

from genlab.data.decode import Geometry, describe_failure, fit_square, open_image, random_crops, to_array


def _px(img: Image.Image, x: int, y: int):
    return np.asarray(img)[y, x]


def _close(a, b, tol=6):
    return np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= tol


def test_rgb_jpeg_keeps_size_and_colour(zoo, files):
    img = open_image(zoo["rgb.jpg"], grayscale=False)
    assert img.mode == "RGB" and img.size == (24, 16)
    assert _close(_px(img, 5, 5), files.RED)
    gray = open_image(zoo["rgb.jpg"], grayscale=True)
    assert gray.mode == "L" and gray.size == (24, 16)
    assert abs(int(_px(gray, 5, 5)) - 76) <= 3  # ITU-R 601 luma of pure red: 0.299 * 255


def test_cmyk_jpeg_becomes_rgb_with_the_right_colour(zoo, files):
    with Image.open(zoo["cmyk.jpg"]) as raw:
        assert raw.mode == "CMYK"  # the fixture really is CMYK
    img = open_image(zoo["cmyk.jpg"], grayscale=False)
    assert img.mode == "RGB"
    assert _close(_px(img, 3, 3), files.RED)


def test_palette_png_transparency_becomes_white(zoo, files):
    with Image.open(zoo["palette.png"]) as raw:
        assert raw.mode == "P" and "transparency" in raw.info
    img = open_image(zoo["palette.png"], grayscale=False)
    assert img.mode == "RGB"
    assert tuple(_px(img, 2, 2)) == files.WHITE  # palette index 0 is black but transparent
    assert tuple(_px(img, 20, 2)) == files.BLUE


def test_rgba_png_transparent_pixels_become_white(zoo, files, tmp_path):
    img = open_image(zoo["rgba.png"], grayscale=False)
    assert img.mode == "RGB"
    assert tuple(_px(img, 2, 2)) == files.WHITE  # fully transparent black
    assert tuple(_px(img, 20, 2)) == files.GREEN  # opaque green stays green
    half = tmp_path / "half.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 128)).save(half)  # half-transparent red over white
    r, g, b = _px(open_image(half, grayscale=False), 1, 1)
    assert r == 255 and abs(int(g) - 127) <= 1 and abs(int(b) - 127) <= 1
    assert _px(open_image(zoo["rgba.png"], grayscale=True), 2, 2) == 255


def test_16bit_gray_png_maps_full_range(zoo):
    with Image.open(zoo["gray16.png"]) as raw:
        assert raw.mode == "I;16"
    img = open_image(zoo["gray16.png"], grayscale=True)
    assert img.mode == "L" and img.size == (24, 16)
    arr = np.asarray(img)
    assert arr[:, :12].max() == 0 and arr[:, 12:].min() == 255
    rgb = np.asarray(open_image(zoo["gray16.png"], grayscale=False))
    assert rgb.shape == (16, 24, 3) and rgb[0, 20].tolist() == [255, 255, 255] and rgb[0, 0].tolist() == [0, 0, 0]


def test_dark_16bit_png_is_scaled_as_16bit(tmp_path):
    """A 16-bit file is on a 0..65535 scale whatever its content: a nearly black one stays nearly black."""
    arr = np.array([[0, 100, 255]], dtype=np.uint16)  # 0, 0.15 % and 0.4 % of full scale
    Image.fromarray(arr).save(tmp_path / "dark16.png")
    with Image.open(tmp_path / "dark16.png") as raw:
        assert raw.mode == "I;16"
    out = np.asarray(open_image(tmp_path / "dark16.png", grayscale=True))
    assert out.tolist() == [[0, 0, 1]]  # not [[0, 100, 255]]: no stretch by the image's own maximum


def test_exif_orientation_is_applied(zoo, files):
    with Image.open(zoo["exif6.jpg"]) as raw:
        assert raw.size == (40, 20) and raw.getexif().get(0x0112) == 6
    img = open_image(zoo["exif6.jpg"], grayscale=False)
    assert img.size == (20, 40)  # width and height swapped
    # stored: left half red, right half blue; rotated 90 degrees clockwise: red on top, blue below
    assert _close(_px(img, 10, 2), files.RED, tol=30)
    assert _close(_px(img, 10, 37), files.BLUE, tol=30)
    square = np.asarray(fit_square(img, Geometry(size=8, grayscale=False)))
    assert square.shape == (8, 8, 3)
    assert _close(square[0, 4], files.RED, tol=30) and _close(square[-1, 4], files.BLUE, tol=30)


def test_png_with_jpg_extension_loads(zoo, files):
    img = open_image(zoo["png_as.jpg"], grayscale=False)
    assert img.mode == "RGB" and img.size == (24, 16)
    assert tuple(_px(img, 0, 0)) == files.GREEN


def test_truncated_jpeg_raises_and_is_described(zoo):
    with pytest.raises(OSError) as info:
        open_image(zoo["truncated.jpg"], grayscale=False)
    assert describe_failure(info.value) == "truncated image data"


@pytest.mark.parametrize("kind", ["empty.jpg", "page.jpg"])
def test_non_images_raise_and_are_described(zoo, kind):
    with pytest.raises(UnidentifiedImageError) as info:
        open_image(zoo[kind], grayscale=False)
    assert describe_failure(info.value) == "not an image file Pillow can identify"


@pytest.mark.parametrize("pixels", [150, 400])  # over the limit: a warning; over twice the limit: an error
def test_decompression_bomb_guard(tmp_path, monkeypatch, pixels):
    path = tmp_path / "big.png"
    Image.new("RGB", (pixels // 10, 10)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises((Image.DecompressionBombError, Image.DecompressionBombWarning)) as info:
        open_image(path, grayscale=False)
    assert describe_failure(info.value) == "image too large (decompression-bomb guard)"


def test_describe_other_failures_names_the_type():
    assert describe_failure(ValueError("bad header")) == "ValueError: bad header"
    assert describe_failure(OSError("disk on fire")) == "OSError: disk on fire"


def test_fit_square_keeps_aspect_by_taking_the_centre(files):
    img = Image.new("RGB", (30, 10), files.RED)
    img.paste(Image.new("RGB", (10, 10), files.GREEN), (10, 0))
    img.paste(Image.new("RGB", (10, 10), files.BLUE), (20, 0))
    out = fit_square(img, Geometry(size=8, grayscale=False))
    assert out.size == (8, 8) and out.mode == "RGB"
    arr = np.asarray(out)
    assert _close(arr[4, 4], files.GREEN, tol=2)  # the centre square of a 3:1 image is its middle third
    assert arr[:, :, 1].min() > 200  # no red or blue band squeezed in: the aspect ratio is kept
    big = fit_square(img, Geometry(size=20, grayscale=False))
    assert big.size == (20, 20)


def test_fit_square_center_crop(files):
    img = Image.new("L", (40, 40), 0)
    img.paste(255, (15, 15, 25, 25))
    out = np.asarray(fit_square(img, Geometry(size=8, grayscale=True, center_crop=10)))
    assert out.shape == (8, 8) and out.min() == 255  # only the white centre is left
    whole = np.asarray(fit_square(img, Geometry(size=8, grayscale=True)))
    assert whole.min() == 0  # without the crop the black border stays
    oversize = fit_square(img, Geometry(size=8, grayscale=True, center_crop=100))
    assert oversize.size == (8, 8) and np.array_equal(np.asarray(oversize), whole)


def _position_image(w: int, h: int) -> Image.Image:
    """Red channel = x, green = y: every crop tells where it was taken from."""
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[:, :, 0] = np.arange(w)[None, :]
    arr[:, :, 1] = np.arange(h)[:, None]
    return Image.fromarray(arr)


def test_random_crops_are_windows_of_the_source():
    img = _position_image(50, 40)
    src = np.asarray(img)
    crops = random_crops(img, 6, crop=16, size=16, rng=np.random.default_rng(3))
    assert len(crops) == 6
    corners = set()
    for c in crops:
        arr = np.asarray(c)
        assert c.size == (16, 16) and c.mode == "RGB" and arr.dtype == np.uint8
        left, top = int(arr[0, 0, 0]), int(arr[0, 0, 1])
        assert np.array_equal(arr, src[top:top + 16, left:left + 16])
        corners.add((left, top))
    assert len(corners) > 1  # random positions, not one fixed crop


def test_random_crops_resize_deterministic_and_scale_up_small_images():
    img = _position_image(50, 40)
    a = random_crops(img, 4, crop=32, size=8, rng=np.random.default_rng(7))
    b = random_crops(img, 4, crop=32, size=8, rng=np.random.default_rng(7))
    c = random_crops(img, 4, crop=32, size=8, rng=np.random.default_rng(8))
    assert [x.size for x in a] == [(8, 8)] * 4
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))
    assert not all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, c))
    small = Image.new("L", (10, 20), 99)
    out = random_crops(small, 3, crop=16, size=12, rng=np.random.default_rng(0))
    assert [x.size for x in out] == [(12, 12)] * 3 and all(x.mode == "L" for x in out)
    assert all(np.asarray(x).min() == 99 == np.asarray(x).max() for x in out)


def test_to_array_shapes():
    gray = to_array(Image.new("L", (5, 3), 7))
    rgb = to_array(Image.new("RGB", (5, 3), (1, 2, 3)))
    assert gray.shape == (3, 5, 1) and gray.dtype == np.uint8 and gray.max() == 7
    assert rgb.shape == (3, 5, 3) and rgb.dtype == np.uint8 and rgb[2, 4].tolist() == [1, 2, 3]
