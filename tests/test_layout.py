"""Long text in one region (edit/layout.py, DESIGN §14): chunks, their shares of the region, paste cells."""

import numpy as np
import pytest

from _pipeline_fixtures import photo, save_random_pipeline
from dreamtext.data.geometry import fill_quad, quad_area
from dreamtext.edit.layout import MAX_PHRASE_CHARS, check_phrase, chunk_cells, layout, split_chunks, sub_quad
from dreamtext.edit.paste import paste_back
from dreamtext.errors import TextError

SLANTED = np.array([[10, 20], [300, 40], [298, 80], [8, 60]], np.float32)


def test_chunks_cut_at_spaces_and_inside_a_word_only_when_it_must():
    assert split_chunks("Hotel du LOUVRE", 12) == [("Hotel", 0), ("du", 6), ("LOUVRE", 9)]
    assert split_chunks("Entertainment", 12) == [("Enterta", 0), ("inment", 7)]
    pieces = split_chunks("x" * 30 + " ok", 12)
    assert [len(p) for p, _ in pieces] == [10, 10, 10, 2] and pieces[-1] == ("ok", 31)
    assert split_chunks("word", 12) == [("word", 0)]


def test_spans_tile_the_line_in_proportion_to_rendered_width():
    chunks = layout("Hotel du LOUVRE", 12)
    spans = [c.span for c in chunks]
    assert spans[0][0] == 0.0 and spans[-1][1] == pytest.approx(1.0)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(spans, spans[1:]))  # no gap, no overlap
    width = [b - a for a, b in spans]
    assert width[2] > width[0] > width[1]  # LOUVRE > Hotel > du
    assert layout("Cinema", 12)[0].span == (0.0, 1.0)


def test_sub_quads_follow_a_slanted_line_and_cover_the_region():
    chunks = layout("Hotel du LOUVRE", 12)
    subs = [sub_quad(SLANTED, *c.span) for c in chunks]
    np.testing.assert_allclose(subs[0][0], SLANTED[0]) and np.testing.assert_allclose(subs[-1][2], SLANTED[2])
    for a, b in zip(subs, subs[1:]):  # neighbours share their cut line
        np.testing.assert_allclose(a[1], b[0], atol=1e-4)
        np.testing.assert_allclose(a[2], b[3], atol=1e-4)
    assert sum(quad_area(s) for s in subs) == pytest.approx(quad_area(SLANTED), rel=1e-4)


def test_paste_cells_never_overlap_and_clip_the_paste():
    chunks = layout("Hotel du LOUVRE", 12)
    cells = chunk_cells(SLANTED, chunks, reach=8.0)
    masks = np.stack([fill_quad(c, (120, 320)) > 0 for c in cells])
    assert masks.sum(0).max() == 1  # every pixel belongs to at most one chunk's cell
    assert (masks.any(0) >= (fill_quad(SLANTED, (120, 320)) > 0)).all()  # together they cover the region
    image = np.zeros((120, 320, 3), np.uint8)
    crop = np.full((16, 64, 3), 255, np.uint8)
    matrix = np.diag([64 / 320, 16 / 120, 1.0])
    pasted = paste_back(image, crop, matrix, SLANTED, 6.0, clip=cells[1])
    changed = (pasted != image).any(-1)
    assert changed.any() and not (changed & ~masks[1]).any()


def test_phrase_checks_name_the_problem():
    assert check_phrase("Hotel du LOUVRE", 12) == "Hotel du LOUVRE"
    for text, says in ((" x", "leading, trailing or double"), ("a  b", "double"), ("   ", "empty"),
                       ("Café", "outside the charset: 'é'"), ("tab\there", r"U\+0009"),
                       ("a" * (MAX_PHRASE_CHARS + 1), f"at most {MAX_PHRASE_CHARS}")):
        with pytest.raises(TextError, match=says):
            check_phrase(text, 12)


