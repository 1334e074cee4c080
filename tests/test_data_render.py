"""The synthetic generator, its fonts and word lists (DESIGN §6)."""

import numpy as np
import pytest

from dreamtext.charset import CHARSET
from dreamtext.data.fonts import list_fonts, plain_font_path
from dreamtext.data.render import SynthGenerator, SynthParams
from dreamtext.data.geometry import fill_quad
from dreamtext.data.words import edit_word_for, english_words, random_word, sample_word
from dreamtext.errors import DatasetError

CLEAN = dict(p_outline=0, p_shadow=0, p_blur=0, p_noise=0, p_jpeg=0, p_gradient=0)


def test_same_seed_and_index_give_the_same_record():
    a, b = SynthGenerator(seed=3).sample(7), SynthGenerator(seed=3).sample(7)
    assert a.text == b.text and a.key == b.key
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.char_masks, b.char_masks)
    np.testing.assert_array_equal(a.char_quads, b.char_quads)
    c = SynthGenerator(seed=4).sample(7)
    assert c.text != a.text or not np.array_equal(c.image, a.image)


@pytest.fixture(scope="module")
def records():
    gen = SynthGenerator(seed=11)
    return [gen.sample(i) for i in range(40)]


def test_records_are_consistent(records):
    for r in records:
        n = len(r.text)
        assert 1 <= n <= 12 and all(c in CHARSET for c in r.text)
        assert r.char_quads.shape == (n, 4, 2) and r.char_masks.shape == (n,) + r.image.shape[:2]
        h, w = r.image.shape[:2]
        assert (r.word_quad >= -1).all() and (r.word_quad[:, 0] <= w + 1).all() and (r.word_quad[:, 1] <= h + 1).all()
        assert (r.char_masks.sum(0) <= 1).all()  # each pixel belongs to at most one character


def test_every_char_mask_is_nonempty_and_inside_its_char_quad(records):
    import cv2

    for r in records:
        for i in range(len(r.text)):
            m = r.char_masks[i]
            assert m.sum() >= 3, (r.key, r.text, i)
            box = cv2.dilate(fill_quad(r.char_quads[i], m.shape), np.ones((3, 3), np.uint8)) > 0
            assert (m & box).sum() >= 0.9 * m.sum(), (r.key, r.text, i)


def test_char_masks_follow_reading_order(records):
    for r in records:
        if len(r.text) < 2:
            continue
        d = r.word_quad[1] - r.word_quad[0]  # top-left → top-right
        centres = [np.argwhere(m)[:, ::-1].mean(0) for m in r.char_masks]
        proj = [c @ d for c in centres]
        # characters advance along the word's top edge (letters may overlap slightly, so allow small dips)
        assert proj[-1] > proj[0]
        assert sum(b < a - 2 for a, b in zip(proj, proj[1:])) == 0, (r.key, r.text)


