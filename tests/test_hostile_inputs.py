"""Bad input, probed as a hostile but realistic user would, through the real CLI entry point.

Each probe must end with exit status 2 (1 for a ``--spec`` batch whose jobs failed), exactly one ``error:`` line
naming the problem, no traceback, no output file and no user file touched.
"""

import json
import struct
import zlib

import numpy as np
import pytest
from _pipeline_fixtures import photo, save_random_pipeline
from PIL import Image

from dreamtext.cli import main


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width``×``height`` pixels and holds none: a decompression bomb's header (45 bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) + \
        chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    ckpt = save_random_pipeline(root / "pipe")
    Image.fromarray(photo()).save(root / "photo.png")
    (root / "bomb.png").write_bytes(png_header(20000, 20000))
    (root / "big.png").write_bytes(png_header(12000, 12000))
    (root / "file.png").write_bytes(b"a user's file")
    (root / "out").mkdir()
    (root / "bad.yaml").write_text("train: [1, 2\n")
    return root, ckpt


def _edit(env, *args, out="out/o.png"):
    root, ckpt = env
    return ["edit", str(root / "photo.png"), "--ckpt", str(ckpt), "--steps", "1", "-o", str(root / out), *args]


# name → (argv builder, what the error line must say)
PROBES = {
    "decompression_bomb_header": (lambda e: ["edit", str(e[0] / "bomb.png"), "--box", "1,1,9,9", "--text", "a",
                                             "--ckpt", str(e[1]), "-o", str(e[0] / "out/o.png")], "megapixels"),
    "image_past_the_pixel_limit": (lambda e: ["edit", str(e[0] / "big.png"), "--box", "1,1,9,9", "--text", "a",
                                              "--ckpt", str(e[1]), "-o", str(e[0] / "out/o.png")],
                                   "12000×12000 = 144.0 megapixels; the limit is 50 megapixels"),
    "output_inside_a_file": (lambda e: _edit(e, "--box", "1,1,30,20", "--text", "a", out="file.png/x.png"),
                             "is not an existing folder"),
    "output_in_proc": (lambda e: ["edit", str(e[0] / "photo.png"), "--box", "1,1,30,20", "--text", "a",
                                  "--ckpt", str(e[1]), "-o", "/proc/dreamtext-probe.png"], "cannot write output"),
    "masks_path_unwritable": (lambda e: _edit(e, "--box", "1,1,30,20", "--text", "a", "--masks",
                                              str(e[0] / "file.png" / "m.png")), "--masks output"),
    "seed_past_the_range": (lambda e: _edit(e, "--box", "1,1,30,20", "--text", "a", "--seed",
                                            "99999999999999999999999"), "seed must be from 0 to"),
    "one_pixel_box": (lambda e: _edit(e, "--box", "1,1,2,2", "--text", "a"), "at least 2×2 px"),
    "huge_guidance": (lambda e: _edit(e, "--box", "1,1,30,20", "--text", "a", "--guidance", "1e30"),
                      "guidance must be a number from 0 to 30"),
    "too_many_regions": (lambda e: _edit(e, *[a for i in range(33) for a in ("--box", "1,1,30,20", "--text", "a")]),
                         "at most 32"),
    "unknown_character_before_loading": (lambda e: _edit(e, "--box", "1,1,30,20", "--text", "é"), "é"),
    "negative_image_size": (lambda e: ["train", "--preset", "test", f"train.out_dir={e[0] / 'run1'}",
                                       "image_size=[32, -128]", "--no-progress"], "'image_size' is [32, -128]"),
    "text_width_that_would_allocate_120_gb": (lambda e: ["train", "--preset", "test",
                                                         f"train.out_dir={e[0] / 'run2'}", "text.dim=100000"],
                                              "'text.dim' is 100000"),
    "zero_batch": (lambda e: ["train", "--preset", "test", f"train.out_dir={e[0] / 'run3'}",
                              "train.batch_size=0"], "'train.batch_size' is 0"),
    "nan_learning_rate": (lambda e: ["train", "--preset", "test", f"train.out_dir={e[0] / 'run4'}", "train.lr=nan"],
                          "'train.lr' is nan"),
    "malformed_yaml": (lambda e: ["train", "--preset", "test", str(e[0] / "bad.yaml"),
                                  f"train.out_dir={e[0] / 'run5'}"], "is not valid YAML"),
    "serve_nan_upload_limit": (lambda e: ["serve", "--max-upload-mb", "nan"], "--max-upload-mb must be a number"),
    "export_into_a_users_folder": (lambda e: ["export", str(e[1]), "--out", str(e[0])], "non-empty folder"),
}


