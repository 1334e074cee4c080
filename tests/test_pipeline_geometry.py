"""Regions, feathering, paste-back and mask warping of the editing pipeline (no model needed)."""

import numpy as np
import pytest

from dreamtext.config import load_config
from dreamtext.data.geometry import apply_matrix, fill_quad
from dreamtext.edit.paste import (feather_alpha, letters_over_scene, local_background, masks_to_image, paste_back,
                                  old_ink, poisson_harmonize, quad_height, recolor_to_scene, region_support)
from dreamtext.edit.regions import box_to_quad, parse_region, text_angle, window_matrix
from dreamtext.errors import ConfigError, RegionError

HW = (100, 200)


def test_box_becomes_reading_order_quad():
    q = parse_region((10, 20, 110, 52), HW)
    assert q.dtype == np.float32
    np.testing.assert_array_equal(q, [[10, 20], [110, 20], [110, 52], [10, 52]])
    assert quad_height(q) == pytest.approx(32)


def test_quad_forms_are_equivalent():
    quad = [[10, 20], [110, 25], [108, 60], [12, 55]]
    a = parse_region(quad, HW)
    b = parse_region([v for p in quad for v in p], HW)
    c = parse_region({"quad": quad}, HW)
    d = parse_region({"box": [10, 20, 110, 60]}, HW)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(d, box_to_quad((10, 20, 110, 60)))


@pytest.mark.parametrize("region, words", [
    ((10, 20, 10, 50), "zero area"),
    ((50, 20, 10, 40), "zero area"),
    ([[0, 0], [10, 10], [20, 20], [30, 30]], "zero area"),
    ((10, 20, 250, 50), "outside"),
    ((-30, -30, -5, -5), "outside"),
    ((1, 2, 3), "must be a box"),
    ((1, 2, "a", 4), "not a list of numbers"),
    ((1, 2, float("nan"), 4), "non-finite"),
    ([[10, 20], [12, 60], [108, 60], [110, 25]], "top-left, top-right"),  # counter-clockwise
    ([[10, 20], [110, 60], [110, 20], [10, 60]], "top-left, top-right"),  # bow-tie
    ({"box": [1, 2, 3, 4], "quad": [1] * 8}, "exactly one of"),
])
def test_bad_regions_name_the_problem(region, words):
    with pytest.raises(RegionError, match=words):
        parse_region(region, HW)


def test_feather_is_one_inside_zero_beyond_band():
    quad = box_to_quad((50, 40, 150, 60))
    alpha = feather_alpha(quad, HW, 6.0)
    inside = fill_quad(quad, HW).astype(bool)
    assert np.all(alpha[inside] == 1.0)
    assert alpha[40, 50] == 1.0 and alpha[59, 149] == 1.0 and inside.sum() == 100 * 20
    # 3 px right of the box: partly blended; ≥ 6 px away: exactly 0.
    assert 0.3 < alpha[50, 153] < 0.8
    assert alpha[50, 156] == 0.0 and alpha[30, 100] == 0.0
    assert np.all(alpha[:34] == 0) and np.all(alpha[:, 156:] == 0)
    # monotonic along a row leaving the box
    row = alpha[50, 150:160]
    assert np.all(np.diff(row) <= 0)


def _scale_matrix(sx, sy, tx, ty):
    return np.array([[sx, 0, tx], [0, sy, ty], [0, 0, 1]], np.float64)


def test_paste_back_leaves_pixels_outside_band_byte_identical():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (*HW, 3), dtype=np.uint8)
    quad = np.array([[60, 30], [140, 36], [138, 62], [58, 56]], np.float32)  # slanted
    # window: image x∈[40,168), y∈[20,52+...] → crop 32×128 (scale 1, 1 px = 1 px) shifted
    matrix = _scale_matrix(1.0, 1.0, -40.0, -25.0)
    crop = np.full((64, 128, 3), 7, np.uint8)
    out = paste_back(image, crop, matrix, quad, feather_px=4.0)
    assert out.shape == image.shape and out.dtype == np.uint8
    support = region_support(quad, HW, 4.0)
    assert np.array_equal(out[~support], image[~support])
    inside = fill_quad(quad, HW).astype(bool)
    assert np.all(out[inside] == 7)  # fully replaced inside the region
    assert not np.array_equal(out[support & ~inside], image[support & ~inside])  # blended band
    assert support.sum() < inside.sum() + 2 * 4 * (80 + 30) + 100  # the band is only ~feather wide


