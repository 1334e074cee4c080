"""The web page's logic without a browser: input checks, box drawing, one edit request.

The edit requests run the real pipeline with a randomly initialised ``test``
preset model (the shipped model is not needed to test the page).
"""

import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from _web_fixtures import SIGN_BOX, make_photo  # noqa: E402

from dreamtext.errors import ImageError, RegionError, TextError  # noqa: E402
from dreamtext.web.app import EditService, ServeSettings, status_markdown  # noqa: E402
from dreamtext.web.inputs import draw_boxes, format_region, load_upload, parse_regions  # noqa: E402

# ----------------------------------------------------------------------------- parse_regions

def test_parse_regions_reads_lines_in_any_corner_order():
    quads, texts = parse_regions("10, 20, 110, 60, HELLO\n\n# a comment\n200 90 150 40 a1", (320, 192), max_len=8)
    assert texts == ["HELLO", "a1"]
    np.testing.assert_array_equal(quads[0], [[10, 20], [110, 20], [110, 60], [10, 60]])
    # the second box was given bottom-right first: corners are sorted
    np.testing.assert_array_equal(quads[1], [[150, 40], [200, 40], [200, 90], [150, 90]])
    assert quads[0].dtype == np.float32 and quads[0].shape == (4, 2)


def test_format_region_round_trips_through_parse():
    line = format_region((12.4, 30.6, 99.5, 70.0), "Caf3")
    assert line == "12, 31, 100, 70, Caf3"
    quads, texts = parse_regions(line, (200, 100), max_len=8)
    assert texts == ["Caf3"] and quads[0][2].tolist() == [100.0, 70.0]


@pytest.mark.parametrize("spec, error, words", [
    ("", RegionError, "no box given"),
    ("  \n# only a comment", RegionError, "no box given"),
    ("10, 20, 110, HELLO", RegionError, "line 1"),
    ("10, 20, 400, 60, HELLO", RegionError, "outside the 320×192 photo"),
    ("10, 20, 11, 60, HELLO", RegionError, "at least 2×2"),
    ("10, 20, 110, 60,", RegionError, "has no text"),
    ("10, 20, 110, 60, Café", TextError, "outside the charset"),
    ("10, 20, 110, 60, " + "T" * 49, TextError, "at most 48"),
    ("10, 20, 30, 26, A LONG PHRASE", RegionError, "too small"),
    ("\n".join(["1, 1, 9, 9, a"] * 9), RegionError, "at most 8"),
])
def test_parse_regions_rejects_bad_input_with_a_readable_message(spec, error, words):
    with pytest.raises(error, match=words):
        parse_regions(spec, (320, 192), max_len=8, max_regions=8)


# ----------------------------------------------------------------------------- load_upload

def test_load_upload_reads_a_photo(tmp_path):
    path = make_photo(tmp_path / "photo.png")
    image = load_upload(path, ServeSettings())
    assert image.shape == (192, 320, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image, np.asarray(Image.open(path).convert("RGB")))


