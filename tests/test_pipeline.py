"""DreamTextPipeline end to end on a randomly initialised ``test``-preset model saved with save_pretrained.

A random model paints noise, which is all these tests need: geometry, byte
identity outside the regions, determinism, batching, input formats, errors.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from _pipeline_fixtures import photo, save_random_pipeline
from PIL import Image

from dreamtext.edit.paste import region_support
from dreamtext.edit.pipeline import DreamTextPipeline
from dreamtext.errors import CheckpointError, ConfigError, ImageError, RegionError, TextError

BOX = (20, 10, 100, 34)
QUAD = [[90, 40], [150, 48], [148, 66], [88, 58]]  # tilted ~8°: rotated upright in the pipeline


@pytest.fixture(scope="module")
def pipe_dir(tmp_path_factory):
    return save_random_pipeline(tmp_path_factory.mktemp("pipe") / "pipeline")


@pytest.fixture(scope="module")
def pipe(pipe_dir):
    return DreamTextPipeline.from_pretrained(pipe_dir)


def test_save_pretrained_reloads_alone(pipe, pipe_dir, tmp_path):
    assert {p.name for p in pipe_dir.iterdir()} >= {"model.safetensors", "config.json"}
    again = DreamTextPipeline.from_pretrained(pipe.save_pretrained(tmp_path / "copy"))
    assert again.cfg.to_dict() == pipe.cfg.to_dict()
    a, b = pipe.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_edit_keeps_size_and_every_pixel_outside_the_feather_bands(pipe):
    img = photo()
    result = pipe.edit(img, [BOX, QUAD], ["Hi", "w0rld"], steps=2, seed=1)
    out = np.asarray(result.image)
    assert out.shape == img.shape and out.dtype == np.uint8
    changed_allowed = np.zeros(img.shape[:2], bool)
    for r in result.regions:
        changed_allowed |= region_support(r.quad, img.shape[:2], r.feather_px)
    assert np.array_equal(out[~changed_allowed], img[~changed_allowed])
    assert (out[14:30, 30:90] != img[14:30, 30:90]).mean() > 0.5  # the region itself was repainted
    assert [r.text for r in result.regions] == ["Hi", "w0rld"]
    for r, text in zip(result.regions, ["Hi", "w0rld"]):
        assert r.crop.shape == (*pipe.cfg.image_size, 3) and r.crop.dtype == np.uint8
        assert r.char_masks.shape == (len(text), *img.shape[:2]) and r.char_masks.dtype == bool
        assert not (r.char_masks & ~changed_allowed).any()  # masks only where the image changed
    assert result.masks_picture().shape == img.shape
    assert result.before_after().shape[1] > 3 * img.shape[1]


def test_same_seed_bit_identical_other_seed_differs(pipe):
    img = photo(seed=2)
    run = lambda seed, sampler: np.asarray(pipe.edit(img, [BOX], ["abc"], steps=2, seed=seed, sampler=sampler).image)
    for sampler in ("ddim", "euler", "dpm++"):
        assert np.array_equal(run(3, sampler), run(3, sampler))
    assert not np.array_equal(run(3, "ddim"), run(4, "ddim"))


def test_restarts_repaint_only_the_region(pipe):
    img = photo(seed=2)
    plain, restarted = (pipe.edit(img, [BOX], ["abc"], steps=3, seed=5, restarts=k) for k in (0, 2))
    support = region_support(plain.regions[0].quad, img.shape[:2], plain.regions[0].feather_px)
    a, b = np.asarray(plain.image), np.asarray(restarted.image)
    assert np.array_equal(b[~support], img[~support])
    assert np.abs(a[support].astype(int) - b[support]).mean() > 1  # the restart passes changed the region
    assert restarted.regions[0].char_masks.shape == (3, *img.shape[:2])


@pytest.mark.parametrize("blend", ["poisson", "inpaint"])
def test_other_blends_change_only_the_paste_back(pipe, blend):
    img = photo(seed=4)
    feather, other = (pipe.edit(img, [BOX, QUAD], ["ab", "cd"], steps=2, seed=6, blend=b) for b in ("feather", blend))
    support = np.zeros(img.shape[:2], bool)
    for f, p in zip(feather.regions, other.regions):
        assert np.array_equal(f.crop, p.crop)  # the same samples ...
        assert np.array_equal(f.char_masks, p.char_masks)
        support |= region_support(p.quad, img.shape[:2], p.feather_px)
    a, b = np.asarray(feather.image), np.asarray(other.image)
    assert np.array_equal(b[~support], img[~support])  # ... pasted differently, and only inside the bands
    assert np.abs(a[support].astype(int) - b[support]).mean() > 1
    assert np.array_equal(a, np.asarray(pipe.edit(img, [BOX, QUAD], ["ab", "cd"], steps=2, seed=6).image))  # default
    with pytest.raises(ConfigError, match="unknown blend 'alpha'"):
        pipe.edit(img, [BOX], ["a"], blend="alpha")


def test_edit_many_batches_photos_and_keeps_each_seed(pipe):
    a, b = photo(seed=7), photo(seed=8)
    jobs = [(a, [BOX], ["ab"]), (b, [QUAD], ["xyz"]), (a, [BOX, QUAD], ["cd", "e"])]
    many = pipe.edit_many(jobs, steps=2, restarts=1, seeds=[3, 4, 5])
    assert len(many) == 3 and [len(r.regions) for r in many] == [1, 1, 2]
    for (img, regions, texts), seed, batched in zip(jobs, (3, 4, 5), many):
        alone = pipe.edit(img, regions, texts, steps=2, restarts=1, seed=seed)
        for r_alone, r_batched in zip(alone.regions, batched.regions):
            # the same noise; the batched UNet may round differently in the last bits only
            assert np.abs(r_alone.crop.astype(int) - r_batched.crop).max() <= 2
        assert batched.image.size == alone.image.size
    with pytest.raises(RegionError, match="2 job"):
        pipe.edit_many(jobs[:2], seeds=[1])
    with pytest.raises(RegionError, match="0 job"):
        pipe.edit_many([])


def test_stroke_mask_rule_narrows_the_attention_masks(pipe):
    img = photo(seed=9)
    plain = pipe.edit(img, [BOX], ["abc"], steps=2, seed=2)
    stroked = DreamTextPipeline(pipe.model, pipe.cfg.override({"sample.mask_rule": "strokes"}))
    refined = stroked.edit(img, [BOX], ["abc"], steps=2, seed=2)
    assert np.array_equal(np.asarray(refined.image), np.asarray(plain.image))  # only the masks change
    a, b = plain.regions[0], refined.regions[0]
    assert b.crop_char_masks.shape == (3, *pipe.cfg.image_size)  # at the crop's resolution
    assert b.char_masks.shape == a.char_masks.shape
    support = region_support(b.quad, img.shape[:2], b.feather_px)
    assert not (b.char_masks & ~support).any()
    for i in range(3):  # a character with no §3 mask gets no strokes
        assert b.crop_char_masks[i].any() <= a.crop_char_masks[i].any()
    by_argument = pipe.edit(img, [BOX], ["abc"], steps=2, seed=2, mask_rule="strokes").regions[0]
    assert np.array_equal(by_argument.char_masks, b.char_masks)
    bad = DreamTextPipeline(pipe.model, pipe.cfg.override({"sample.mask_rule": "blobs"}))
    with pytest.raises(ConfigError, match="unknown sample.mask_rule 'blobs'"):
        bad.edit(img, [BOX], ["abc"], steps=2)


def test_reconstruct_is_edit_with_the_original_text(pipe):
    img = photo(seed=3)
    a = pipe.reconstruct(img, [BOX], ["same"], steps=2, seed=0)
    b = pipe.edit(img, [BOX], ["same"], steps=2, seed=0)
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_all_regions_share_one_sampling_batch(pipe):
    calls = []
    handle = pipe.model.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[0]))
    try:
        pipe.edit(photo(), [BOX, QUAD, (5, 40, 60, 70)], ["a", "b", "c"], steps=3, guidance=2.0)
    finally:
        handle.remove()
    assert calls == [6, 6, 6]  # 3 regions × (conditional + unconditional), one UNet call per step


def test_input_formats(pipe, tmp_path):
    base = photo(60, 120)
    # EXIF orientation 6 (rotate 90° CW to display): the output has the displayed size
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(base).save(tmp_path / "rot.jpg", exif=exif.tobytes())
    rgba = np.concatenate([base, np.full((*base.shape[:2], 1), 128, np.uint8)], -1)
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    Image.fromarray(base[..., 0]).save(tmp_path / "gray.png")
    Image.fromarray((base[..., 1].astype(np.uint16) * 257)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    box = (10, 10, 50, 30)
    assert pipe.edit(tmp_path / "rot.jpg", [box], ["x"], steps=1).image.size == (60, 120)
    for name in ("alpha.png", "gray.png", "deep.png"):
        out = pipe.edit(tmp_path / name, [box], ["x"], steps=1).image
        assert out.size == (120, 60) and out.mode == "RGB", name
    gray = np.asarray(pipe.edit(tmp_path / "gray.png", [box], ["x"], steps=1).image)
    assert np.array_equal(gray[50:, :, 0], base[50:, :, 0])  # untouched rows keep the gray level


@pytest.mark.parametrize("regions, texts, error, words", [
    ([BOX], ["héllo"], TextError, "outside the charset"),
    ([BOX], [""], TextError, "empty"),
    ([BOX], ["a" * 49], TextError, "at most 48"),
    ([BOX], ["two  spaces"], TextError, "double spaces"),
    ([(2, 2, 8, 8)], ["long phrase here"], RegionError, "needs at least 8 px of height"),
    ([BOX, QUAD], ["one"], RegionError, "2 region"),
    ([], [], RegionError, "no region"),
    ([(100, 10, 200, 30)], ["a"], RegionError, "outside the 160×72 image"),
    ([(10, 10, 10, 30)], ["a"], RegionError, "zero area"),
])
def test_bad_input_names_the_problem(pipe, regions, texts, error, words):
    with pytest.raises(error, match=words):
        pipe.edit(photo(), regions, texts, steps=1)


def test_bad_options_and_images(pipe, tmp_path):
    with pytest.raises(ConfigError, match="unknown sampler"):
        pipe.edit(photo(), [BOX], ["a"], sampler="plms")
    with pytest.raises(ConfigError, match="steps"):
        pipe.edit(photo(), [BOX], ["a"], steps=0)
    for bad in (-1, 1.5, True):
        with pytest.raises(ConfigError, match="restarts"):
            pipe.edit(photo(), [BOX], ["a"], restarts=bad)
    (tmp_path / "junk.png").write_bytes(b"not a png at all")
    with pytest.raises(ImageError, match="junk.png"):
        pipe.edit(tmp_path / "junk.png", [BOX], ["a"])
    with pytest.raises(ImageError, match="does not exist"):
        pipe.edit(tmp_path / "missing.png", [BOX], ["a"])


def test_checkpoint_that_does_not_match_the_code(pipe_dir, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(pipe_dir, bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["text"]["dim"] = 48
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="does not match"):
        DreamTextPipeline.from_pretrained(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        DreamTextPipeline.from_pretrained(tmp_path / "nowhere")


def test_no_shipped_model_says_how_to_pass_one(monkeypatch, tmp_path):
    import dreamtext.model.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "SHIPPED_MODEL_DIR", tmp_path / "model")
    with pytest.raises(CheckpointError, match="no shipped model.*--ckpt"):
        DreamTextPipeline.from_pretrained()


def test_glyph_prior_model_gets_the_rendered_target(tmp_path):
    pipe = DreamTextPipeline.from_pretrained(save_random_pipeline(tmp_path / "g", glyph_prior=True))
    img = photo()
    batch, matrices, crops = pipe.prepare(img, [np.array(QUAD, np.float32)], ["Wide"])
    glyph = batch["glyph"][0, 0].numpy()
    mask = batch["mask"][0, 0].numpy()
    assert glyph.max() > 0.5 and glyph[mask == 0].max() < 0.5  # ink inside the region only
    out = pipe.edit(img, [QUAD], ["Wide"], steps=1)
    assert out.image.size == (160, 72)


def test_region_containers(pipe):
    img = photo(seed=4)
    a = pipe.edit(img, np.array([BOX, (5, 40, 60, 70)], np.float32), ["ab", "cd"], steps=1)
    b = pipe.edit(img, [list(BOX), {"box": [5, 40, 60, 70]}], ["ab", "cd"], steps=1)
    c = pipe.edit(img, BOX, "ab", steps=1)  # one region, given flat, and a bare string
    assert np.array_equal(np.asarray(a.image), np.asarray(b.image))
    assert len(c.regions) == 1 and c.regions[0].text == "ab"


def test_half_export_halves_the_file_and_reloads_close(pipe, pipe_dir, tmp_path):
    from safetensors import safe_open

    from dreamtext.cli import main

    assert main(["export", str(pipe_dir), "--out", str(tmp_path / "half"), "--half"]) == 0
    full = (pipe_dir / "model.safetensors").stat().st_size
    half = (tmp_path / "half" / "model.safetensors").stat().st_size
    assert half < 0.6 * full
    with safe_open(tmp_path / "half" / "model.safetensors", "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert "F32" not in dtypes and "F16" in dtypes
    again = DreamTextPipeline.from_pretrained(tmp_path / "half")
    a, b = pipe.model.state_dict(), again.model.state_dict()
    for k in a:
        assert b[k].dtype == a[k].dtype  # loading casts back to the model's dtype
        if a[k].is_floating_point():
            torch.testing.assert_close(b[k], a[k], rtol=1e-3, atol=1e-4)


def test_many_windows_are_sampled_in_bounded_groups(pipe, monkeypatch):
    """Past MAX_SAMPLE_BATCH windows the batch is sampled in groups, each window with its own generator: the
    grouping does not change the result (up to the batched UNet's last bits), and every UNet call is bounded."""
    import dreamtext.edit.pipeline as P

    boxes = [(4 + 30 * i, 8, 30 + 30 * i, 30) for i in range(5)]
    texts = ["ab", "cd", "ef", "gh", "ij"]
    calls = []
    handle = pipe.model.register_forward_pre_hook(lambda mod, args: calls.append(args[0].shape[0]))
    results = {}
    try:
        for cap in (2, 3):
            monkeypatch.setattr(P, "MAX_SAMPLE_BATCH", cap)
            calls.clear()
            results[cap] = np.asarray(pipe.edit(photo(), boxes, texts, steps=2, seed=7).image).astype(int)
            groups = -(-5 // cap)
            assert len(calls) == 2 * groups and max(calls) <= 2 * cap  # 2 steps a group; ×2: the CFG twin
        monkeypatch.setattr(P, "MAX_SAMPLE_BATCH", 48)
        calls.clear()
        whole = np.asarray(pipe.edit(photo(), boxes, texts, steps=2, seed=7).image).astype(int)
        assert calls == [10, 10]
    finally:
        handle.remove()
    assert np.abs(results[2] - results[3]).max() <= 2
    assert not np.array_equal(whole, results[2])  # one batch: the job's one generator, as always


def test_the_old_import_path_still_works():
    import dreamtext
    from dreamtext.pipeline import DreamTextPipeline as Old

    assert Old is DreamTextPipeline is dreamtext.DreamTextPipeline
