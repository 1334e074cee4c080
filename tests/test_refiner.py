"""The detail refiner (issue 28): network, examples, training / resume / export, and the pipeline's upscale modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dreamtext.config import load_config
from dreamtext.data.geometry import context_window, enlargement, warp, window_to_box
from dreamtext.edit.detail import restore_detail, unsharp
from dreamtext.errors import CheckpointError, ConfigError
from dreamtext.model.refiner import DetailRefiner, load_refiner, refine_patch
from _pipeline_fixtures import photo, save_random_pipeline


def _sobel_energy(img: np.ndarray) -> float:
    import cv2

    g = img.astype(np.float32).mean(-1)
    return float(np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)).mean())


def _soft_word(h: int = 48, w: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A blurred dark bar pattern on a light patch, and its region: (uint8 (h, w, 3), bool (h, w))."""
    import cv2

    img = np.full((h, w, 3), 220, np.uint8)
    for x in range(10, w - 10, 18):
        img[8:h - 8, x:x + 7] = 30
    region = np.zeros((h, w), bool)
    region[4:h - 4, 4:w - 4] = True
    return cv2.GaussianBlur(img, (0, 0), 3.0), region


def _trained_refiner(seed: int = 0) -> DetailRefiner:
    """A refiner of the test preset whose last convolution is random (not the zero start): it changes pixels."""
    torch.manual_seed(seed)
    model = DetailRefiner(load_config("test").refiner)
    torch.nn.init.normal_(model.tail.weight, std=0.05)
    return model.eval()


def test_untrained_refiner_is_the_identity_bit_for_bit():
    back, region = _soft_word()
    guide = photo(*back.shape[:2])
    out = refine_patch(DetailRefiner(load_config("test").refiner), back, guide, region, 4.0, has_ref=True)
    assert out.dtype == np.uint8 and np.array_equal(out, back)


@pytest.mark.parametrize("hw", [(37, 53), (16, 16), (1, 9)])
def test_refiner_keeps_any_size(hw):
    model = _trained_refiner()
    b = torch.zeros(2, 3, *hw)
    out = model(b, b, torch.ones(2, 1, *hw), torch.tensor([2.0, 8.0]))
    assert out.shape == (2, 3, *hw) and torch.isfinite(out).all()


def test_without_the_reference_the_old_word_never_reaches_the_refiner():
    """Reconstruction (the paper's protocol, no reference): the photo's pixels inside the region must not matter,
    or the refiner could copy the ground truth."""
    model = _trained_refiner()
    back, region = _soft_word()
    guide = photo(*back.shape[:2])
    other = guide.copy()
    other[region] = 255 - other[region]
    a = refine_patch(model, back, guide, region, 4.0, has_ref=False)
    b = refine_patch(model, back, other, region, 4.0, has_ref=False)
    assert np.array_equal(a, b)
    c = refine_patch(model, back, other, region, 4.0, has_ref=True)
    assert not np.array_equal(a, c)  # with the reference it does see them


def test_restore_detail_modes():
    back, region = _soft_word()
    guide = photo(*back.shape[:2])
    assert restore_detail("bilinear", back, guide, region, 6.0, True) is back
    assert restore_detail("unsharp", back, guide, region, 1.2, True) is back  # below upscale_min: left alone
    sharpened = restore_detail("unsharp", back, guide, region, 6.0, True)
    assert _sobel_energy(sharpened) > 1.3 * _sobel_energy(back)
    assert np.array_equal(sharpened, unsharp(back, 6.0))
    with pytest.raises(ConfigError, match="sample.upscale"):
        restore_detail("lanczos", back, guide, region, 6.0, True)
    with pytest.raises(ConfigError, match="needs a refiner"):
        restore_detail("refiner", back, guide, region, 6.0, True, refiner=None)


