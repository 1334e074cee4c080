"""Readers of the real dataset formats, on small fixture files written in each format (DESIGN §6)."""

import json

import cv2
import numpy as np
import pytest
import scipy.io

from dreamtext.config import tiny
from dreamtext.data.icdar13 import parse_gt_line
from dreamtext.data.laion_ocr import charseg_class, parse_ocr_line
from dreamtext.data.sources import open_source
from dreamtext.data.transforms import make_model_sample
from dreamtext.errors import DatasetError

CFG = tiny()


def box(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def save_png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr[..., ::-1] if arr.ndim == 3 else arr)


def image(h=120, w=200, value=90):
    img = np.full((h, w, 3), value, np.uint8)
    img[::7] = 200
    return img


# ----------------------------------------------------------------------------- SynthText


def char_boxes(x0, y0, n, cw=10, ch=20):
    return [box(x0 + k * cw, y0, x0 + (k + 1) * cw, y0 + ch) for k in range(n)]


def bb(quads):
    """list of (4, 2) quads → SynthText's 2×4×K layout."""
    return np.stack([q.T for q in quads], axis=2)


def cell(items):
    out = np.empty((1, len(items)), dtype=object)
    for i, x in enumerate(items):
        out[0, i] = x
    return out


@pytest.fixture
def synthtext_dir(tmp_path):
    save_png(tmp_path / "8" / "ballet_1.png", image())
    save_png(tmp_path / "8" / "sign_2.png", image(80, 160))
    # image 0: two txt entries, one with two lines → words Hello, world, foo, bar
    words0 = ["Hello", "world", "foo", "bar"]
    wq0 = [box(10, 10, 60, 30), box(70, 10, 120, 30), box(10, 50, 40, 70), box(10, 80, 40, 100)]
    cq0 = []
    for w, q in zip(words0, wq0):
        cq0 += char_boxes(q[0, 0], q[0, 1], len(w))
    # image 1: one word → wordBB is a plain 2×4 matrix (the single-word case)
    wq1 = box(20, 20, 60, 40)
    cq1 = char_boxes(20, 20, 4)
    mat = {
        "imnames": cell([np.array(["8/ballet_1.png"]), np.array(["8/sign_2.png"])]),
        "wordBB": cell([bb(wq0), wq1.T.copy()]),
        "charBB": cell([bb(cq0), bb(cq1)]),
        "txt": cell([np.array(["Hello world", "foo\n   bar"], dtype=object), np.array(["Sign"], dtype=object)]),
    }
    scipy.io.savemat(tmp_path / "gt.mat", mat)
    return tmp_path, words0, wq0, cq0, wq1, cq1


def test_synthtext_parses_words_boxes_and_chars_exactly(synthtext_dir):
    root, words0, wq0, cq0, wq1, cq1 = synthtext_dir
    src = open_source(f"synthtext:{root / 'gt.mat'}", CFG)
    recs = list(src)
    assert [r.text for r in recs] == words0 + ["Sign"]
    for k, r in enumerate(recs[:4]):
        np.testing.assert_allclose(r.word_quad, wq0[k])
        start = sum(len(w) for w in words0[:k])
        np.testing.assert_allclose(r.char_quads, np.stack(cq0[start:start + len(r.text)]))
        assert r.char_masks is None and r.image.shape == (120, 200, 3) and r.source == "synthtext"
    np.testing.assert_allclose(recs[4].word_quad, wq1)
    np.testing.assert_allclose(recs[4].char_quads, np.stack(cq1))
    assert recs[4].image.shape == (80, 160, 3)
    assert src.skipped.total == 0
    s = make_model_sample(recs[0], CFG)
    assert s["has_char_masks"] == 0 and s["mask"].sum() > 0


def test_synthtext_directory_spec_and_missing_field(synthtext_dir, tmp_path_factory):
    root = synthtext_dir[0]
    assert len(open_source(f"synthtext:{root}", CFG)) == 5
    bad = tmp_path_factory.mktemp("bad")
    scipy.io.savemat(bad / "gt.mat", {"imnames": cell([np.array(["a.png"])]), "wordBB": cell([box(0, 0, 1, 1).T])})
    with pytest.raises(DatasetError, match=r"gt\.mat.*lacks the field\(s\) \['charBB', 'txt'\]"):
        open_source(f"synthtext:{bad / 'gt.mat'}", CFG)
    with pytest.raises(DatasetError, match="does not exist"):
        open_source(f"synthtext:{bad / 'nope.mat'}", CFG)


