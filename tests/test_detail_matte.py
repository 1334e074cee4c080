"""The paste-back's ``matte`` and ``transfer`` detail modes (issue 28): edges steepened to the photo's width;
the photo's fine detail copied back where the old and new words agree, matched grain elsewhere."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from dreamtext.edit.detail import edge_slope, matte_sharpen, region_height, restore_detail, transfer_detail
from dreamtext.edit.paste import two_colour_alpha

INK, PAPER = np.array([250, 230, 40], np.float32), np.array([30, 60, 150], np.float32)


def _word(bars, hw=(96, 320), blur=0.0) -> np.ndarray:
    """Two-colour picture, uint8 (h, w, 3): ink bars (x0, x1) on paper, 12 px from the top and bottom."""
    a = np.zeros(hw, np.float32)
    for x0, x1 in bars:
        a[12:hw[0] - 12, x0:x1] = 1.0
    if blur:
        a = cv2.GaussianBlur(a, (0, 0), blur)
    return np.clip(PAPER + a[..., None] * (INK - PAPER) + 0.5, 0, 255).astype(np.uint8)


BARS = [(20, 44), (80, 104), (140, 164), (200, 224), (260, 284)]


def _region(hw=(96, 320)) -> np.ndarray:
    region = np.zeros(hw, bool)
    region[4:-4, 4:-4] = True
    return region


def _enlarged(img: np.ndarray, factor: int = 4) -> np.ndarray:
    """What the paste-back gets: the picture seen at the window's resolution, enlarged bilinearly."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def test_edge_slope_of_a_linear_ramp_is_one_over_its_width():
    for width in (4, 8, 16):
        a = np.tile(np.clip((np.arange(64) - 20) / width, 0, 1).astype(np.float32), (32, 1))
        assert edge_slope(a, np.ones(a.shape, bool)) == pytest.approx(1.0 / width, rel=0.02)
    assert edge_slope(np.zeros((32, 64), np.float32), np.ones((32, 64), bool)) is None  # no edge


def test_region_height_is_the_short_side_of_a_rotated_box():
    region = np.zeros((200, 200), np.uint8)
    box = cv2.boxPoints(((100, 100), (120, 30), 30.0)).astype(np.int32)
    cv2.fillPoly(region, [box], 1)
    assert region_height(region > 0) == pytest.approx(30, abs=2)


def test_matte_steepens_edges_to_the_old_words_and_keeps_the_letters_where_they_were():
    sharp = _word(BARS, blur=0.6)  # the photo's own edges: about 1.5 px
    back = _enlarged(_word(BARS, blur=0.6), 8)  # the same letters through an 8× smaller window
    region = _region()
    height = region_height(region)
    out = matte_sharpen(back, sharp, region, 8.0, has_ref=True)
    inside = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    slope = lambda img: edge_slope(two_colour_alpha(img, region, height)[0], inside)  # noqa: E731
    assert slope(back) < 0.4 * slope(sharp)  # the enlargement's ramps are over twice as wide
    assert slope(out) == pytest.approx(slope(sharp), rel=0.25)
    # the outlines (a = ½) stay put: the same pixels are letters before and after
    before, after = two_colour_alpha(back, region, height)[0] > 0.5, two_colour_alpha(out, region, height)[0] > 0.5
    assert (before ^ after).sum() <= 0.01 * before.sum()
    # the background does not move; the letters keep the crop's own colour (matte recolours nothing)
    paper = np.abs(back.astype(int) - PAPER).max(-1) <= 1
    assert paper.sum() > 0.3 * paper.size and np.abs(out[paper].astype(int) - back[paper]).max() <= 2
    fg = two_colour_alpha(back, region, height)[2]
    assert np.abs(np.median(out[after], 0) - fg).max() <= 3