def test_refiner_example_is_the_paste_backs_own_box():
    from dreamtext.data.pairs import StylePairs
    from dreamtext.data.refiner_examples import random_crops, refiner_example

    cfg = load_config("test").override({"refiner.blur_max": 0.0, "refiner.noise_max": 0.0})
    source, target = StylePairs(cfg, num=6, seed=3, split="train").pair(2)  # record 2: the largest font range
    ex = refiner_example(source, target, cfg, np.random.default_rng(0))
    h, w = ex["region"].shape
    assert all(ex[k].shape == (h, w, 3) for k in ("back", "guide", "truth"))
    assert ex["region"].any() and not (ex["region"] & ~ex["weight"]).any()  # the quad lies inside the band
    matrix = context_window(target.word_quad, target.image.shape[:2], cfg.image_size, cfg.data.min_word_area_frac,
                            cfg.data.context_scale)
    assert ex["upscale"] == pytest.approx(enlargement(matrix)) and ex["upscale"] > 1.25
    # without augmentation `back` is exactly the target's window, enlarged back the paste-back's way
    low = warp(target.image, matrix, tuple(cfg.image_size))
    assert np.abs(ex["back"].astype(int) - ex["truth"].astype(int)).mean() > 0  # enlargement loses detail
    from dreamtext.data.geometry import bbox, quad_height

    box = bbox(target.word_quad, max(1.0, cfg.sample.feather * quad_height(target.word_quad)) + 2,
               target.image.shape[:2])
    assert np.array_equal(ex["back"], window_to_box(np.clip(np.round(low), 0, 255).astype(np.uint8), matrix, box))
    assert np.array_equal(ex["truth"], target.image[box[1]:box[3], box[0]:box[2]])
    crops = random_crops(ex, 3, 24, np.random.default_rng(1))
    assert len(crops) == 3 and all(c["back"].shape == (24, 24, 3) and c["region"].any() for c in crops)


def test_train_resume_export_and_load(tmp_path):
    from dreamtext.train.refiner_train import export_refiner, train_refiner

    cfg = load_config("test")
    first = train_refiner(cfg.override({"refiner.steps": 2}), tmp_path / "run", progress=False)
    assert first["step"] == 2 and first["stopped"] is None
    with pytest.raises(CheckpointError, match="--resume"):
        train_refiner(cfg, tmp_path / "run", progress=False)
    done = train_refiner(cfg, tmp_path / "run", resume=True, progress=False)
    assert done["step"] == 4 and done["steps_this_run"] == 2
    assert np.isfinite(done["loss/total"]) and done["eval_pairs"] >= 1
    # the same four steps in one go give the same weights: resume continues the same data and optimiser
    train_refiner(cfg, tmp_path / "straight", progress=False)
    a, _ = load_refiner(tmp_path / "run")
    b, _ = load_refiner(tmp_path / "straight")
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.allclose(pa, pb, atol=1e-6), name
    dest = export_refiner(tmp_path / "run", tmp_path / "exported")
    assert sorted(p.name for p in dest.iterdir()) == ["config.json", "model.safetensors", "state.json"]
    loaded, _ = load_refiner(dest)
    assert all(torch.equal(x, y) for x, y in zip(loaded.state_dict().values(), a.state_dict().values()))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("x")
    with pytest.raises(CheckpointError, match="non-empty folder"):
        export_refiner(tmp_path / "run", tmp_path / "mine")
    assert (tmp_path / "mine" / "keep.txt").read_text() == "x"
    with pytest.raises(CheckpointError, match="not a detail refiner"):
        load_refiner(save_random_pipeline(tmp_path / "pipe"))


def _pipeline_with_refiner(tmp_path, refiner: DetailRefiner):
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.model.checkpoint import save_checkpoint

    rdir = save_checkpoint(tmp_path / "refiner", load_config("test"), {"model": refiner.state_dict()},
                           {"kind": "refiner", "format": "dreamtext.refiner", "step": 0})
    pipe = DreamTextPipeline.from_pretrained(save_random_pipeline(tmp_path / "model"))
    pipe.cfg.sample.refiner = str(rdir)
    return pipe