def test_synthtext_mismatched_counts_are_counted_or_raise_when_strict(tmp_path):
    save_png(tmp_path / "a.png", image())
    mat = {"imnames": cell([np.array(["a.png"])]),
           "wordBB": cell([bb([box(10, 10, 50, 30), box(60, 10, 90, 30)])]),  # two boxes, one word
           "charBB": cell([bb(char_boxes(10, 10, 3))]),
           "txt": cell([np.array(["abc"], dtype=object)])}
    scipy.io.savemat(tmp_path / "gt.mat", mat)
    src = open_source(f"synthtext:{tmp_path / 'gt.mat'}", CFG)
    assert len(src) == 0 and src.skipped.counts["word/character counts disagree with the boxes"] == 1
    with pytest.raises(DatasetError, match=r"gt\.mat: image 0 \(a\.png\).*1 words / 3 chars in txt, 2 word boxes"):
        open_source(f"synthtext:{tmp_path / 'gt.mat'}", CFG, strict=True)


def test_synthtext_unreadable_image_and_box_outside(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    save_png(tmp_path / "ok.png", image(50, 50))
    mat = {"imnames": cell([np.array(["broken.jpg"]), np.array(["ok.png"])]),
           "wordBB": cell([box(1, 1, 20, 10).T.copy(), box(400, 400, 450, 420).T.copy()]),
           "charBB": cell([bb(char_boxes(1, 1, 2)), bb(char_boxes(400, 400, 2))]),
           "txt": cell([np.array(["ab"], dtype=object), np.array(["cd"], dtype=object)])}
    scipy.io.savemat(tmp_path / "gt.mat", mat)
    src = open_source(f"synthtext:{tmp_path}", CFG)
    assert list(src) == []
    assert src.skipped.counts["unreadable image"] == 1 and src.skipped.counts["box outside the image"] == 1
    with pytest.raises(DatasetError, match=r"broken\.jpg"):
        list(open_source(f"synthtext:{tmp_path}", CFG, strict=True))


# ----------------------------------------------------------------------------- TextSeg


@pytest.fixture
def textseg_dir(tmp_path):
    img = image(100, 160)
    labels = np.zeros((100, 160), np.uint8)
    chars = {}
    for k, ch in enumerate("Go"):
        q = box(20 + 20 * k, 30, 36 + 20 * k, 60)
        labels[32:58, 22 + 20 * k:34 + 20 * k] = 5 + k  # the glyph: a smaller block inside its box
        chars[f"{k:02d}"] = {"text": ch, "bbox": q.reshape(-1).tolist(), "mask_value": 5 + k}
    anno = {
        "0000": {"text": "Go", "bbox": box(18, 28, 60, 62).reshape(-1).tolist(), "char": chars},
        "0001": {"text": "##", "bbox": box(100, 10, 140, 40).reshape(-1).tolist(), "char": {}},
        "0002": {"text": "Hi", "bbox": box(100, 60, 140, 90).reshape(-1).tolist(),
                 "char": {"00": {"text": "H", "bbox": box(100, 60, 120, 90).reshape(-1).tolist(), "mask_value": 9}}},
    }
    save_png(tmp_path / "image" / "a00001.png", img)
    save_png(tmp_path / "annotation" / "a00001_mask.png", labels)
    (tmp_path / "annotation" / "a00001_anno.json").write_text(json.dumps(anno))
    return tmp_path, labels


def test_textseg_masks_come_from_mask_values(textseg_dir):
    root, labels = textseg_dir
    src = open_source(f"textseg:{root}", CFG)
    recs = list(src)
    assert [r.text for r in recs] == ["Go"]
    r = recs[0]
    np.testing.assert_array_equal(r.char_masks[0], labels == 5)
    np.testing.assert_array_equal(r.char_masks[1], labels == 6)
    np.testing.assert_allclose(r.char_quads[1], box(40, 30, 56, 60))
    np.testing.assert_allclose(r.word_quad, box(18, 28, 60, 62))
    assert src.skipped.counts["illegible word (#)"] == 1
    assert src.skipped.counts["character count differs from the text"] == 1
    s = make_model_sample(r, CFG)
    assert s["has_char_masks"] == 1 and s["char_masks"][0].sum() > 0 and s["char_masks"][1].sum() > 0
    with pytest.raises(DatasetError, match=r"a00001_anno\.json: word 0001 '##': illegible"):
        list(open_source(f"textseg:{root}", CFG, strict=True))


def test_textseg_missing_fields_name_the_file(textseg_dir):
    root, _ = textseg_dir
    (root / "annotation" / "a00001_anno.json").write_text(json.dumps({"0000": {"bbox": [0] * 8}}))
    with pytest.raises(DatasetError, match=r"a00001_anno\.json: word 0000: lacks 'text' or 'bbox'"):
        open_source(f"textseg:{root}", CFG)


# ----------------------------------------------------------------------------- ICDAR 2013


def test_icdar13_line_formats():
    assert parse_gt_line('38, 43, 920, 215, "Tiredness"') == ((38, 43, 920, 215), "Tiredness")
    assert parse_gt_line('38 43 920 215 "kills"') == ((38, 43, 920, 215), "kills")
    assert parse_gt_line('\ufeff1, 2, 3, 4, "a,b"') == ((1, 2, 3, 4), "a,b")
    assert parse_gt_line("1 2 3") is None


@pytest.fixture
def icdar_dir(tmp_path):
    save_png(tmp_path / "img_1.png", image(100, 200))
    save_png(tmp_path / "img_2.png", image(60, 100))
    (tmp_path / "gt_img_1.txt").write_text('10, 20, 59, 39, "Tiredness"\n70, 20, 99, 39, "###"\n')
    (tmp_path / "gt_img_2.txt").write_text('5 6 44 25 "KILLS"\n300 300 340 320 "far"\n')
    return tmp_path


def test_icdar13_boxes_and_texts(icdar_dir):
    src = open_source(f"icdar13:{icdar_dir}", CFG)
    recs = list(src)
    assert [r.text for r in recs] == ["Tiredness", "KILLS"]
    np.testing.assert_allclose(recs[0].word_quad, box(10, 20, 60, 40))  # inclusive pixel indices
    np.testing.assert_allclose(recs[1].word_quad, box(5, 6, 45, 26))
    assert recs[0].char_quads is None and recs[0].char_masks is None
    assert src.skipped.counts["illegible word (###)"] == 1 and src.skipped.counts["box outside the image"] == 1


def test_icdar13_malformed_line_names_file_and_line(icdar_dir):
    (icdar_dir / "gt_img_2.txt").write_text('5 6 44 25 "ok"\n5, 6, "broken"\n')
    with pytest.raises(DatasetError, match=r"gt_img_2\.txt: line 2 is not"):
        open_source(f"icdar13:{icdar_dir}", CFG)
    (icdar_dir / "gt_img_2.txt").write_text('50 6 44 25 "inverted"\n')
    with pytest.raises(DatasetError, match=r"gt_img_2\.txt: line 1: box"):
        open_source(f"icdar13:{icdar_dir}", CFG)


# ----------------------------------------------------------------------------- LAION-OCR (MARIO)


@pytest.fixture
def laion_dir(tmp_path):
    folder = tmp_path / "28330" / "283305839"
    folder.mkdir(parents=True)
    img = image(128, 128)
    assert cv2.imwrite(str(folder / "image.jpg"), img)
    seg = np.zeros((128, 128), np.int64)
    for k, ch in enumerate("Hello"):  # one block per character; the two l's share a class
        seg[20:40, 10 + 14 * k:20 + 14 * k] = charseg_class(ch)
    np.save(folder / "charseg.npy", seg)
    (folder / "ocr.txt").write_text("Hello 8,18,82,18,82,42,8,42 0.98\nZap 10,60,50,60,50,80,10,80 0.5\n")
    return tmp_path, seg


def test_laion_ocr_lines():
    t, q = parse_ocr_line("Hello 8,18,82,18,82,42,8,42 0.98")
    assert t == "Hello" and q.tolist() == [[8, 18], [82, 18], [82, 42], [8, 42]]
    assert parse_ocr_line("Hello") is None


def test_laion_ocr_separates_repeated_characters(laion_dir):
    root, seg = laion_dir
    src = open_source(f"laion_ocr:{root}", CFG)
    recs = list(src)
    assert [r.text for r in recs] == ["Hello", "Zap"]
    hello = recs[0]
    for k in range(5):
        expect = np.zeros_like(hello.char_masks[k])
        expect[20:40, 10 + 14 * k:20 + 14 * k] = True
        np.testing.assert_array_equal(hello.char_masks[k], expect)
        np.testing.assert_allclose(hello.char_quads[k], box(10 + 14 * k, 20, 20 + 14 * k, 40))
    # "Zap" has no pixels in charseg: kept, without character masks, and counted
    assert recs[1].char_masks is None and recs[1].char_quads is None
    assert src.skipped.total == 1
    s = make_model_sample(hello, CFG)
    assert s["has_char_masks"] == 1 and all(s["char_masks"][k].sum() > 0 for k in range(5))


def test_laion_ocr_malformed_line(laion_dir):
    root, _ = laion_dir
    (root / "28330" / "283305839" / "ocr.txt").write_text("Hello 8,18,82\n")
    with pytest.raises(DatasetError, match=r"ocr\.txt: line 1 is not"):
        open_source(f"laion_ocr:{root}", CFG)


def test_unknown_or_pathless_sources():
    with pytest.raises(DatasetError, match="unknown data source"):
        open_source("coco:/x", CFG)
    with pytest.raises(DatasetError, match="needs a path"):
        open_source("icdar13", CFG)


def test_preview_draws_records_without_char_data(icdar_dir):
    from dreamtext.data.preview import ROW_H, preview_grid

    recs = list(open_source(f"icdar13:{icdar_dir}", CFG))
    grid = preview_grid(recs, CFG)
    assert grid.height == len(recs) * (ROW_H + 4) and grid.width > 4 * ROW_H
