"""Metric functions against hand-computed values (DESIGN §8)."""

import math

import numpy as np
import pytest
import torch
from _eval_fixtures import random_lpips_weights, save_pool_features  # noqa: E402

from dreamtext.errors import CheckpointError, ImageError
from dreamtext.evaluation import metrics


def test_levenshtein_and_ned_hand_values():
    assert metrics.levenshtein("kitten", "sitting") == 3
    assert metrics.levenshtein("", "abc") == 3
    assert metrics.levenshtein("flaw", "lawn") == 2
    assert metrics.ned("kitten", "sitting") == pytest.approx(3 / 7)
    assert metrics.ned("", "") == 0.0
    assert metrics.ned("", "ab") == 1.0
    # case: ignored by default (the reference), counted when asked
    assert metrics.ned("Hello", "hello") == 0.0
    assert metrics.ned("Hello", "hello", case_sensitive=True) == pytest.approx(1 / 5)


def test_seq_acc_case_handling():
    assert metrics.seq_acc("STOP", "stop") == 1.0
    assert metrics.seq_acc("STOP", "stop", case_sensitive=True) == 0.0
    assert metrics.seq_acc("st0p", "stop") == 0.0
    assert metrics.seq_acc("", "stop") == 0.0


def test_mse_psnr_hand_values():
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[:2] = 255  # half the pixels differ by 1.0 → MSE 0.5
    assert metrics.mse(a, b) == pytest.approx(0.5)
    assert metrics.psnr(a, b) == pytest.approx(10 * math.log10(2))
    assert metrics.psnr(a, a) == metrics.PSNR_CAP_DB
    c = np.full((4, 4, 3), 0.1)
    assert metrics.mse(c, np.zeros_like(c)) == pytest.approx(0.01)
    assert metrics.psnr(c, np.zeros_like(c)) == pytest.approx(20.0)


def test_ssim_constant_images_hand_value():
    # Constant images: σ = 0, so SSIM = (2μxμy + C1) / (μx² + μy² + C1) with C1 = (0.01·1)², C2 cancels.
    a, b = np.full((16, 16, 3), 0.2), np.full((16, 16, 3), 0.6)
    c1 = 0.01 ** 2
    assert metrics.ssim(a, b) == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2 ** 2 + 0.6 ** 2 + c1), abs=1e-6)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    assert metrics.ssim(x, 255 - x) < 0
    assert math.isnan(metrics.ssim(x[:2], x[:2]))  # too small for any window
    assert metrics.ssim(x[:5, :5], x[:5, :5]) == pytest.approx(1.0)  # 5×5 window


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ImageError, match="differ in shape"):
        metrics.mse(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ImageError, match="uint8 or float"):
        metrics.mse(np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32))


def test_image_metrics_region_box():
    ref = np.zeros((20, 40, 3), np.uint8)
    out = ref.copy()
    out[5:10, 10:20] = 255  # change exactly the quad's box
    quad = np.array([[10, 5], [20, 5], [20, 10], [10, 10]], np.float32)
    m = metrics.image_metrics(out, ref, quad)
    assert m["mse_region"] == pytest.approx(1.0)
    assert m["mse"] == pytest.approx(50 / 800)
    assert m["psnr_region"] == pytest.approx(0.0)
    assert metrics.quad_box(quad, (20, 40)) == (slice(5, 10), slice(10, 20))
    # a quad partly outside the image is clamped
    assert metrics.quad_box(np.array([[-5, -5], [50, -5], [50, 30], [-5, 30]]), (20, 40)) == (slice(0, 20), slice(0, 40))


def test_char_mask_miou_hand_value():
    gt = np.zeros((2, 4, 4), bool)
    pred = np.zeros((2, 4, 4), bool)
    gt[0, :2, :2] = True      # 4 px
    pred[0, :2, :1] = True    # 2 px inside → IoU 2/4
    gt[1, 2:, 2:] = True      # 4 px
    pred[1, 3:, 2:] = True    # 2 px inside
    pred[1, 0, 0] = True      # 1 px outside → IoU 2/5
    assert metrics.char_mask_miou(pred, gt) == pytest.approx((0.5 + 0.4) / 2)
    empty = np.zeros((1, 4, 4), bool)
    assert metrics.char_mask_miou(empty, empty) == 1.0
    with pytest.raises(ImageError, match="one shape"):
        metrics.char_mask_miou(pred[:1], gt)


