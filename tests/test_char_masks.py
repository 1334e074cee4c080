"""§3 on hand-built attention maps with answers worked out by hand."""

import math

import numpy as np
import pytest
import torch

from dreamtext.model.char_masks import (aggregate_maps, blur3, gaussian_kernel3, mask_iou, predict_char_masks,
                                        refine_to_strokes, resize_char_masks, resize_map)


def test_gaussian_kernel_is_normalised_sigma_one():
    k = gaussian_kernel3(1.0)
    z = 1 + 4 * math.exp(-0.5) + 4 * math.exp(-1.0)
    assert k.shape == (3, 3)
    assert k.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert k[1, 1].item() == pytest.approx(1 / z, abs=1e-6)  # 0.2042
    assert k[0, 1].item() == pytest.approx(math.exp(-0.5) / z, abs=1e-6)  # 0.1238
    assert k[0, 0].item() == pytest.approx(math.exp(-1.0) / z, abs=1e-6)  # 0.0751


def test_blur_keeps_constants_and_spreads_a_delta():
    const = torch.full((1, 2, 5, 7), 0.3)
    assert torch.allclose(blur3(const), const)  # replicate padding: no darkening at the border
    delta = torch.zeros(1, 1, 8, 8)
    delta[0, 0, 3, 4] = 1.0
    out = blur3(delta)[0, 0]
    assert torch.allclose(out[2:5, 3:6], gaussian_kernel3())
    assert out.sum().item() == pytest.approx(1.0, abs=1e-6)


def test_single_peak_gives_the_plus_shape():
    # A delta at (3, 4) of an 8×8 map, blurred: centre 0.2042, edges 0.1238, corners 0.0751, mean 1/64.
    # E[x²] = (0.2042² + 4·0.1238² + 4·0.0751²)/64 → std 0.04145 → threshold 1/64 + 2·0.04145 = 0.0985:
    # the centre and the four edge neighbours pass, the corners do not.
    A = torch.zeros(1, 1, 8, 8)
    A[0, 0, 3, 4] = 1.0
    agg = aggregate_maps([A], s_min=8)
    k = gaussian_kernel3()
    thr = 1 / 64 + 2 * math.sqrt((k**2).sum().item() / 64 - (1 / 64) ** 2)
    assert thr == pytest.approx(0.0985, abs=2e-4)
    M = predict_char_masks(agg)[0, 0]
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[3, 3:6] = True
    expected[2:5, 4] = True
    assert torch.equal(M, expected)


def test_constant_map_predicts_nothing_and_two_blobs_are_found():
    A = torch.full((2, 3, 8, 16), 1 / 3)
    A[1, 0] = 0.0
    A[1, 0, 2:6, 1:4] = 1.0  # slot 0 of sample 1: a 4×3 block on the left
    A[1, 2] = 0.0
    A[1, 2, 2:6, 10:13] = 1.0  # slot 2 of sample 1: a block on the right
    M = predict_char_masks(aggregate_maps([A], s_min=8))
    assert M.dtype == torch.bool and M.shape == (2, 3, 8, 16)
    assert not M[0].any()  # std 0: nothing exceeds mean + 2·std
    assert not M[1, 1].any()
    left, right = M[1, 0], M[1, 2]
    assert left.any() and right.any()
    assert left[:, 8:].sum() == 0 and right[:, :8].sum() == 0
    assert left[3:5, 2].all() and right[3:5, 11].all()  # the block centres are inside


def test_layer_selection_resize_and_mean():
    big = torch.full((1, 2, 8, 32), 1.0)
    small = torch.full((1, 2, 4, 16), 3.0)
    tiny = torch.full((1, 2, 2, 8), 100.0)
    # s_min compares the shorter side: 4×16 passes s_min=4, 2×8 does not; output at the largest used map.
    agg = aggregate_maps([small, big, tiny], s_min=4)
    assert agg.shape == (1, 2, 8, 32)
    assert torch.allclose(agg, torch.full_like(agg, 2.0))
    only_big = aggregate_maps([small, big, tiny], s_min=8)
    assert torch.allclose(only_big, torch.ones_like(only_big))
    assert aggregate_maps([big], s_min=8, out_hw=(4, 16)).shape == (1, 2, 4, 16)
    with pytest.raises(ValueError, match="s_min=16"):
        aggregate_maps([big, small], s_min=16)