def test_matte_without_the_old_word_restores_the_windows_own_edge_width():
    back = _enlarged(_word(BARS, blur=0.6))
    region = _region()
    other = np.zeros_like(back)  # what the edit may not read: must not matter without the reference
    out = matte_sharpen(back, other, region, 4.0, has_ref=False)
    assert np.array_equal(out, matte_sharpen(back, back, region, 4.0, has_ref=False))
    height = region_height(region)
    inside = cv2.erode(region.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    s_back = edge_slope(two_colour_alpha(back, region, height)[0], inside)
    s_out = edge_slope(two_colour_alpha(out, region, height)[0], inside)
    # the gain asked for is 0.5 / s_back (0.5: a one-pixel step, the steepest); the 3×3 difference measures less
    assert s_back < 0.3 and 1.5 * s_back < s_out <= 0.5


def test_matte_leaves_a_crop_without_letters_alone():
    flat = np.full((64, 200, 3), 128, np.uint8)
    assert matte_sharpen(flat, flat, _region((64, 200)), 4.0, True) is flat
    back = _enlarged(_word(BARS, blur=0.6))
    assert restore_detail("matte", back, back, _region(), 1.1, True) is back  # below upscale_min
    grain = np.random.default_rng(2).normal(0, 6, back.shape)
    sharp = np.clip(_word(BARS, blur=0.6) + grain, 0, 255).astype(np.uint8)
    for mode, fn in (("matte", matte_sharpen), ("transfer", transfer_detail)):  # sample.upscale picks them
        out = restore_detail(mode, back, sharp, _region(), 4.0, True)
        assert not np.array_equal(out, back) and np.array_equal(out, fn(back, sharp, _region(), 4.0, True))


def test_transfer_copies_the_photos_grain_but_never_the_old_words_edges():
    rng = np.random.default_rng(5)  # not GRAIN_SEED's stream, or the stand-in grain would be the photo's
    grain = rng.normal(0, 6, (96, 320, 3)).astype(np.float32)
    old = np.clip(_word(BARS[:2], blur=0.6).astype(np.float32) + grain, 0, 255).astype(np.uint8)  # letters left
    back = _enlarged(_word(BARS[3:], blur=0.6))  # the new letters on the right, no grain
    region = _region()
    out = transfer_detail(back, old, region, 4.0, True)
    added = out.astype(np.float32) - back
    fine = old.astype(np.float32) - cv2.GaussianBlur(old.astype(np.float32), (0, 0), 2.0)
    # background in both words, far from either: the photo's fine detail, as it is
    calm = np.zeros(region.shape, bool)
    calm[20:76, 120:180] = True
    assert np.corrcoef(added[calm].ravel(), fine[calm].ravel())[0, 1] > 0.95
    # on and around the old letters (new background there): grain of the same spread, none of their edges
    old_letters = (_word(BARS[:2]) == INK.astype(np.uint8)).all(-1).astype(np.uint8)
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))  # within 5 px of them
    near_old = (cv2.dilate(old_letters, disk) > 0) & region
    assert near_old.sum() > 1.4 * old_letters.sum()
    assert abs(np.corrcoef(added[near_old].ravel(), fine[near_old].ravel())[0, 1]) < 0.1
    assert added[near_old].std() == pytest.approx(added[calm].std(), rel=0.25)
    assert np.abs(added).max() < 40  # fine at the old edges is ~±100: none of it came through
    # the new letters keep their colour and place (zero-mean grain only)
    new_letters = two_colour_alpha(back, region, region_height(region))[0] > 0.5
    assert np.abs(out[new_letters].astype(np.float32).mean(0) - back[new_letters].mean(0)).max() < 1.5


def test_transfer_without_the_old_word_reads_nothing_of_the_region():
    rng = np.random.default_rng(1)
    scene = np.clip(_word(BARS[:2], blur=0.6).astype(np.float32) + rng.normal(0, 6, (96, 320, 3)), 0, 255)
    scene = np.pad(scene, ((24, 24), (24, 24), (0, 0)), mode="reflect").astype(np.uint8)  # room around it
    region = np.pad(_region(), 24)
    back = _enlarged(np.pad(_word(BARS[3:], blur=0.6), ((24, 24), (24, 24), (0, 0)), mode="edge"))
    other = scene.copy()
    other[region] = 255 - other[region]  # what a reconstruction may not read
    a = transfer_detail(back, scene, region, 4.0, False)
    assert np.array_equal(a, transfer_detail(back, other, region, 4.0, False))
    assert not np.array_equal(a, back) and (a[region].astype(np.float32) - back[region]).std() > 2.0
