"""The OCR behind SeqAcc: the shipped PP-OCR recogniser on clean renders, rectification, plug-ins."""

import sys
import types

import numpy as np
import pytest

from dreamtext.errors import ConfigError, ImageError
from dreamtext.evaluation import ocr


@pytest.fixture(scope="module")
def rapid():
    return ocr.RapidOCRRecognizer()


# Measured on this machine (60 words, seed 0; docs/evaluation.md has the 500-word numbers):
# 32×128 → 0.900 case-insensitive, 64×256 → 0.833. The floors sit just under those.
@pytest.mark.parametrize("hw, floor", [((32, 128), 0.85), ((64, 256), 0.78)])
def test_rapidocr_reads_clean_renders(rapid, hw, floor):
    res = ocr.clean_render_accuracy(rapid, 60, hw, seed=0)
    assert res["seq_acc_ci"] >= floor
    assert res["seq_acc_cs"] <= res["seq_acc_ci"]
    assert res["ned"] < 0.06
    assert res["recognizer"] == "rapidocr-ppocr-rec"


def test_clean_render_words_are_reproducible():
    fonts = ocr.system_fonts()
    assert len(fonts) >= 5 and not any("Italic" in f.name or "Oblique" in f.name for f in fonts)
    a = ocr.render_clean_word("Qx7", fonts[0], (32, 128))
    assert a.shape == (32, 128, 3) and a.dtype == np.uint8
    assert a.min() < 60 and (a == 255).mean() > 0.5  # dark ink on a mostly white box
    long = ocr.render_clean_word("WWWWWWWWWW", fonts[0], (32, 128))
    assert (long[:, :2] == 255).all() and (long[:, -2:] == 255).all()  # fitted: the margins stay blank


def test_readings_keep_only_charset_characters(rapid):
    img = np.asarray(ocr.render_clean_word("Hello", ocr.system_fonts()[0], (32, 128)))
    blank = np.full((32, 128, 3), 255, np.uint8)
    reads = rapid.read([img, blank])
    assert reads[0].lower() == "hello"
    assert reads[1] == ""
    assert all(ch in ocr.CLEAN_ALPHABET for ch in reads[0])


def test_bad_crops_are_clear_errors(rapid):
    with pytest.raises(ImageError, match="crop 1 must be uint8"):
        rapid.read([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ImageError, match=r"\(h, w, 3\)"):
        rapid.read([np.zeros((8, 8, 4), np.uint8)])


def test_rectify_quad_straightens_a_rotated_word(rapid):
    import cv2

    word = ocr.render_clean_word("Garden", ocr.system_fonts()[0], (40, 160))
    canvas = np.full((240, 320, 3), 255, np.uint8)
    canvas[100:140, 80:240] = word
    rot = cv2.getRotationMatrix2D((160, 120), 25, 1.0)  # rotate the scene 25° about its centre
    scene = cv2.warpAffine(canvas, rot, (320, 240), borderValue=(255, 255, 255))
    box = np.array([[80, 100], [240, 100], [240, 140], [80, 140]], np.float64)
    quad = (rot[:, :2] @ box.T).T + rot[:, 2]
    flat = ocr.rectify_quad(scene, quad, height=32)
    assert flat.shape == (32, 128, 3)  # aspect 160:40 kept
    assert rapid.read([flat])[0].lower() == "garden"


def test_parseq_greedy_decoding():
    T = 6
    logits = np.full((T, 95), -5.0)
    for t, ch in enumerate("Ab9"):
        logits[t, ocr.PARSEQ_CHARSET.index(ch) + 1] = 5.0
    logits[3, 0] = 5.0  # EOS
    logits[4, ocr.PARSEQ_CHARSET.index("z") + 1] = 5.0  # after EOS: ignored
    assert ocr.ParseqOnnxRecognizer.decode(logits) == "Ab9"
    x = ocr.ParseqOnnxRecognizer.preprocess(np.full((20, 50, 3), 255, np.uint8))
    assert x.shape == (1, 3, 32, 128) and x.dtype == np.float32 and np.allclose(x, 1.0)


class _UpperReader:
    name = "upper-test"

    def read(self, crops):
        return ["X" * c.shape[1] for c in crops]


def test_make_recognizer_specs(monkeypatch, tmp_path):
    assert isinstance(ocr.make_recognizer("rapidocr"), ocr.RapidOCRRecognizer)
    mod = types.ModuleType("_ocr_plugin_test")
    mod.make = _UpperReader
    mod.not_a_reader = lambda: object()
    monkeypatch.setitem(sys.modules, "_ocr_plugin_test", mod)
    rec = ocr.make_recognizer("python:_ocr_plugin_test:make")
    assert isinstance(rec, ocr.Recognizer) and rec.read([np.zeros((4, 3, 3), np.uint8)]) == ["XXX"]
    with pytest.raises(ConfigError, match="no 'name' and 'read"):
        ocr.make_recognizer("python:_ocr_plugin_test:not_a_reader")
    with pytest.raises(ConfigError, match="cannot import"):
        ocr.make_recognizer("python:no_such_module_xyz:make")
    with pytest.raises(ConfigError, match="does not exist"):
        ocr.make_recognizer(f"parseq-onnx:{tmp_path / 'missing.onnx'}")
    with pytest.raises(ConfigError, match="unknown recogniser"):
        ocr.make_recognizer("tesseract")