def test_even_slice_masks_cut_the_quad_along_its_reading_direction():
    quad = np.array([[0, 0], [8, 0], [8, 4], [0, 4]], np.float32)  # an 8×4 box in a 10-wide image
    masks = metrics.even_slice_masks(quad, 4, (6, 10))
    assert masks.shape == (4, 6, 10) and masks.dtype == bool
    for i in range(4):  # character i: columns 2i, 2i+1 of rows 0..3, nothing else
        expected = np.zeros((6, 10), bool)
        expected[:4, 2 * i:2 * i + 2] = True
        assert np.array_equal(masks[i], expected), i
    # The same box listed from its right end (reading right to left): the slices come in reverse order.
    flipped = metrics.even_slice_masks(quad[[1, 0, 3, 2]], 4, (6, 10))
    assert np.array_equal(flipped, masks[::-1])
    assert metrics.char_mask_miou(masks, masks) == 1.0
    with pytest.raises(ImageError, match="at least one character"):
        metrics.even_slice_masks(quad, 0, (6, 10))


def test_frechet_distance_hand_value():
    # diagonal Gaussians: |Δμ|² + Σ_k (σ1 + σ2 − 2√(σ1σ2)) = 5 + (1 + 4 − 4) + (4 + 9 − 12) = 7
    d = metrics.frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([1.0, 2.0]), np.diag([4.0, 9.0]))
    assert d == pytest.approx(7.0)
    feats = np.random.default_rng(0).normal(size=(50, 3))
    assert metrics.fid_from_features(feats, feats) == pytest.approx(0.0, abs=1e-6)
    assert metrics.fid_from_features(feats, feats + 2.0) == pytest.approx(12.0, rel=1e-6)
    with pytest.raises(ImageError, match="at least two"):
        metrics.fid_from_features(feats[:1], feats)


@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_lpips_loads_standard_files(tmp_path, fmt):
    trunk, lins = random_lpips_weights(tmp_path, fmt)
    model, notice = metrics.load_lpips(tmp_path)
    assert notice == ""
    assert torch.equal(model.features[3].weight, trunk["features.3.weight"])
    assert torch.equal(model.lins[4].weight, lins["lin4.model.1.weight"])
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 60, a.shape), 0, 255).astype(np.uint8)
    assert metrics.lpips_distance(model, a, a) == pytest.approx(0.0, abs=1e-7)
    d_ab, d_ba = metrics.lpips_distance(model, a, b), metrics.lpips_distance(model, b, a)
    assert d_ab > 0 and d_ab == pytest.approx(d_ba, rel=1e-5)
    assert metrics.lpips_distance(model, a, 255 - a) > d_ab  # a bigger change is further away


def test_lpips_missing_or_wrong_weights(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.LPIPS_ENV, raising=False)
    model, notice = metrics.load_lpips()
    assert model is None and metrics.LPIPS_ENV in notice and notice.startswith("LPIPS skipped")
    model, notice = metrics.load_lpips(tmp_path)  # empty folder
    assert model is None and "lacks" in notice
    from safetensors.torch import save_file

    save_file({"features.0.weight": torch.zeros(3, 3)}, str(tmp_path / "alexnet.safetensors"))
    save_file({"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}, str(tmp_path / "alex.safetensors"))
    with pytest.raises(CheckpointError, match="AlexNet-LPIPS"):
        metrics.load_lpips(tmp_path)


def test_inception_loader_and_features(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.FID_ENV, raising=False)
    net, notice = metrics.load_inception()
    assert net is None and metrics.FID_ENV in notice
    net, notice = metrics.load_inception(tmp_path / "missing.pt")
    assert net is None and "does not exist" in notice
    path = tmp_path / "inception.pt"
    save_pool_features(path)
    monkeypatch.setenv(metrics.FID_ENV, str(path))
    net, notice = metrics.load_inception()
    assert notice == ""
    imgs = [np.full((20, 30, 3), v, np.uint8) for v in (0, 51, 102, 153)]
    feats = metrics.inception_features(net, imgs, batch=3)
    assert feats.shape == (4, 6)
    assert feats[1, :3] == pytest.approx([0.2] * 3, abs=1e-6)  # resized to 299² but still constant
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="TorchScript"):
        metrics.load_inception(tmp_path / "junk.pt")