def test_pipeline_writes_a_phrase_as_chunks_with_one_mask_per_character(tmp_path):
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.edit.paste import region_support

    pipe = DreamTextPipeline.from_pretrained(save_random_pipeline(tmp_path / "p"))
    img = photo(120, 320)
    text = "Hotel du LOUVRE"
    result = pipe.edit(img, [SLANTED], [text], steps=1)
    region = result.regions[0]
    assert [c.text for c in region.chunks] == ["Hotel", "du", "LOUVRE"]
    assert region.text == text and region.char_masks.shape == (len(text), 120, 320)
    assert not region.char_masks[5].any() and not region.char_masks[8].any()  # the spaces
    support = region_support(SLANTED, img.shape[:2], region.feather_px)
    assert not (np.asarray(result.image) != img).any(-1)[~support].any()  # nothing changes outside the region
    # the same photo with one word per region: one chunk each, the old behaviour
    single = pipe.edit(img, [SLANTED], ["Hotel"], steps=1).regions[0]
    assert single.chunks is None and single.char_masks.shape[0] == 5


def test_bench_long_holds_held_out_phrases_and_long_words():
    from dreamtext.config import load_config
    from dreamtext.data.sources import BENCH_LONG_SIZE, open_source
    from dreamtext.data.words import english_words

    src = open_source("bench-long", load_config("tiny"))
    assert len(src) == BENCH_LONG_SIZE >= 300
    records = [src.generator.sample(i) for i in range(12)]
    train = set(english_words("train"))
    assert any(" " in r.text for r in records) and any(" " not in r.text for r in records)
    for r in records:
        assert 13 <= len(r.text) <= (32 if " " in r.text else 24)
        assert r.char_masks.shape[0] == len(r.text)
        for i, ch in enumerate(r.text):
            assert r.char_masks[i].any() == (ch != " ")  # a space has no pixels of its own
        if " " in r.text:
            assert not any(w.lower() in train for w in r.text.split(" "))
    assert [x.text for x in (src.generator.sample(i) for i in range(3))] == [r.text for r in records[:3]]


def test_seq_acc_and_ned_ignore_spaces():
    from dreamtext.evaluation.metrics import ned, seq_acc

    assert seq_acc("HoteldulouvRE", "Hotel du LOUVRE") == 1.0
    assert seq_acc("Hoteldulouvre", "Hotel du LOUVRE", case_sensitive=True) == 0.0
    assert ned("Hotelduluvre", "Hotel du LOUVRE") == pytest.approx(1 / 13)


def test_every_entry_point_takes_a_phrase(tmp_path):
    import json

    from PIL import Image

    from dreamtext.cli import main
    from dreamtext.web.inputs import parse_regions

    quads, texts = parse_regions("10, 20, 300, 60, Hotel du LOUVRE", (320, 120), 8)
    assert texts == ["Hotel du LOUVRE"] and quads[0].shape == (4, 2)
    ckpt = save_random_pipeline(tmp_path / "p")
    Image.fromarray(photo(120, 320)).save(tmp_path / "in.png")
    assert main(["edit", str(tmp_path / "in.png"), "--box", "10,20,300,60", "--text", "Hotel du LOUVRE",
                 "--ckpt", str(ckpt), "--steps", "1", "-o", str(tmp_path / "out.png"),
                 "--masks", str(tmp_path / "masks.png")]) == 0
    assert (tmp_path / "out.png").is_file() and (tmp_path / "masks.png").is_file()
    (tmp_path / "jobs.json").write_text(json.dumps([{"image": "in.png", "out": "spec.png", "regions": [
        {"box": [10, 20, 300, 60], "text": "Entertainment district"}]}]))
    assert main(["edit", "--spec", str(tmp_path / "jobs.json"), "--ckpt", str(ckpt), "--steps", "1"]) == 0
    assert (tmp_path / "spec.png").is_file()
