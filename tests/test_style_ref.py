"""The style reference (DESIGN §13): same-style pairs, the reference input, its metrics and the paired benchmark."""

import csv
import json
import math

import cv2
import numpy as np
import pytest
import torch

from dreamtext.cli import main
from dreamtext.config import load_config
from dreamtext.data.render import SynthGenerator, pair_length
from dreamtext.errors import ConfigError
from dreamtext.evaluation.style_metrics import ciede2000, colour_errors, sharpness_ratio, text_cluster
from dreamtext.model.network import DreamTextModel, widen_for_style_ref

# How far an edit pair's two scenes may differ from either word's ink: a drop shadow (offset ≤ 3 px, blur
# σ ≤ 1.8) and JPEG's 16-pixel chroma macroblocks (≤ 22 px diagonally) spread the difference past the strokes.
SPREAD_PX = 24


def _ink_distance(*records) -> np.ndarray:
    ink = np.zeros(records[0].image.shape[:2], bool)
    for r in records:
        ink |= r.char_masks.any(0)
    return cv2.distanceTransform((~ink).astype(np.uint8), cv2.DIST_L2, 5)


def test_pairs_differ_only_around_the_two_words_and_vary_in_length():
    gen = SynthGenerator(load_config("tiny"), seed=3)
    lengths = set()
    for i in range(16):
        source, target = gen.sample_pair(i, length_delta=3, blank_source=i % 4 == 0)
        assert source.image.shape == target.image.shape
        np.testing.assert_allclose(source.word_quad, gen.sample(i).word_quad)  # the box an edit is given
        diff = (source.image != target.image).any(-1)
        assert diff.any()
        assert not diff[_ink_distance(source, target) > SPREAD_PX].any(), i  # the scene is the same elsewhere
        assert abs(len(target.text) - len(source.text)) <= 3 and target.text != source.text
        lengths.add(len(target.text) - len(source.text))
        if i % 4 == 0:  # a source that held no text: no ink, the key says so
            assert source.key.endswith("-blank") and not source.char_masks.any()
        else:
            assert source.char_masks.any() and np.array_equal(source.image, gen.sample(i).image)
    assert len(lengths) >= 3  # longer, shorter and equal targets all occur


def test_pair_length_bounds_the_stretch():
    rng = np.random.default_rng(0)
    for n in range(1, 13):
        got = {pair_length(n, 3, 12, rng) for _ in range(200)}
        assert min(got) >= max(1, n - 3, math.ceil(n / 1.5)) and max(got) <= min(12, n + 3, int(n * 1.5))
    assert {pair_length(1, 3, 12, rng) for _ in range(20)} == {1}  # a 1-letter word cannot change length


def _batch(cfg, n=4, seed=0):
    from dreamtext.train.utils import IndexedSamples

    ds = IndexedSamples(cfg, seed=seed)
    return torch.utils.data.default_collate([ds[i] for i in range(n)])


def test_zero_initialised_reference_reproduces_the_model_bit_for_bit():
    base = load_config("test", overrides=["glyph_prior=true"])
    styled = base.override(["style_ref=true", "data.edit_pairs=0.5", "data.style_ref_drop=0"])
    assert styled.unet_in_channels == base.unet_in_channels + base.latent_channels + 1
    torch.manual_seed(0)
    original = DreamTextModel(base).eval()
    widened = DreamTextModel(styled).eval()
    widened.load_state_dict(widen_for_style_ref(original.state_dict(), styled))
    batch = _batch(styled, n=6)
    assert batch["has_style"].sum() > 0 and batch["style"].abs().sum() > 0  # some rows do carry a reference
    z = torch.randn_like(batch["image"])
    t = torch.tensor([999, 700, 500, 300, 100, 1])
    with torch.no_grad():
        before = original(z, t, original.make_cond(batch))
        after = widened(z, t, widened.make_cond(batch))
    assert torch.equal(before, after)
    # Once the new channels move, the reference changes the prediction (the input is really wired in).
    with torch.no_grad():
        widened.unet.conv_in.weight[:, -4:] = 0.1
        moved = widened(z, t, widened.make_cond(batch))
    rows = batch["has_style"] > 0
    assert not torch.allclose(moved[rows], before[rows])