def test_load_upload_refuses_non_images_and_oversized_uploads(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("this is not a picture\n" * 10)
    with pytest.raises(ImageError, match="not an image"):
        load_upload(text, ServeSettings())
    photo = make_photo(tmp_path / "photo.png")
    with pytest.raises(ImageError, match=r"MiB; the limit is 0\.01 MiB"):
        load_upload(photo, ServeSettings(max_upload_mb=0.01))
    with pytest.raises(ImageError, match="no photo uploaded"):
        load_upload(None, ServeSettings())


def test_load_upload_checks_dimensions_before_decoding(tmp_path):
    # A wide strip of one colour is a tiny file: the byte limit alone would let a
    # decompression bomb through, so the side is read from the header and checked.
    wide = tmp_path / "wide.png"
    Image.new("L", (5000, 8), 0).save(wide)
    assert wide.stat().st_size < 1000
    with pytest.raises(ImageError, match="5000×8 px; the longest side may be at most 4096"):
        load_upload(wide, ServeSettings())
    assert load_upload(wide, ServeSettings(max_side=5000)).shape == (8, 5000, 3)


# ----------------------------------------------------------------------------- draw_boxes

def test_draw_boxes_outlines_each_box_and_leaves_the_rest():
    image = np.full((100, 200, 3), 128, np.uint8)
    quads, texts = parse_regions("20, 30, 120, 70, AB", (200, 100), max_len=8)
    drawn = draw_boxes(image, quads, texts, pending=(160, 50))
    assert drawn.shape == image.shape
    assert (drawn[50, 20] != 128).any() and (drawn[30, 70] != 128).any()  # left and top edges
    np.testing.assert_array_equal(drawn[45:60, 40:110], image[45:60, 40:110])  # inside untouched
    assert tuple(drawn[50, 160]) == (255, 0, 0)  # the pending corner's cross
    np.testing.assert_array_equal(drawn[90:, :], image[90:, :])  # far away untouched
    np.testing.assert_array_equal(image, 128)  # the input is not modified


def test_status_markdown_escapes_user_text_and_bolds_errors():
    assert status_markdown("Error: text 'a*b_c' has [x]") == r"**Error:** text 'a\*b\_c' has \[x\]"
    assert status_markdown("Internal error (KeyError: '<k>')") == r"**Internal error** (KeyError: '\<k\>')"
    assert status_markdown("Done: 2 boxes edited (4 steps).") == "Done: 2 boxes edited (4 steps)."


# ----------------------------------------------------------------------------- one edit request

@pytest.fixture(scope="module")
def tiny_pipeline():
    import torch

    from dreamtext.config import load_config
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.model.network import DreamTextModel

    torch.manual_seed(0)
    cfg = load_config("test")
    return DreamTextPipeline(DreamTextModel(cfg), cfg)


def _service(pipe, tmp_path, **settings):
    return EditService(pipe.edit, max_len=pipe.cfg.max_len, settings=ServeSettings(**settings),
                       results_dir=tmp_path / "results", defaults={"steps": 2})


def test_edit_request_changes_the_box_and_offers_the_result(tiny_pipeline, tmp_path):
    photo = load_upload(make_photo(tmp_path / "photo.png"), ServeSettings())
    service = _service(tiny_pipeline, tmp_path)
    out = service.run(photo, format_region(SIGN_BOX, "OPEN"), steps=2, guidance=3.0, sampler="ddim", seed=0)
    assert out.ok, out.message
    assert out.message.startswith("Done: 1 box edited (2 steps")
    assert out.image.shape == photo.shape and out.image.dtype == np.uint8
    x0, y0, x1, y1 = SIGN_BOX
    changed = np.abs(out.image.astype(int) - photo).max(-1) > 8
    assert changed[y0:y1, x0:x1].mean() > 0.5  # a random model repaints the box
    far = np.ones(changed.shape, bool)
    far[max(0, y0 - 30):y1 + 30, max(0, x0 - 30):x1 + 30] = False
    assert not changed[far].any()  # pixels beyond the feather band are the input's
    np.testing.assert_array_equal(out.before, photo)
    saved = np.asarray(Image.open(out.download))
    np.testing.assert_array_equal(saved, out.image)  # the download is the shown result, losslessly
    assert Path(out.download).is_relative_to(tmp_path / "results")
    # the overlay is the result plus a legend strip under it
    assert out.overlay.shape[1] == photo.shape[1] and out.overlay.shape[0] > photo.shape[0]


def test_restarts_reach_the_pipeline_and_are_checked(tiny_pipeline, tmp_path):
    photo = load_upload(make_photo(tmp_path / "photo.png"), ServeSettings())
    service, spec = _service(tiny_pipeline, tmp_path), format_region(SIGN_BOX, "OPEN")
    plain = service.run(photo, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, restarts=0)
    restarted = service.run(photo, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, restarts=1)
    assert plain.message.startswith("Done: 1 box edited (2 steps, guidance")
    assert restarted.message.startswith("Done: 1 box edited (2 steps + 1 restarts, guidance")
    assert not np.array_equal(plain.image, restarted.image)  # the restart pass repainted the box
    bad = service.run(photo, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, restarts=9)
    assert not bad.ok and bad.message == "Error: restarts must be between 0 and 4, got 9"


def test_blend_and_mask_rule_reach_the_pipeline_and_are_checked(tiny_pipeline, tmp_path):
    photo = load_upload(make_photo(tmp_path / "photo.png"), ServeSettings())
    service, spec = _service(tiny_pipeline, tmp_path), format_region(SIGN_BOX, "OPEN")
    plain = service.run(photo, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, blend="feather",
                        mask_rule="attention")
    other = service.run(photo, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, blend="poisson",
                        mask_rule="strokes")
    assert plain.ok and other.ok and "poisson blend, strokes mask rule" in other.message
    assert "poisson" not in plain.message
    assert not np.array_equal(plain.image, other.image)  # same samples, pasted back differently
    for name, value, words in (("blend", "soft", "unknown blend 'soft'"),
                               ("mask_rule", "blobs", "unknown mask rule 'blobs'")):
        bad = service.run(photo, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, **{name: value})
        assert not bad.ok and words in bad.message


def test_candidates_reach_the_pipeline_and_the_verifier_reading_is_shown(tiny_pipeline, tmp_path):
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.train.verifier_train import train_verifier

    train_verifier(tiny_pipeline.cfg.override({"verifier.steps": 2, "verifier.eval_records": 1}), tmp_path / "v",
                   progress=False)
    pipe = DreamTextPipeline(tiny_pipeline.model, tiny_pipeline.cfg.override({"sample.verifier": str(tmp_path / "v")}))
    photo = load_upload(make_photo(tmp_path / "photo.png"), ServeSettings())
    service, spec = _service(pipe, tmp_path), format_region(SIGN_BOX, "OPEN")
    best = service.run(photo, spec, steps=1, guidance=3.0, sampler="ddim", seed=0, candidates=2)
    assert best.ok and "best of 2; the verifier reads '" in best.message
    one = service.run(photo, spec, steps=1, guidance=3.0, sampler="ddim", seed=0, candidates=1)
    assert one.ok and "verifier" not in one.message
    bad = service.run(photo, spec, steps=1, guidance=3.0, sampler="ddim", seed=0, candidates=9)
    assert not bad.ok and bad.message == "Error: candidates must be between 1 and 8, got 9"


def test_same_seed_gives_the_same_result(tiny_pipeline, tmp_path):
    photo = load_upload(make_photo(tmp_path / "photo.png"), ServeSettings())
    service = _service(tiny_pipeline, tmp_path)
    spec = format_region(SIGN_BOX, "OPEN")
    a = service.run(photo, spec, steps=1, guidance=3.0, sampler="euler", seed=5)
    b = service.run(photo, spec, steps=1, guidance=3.0, sampler="euler", seed=5)
    assert a.ok and b.ok
    np.testing.assert_array_equal(a.image, b.image)


@pytest.mark.parametrize("spec, steps, sampler, words", [
    ("", 2, "ddim", "Error: no box given"),
    ("96, 72, 224, 120, Straße", 2, "ddim", "Error: text 'Straße' has characters outside the charset"),
    ("96, 72, 224, 120, A  B", 2, "ddim", "Error: text 'A  B' has leading, trailing or double spaces"),
    ("96, 72, 224, 120, OK", 500, "ddim", "Error: steps must be between 1 and 200"),
    ("96, 72, 224, 120, OK", 2, "plms", "Error: unknown sampler 'plms'"),
])
def test_bad_requests_become_messages(tiny_pipeline, tmp_path, spec, steps, sampler, words):
    photo = load_upload(make_photo(tmp_path / "photo.png"), ServeSettings())
    out = _service(tiny_pipeline, tmp_path).run(photo, spec, steps=steps, guidance=3.0, sampler=sampler, seed=0)
    assert not out.ok and out.image is None
    assert out.message.startswith(words), out.message


def test_no_photo_and_internal_errors_become_messages(tmp_path, capsys):
    def broken_edit(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    service = EditService(broken_edit, max_len=8, settings=ServeSettings(), results_dir=tmp_path / "r")
    out = service.run(None, "1, 1, 9, 9, a", steps=2, guidance=3.0, sampler="ddim", seed=0)
    assert out.message == "Error: no photo uploaded yet: upload a PNG or JPEG first"
    photo = np.zeros((20, 20, 3), np.uint8)
    out = service.run(photo, "1, 1, 9, 9, a", steps=2, guidance=3.0, sampler="ddim", seed=0)
    assert not out.ok and out.message.startswith("Internal error (RuntimeError: CUDA out of memory)")
    assert "Traceback" in capsys.readouterr().err  # the details go to the server log


def test_requests_from_several_threads_run_one_at_a_time(tmp_path):
    # Gradio's queue already runs one edit at a time; the service's lock keeps the
    # (not thread-safe) model safe even for callers that bypass the queue.
    inside, overlaps = [0], []
    gate = threading.Lock()

    def counting_edit(image, quads, texts, **kwargs):
        with gate:
            inside[0] += 1
            overlaps.append(inside[0])
        threading.Event().wait(0.05)
        with gate:
            inside[0] -= 1
        raise RuntimeError("stop here")  # the result does not matter for this test

    service = EditService(counting_edit, max_len=8, settings=ServeSettings(), results_dir=tmp_path / "r")
    photo = np.zeros((20, 20, 3), np.uint8)
    threads = [threading.Thread(target=service.run, args=(photo, "1, 1, 9, 9, a"),
                                kwargs=dict(steps=2, guidance=3.0, sampler="ddim", seed=0)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert overlaps == [1, 1, 1, 1]


# ----------------------------------------------------------------------------- the command

def test_serve_command_defaults_to_loopback_and_takes_the_limits():
    from dreamtext.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port, args.ckpt, args.max_upload_mb, args.max_side) == \
        ("127.0.0.1", 7860, None, 10.0, 4096)
    args = build_parser().parse_args(["serve", "--port", "8000", "--ckpt", "runs/x", "--max-upload-mb", "2.5",
                                      "--max-side", "1024"])
    assert (args.port, args.ckpt, args.max_upload_mb, args.max_side) == (8000, "runs/x", 2.5, 1024)


@pytest.mark.parametrize("argv, words", [
    (["serve", "--port", "70000"], "--port must be in 1..65535"),
    (["serve", "--max-upload-mb", "0"], "--max-upload-mb must be a number in (0, 100000] (got 0)"),
    (["serve", "--ckpt", "/nonexistent/ckpt"], "checkpoint '/nonexistent/ckpt' does not exist"),
])
def test_serve_command_reports_bad_options_in_one_line(argv, words, capsys):
    from dreamtext.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("dreamtext serve: error: ") and words in err and "Traceback" not in err
