"""Atomic writes and the image reader every entry point uses."""

import os

import numpy as np
import pytest
from PIL import Image

from dreamtext.errors import ImageError
from dreamtext.io_utils import atomic_dir, atomic_save_image, atomic_write_text, read_image_rgb


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "a" / "f.txt"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert sorted(os.listdir(p.parent)) == ["f.txt"]


def test_atomic_dir_keeps_old_contents_when_the_body_fails(tmp_path):
    d = tmp_path / "ckpt"
    with atomic_dir(d) as tmp:
        (tmp / "x").write_text("1")
    with pytest.raises(RuntimeError):
        with atomic_dir(d) as tmp:
            (tmp / "x").write_text("2")
            raise RuntimeError("killed")
    assert (d / "x").read_text() == "1"
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]


def test_read_image_handles_exif_alpha_gray_and_16bit(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    # EXIF orientation 6 (rotate 90° clockwise to display): the stored 4×6 image shows as 6×4.
    img = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "rot.jpg", exif=exif, quality=100)
    assert read_image_rgb(tmp_path / "rot.jpg").shape == (6, 4, 3)

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent → composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    assert (read_image_rgb(tmp_path / "a.png") == 255).all()

    Image.fromarray(np.full((3, 5), 77, np.uint8), "L").save(tmp_path / "g.png")
    g = read_image_rgb(tmp_path / "g.png")
    assert g.shape == (3, 5, 3) and (g == 77).all()

    Image.fromarray(np.full((2, 3), 65535, np.uint16)).save(tmp_path / "d.png")
    assert (read_image_rgb(tmp_path / "d.png") == 255).all()


def test_read_image_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="bad.png"):
        read_image_rgb(bad)
    with pytest.raises(ImageError, match="does not exist"):
        read_image_rgb(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="limit"):
        Image.new("RGB", (100, 100)).save(tmp_path / "big.png")
        read_image_rgb(tmp_path / "big.png", max_pixels=50 * 50)


def test_atomic_save_image_round_trips(tmp_path):
    arr = (np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5)
    atomic_save_image(tmp_path / "x.png", arr)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), arr)
    with pytest.raises(ImageError, match="format"):
        atomic_save_image(tmp_path / "x.unknown", arr)