def test_fine_tune_start_widens_a_shipped_style_model(tmp_path):
    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.train.run_setup import _init_weights

    base = load_config("test")
    torch.manual_seed(1)
    DreamTextPipeline(DreamTextModel(base), base).save_pretrained(tmp_path / "v6")
    model = DreamTextModel(base.override(["style_ref=true"]))
    _init_weights(model, str(tmp_path / "v6"))
    w = model.unet.conv_in.weight
    assert w.shape[1] == base.unet_in_channels + 4 and torch.equal(w[:, -4:], torch.zeros_like(w[:, -4:]))
    own = DreamTextPipeline.from_pretrained(tmp_path / "v6").model.unet.conv_in.weight
    assert torch.equal(w[:, :-4], own)


def test_training_samples_carry_the_reference_as_configured():
    cfg = load_config("test", overrides=["style_ref=true", "data.edit_pairs=1.0", "data.style_ref_drop=0",
                                         "data.pair_length_delta=2"])
    from dreamtext.train.utils import IndexedSamples

    ds = IndexedSamples(cfg, seed=5)
    for i in range(4):
        s = ds[i]
        assert float(s["has_style"]) == 1.0
        source, _ = ds.record(i, pair=True)
        # The reference is the source window unmasked: where the mask is 0 it equals the masked input.
        outside = s["mask"][0] == 0
        assert torch.equal(s["style"][:, outside], s["masked_image"][:, outside])
        assert not torch.equal(s["style"], s["masked_image"])  # and inside it shows the old word
    plain = IndexedSamples(cfg.override(["data.edit_pairs=0", "data.style_ref_same=0"]), seed=5)
    s = plain[0]
    assert float(s["has_style"]) == 0.0 and not s["style"].any()
    same = IndexedSamples(cfg.override(["data.edit_pairs=0", "data.style_ref_same=1"]), seed=5)[0]
    assert torch.equal(same["style"], same["image"])  # reconstruction-style: the reference is the word itself
    with pytest.raises(ConfigError, match="data.style_ref_drop"):
        IndexedSamples(cfg.override(["data.style_ref_drop=1.5"]))


def test_ciede2000_matches_sharma_reference_pairs():
    # Sharma, Wu & Dalal (2005), test data pairs 1, 7 and 17: published ΔE00 values.
    assert ciede2000([50, 2.6772, -79.7751], [50, 0, -82.7485]) == pytest.approx(2.0425, abs=1e-4)
    assert ciede2000([50, 0, 0], [50, -1, 2]) == pytest.approx(2.3669, abs=1e-4)
    assert ciede2000([50, 2.5, 0], [73, 25, -18]) == pytest.approx(27.1492, abs=1e-4)


def _two_colour(text_rgb, back_rgb, shift=0):
    img = np.zeros((20, 40, 3), np.uint8)
    img[:] = back_rgb
    text = np.zeros((20, 40), bool)
    text[6:14, 8 + shift:32 + shift] = True
    img[text] = text_rgb
    return img, text


def test_colour_errors_find_the_outputs_own_text_pixels():
    from dreamtext.evaluation.style_metrics import _lab

    truth, gt_text = _two_colour((255, 255, 255), (20, 40, 160))
    region = np.ones((20, 40), bool)
    # Same colours, the word drawn 3 px to the right: no colour error, though the pixels differ.
    shifted, _ = _two_colour((255, 255, 255), (20, 40, 160), shift=3)
    errs = colour_errors(shifted, truth, region, gt_text)
    assert errs["text_color_de"] == pytest.approx(0, abs=1e-6) and errs["background_de"] == pytest.approx(0, abs=1e-6)
    # Grey text on the right background: the text error is the ΔE00 of white vs that grey, by hand.
    grey, _ = _two_colour((128, 128, 128), (20, 40, 160))
    errs = colour_errors(grey, truth, region, gt_text)
    white, g = _lab(np.array([[255, 255, 255], [128, 128, 128]], np.uint8))
    assert errs["text_color_de"] == pytest.approx(ciede2000(white, g), rel=1e-6)
    # By hand: both neutral, so ΔE00 = ΔL*/S_L with L* 100 and 53.59, L̄ = 76.80,
    # S_L = 1 + 0.015·26.80² / √(20 + 26.80²) = 1.3960, ΔE00 = 46.41 / 1.3960 = 33.24.
    assert errs["text_color_de"] == pytest.approx(33.24, abs=0.01)
    assert errs["background_de"] == pytest.approx(0, abs=1e-6)
    assert text_cluster(grey, region, gt_text).sum() == gt_text.sum()
    nan = colour_errors(grey, truth, np.zeros((20, 40), bool), gt_text)
    assert math.isnan(nan["text_color_de"]) and math.isnan(nan["background_de"])