def test_masks_are_the_glyph_pixels_not_boxes():
    gen = SynthGenerator(SynthParams(**CLEAN), seed=5)
    diffs, fill = [], []
    for i in range(20):
        r = gen.sample(i)
        luma = r.image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        ink = r.char_masks.any(0)
        word = fill_quad(r.word_quad, ink.shape) > 0
        import cv2

        near_ink = cv2.dilate(ink.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        bg = word & ~near_ink
        if bg.sum() < 10:
            continue
        diffs.append(abs(luma[ink].mean() - luma[bg].mean()))
        boxes = np.zeros_like(ink)
        for q in r.char_quads:
            boxes |= fill_quad(q, ink.shape) > 0
        fill.append(ink.sum() / max(boxes.sum(), 1))
    assert np.median(diffs) > 40  # mask pixels have the ink's colour, not the background's
    assert np.median(fill) < 0.8  # and are far from filling the character boxes


def test_curved_text_keeps_exact_masks_and_ordered_quads():
    gen = SynthGenerator(SynthParams(p_arc=1.0, words="english", **CLEAN), seed=2)
    for i in range(6):
        r = gen.sample(i)
        for k in range(len(r.text)):
            box = fill_quad(r.char_quads[k], r.char_masks[k].shape) > 0
            assert (r.char_masks[k] & box).sum() >= 0.8 * r.char_masks[k].sum()
        assert r.char_masks.any(0)[fill_quad(r.word_quad, r.char_masks.shape[1:]) > 0].sum() >= \
            0.9 * r.char_masks.sum()


def test_variety_of_fonts_and_scenes(records):
    assert len(list_fonts()) >= 20
    assert plain_font_path().endswith(".ttf") or plain_font_path().endswith(".otf")
    sizes = {r.image.shape for r in records}
    assert len(sizes) > 20
    assert len({r.text for r in records}) == len(records)
    assert any(r.text.isupper() for r in records) and any(r.text.islower() for r in records)


def test_word_splits_are_fixed_and_disjoint():
    train, bench = english_words("train"), english_words("bench")
    assert len(train) > 5000 and len(bench) > 500
    assert not set(train) & set(bench)
    assert all(len(w) <= 6 for w in english_words("bench", 6))
    with pytest.raises(DatasetError, match="unknown word split"):
        english_words("test")


def test_random_words_and_sampling_respect_max_len():
    rng = np.random.default_rng(0)
    words = [sample_word(rng, 5) for _ in range(300)]
    assert all(1 <= len(w) <= 5 and all(c in CHARSET for c in w) for w in words)
    assert any(any(c.isdigit() for c in w) for w in words)
    assert len(random_word(rng, 12, length=7)) == 7
    with pytest.raises(DatasetError, match="word source"):
        sample_word(rng, 5, words="klingon")


def test_edit_word_for_is_fixed_same_length_and_different():
    for text, idx in [("Street", 0), ("OPEN", 3), ("x7!", 5), ("a", 9)]:
        e = edit_word_for(text, idx)
        assert len(e) == len(text) and e != text and e == edit_word_for(text, idx)
    assert edit_word_for("OPEN", 3).isupper()
    bench = set(english_words("bench"))
    assert edit_word_for("street", 1) in bench


def test_font_size_setting_scales_the_scene():
    from dreamtext.config import tiny

    def median_height(cfg):
        gen = SynthGenerator(cfg, seed=1)
        return np.median([np.ptp(gen.sample(i).char_quads[..., 1]) for i in range(12)])

    small = median_height(tiny())
    big = median_height(tiny().override({"data.synth_font_px": [40, 52]}))
    assert big > 1.5 * small


def test_glyph_balance_off_keeps_the_word_stream():
    """data.glyph_balance = 0 (the default) draws exactly the words the generator drew before the option."""
    rng = np.random.default_rng(7)
    golden = ['PURPOSEFULLY', 'TIPTOE&', '846331%023', 'LOZENGE', 'RiSFfcxbhAYy', '92371%049$', 'ragamuffins/',
              'squalid']  # the first 8 words of seed 7, recorded with the code before glyph_balance existed
    assert [sample_word(rng, 12, glyph_balance=0.0) for _ in range(8)] == golden


def test_glyph_balance_favours_rare_letters_and_keeps_english_words():
    from dreamtext.data.words import letter_rarity

    rarity = letter_rarity("train", 12)
    assert rarity["q"] > 10 > 1 > rarity["e"]  # q is rare in English, e common

    def stream(balance):
        rng = np.random.default_rng(3)
        return [sample_word(rng, 12, glyph_balance=balance) for _ in range(3000)]

    def share(words, letters="qjxz"):
        text = "".join(words).lower()
        return sum(text.count(c) for c in letters) / len(text)

    plain, balanced = stream(0.0), stream(2.0)
    assert share(balanced) > 1.3 * share(plain)  # measured: 0.0366 -> 0.0591 on 50k words
    train = set(english_words("train", 12))
    english = [w.lower().rstrip("-.,:!?&'/$%#@") for w in balanced if w.isalpha() or w[:-1].isalpha()]
    assert sum(w in train for w in english) > 0.6 * len(balanced)  # still mostly English words of the split
    assert abs(np.mean([len(w) for w in balanced]) - np.mean([len(w) for w in plain])) < 0.6
    with pytest.raises(DatasetError, match="glyph_balance"):
        sample_word(np.random.default_rng(0), 12, glyph_balance=-1.0)


def test_glyph_balance_reaches_the_training_split_only():
    from dreamtext.config import load_config
    from dreamtext.data.sources import bench_source
    from dreamtext.errors import ConfigError

    cfg = load_config("tiny", overrides=["data.glyph_balance=2"])
    assert SynthParams.from_config(cfg).glyph_balance == 2.0
    assert SynthParams.from_config(cfg, split="bench").glyph_balance == 0.0
    plain = load_config("tiny")
    texts = [r.text for r, _ in zip(bench_source(cfg), range(6))]
    assert texts == [r.text for r, _ in zip(bench_source(plain), range(6))]  # the benchmark never changes
    with pytest.raises(ConfigError, match="data.glyph_balance"):
        SynthParams.from_config(load_config("tiny", overrides=["data.glyph_balance=-0.5"]))


def test_sample_pair_is_one_scene_written_with_two_words():
    """An edit pair: the source is the plain record; the target differs only on the two words' ink and
    is fitted into the source's box (no arc here, so the word quads agree exactly)."""
    import cv2

    gen = SynthGenerator(SynthParams(p_arc=0.0, **CLEAN), seed=2)
    for i in range(12):
        source, target = gen.sample_pair(i)
        plain = gen.sample(i)
        np.testing.assert_array_equal(source.image, plain.image)
        assert source.text == plain.text and source.key == plain.key and target.key == plain.key + "-pair"
        assert len(target.text) == len(source.text) and target.text != source.text
        assert target.image.shape == source.image.shape and target.char_masks.shape[1:] == source.image.shape[:2]
        np.testing.assert_allclose(target.word_quad, source.word_quad, atol=1e-3)
        ink = (source.char_masks.any(0) | target.char_masks.any(0)).astype(np.uint8)
        near_ink = cv2.dilate(ink, np.ones((5, 5), np.uint8)) > 0  # anti-aliased edges lie below the mask threshold
        changed = (source.image != target.image).any(-1)
        assert changed.any() and not (changed & ~near_ink).any(), (i, source.text, target.text)
        inside = cv2.dilate(fill_quad(source.word_quad, ink.shape), np.ones((3, 3), np.uint8)) > 0
        assert (target.char_masks.any(0) & ~inside).sum() <= 0.02 * target.char_masks.sum()  # fitted into the box
        again = gen.sample_pair(i)[1]
        assert again.text == target.text and np.array_equal(again.image, target.image)


def test_sample_pair_keeps_the_plain_stream_and_style_with_every_effect():
    """With every effect on (arcs, shadows, noise, JPEG) the pair's source is still the plain record, and the
    two scenes agree away from the words (only the effects' reach around the ink differs)."""
    import cv2

    gen = SynthGenerator(seed=5)
    for i in range(10):
        source, target = gen.sample_pair(i)
        np.testing.assert_array_equal(source.image, gen.sample(i).image)
        ink = (source.char_masks.any(0) | target.char_masks.any(0)).astype(np.uint8)
        far = cv2.dilate(ink, np.ones((41, 41), np.uint8)) == 0
        assert far.any() and np.array_equal(source.image[far], target.image[far]), (i, source.text)


def test_replacement_word_keeps_length_and_case():
    from dreamtext.data.words import replacement_word

    rng = np.random.default_rng(0)
    train = set(english_words("train"))
    for text in ["Street", "OPEN", "closed", "x7!", "a"]:
        for _ in range(5):
            w = replacement_word(text, rng, "train")
            assert len(w) == len(text) and w != text
            if text.isalpha() and len(text) > 1:
                assert w.lower() in train and (w.isupper() == text.isupper()) and (w[0].isupper() == text[0].isupper())
    with pytest.raises(DatasetError, match="non-empty"):
        replacement_word("", rng)