@pytest.mark.parametrize("name", sorted(PROBES))
def test_hostile_probe_is_one_error_line(name, env, capsys):
    root, _ = env
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    argv, says = PROBES[name]
    assert main(argv(env)) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err, err
    assert says in err, err
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert after == before  # nothing written, nothing touched (no run folder, no output, no temp file)


def test_badly_typed_spec_jobs_fail_alone_and_the_batch_goes_on(env, capsys):
    root, ckpt = env
    good = {"image": "photo.png", "regions": [{"box": [1, 1, 30, 20], "text": "ab"}], "out": "out/good.png"}
    bad = [
        ({**good, "out": 5}, "output path must be a string"),
        ({**good, "image": 5}, "'image' must be a file path"),
        ({**good, "seed": "x"}, "seed must be a whole number"),
        ({**good, "seed": 1.5}, "seed must be a whole number"),
        ({**good, "regions": [{"box": [1, 1, 30, 20], "text": "ab", "colour": "red"}]}, "unknown key(s) colour"),
        ({**good, "regions": [{"box": [1, 1, 30, 20], "text": "a"}] * 33}, "at most 32"),
    ]
    spec = root / "jobs.json"
    spec.write_text(json.dumps([job for job, _ in bad] + [good]))
    assert main(["edit", "--spec", str(spec), "--ckpt", str(ckpt), "--steps", "1"]) == 1
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if "error:" in ln]
    assert len(lines) == len(bad) and "Traceback" not in captured.err
    for line, (_, says) in zip(lines, bad):
        assert says in line, line
    assert "1 of 7 job(s) done, 6 failed" in captured.out
    assert (root / "out" / "good.png").is_file()
    (root / "out" / "good.png").unlink()


def test_deeply_nested_spec_is_one_line(env, capsys):
    root, ckpt = env
    deep = root / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["edit", "--spec", str(deep), "--ckpt", str(ckpt)]) == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and "Traceback" not in err
    deep.unlink()


def test_dataset_fields_of_the_wrong_type_name_the_file_and_field(tmp_path):
    from dreamtext.data.textseg import TextSegReader
    from dreamtext.errors import DatasetError

    (tmp_path / "image").mkdir()
    (tmp_path / "annotation").mkdir()
    Image.fromarray(photo()).save(tmp_path / "image" / "a.jpg")
    Image.fromarray(np.zeros((72, 160), np.uint8)).save(tmp_path / "annotation" / "a_mask.png")
    anno = tmp_path / "annotation" / "a_anno.json"
    char = {"text": "a", "bbox": [1, 1, 9, 1, 9, 9, 1, 9]}
    for field, value, says in (("mask_value", "x", "mask_value must be a whole number"),
                               ("mask_value", 70000, "mask_value must be a whole number"),
                               ("bbox", [10, "a", 3, 4, 5, 6, 7, 8], "bbox must be 8 numbers"),
                               ("bbox", {"x": 1}, "bbox must be 8 numbers")):
        c = {**char, "mask_value": 1, field: value}
        anno.write_text(json.dumps({"0": {"text": "a", "bbox": char["bbox"], "char": {"0": c}}}))
        with pytest.raises(DatasetError, match=says) as e:
            TextSegReader(tmp_path)
        assert "a_anno.json" in str(e.value) and "word 0" in str(e.value)