def test_paste_back_warps_crop_content_to_image_place():
    image = np.zeros((80, 160, 3), np.uint8)
    quad = box_to_quad((40, 20, 120, 40))
    matrix = _scale_matrix(0.5, 0.5, -20.0, -5.0)  # image (40..120, 20..40) → crop (0..40, 5..15)
    crop = np.zeros((40, 64, 3), np.uint8)
    crop[:, :20] = 200  # left half of the region in crop x∈[0,20) ↔ image x∈[40,80)
    out = paste_back(image, crop, matrix, quad, feather_px=0.0)
    assert np.all(out[22:38, 42:77] == 200)
    assert np.all(out[22:38, 83:118] == 0)


def test_masks_to_image_inverts_the_window():
    matrix = _scale_matrix(0.5, 0.5, -20.0, -5.0)
    masks = np.zeros((2, 16, 32), bool)  # at half the model resolution (32×64)
    masks[0, 2:4, 0:5] = True  # model px y 4..8, x 0..10 → image y 18..26, x 40..60
    out = masks_to_image(masks, matrix, (32, 64), (80, 160))
    assert out.shape == (2, 80, 160) and out.dtype == bool
    ys, xs = np.nonzero(out[0])
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (18, 25, 40, 59)
    # warped as coverage and cut at ½: a 4× enlarged rectangle keeps its sides and loses its four corner pixels
    # (coverage 0.625² there), not blocks of 4 px
    assert out[0].sum() == 8 * 20 - 4 and not out[0, 18, 40] and out[0, 18, 41] and out[0, 19, 40]
    assert not out[1].any()
    support = np.zeros((80, 160), bool)
    support[:, :50] = True
    assert masks_to_image(masks, matrix, (32, 64), (80, 160), support)[0].sum() == 8 * 10 - 2