def test_sharpness_ratio_of_a_softer_edge():
    sharp = np.zeros((32, 64, 3), np.uint8)
    sharp[:, 32:] = 200
    half = (sharp // 2).astype(np.uint8)  # the same edge at half the contrast: half the gradient
    region = np.ones((32, 64), bool)
    assert sharpness_ratio(half, sharp, region) == pytest.approx(0.5, rel=1e-6)
    assert sharpness_ratio(sharp, sharp, region) == 1.0
    assert math.isnan(sharpness_ratio(sharp, np.zeros_like(sharp), region))


@pytest.fixture(scope="module")
def style_ckpt(tmp_path_factory):
    from dreamtext.edit.pipeline import DreamTextPipeline

    cfg = load_config("test", overrides=["style_ref=true"])
    torch.manual_seed(0)
    model = DreamTextModel(cfg)
    with torch.no_grad():  # a reference that matters, so with / without it differ
        model.unet.conv_in.weight[:, -4:] = 0.05
    return DreamTextPipeline(model, cfg).save_pretrained(tmp_path_factory.mktemp("style") / "pipe")


def test_eval_style_task_scores_pairs_per_height(style_ckpt, tmp_path, capsys):
    from dreamtext.data.pairs import StylePairs

    out = tmp_path / "style"
    assert main(["eval", "--task", "style", "--ckpt", str(style_ckpt), "--limit", "6", "--out", str(out),
                 "--steps", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "words   16-32 px" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["task"] == "style" and res["data"] == "style-pairs" and res["n_samples"] == 6
    assert res["style_ref"] == {"model": True, "used": True}
    for key in ("seq_acc_ci", "ned", "ssim_gt", "psnr_gt", "text_color_de", "background_de", "sharpness_ratio",
                "ocr_ceiling_seq_acc_ci", "text_color_de_median"):
        assert key in res["metrics"], key
    assert sum(b["n"] for b in res["metrics_by_height"].values()) == 6
    rows = list(csv.DictReader((out / "samples.csv").open()))
    pairs = StylePairs(load_config("test"))
    for r in rows:  # each row is its pair's new word, scored against that pair's ground truth
        source, target = pairs.pair(int(r["index"]))
        assert r["text"] == source.text and r["target"] == target.text
    assert "ground-truth edit" in (out / "report.md").read_text()
    # Without the reference the same pairs are edited from the masked region only.
    off = tmp_path / "off"
    assert main(["eval", "--task", "style", "--ckpt", str(style_ckpt), "--limit", "2", "--out", str(off),
                 "--steps", "2", "--no-progress", "--no-style-ref"]) == 0
    res_off = json.loads((off / "results.json").read_text())
    assert res_off["style_ref"] == {"model": True, "used": False}
    rows_off = list(csv.DictReader((off / "samples.csv").open()))
    assert rows_off[0]["ssim_gt"] != rows[0]["ssim_gt"]


def test_recon_never_shows_the_reference(style_ckpt, tmp_path):
    from dreamtext.evaluation.evaluate import EvalSettings, style_ref_used

    cfg = load_config("test", overrides=["style_ref=true"])
    assert style_ref_used(EvalSettings(task="recon"), cfg) is False
    assert style_ref_used(EvalSettings(task="edit"), cfg) is True
    assert style_ref_used(EvalSettings(task="edit"), load_config("test")) is False
    with pytest.raises(ConfigError, match="reconstruction protocol"):
        EvalSettings(task="recon", style_ref=True).check()


def test_pipeline_uses_the_old_word_by_default_and_not_with_the_flag(style_ckpt, tmp_path, capsys):
    from _pipeline_fixtures import photo
    from PIL import Image

    from dreamtext.edit.pipeline import DreamTextPipeline

    pipe = DreamTextPipeline.from_pretrained(style_ckpt)
    img = photo()
    batch, _, _ = pipe.prepare(img, [np.array([[20, 10], [100, 10], [100, 34], [20, 34]], float)], ["ab"],
                               style_ref=True)
    assert torch.equal(batch["style"], batch["image"]) and batch["has_style"].tolist() == [1.0]
    with_ref = pipe.edit(img, [(20, 10, 100, 34)], ["ab"], steps=2)
    without = pipe.edit(img, [(20, 10, 100, 34)], ["ab"], steps=2, style_ref=False)
    assert not np.array_equal(np.asarray(with_ref.image), np.asarray(without.image))
    Image.fromarray(img).save(tmp_path / "in.png")
    for flag, expected in (([], with_ref), (["--no-style-ref"], without)):
        out = tmp_path / f"out{len(flag)}.png"
        assert main(["edit", str(tmp_path / "in.png"), "--box", "20,10,100,34", "--text", "ab", "--steps", "2",
                     "--ckpt", str(style_ckpt), "-o", str(out), *flag]) == 0
        assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected.image))
    spec = tmp_path / "jobs.json"
    spec.write_text(json.dumps([{"image": "in.png", "regions": [{"box": [20, 10, 100, 34], "text": "ab"}],
                                 "out": "bad.png", "style_ref": "no"}]))
    capsys.readouterr()
    assert main(["edit", "--spec", str(spec), "--ckpt", str(style_ckpt), "--steps", "2"]) == 1
    assert "'style_ref' must be true or false" in capsys.readouterr().err


def test_web_page_keeps_the_old_words_look_unless_unticked(style_ckpt, tmp_path):
    from _pipeline_fixtures import photo

    from dreamtext.edit.pipeline import DreamTextPipeline
    from dreamtext.web.app import EditService, ServeSettings

    pipe = DreamTextPipeline.from_pretrained(style_ckpt)
    service = EditService(pipe.edit, max_len=pipe.cfg.max_len, settings=ServeSettings(),
                          results_dir=tmp_path / "results", defaults={"steps": 2})
    img, spec = photo(), "20, 10, 100, 34, ab"
    kept = service.run(img, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, style_ref=True)
    plain = service.run(img, spec, steps=2, guidance=3.0, sampler="ddim", seed=0, style_ref=False)
    direct = pipe.edit(img, [(20, 10, 100, 34)], ["ab"], steps=2, guidance=3.0, sampler="ddim", seed=0)
    assert kept.ok and plain.ok
    assert np.array_equal(kept.image, np.asarray(direct.image))  # ticked: the pipeline's default, the reference
    assert not np.array_equal(kept.image, plain.image)


def test_compare_pairs_the_colour_errors_of_two_style_runs(tmp_path):
    from dreamtext.evaluation.compare import compare_runs, comparison_line

    header = "index,target,seq_acc_ci,ned,text_color_de,background_de\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "samples.csv").write_text(header + "0,ab,1,0,20,5\n1,cd,0,0.5,30,nan\n2,ef,0,1,10,4\n")
    (tmp_path / "b" / "samples.csv").write_text(header + "0,ab,1,0,8,2\n1,cd,1,0,12,3\n2,ef,0,1,11,1\n")
    c = compare_runs(tmp_path / "a", tmp_path / "b")
    text = c["paired"]["text_color_de"]
    assert (text["n"], text["lower_in_b"], text["lower_in_a"]) == (3, 2, 1)
    assert (text["median_a"], text["median_b"]) == (20.0, 11.0)
    assert c["paired"]["background_de"]["n"] == 2  # the NaN row is left out
    assert "text_color_de: median A 20.00 → B 11.00 over 3 records" in comparison_line(c)
