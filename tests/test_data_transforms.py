"""The model-ready transform (DESIGN §6, generalised to the model's aspect ratio)."""

import numpy as np
import pytest

from dreamtext.config import sd2, tiny
from dreamtext.config import test as tiny_test_cfg
from dreamtext.data.record import TextRecord
from dreamtext.data.geometry import apply_matrix, context_window, fill_quad, quad_area, rectify_word, warp
from dreamtext.data.transforms import make_model_sample
from dreamtext.errors import RegionError, TextError


def box(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def test_square_window_matches_the_reference_formula():
    # 1000×500 image, 50×20 word: pad to 1000×1000, crop a square of side √(1000/0.04) = 158.11 around it.
    m = context_window(box(100, 100, 150, 120), (500, 1000), (512, 512), 0.04, 1.0)
    side = np.sqrt(1000 / 0.04)
    s = 512 / side
    np.testing.assert_allclose(m, [[s, 0, -(125 - side / 2) * s], [0, s, -(110 - side / 2) * s], [0, 0, 1]], rtol=1e-9)


def test_large_word_keeps_the_whole_padded_image():
    # A 100×40 image with a word covering 60% of it: no crop; pad 100×40 → 160×40 (aspect 4), centred.
    m = context_window(box(10, 5, 90, 35), (40, 100), (32, 128), 0.35, 1.15)
    np.testing.assert_allclose(m, [[0.8, 0, 30 * 0.8], [0, 0.8, 0], [0, 0, 1]], atol=1e-9)


def test_window_is_at_least_context_scale_times_the_word():
    q = box(200, 100, 400, 120)  # long thin word (200×20) in a 1000×1000 image
    m = context_window(q, (1000, 1000), (32, 128), 0.35, 1.15)
    width_in_image = 128 / m[0, 0]
    assert width_in_image == pytest.approx(200 * 1.15)
    mq = apply_matrix(m, q)
    assert mq[:, 0].min() > 0 and mq[:, 0].max() < 128 and mq[:, 1].min() > 0 and mq[:, 1].max() < 32


def test_window_is_clamped_inside_the_padded_image():
    q = box(0, 0, 20, 10)  # word in the top-left corner of a 400×400 image (aspect 4 frame: 1600×400)
    m = context_window(q, (400, 400), (32, 128), 0.35, 1.15)
    # window origin clamped to the padded frame's corner (-600, 0)
    tl = apply_matrix(np.linalg.inv(m), np.array([[0.0, 0.0]]))[0]
    assert tl[1] == pytest.approx(0.0, abs=1e-6) and tl[0] >= -600 - 1e-6
    mq = apply_matrix(m, q)
    assert (mq >= -1e-4).all() and mq[:, 0].max() <= 128 and mq[:, 1].max() <= 32


def test_inverse_matrix_maps_back():
    q = box(37, 51, 95, 70)
    m = context_window(q, (200, 300), (32, 128), 0.35, 1.15)
    np.testing.assert_allclose(apply_matrix(np.linalg.inv(m), apply_matrix(m, q)), q, atol=1e-3)


def test_bad_quad_is_a_region_error():
    with pytest.raises(RegionError):
        context_window(np.zeros((3, 2)), (10, 10), (32, 128), 0.35)
    with pytest.raises(RegionError):
        context_window(np.full((4, 2), np.nan), (10, 10), (32, 128), 0.35)


def test_quad_area_and_fill_quad_agree():
    q = box(2, 3, 12, 8)
    assert quad_area(q) == 50
    m = fill_quad(q, (16, 16))
    assert m.sum() == 50 and m[3:8, 2:12].all()


def test_warp_puts_a_filled_quad_where_the_quad_goes_under_perspective():
    import cv2

    src_q = box(20, 20, 80, 50)
    mask = fill_quad(src_q, (100, 120))
    h = cv2.getPerspectiveTransform(box(0, 0, 120, 100), np.float32([[5, 8], [110, 0], [118, 95], [0, 90]]))
    warped = warp(mask, h, (100, 120), border="constant") >= 0.5
    expect = fill_quad(apply_matrix(h, src_q), (100, 120)) > 0
    iou = (warped & expect).sum() / (warped | expect).sum()
    assert iou > 0.95


def test_warp_area_averages_strong_downscaling():
    stripes = np.zeros((64, 256), np.float32)
    stripes[:, ::2] = 1.0  # 1-px stripes would alias to 0 or 1 with plain sampling
    m = np.diag([0.125, 0.125, 1.0])
    out = warp(stripes, m, (8, 32), border="replicate")
    assert out.shape == (8, 32)
    assert np.allclose(out, 0.5, atol=0.1)


def _blocks_record(h=200, w=300):
    """Grey image with 4 white blocks as 'characters' at known places; masks = the blocks."""
    img = np.full((h, w, 3), 60, np.uint8)
    quads, masks = [], []
    for i in range(4):
        x0, y0 = 100 + 22 * i, 90
        q = box(x0, y0, x0 + 16, y0 + 24)
        quads.append(q)
        m = fill_quad(q, (h, w)) > 0
        img[m] = 255
        masks.append(m)
    return TextRecord(image=img, text="abcd", word_quad=box(96, 86, 186, 118), char_quads=np.stack(quads),
                      char_masks=np.stack(masks), source="test", key="blocks")


def test_char_masks_land_on_the_characters_after_the_transform():
    cfg = tiny()
    rec = _blocks_record()
    s = make_model_sample(rec, cfg)
    img = (s["image"] + 1) / 2  # (3, 32, 128) in [0, 1]
    bright = img.mean(0) > 0.8
    m = context_window(rec.word_quad, rec.image.shape[:2], cfg.image_size, 0.35, 1.15)
    for i in range(4):
        cm = s["char_masks"][i] > 0
        assert cm.sum() > 10
        assert img.mean(0)[cm].mean() > 0.85  # the mask sits on the white block
        expect = fill_quad(apply_matrix(m, rec.char_quads[i]), cfg.image_size) > 0
        assert (cm & expect).sum() / (cm | expect).sum() > 0.8
    assert (s["char_masks"][4:] == 0).all()
    assert (bright & ~(s["char_masks"][:4].sum(0) > 0)).sum() < 0.15 * bright.sum()
    assert s["has_char_masks"] == 1.0
    np.testing.assert_array_equal(s["char_valid"], [1, 1, 1, 1] + [0] * 8)


def test_sample_keys_shapes_and_region_mask():
    cfg = tiny()
    s = make_model_sample(_blocks_record(), cfg)
    L, (H, W) = cfg.max_len, cfg.image_size
    assert s["image"].shape == (3, H, W) and s["image"].dtype == np.float32
    assert s["mask"].shape == (1, H, W) and set(np.unique(s["mask"])) <= {0.0, 1.0}
    assert s["char_masks"].shape == (L, H, W)
    assert s["token_ids"].dtype == np.int64 and s["token_ids"].shape == (L,)
    assert s["word_crop"].shape == (1, *cfg.text.vis_size)
    assert -1 <= s["image"].min() and s["image"].max() <= 1
    inside = s["mask"][0] > 0
    assert (s["masked_image"][:, inside] == 0).all()
    np.testing.assert_array_equal(s["masked_image"][:, ~inside], s["image"][:, ~inside])
    # every character pixel lies inside the region
    assert (s["char_masks"].sum(0)[~inside] == 0).all()
    assert "glyph" not in s


def test_sample_without_char_masks_and_with_glyph_prior():
    cfg = tiny_test_cfg().override({"glyph_prior": True})
    rec = _blocks_record()
    rec = TextRecord(image=rec.image, text="Hi!", word_quad=rec.word_quad, source="t", key="k")
    s = make_model_sample(rec, cfg)
    assert s["has_char_masks"] == 0.0 and s["char_masks"].sum() == 0
    g = s["glyph"][0]
    assert g.shape == tuple(cfg.image_size) and g.max() > 0.5
    inside = s["mask"][0] > 0
    assert g[~inside].sum() < 0.05 * g.sum()


def test_word_crop_is_the_upright_word():
    img = np.full((100, 200, 3), 255, np.uint8)
    img[40:60, 50:150] = 0  # a black word box, 100×20 (aspect 5 > 4: fills the crop)
    crop = rectify_word(img, box(50, 40, 150, 60), (32, 128))
    assert crop.shape == (32, 128, 3)
    assert crop[4:28, 4:124].max() < 10
    short = rectify_word(img, box(50, 40, 70, 60), (32, 128))  # a square word stays square, centred
    assert short[8:24, 50:78].max() < 10 and short[:, :30].min() > 245


def test_text_too_long_for_the_model_is_a_text_error():
    rec = _blocks_record()
    rec = TextRecord(image=rec.image, text="x" * 20, word_quad=rec.word_quad, source="t", key="k")
    with pytest.raises(TextError, match="at most 12"):
        make_model_sample(rec, tiny())


def test_sd2_square_sample():
    cfg = sd2()
    cfg.text.vis_size = (16, 64)
    s = make_model_sample(_blocks_record(), cfg)
    assert s["image"].shape == (3, 512, 512) and s["mask"].sum() > 0


def test_box_slack_loosens_the_training_region_only():
    from dreamtext.data.geometry import loosen_quad
    from dreamtext.errors import ConfigError

    q = box(10, 20, 110, 40)  # 100 wide, 20 tall
    grown = [loosen_quad(q, np.random.default_rng(s), 0.3) for s in range(200)]
    widths = np.array([g[1, 0] - g[0, 0] for g in grown])
    heights = np.array([g[3, 1] - g[0, 1] for g in grown])
    assert (widths >= 100 - 1e-9).all() and (widths <= 130 + 1e-9).all() and widths.std() > 5
    assert (heights >= 20 - 1e-9).all() and (heights <= 23 + 1e-9).all()
    assert all(g[0, 0] <= 10 and g[1, 0] >= 110 and g[0, 1] <= 20 and g[3, 1] >= 40 for g in grown)  # contains q

    cfg = tiny_test_cfg().override({"glyph_prior": True, "data.box_slack": 0.3})
    rec = _blocks_record()
    plain = make_model_sample(rec, tiny_test_cfg().override({"glyph_prior": True}))
    evaluated = make_model_sample(rec, cfg)  # no rng (evaluation): the word's own quad
    np.testing.assert_array_equal(evaluated["mask"], plain["mask"])
    trained = [make_model_sample(rec, cfg, rng=np.random.default_rng(s)) for s in range(4)]
    for s in trained:
        assert s["mask"].sum() >= plain["mask"].sum()  # grown, never shrunk: the ink stays inside
        assert ((plain["mask"] > 0) <= (s["mask"] > 0)).all()
        assert (s["char_masks"].sum(0)[s["mask"][0] == 0] == 0).all()
        np.testing.assert_array_equal(s["word_quad"], plain["word_quad"])  # the true quad for the losses
        glyph_out = s["glyph"][0][s["mask"][0] == 0].sum()
        assert glyph_out < 0.05 * s["glyph"][0].sum()  # the glyph prior fills the loosened region
    assert max(s["mask"].sum() for s in trained) > 1.05 * plain["mask"].sum()
    assert all(not np.allclose(s["glyph"], plain["glyph"]) for s in trained)  # drawn into the new region
    with pytest.raises(ConfigError, match="data.box_slack"):
        make_model_sample(rec, tiny_test_cfg().override({"data.box_slack": -0.1}))


def test_context_scene_feeds_the_masked_input_only():
    """An edit pair's source (``context``) is what the model sees around the region; the target stays the record's."""
    from dreamtext.errors import DatasetError

    rec = _blocks_record()
    cfg = tiny_test_cfg()
    other = np.full_like(rec.image, 37)
    plain = make_model_sample(rec, cfg)
    s = make_model_sample(rec, cfg, context=other)
    np.testing.assert_array_equal(s["image"], plain["image"])
    np.testing.assert_array_equal(s["mask"], plain["mask"])
    np.testing.assert_array_equal(s["char_masks"], plain["char_masks"])
    keep = s["mask"][0] == 0
    np.testing.assert_allclose(s["masked_image"][:, keep], 37 / 127.5 - 1.0, atol=1e-5)
    assert (s["masked_image"][:, ~keep] == 0).all()
    with pytest.raises(DatasetError, match="context scene"):
        make_model_sample(rec, cfg, context=other[:-1])