def test_window_matches_training_for_level_text_and_rotates_tilted_text():
    cfg = load_config("tiny")
    level = box_to_quad((100, 200, 300, 240))
    from dreamtext.data.geometry import context_window

    expected = context_window(level, (400, 600), cfg.image_size, cfg.data.min_word_area_frac, cfg.data.context_scale)
    np.testing.assert_array_equal(window_matrix(level, (400, 600), cfg), expected)
    # the same word tilted by 20° about its centre comes out level (and inside the crop)
    a = np.radians(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = level.mean(0)
    tilted = ((level - centre) @ rot.T + centre).astype(np.float32)
    assert text_angle(tilted) == pytest.approx(20, abs=1e-4)
    in_model = apply_matrix(window_matrix(tilted, (400, 600), cfg), tilted)
    assert text_angle(in_model) == pytest.approx(0, abs=1e-3)
    h, w = cfg.image_size
    assert in_model[:, 0].min() >= 0 and in_model[:, 0].max() <= w and in_model[:, 1].min() >= 0
    assert in_model[:, 1].max() <= h
    off = load_config("tiny").override({"sample.rectify_deg": 0.0})
    assert text_angle(apply_matrix(window_matrix(tilted, (400, 600), off), tilted)) == pytest.approx(20, abs=1e-3)


def test_poisson_harmonize_removes_a_colour_cast_and_keeps_the_letters():
    rng = np.random.default_rng(1)
    h, w = 40, 90
    yy, xx = np.mgrid[0:h, 0:w]
    scene = np.stack([60 + xx * 0.8, 90 + yy * 0.5, 140 + 0 * xx], -1)  # a smooth sky-like gradient
    region = np.zeros((h, w), bool)
    region[8:32, 10:80] = True
    letters = np.zeros((h, w), bool)
    letters[14:26, 20:24] = letters[14:26, 40:44] = letters[14:26, 60:64] = True  # three strokes
    src = scene + np.array([50.0, 45.0, 40.0])  # the model's region: too pale ...
    src[letters] = 250.0  # ... with white letters on it
    src = np.clip(src + rng.normal(0, 1, src.shape), 0, 255).astype(np.uint8)
    dst = np.clip(scene, 0, 255).astype(np.uint8)

    # The same image as source and destination comes back unchanged (±1 of rounding).
    assert np.abs(poisson_harmonize(dst, dst, region).astype(int) - dst).max() <= 1
    out = poisson_harmonize(src, dst, region).astype(np.float64)
    background = region & ~letters
    cast_before = np.abs(src[background].astype(float) - scene[background]).mean()
    cast_after = np.abs(out[background] - scene[background]).mean()
    assert cast_before > 40 and cast_after < 6  # the pale cast is gone
    contrast = out[letters].mean() - out[background].mean()  # letters still ~+150 over their background
    assert contrast == pytest.approx(src[letters].astype(float).mean() - src[background].astype(float).mean(), abs=12)
    assert np.array_equal(poisson_harmonize(src, dst, np.zeros((h, w), bool)), src)  # no region: nothing to do


def _striped_scene(h, w):
    """A textured background: a colour gradient with faint vertical stripes (brick-like), float (h, w, 3)."""
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = 12.0 * ((xx // 6) % 2)
    return np.stack([150 + xx * 0.4 + stripes, 80 + yy * 0.6 + stripes, 60 + 0 * xx + stripes], -1)


def test_letters_over_scene_removes_the_old_letters_and_draws_the_new_ones_on_the_scene():
    rng = np.random.default_rng(3)
    h, w = 48, 120
    scene = _striped_scene(h, w)
    region = np.zeros((h, w), bool)
    region[10:38, 8:112] = True
    old = np.zeros((h, w), bool)  # the photograph's word: dark bars (3 px strokes, 20 px tall)
    for x in (16, 36, 56, 76, 96):
        old[14:34, x:x + 3] = True
    new = np.zeros((h, w), bool)  # the model's word: white bars between the old ones
    for x in (25, 45, 65, 85):
        new[14:34, x:x + 4] = True
    patch = scene.copy()
    patch[old] = 20.0
    patch = np.clip(patch + rng.normal(0, 1.5, patch.shape), 0, 255).astype(np.uint8)
    back = np.full((h, w, 3), 200.0)  # the model's region: a flat, pale, re-invented background ...
    back[new] = 250.0  # ... with the new letters on it
    back = np.clip(back + rng.normal(0, 1.5, back.shape), 0, 255).astype(np.uint8)

    out = letters_over_scene(back, patch, region, height=28.0).astype(np.float64)
    assert np.array_equal(out[~region], patch[~region])  # outside the region nothing moves
    gone = old & ~cv2_dilate(new, 3)
    assert np.abs(out[gone] - scene[gone]).mean() < 15  # old strokes inpainted to the scene (they were ~100 off)
    assert np.abs(patch[gone].astype(float) - scene[gone]).mean() > 80
    core = new & ~cv2_dilate(~new, 1)
    assert np.abs(out[core] - 20).max() < 12  # the new letters, in the photograph's letter colour (not 250)
    plain = region & ~cv2_dilate(old | new, 3)
    assert np.abs(out[plain] - scene[plain]).mean() < 4  # the scene's own background, not the pale 200
    # a model that drew no letters gives the bare scene; an empty region changes nothing
    bare = letters_over_scene(np.full((h, w, 3), 200, np.uint8), patch, region, height=28.0).astype(np.float64)
    assert np.abs(bare[gone] - scene[gone]).mean() < 15 and np.abs(bare[core] - scene[core]).mean() < 15
    assert np.array_equal(letters_over_scene(back, patch, np.zeros((h, w), bool), 28.0), patch)
    # a photograph without letters there: the new letters keep the model's colour
    blank = np.clip(scene + rng.normal(0, 1.5, scene.shape), 0, 255).astype(np.uint8)
    onto_blank = letters_over_scene(back, blank, region, height=28.0).astype(np.float64)
    assert np.abs(onto_blank[core] - 250).max() < 12
    assert np.abs(onto_blank[plain] - scene[plain]).mean() < 4


def test_recolor_keeps_the_crops_letters_in_the_old_ink_over_the_photos_background_colour():
    rng = np.random.default_rng(5)
    h, w = 48, 120
    region = np.zeros((h, w), bool)
    region[10:38, 8:112] = True
    old = np.zeros((h, w), bool)  # the photograph's word: white bars on blue
    for x in (16, 36, 56, 76, 96):
        old[14:34, x:x + 3] = True
    patch = np.empty((h, w, 3))
    patch[:] = (30, 60, 160)
    patch[old] = (245, 245, 245)
    patch = np.clip(patch + rng.normal(0, 1.5, patch.shape), 0, 255).astype(np.uint8)
    new = np.zeros((h, w), bool)  # the model's word: grey bars on green, with one half-way rim column each
    back = np.empty((h, w, 3))
    back[:] = (60, 120, 60)
    for x in (25, 45, 65, 85):
        new[14:34, x:x + 4] = True
        back[14:34, x + 4] = (60 + 150) / 2, (120 + 150) / 2, (60 + 150) / 2
    back[new] = (150, 150, 150)
    back = np.clip(back + rng.normal(0, 1.5, back.shape), 0, 255).astype(np.uint8)

    out = recolor_to_scene(back, patch, region, height=28.0).astype(np.float64)
    core = new & ~cv2_dilate(~new, 1)
    assert np.abs(out[core] - 245).max() < 12  # the letters in the old ink (they were 150 grey)
    plain = region & ~cv2_dilate(old | new, 3)
    assert np.abs(out[plain] - (30, 60, 160)).mean() < 5  # the photo's blue, not the model's green
    assert np.abs(out[~region] - (30, 60, 160)).mean() < 8  # the shift covers the feather band too
    rim = np.zeros((h, w), bool)
    rim[16:32, [29, 49, 69, 89]] = True  # the rims stay half-way between the new ink and background
    assert np.abs(out[rim] - ((245 + 30) / 2, (245 + 60) / 2, (245 + 160) / 2)).mean() < 12
    # the shapes are the crop's own: the letters are where the model drew them, not where the old ones were
    gone = old & ~cv2_dilate(new, 3)
    assert np.abs(out[gone] - (30, 60, 160)).mean() < 8
    assert np.array_equal(recolor_to_scene(back, patch, np.zeros((h, w), bool), 28.0), back)
    # a photograph without letters there: everything moves with the background (green → blue), so the
    # model's own letter-to-background contrast is kept
    blank = np.clip(np.full((h, w, 3), (30, 60, 160)) + rng.normal(0, 1.5, (h, w, 3)), 0, 255).astype(np.uint8)
    onto_blank = recolor_to_scene(back, blank, region, height=28.0).astype(np.float64)
    assert np.abs(onto_blank[core] - (150 - 30, 150 - 60, 150 + 100)).max() < 12
    assert np.abs(onto_blank[plain] - (30, 60, 160)).mean() < 5


def test_old_ink_picks_the_fill_or_the_outline_nearest_the_new_letters_colour():
    """Outlined letters (a light-blue fill inside a black outline, on grey): both stand out from the grey, so
    their median is neither; the part nearest the colour the model drew in is the ink."""
    h, w = 48, 140
    patch = np.full((h, w, 3), 120, np.uint8)
    region = np.zeros((h, w), bool)
    region[6:42, 4:136] = True
    for x in range(12, 124, 22):
        patch[10:38, x:x + 10] = (20, 20, 20)  # outline: 10 px wide bars ...
        patch[13:35, x + 3:x + 7] = (150, 200, 250)  # ... filled with light blue
    letters, plain = old_ink(patch, region, 28.0)
    assert letters.sum() > 0 and plain is not None
    _, fill = old_ink(patch, region, 28.0, near=np.array([200.0, 220.0, 240.0]))
    _, outline = old_ink(patch, region, 28.0, near=np.array([60.0, 50.0, 40.0]))
    assert np.abs(fill - (150, 200, 250)).max() < 3 and np.abs(outline - 20).max() < 3
    # a word of one colour has one part: the same ink whatever the model drew
    solid = np.full((h, w, 3), 120, np.uint8)
    solid[10:38, 12:120:3] = (240, 240, 240)
    assert np.abs(old_ink(solid, region, 28.0, near=np.array([0.0, 0.0, 0.0]))[1] - 240).max() < 3


def cv2_dilate(mask, radius):
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)).astype(bool)


def test_local_background_follows_a_background_that_changes_along_the_word():
    h, w = 40, 160
    picture = np.zeros((h, w, 3), np.uint8)
    picture[:, : w // 2] = (200, 160, 110)  # wood on the left, red saucer on the right
    picture[:, w // 2:] = (150, 30, 30)
    for x in range(8, w - 8, 14):
        picture[10:30, x:x + 3] = 255  # white strokes across both
    bg = local_background(picture, height=20.0)
    assert tuple(bg[20, 20]) == (200, 160, 110) and tuple(bg[20, w - 20]) == (150, 30, 30)
    assert tuple(bg[20, 8]) == (200, 160, 110)  # under a stroke: the colour around it


def test_inpaint_paste_back_keeps_outside_pixels():
    rng = np.random.default_rng(4)
    image = np.clip(_striped_scene(*HW) + rng.normal(0, 2, (*HW, 3)), 0, 255).astype(np.uint8)
    crop = np.full((64, 128, 3), 90, np.uint8)
    crop[20:44, 30:40] = 240
    for quad in (np.array([[60, 30], [140, 36], [138, 62], [58, 56]], np.float32), box_to_quad((0, 0, 70, 30))):
        matrix = _scale_matrix(1.0, 1.0, -float(quad[:, 0].min()), -float(quad[:, 1].min()))
        out = paste_back(image, crop, matrix, quad, feather_px=4.0, blend="inpaint")
        support = region_support(quad, HW, 4.0)
        assert np.array_equal(out[~support], image[~support])
        inside = fill_quad(quad, HW).astype(bool)
        # the crop's flat 90 is not pasted: the region keeps the scene's colour (around 150 in red) ...
        assert abs(out[inside][:, 0].astype(float).mean() - image[inside][:, 0].astype(float).mean()) < 25
        assert (out[inside] > 225).all(-1).sum() > 50  # ... and gains the crop's white stroke


def test_poisson_paste_back_keeps_outside_pixels_and_handles_image_edges():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (*HW, 3), dtype=np.uint8)
    crop = np.full((64, 128, 3), 200, np.uint8)
    for quad in (np.array([[60, 30], [140, 36], [138, 62], [58, 56]], np.float32),
                 box_to_quad((0, 0, 70, 30)), box_to_quad((150, 70, 200, 100))):  # touching the image's corners
        matrix = _scale_matrix(1.0, 1.0, -float(quad[:, 0].min()), -float(quad[:, 1].min()))
        out = paste_back(image, crop, matrix, quad, feather_px=4.0, blend="poisson")
        support = region_support(quad, HW, 4.0)
        assert np.array_equal(out[~support], image[~support])
        inside = fill_quad(quad, HW).astype(bool)
        # a flat crop pasted Poisson-style takes the surrounding noise's mean, not 200
        assert abs(out[inside].mean() - image[support & ~inside].mean()) < 30
    with pytest.raises(ConfigError, match="unknown blend 'soft'"):
        paste_back(image, crop, matrix, quad, feather_px=4.0, blend="soft")


def test_inpaint_sharpens_an_enlarged_crop_by_its_enlargement():
    """A crop pasted 3× enlarged has letter edges 3× wider; inpaint stretches its alpha back to about a crop
    pixel's width, so far fewer pixels are caught half-way between background and letter than with feather."""
    image = np.full((120, 420, 3), 60, np.uint8)
    crop = np.full((32, 128, 3), 60, np.uint8)
    crop[8:24, 40:48] = 230  # one bright bar, no old letters in the photograph
    quad = box_to_quad((18, 12, 402, 108))  # the crop's 128×32 enlarged 3×, origin (18, 12)
    matrix = _scale_matrix(1 / 3, 1 / 3, -6.0, -4.0)
    row = 60
    def halfway(out):
        v = out[row, :, 0].astype(float)
        return int(((v > 60 + 0.1 * 170) & (v < 60 + 0.9 * 170)).sum())

    feather = paste_back(image, crop, matrix, quad, feather_px=4.0, blend="feather")
    inpaint = paste_back(image, crop, matrix, quad, feather_px=4.0, blend="inpaint")
    assert (inpaint[row, 140:160, 0] > 200).all()  # the bar's middle is drawn in its own colour (no old ink)
    assert halfway(feather) >= 4 and halfway(inpaint) <= halfway(feather) / 2