def test_synthtext_word_boxes_holding_a_string(tmp_path):
    from dreamtext.data.synthtext import _as_quads
    from dreamtext.errors import DatasetError

    with pytest.raises(DatasetError, match="gt.mat image 3: wordBB must be a 2×4×K array of numbers"):
        _as_quads("not boxes", "wordBB", "gt.mat image 3")


def test_train_overrides_may_follow_options(tmp_path):
    out = tmp_path / "run"
    assert main(["train", f"train.out_dir={out}", "--preset", "test", "train.max_steps=1", "train.batch_size=2",
                 "train.sample_every=0", "--no-progress"]) == 0
    assert (out / "checkpoints").is_dir()


def test_failed_train_start_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "test", f"train.out_dir={out}", "data.source=icdar13:/nonexistent",
                 "--no-progress"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert not out.exists()


def test_resume_removes_a_killed_checkpoint_writes_temp_folder(tmp_path):
    from dreamtext.train.run_setup import remove_stale_temp_dirs

    root = tmp_path / "checkpoints"
    (root / "step_00000004").mkdir(parents=True)
    (root / ".step_00000006.k3j2.tmp").mkdir()
    (root / ".step_00000006.k3j2.tmp" / "model.safetensors").write_bytes(b"half")
    (root / ".step_00000004.old").mkdir()
    assert remove_stale_temp_dirs(root) == [".step_00000004.old", ".step_00000006.k3j2.tmp"]
    assert sorted(p.name for p in root.iterdir()) == ["step_00000004"]


def test_disk_full_checkpoint_write_names_the_problem_and_keeps_the_old_one(tmp_path, monkeypatch):
    import errno

    import safetensors.torch
    import torch

    from dreamtext.config import load_config
    from dreamtext.errors import CheckpointError
    from dreamtext.model.checkpoint import save_checkpoint

    cfg = load_config("test")
    save_checkpoint(tmp_path / "step_2", cfg, {"model": {"w": torch.ones(2)}}, {"step": 2})

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(CheckpointError, match="disk full while writing checkpoint .*step_4"):
        save_checkpoint(tmp_path / "step_4", cfg, {"model": {"w": torch.ones(2)}}, {"step": 4})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_2"]  # no temp folder left, the old one intact


def test_resume_refuses_a_malformed_state_json(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--preset", "test", f"train.out_dir={out}", "train.max_steps=1", "train.batch_size=2",
            "train.sample_every=0", "--no-progress"]
    assert main(args) == 0
    state = next((out / "checkpoints").iterdir()) / "state.json"
    data = json.loads(state.read_text())
    state.write_text(json.dumps({**data, "step": "twelve"}))
    capsys.readouterr()
    assert main([*args, "--resume", "train.max_steps=2"]) == 2
    err = capsys.readouterr().err
    assert "'step' must be a whole number" in err and "Traceback" not in err


def test_web_upload_refuses_a_bomb_and_names_the_users_file_not_the_temp_path(tmp_path):
    from dreamtext.errors import ImageError
    from dreamtext.web.app import ServeSettings
    from dreamtext.web.inputs import load_upload

    upload = tmp_path / "gradio-tmp-8f3a" / "holiday.png"
    upload.parent.mkdir()
    upload.write_bytes(png_header(20000, 20000))
    with pytest.raises(ImageError, match="megapixels") as e:
        load_upload(upload, ServeSettings())
    assert "gradio-tmp" not in str(e.value)
    Image.fromarray(photo()).save(upload)
    upload.write_bytes(upload.read_bytes()[:60])  # a truncated upload
    with pytest.raises(ImageError) as e:
        load_upload(upload, ServeSettings())
    assert "holiday.png" in str(e.value) and "gradio-tmp" not in str(e.value)
