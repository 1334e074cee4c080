"""Mask overlays and picture grids (dreamtext.visualize)."""

import numpy as np
import pytest
from PIL import Image

from dreamtext.visualize import before_after, char_colors, image_grid, mask_legend, mask_overlay


def test_char_colors_are_distinct_and_stable():
    c = char_colors(12)
    assert c.shape == (12, 3) and c.dtype == np.uint8
    assert len({tuple(v) for v in c}) == 12
    np.testing.assert_array_equal(char_colors(5), c[:5])  # a prefix of the palette
    # neighbours differ clearly (Manhattan distance in RGB)
    assert min(np.abs(c[i].astype(int) - c[i + 1]).sum() for i in range(11)) > 80


def test_mask_overlay_paints_each_character_in_its_colour():
    img = np.full((20, 40, 3), 100, np.uint8)
    masks = np.zeros((3, 20, 40), bool)
    masks[0, :, :10] = True
    masks[1, :, 10:20] = True
    masks[2, :, 15:25] = True  # overlaps character 1 on x 15..19
    colors = char_colors(3).astype(float)
    out = mask_overlay(img, masks, alpha=0.5, dim=0.0)
    assert out.shape == img.shape and out.dtype == np.uint8
    np.testing.assert_allclose(out[5, 5], 0.5 * 100 + 0.5 * colors[0], atol=1)
    np.testing.assert_allclose(out[5, 12], 0.5 * 100 + 0.5 * colors[1], atol=1)
    np.testing.assert_allclose(out[5, 17], 0.5 * 100 + 0.5 * (colors[1] + colors[2]) / 2, atol=1)
    np.testing.assert_array_equal(out[5, 30], [100, 100, 100])  # unclaimed, not dimmed
    # unclaimed pixels are dimmed towards grey when asked (grey input stays grey)
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[..., 0] = 200
    dimmed = mask_overlay(rgb, masks, dim=0.5)
    np.testing.assert_allclose(dimmed[5, 30], [0.5 * 200 + 0.5 * 200 / 3, 0.5 * 200 / 3, 0.5 * 200 / 3], atol=1)


def test_mask_overlay_rejects_masks_of_another_size():
    with pytest.raises(ValueError, match="masks must be"):
        mask_overlay(np.zeros((10, 10, 3), np.uint8), np.zeros((2, 5, 5), bool))


def test_image_grid_layout():
    a = np.zeros((10, 20, 3), np.uint8)
    b = Image.new("L", (30, 16), 255)  # grayscale PIL works too
    grid = image_grid([[a, b], [a]], pad=2)
    assert grid.shape == ((16 + 10) + 3 * 2, (20 + 30) + 3 * 2, 3)
    assert np.all(grid[2:12, 2:22] == 0) and np.all(grid[2:18, 24:54] == 255)
    captioned = image_grid([[a, b]], captions=[["x", "y"]], pad=2, caption_height=12)
    assert captioned.shape[0] == 16 + 12 + 2 * 2
    scaled = image_grid([[a, b]], cell_height=20, pad=0)
    assert scaled.shape == (20, 40 + 38, 3)


def test_before_after_has_three_panels_and_legend():
    before = np.zeros((50, 100, 3), np.uint8)
    after = np.full((50, 100, 3), 255, np.uint8)
    masks = np.zeros((2, 50, 100), bool)
    masks[0, 10:20, 10:20] = True
    pic = before_after(before, after, [masks], texts=["ab"])
    assert pic.shape[1] == 3 * 100 + 4 * 4
    assert pic.shape[0] > 50 + 18  # captions and legend strip
    # the masked pixels of the third panel carry character 0's colour
    x0 = 4 + 2 * (100 + 4)
    assert not np.array_equal(pic[4 + 15, x0 + 15], [255, 255, 255])
    np.testing.assert_array_equal(pic[4 + 40, x0 + 60], [255, 255, 255])
    legend = mask_legend(["ab", "c"], 200)
    assert legend.shape == (18, 200, 3)
    red_like = (np.abs(legend.astype(int) - char_colors(1)[0]).sum(-1) < 60).sum()
    assert red_like > 5  # 'a' and 'c' are drawn in colour 0


def test_regions_overlay_restarts_the_palette_per_region():
    from dreamtext.visualize import regions_overlay

    img = np.zeros((10, 20, 3), np.uint8)
    a = np.zeros((2, 10, 20), bool)
    a[1, :, :5] = True
    b = np.zeros((1, 10, 20), bool)
    b[0, :, 15:] = True
    out = regions_overlay(img, [a, b], alpha=1.0)
    c = char_colors(2)
    np.testing.assert_array_equal(out[5, 2], c[1])  # region 0, character 1
    np.testing.assert_array_equal(out[5, 17], c[0])  # region 1, character 0
    np.testing.assert_array_equal(out[5, 10], [0, 0, 0])
    assert regions_overlay(img, []).shape == img.shape