def test_pipeline_upscale_modes(tmp_path):
    """A region 4× its window: the refiner changes only the pasted region; a zero-start refiner is bilinear."""
    img = photo(120, 400, seed=2)
    box = (40, 30, 360, 100)  # 70 px tall: the test model's 16-px window enlarged ~4×
    pipe = _pipeline_with_refiner(tmp_path, _trained_refiner())
    kw = dict(seed=3, steps=2)
    base = np.asarray(pipe.edit(img, [box], ["abc"], upscale="bilinear", **kw).image)
    refined = pipe.edit(img, [box], ["abc"], upscale="refiner", **kw)
    out = np.asarray(refined.image)
    assert not np.array_equal(out, base)
    changed = np.any(out != base, -1)
    support = np.any(np.asarray(refined.image) != img, -1) | np.any(base != img, -1)
    assert not (changed & ~support).any()  # nothing outside what an edit of this region may touch
    unsharp_out = np.asarray(pipe.edit(img, [box], ["abc"], upscale="unsharp", **kw).image)
    assert not np.array_equal(unsharp_out, base)
    identity = _pipeline_with_refiner(tmp_path / "zero", DetailRefiner(load_config("test").refiner))
    same = np.asarray(identity.edit(img, [box], ["abc"], upscale="refiner", **kw).image)
    assert np.array_equal(same, base)
    with pytest.raises(ConfigError, match="sample.upscale"):
        pipe.edit(img, [box], ["abc"], upscale="nearest", **kw)


def test_stroke_masks_come_at_the_regions_resolution(tmp_path):
    """With mask_rule=strokes an enlarged region's masks are the pasted photo's own letter pixels (found at the
    photo's resolution), each given to one character — not the window's stroke pixels enlarged in blocks."""
    from dreamtext.model.char_masks import text_pixels

    img = photo(120, 400, seed=4)
    box = (40, 30, 360, 100)
    pipe = _pipeline_with_refiner(tmp_path, _trained_refiner())
    res = pipe.edit(img, [box], ["abcd"], mask_rule="strokes", upscale="refiner", seed=1, steps=2)
    masks = res.regions[0].char_masks  # (4, H, W)
    assert masks.shape == (4, 120, 400) and (masks.sum(0) <= 1).all()  # one character per pixel
    attention = pipe.edit(img, [box], ["abcd"], mask_rule="attention", upscale="refiner", seed=1, steps=2)
    out = np.asarray(res.image)
    region = np.zeros(out.shape[:2], bool)
    region[30:100, 40:360] = True
    strokes = text_pixels(out, region) & attention.regions[0].char_masks.any(0).any() & region
    union = masks.any(0)
    assert union.any() and not (union & ~strokes).any()
    # every letter pixel of the photo near a character's §3 mask got one
    near = attention.regions[0].char_masks.any(0)
    assert (union[strokes & near]).all()


def test_a_wrong_refiner_is_refused_before_the_model_loads(tmp_path):
    """`dreamtext edit` checks the refiner beside the other inputs: one error line, nothing sampled or written."""
    import subprocess
    import sys

    from dreamtext.io_utils import atomic_save_image

    model = save_random_pipeline(tmp_path / "model", **{"sample.refiner": str(tmp_path / "model")})
    atomic_save_image(tmp_path / "in.png", photo(120, 400))
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-m", "dreamtext.cli", "edit", str(tmp_path / "in.png"), "--box",
                           "40,30,360,100", "--text", "abc", "--ckpt", str(model), "--upscale", "refiner",
                           "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1 and "not a detail refiner" in proc.stderr
    assert not out.exists()


def test_shipped_refiner_sharpens_a_held_out_pair():
    """The shipped weights are the trained ones: on a held-out pair of the paired split (its tallest font range)
    the refined box is closer to the ground truth than the bilinear enlargement, pixels and edges both."""
    from dreamtext.data.pairs import StylePairs
    from dreamtext.data.refiner_examples import refiner_example
    from dreamtext.train.refiner_train import crops_to_batch, refiner_loss

    refiner, rcfg = load_refiner()
    assert rcfg.refiner.channels == refiner.cfg.channels
    cfg = load_config("tiny")
    ex = refiner_example(*StylePairs(cfg).pair(2), cfg, np.random.default_rng(0))
    assert ex["upscale"] > 3
    b = crops_to_batch([ex], np.array([True]))
    with torch.no_grad():
        out = refiner(b["back"], b["guide"], b["region"], b["upscale"]).clamp(-1, 1)
    base, refined = (refiner_loss(x, b["truth"], b["weight"], 1.0) for x in (b["back"], out))
    assert refined["l1"] < 0.9 * base["l1"] and refined["grad"] < 0.95 * base["grad"]