def test_resize_area_when_shrinking_bilinear_when_enlarging():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    down = resize_map(x, (2, 2))
    assert torch.allclose(down[0, 0], torch.tensor([[2.5, 4.5], [10.5, 12.5]]))  # 2×2 block means
    up = resize_map(torch.tensor([[[[0.0, 1.0]]]]), (1, 4))
    assert torch.allclose(up[0, 0, 0], torch.tensor([0.0, 0.25, 0.75, 1.0]))


def test_aggregate_keeps_gradient_masks_do_not():
    A = torch.rand(1, 2, 8, 8, requires_grad=True)
    agg = aggregate_maps([A], s_min=8)
    assert agg.requires_grad
    agg.sum().backward()
    assert A.grad is not None and A.grad.abs().sum() > 0
    M = predict_char_masks(aggregate_maps([A], s_min=8))
    assert not M.requires_grad and M.grad_fn is None


def test_ground_truth_masks_are_max_pooled_so_thin_strokes_survive():
    gt = torch.zeros(1, 1, 8, 8)
    gt[0, 0, 5, 2] = 1.0  # a one-pixel stroke
    small = resize_char_masks(gt, (4, 4))
    assert small.dtype == torch.bool and small.sum() == 1 and small[0, 0, 2, 1]
    big = resize_char_masks(small.float(), (8, 8))
    assert big.sum() == 4 and big[0, 0, 4:6, 2:4].all()


def test_mask_iou_over_real_slots_only():
    pred = torch.zeros(1, 3, 4, 4, dtype=torch.bool)
    gt = torch.zeros_like(pred)
    pred[0, 0, 0, 0:2] = True  # 2 pixels
    gt[0, 0, 0, 1:4] = True  # 3 pixels, 1 shared → IoU 1/4
    pred[0, 1, 2, 2] = True  # slot 1: disjoint → 0
    gt[0, 1, 3, 3] = True
    pred[0, 2] = True  # slot 2 is padding: ignored
    valid = torch.tensor([[True, True, False]])
    assert mask_iou(pred, gt, valid).item() == pytest.approx(0.125)
    assert math.isnan(mask_iou(pred, gt, torch.zeros_like(valid)).item())


def test_refine_to_strokes_keeps_each_letters_pixels():
    H, W = 32, 128
    crop = np.full((H, W, 3), (90, 110, 140), np.uint8)  # a blue-grey background ...
    bars = [(20, 26), (56, 62), (92, 98)]  # ... with three white strokes
    for x0, x1 in bars:
        crop[8:24, x0:x1] = 250
    region = np.zeros((H, W), bool)
    region[4:28, 10:110] = True
    coarse = np.zeros((3, 16, 64), bool)  # §3-like blobs at half resolution, wider than the strokes
    for i, (x0, x1) in enumerate(bars):
        coarse[i, 3:13, x0 // 2 - 4:x1 // 2 + 4] = True
    masks = refine_to_strokes(coarse, crop, region)
    assert masks.shape == (3, H, W) and masks.dtype == bool
    for i, (x0, x1) in enumerate(bars):
        expected = np.zeros((H, W), bool)
        expected[8:24, x0:x1] = True
        assert np.array_equal(masks[i], expected)  # exactly the letter's pixels, nothing of its blob
    coarse[1] = False  # a character the attention did not find stays empty; its stroke goes to a neighbour
    masks = refine_to_strokes(coarse, crop, region)
    assert not masks[1].any() and masks[0].sum() + masks[2].sum() == 3 * 16 * 6
    assert refine_to_strokes(np.zeros((0, 16, 64), bool), crop, region).shape == (0, H, W)
    assert not refine_to_strokes(np.zeros((2, 16, 64), bool), crop, region).any()
