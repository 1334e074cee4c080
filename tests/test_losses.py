"""§4–§5: what each loss trains (and nothing else), the supervision modes, and overfitting one batch."""

import math
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_batch, tiny_test_cfg  # noqa: E402,F401

from dreamtext.diffusion.noise import NoiseProcess  # noqa: E402
from dreamtext.config import load_config  # noqa: E402
from dreamtext.errors import ConfigError  # noqa: E402
from dreamtext.model.char_masks import predict_char_masks  # noqa: E402
from dreamtext.model.network import DreamTextModel  # noqa: E402
from dreamtext.train.losses import (TrainingObjective, align_loss, attention_loss, diffusion_losses, estimate_masks,
                                    mask_loss, mask_source, run_model)

TEXTS = ["Hello", "ab", "XYZ12345", "q"]


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    cfg = tiny_test_cfg()
    model = DreamTextModel(cfg).train()
    return model, cfg, NoiseProcess(cfg), make_batch(cfg, TEXTS)


def _grads_of(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad for n, p in model.named_parameters()}


def _reached(grads, prefix):
    return any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix))


def _out(setup, supervision="gt", step=0):
    model, cfg, noise, batch = setup
    cfg = cfg.override({"loss.supervision": supervision})
    out = run_model(model, noise, batch, cfg, generator=torch.Generator().manual_seed(1),
                    drop=torch.zeros(4, dtype=torch.bool))
    return model, cfg, batch, out


def test_attention_loss_reaches_cross_attention_and_psi_only(setup):
    model, cfg, batch, out = _out(setup, "gt")
    est = estimate_masks(out, batch, 0, cfg)
    assert est["use_gt"].all()
    g = _grads_of(model, attention_loss(est["agg"], est["masks"], batch["char_valid"] > 0.5, "mse"))
    assert _reached(g, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q")
    assert _reached(g, "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k")
    assert _reached(g, "text_encoder.blocks") and _reached(g, "text_encoder.embed")
    for untouched in ("unet.conv_out", "unet.conv_norm_out", "text_encoder.char_head", "text_encoder.text_proj",
                      "text_encoder.visual", "text_encoder.image_proj", "text_encoder.pos_head"):
        assert not _reached(g, untouched), untouched


def test_identity_loss_reaches_psi_and_h_l_only(setup):
    model, cfg, batch, out = _out(setup)
    logits = out["char_logits"]
    l_id = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["token_ids"].reshape(-1))
    g = _grads_of(model, l_id)
    assert _reached(g, "text_encoder.char_head") and _reached(g, "text_encoder.blocks")
    for untouched in ("unet.", "text_encoder.text_proj", "text_encoder.visual", "text_encoder.image_proj",
                      "text_encoder.pos_head", "text_encoder.logit_scale"):
        assert not _reached(g, untouched), untouched


@pytest.mark.parametrize("form", ["cosine", "infonce"])
def test_alignment_loss_reaches_both_encoders_and_projections_only(setup, form):
    model, cfg, batch, out = _out(setup)
    g = _grads_of(model, align_loss(out, form))
    for reached in ("text_encoder.blocks", "text_encoder.text_proj", "text_encoder.visual", "text_encoder.image_proj"):
        assert _reached(g, reached), reached
    assert _reached(g, "text_encoder.logit_scale") == (form == "infonce")
    assert not _reached(g, "unet.") and not _reached(g, "text_encoder.char_head")


def test_mask_loss_reaches_unet_and_psi_not_the_heads(setup):
    model, cfg, batch, out = _out(setup)
    est = estimate_masks(out, batch, 0, cfg)
    err = out["target"] - out["pred"]
    g = _grads_of(model, mask_loss(err, est["masks"], batch["char_valid"] > 0.5, cfg))
    assert _reached(g, "unet.conv_out") and _reached(g, "unet.conv_in") and _reached(g, "text_encoder.blocks")
    for untouched in ("text_encoder.char_head", "text_encoder.text_proj", "text_encoder.visual"):
        assert not _reached(g, untouched), untouched


def test_no_gradient_flows_through_predicted_masks(setup):
    model, cfg, batch, out = _out(setup, "none")
    est = estimate_masks(out, batch, 0, cfg)
    assert not est["use_gt"].any() and est["masks"].grad_fn is None
    agg = est["agg"].detach().requires_grad_(True)
    M = predict_char_masks(agg) & (batch["char_valid"] > 0.5)[..., None, None]
    keep = batch["char_valid"] > 0.5
    attention_loss(agg, M, keep, "mse").backward()
    n_pix = agg.shape[-1] * agg.shape[-2]
    expected = 2 * (agg.detach() - M.float()) / n_pix * keep[..., None, None] / keep.sum()
    assert torch.allclose(agg.grad, expected, atol=1e-7)  # M is a constant: only the ‖Ā − M‖² term's own gradient


def test_paper_mask_loss_weights_inside_the_characters():
    cfg = tiny_test_cfg(**{"loss.gamma": 2.0})
    err = torch.ones(1, 3, 4, 8)
    masks = torch.zeros(1, 2, 4, 8, dtype=torch.bool)
    masks[0, 0, :, :2] = True  # 8 of 32 pixels
    valid = torch.tensor([[True, False]])
    # (1 + 2)² on a quarter of the pixels, 1 elsewhere → 0.25·9 + 0.75 = 3
    assert mask_loss(err, masks, valid, cfg).item() == pytest.approx(3.0)
    code = cfg.override({"loss.mask_form": "code"})
    # MSE 1 + 0.01 · (per-character masked MSE of slot 0 = 1)
    assert mask_loss(err, masks, valid, code).item() == pytest.approx(1.01)


def test_max_contrast_attention_loss_on_a_known_map():
    agg = torch.zeros(1, 1, 2, 2)
    agg[0, 0, 0, 0], agg[0, 0, 1, 1] = 0.9, 0.3
    M = torch.zeros(1, 1, 2, 2, dtype=torch.bool)
    M[0, 0, 0, 0] = True
    keep = torch.tensor([[True]])
    assert attention_loss(agg, M, keep, "max_contrast").item() == pytest.approx(0.3 - 0.9)
    assert attention_loss(agg, M, keep, "mse").item() == pytest.approx((0.01 + 0.09) / 4)


def test_an_unknown_loss_form_is_an_error_not_another_form():
    """Before: any attn_form that was not mse or ce silently became max_contrast."""
    agg, keep = torch.full((1, 1, 2, 2), 0.5), torch.ones(1, 1, dtype=torch.bool)
    with pytest.raises(ConfigError, match="attn_form must be one of mse, max_contrast, ce; got 'maxcontrast'"):
        attention_loss(agg, torch.zeros(1, 1, 2, 2, dtype=torch.bool), keep, "maxcontrast")
    with pytest.raises(ConfigError, match="loss.align_form"):
        load_config("test").override({"loss.align_form": "cos"})  # refused when the config is made


def test_ce_attention_loss_on_a_known_map():
    # two slots over a 1×3 map; slot 0's character covers pixels 0-1, slot 1's pixel 2; slot 2 is padding
    agg = torch.tensor([[[[0.8, 0.5, 0.1]], [[0.2, 0.5, 0.9]], [[0.0, 0.0, 0.0]]]])  # (1, 3, 1, 3)
    M = torch.tensor([[[[1, 1, 0]], [[0, 0, 1]], [[0, 0, 0]]]], dtype=torch.bool)
    keep = torch.tensor([[True, True, False]])
    expected = (-(math.log(0.8) + math.log(0.5)) / 2 - math.log(0.9)) / 2  # every pixel belongs to a character
    assert attention_loss(agg, M, keep, "ce").item() == pytest.approx(expected)
    # the gradient raises each character's own slot on its own pixels and nothing else
    agg.requires_grad_(True)
    attention_loss(agg, M, keep, "ce").backward()
    assert (agg.grad[M] < 0).all() and (agg.grad[~M] == 0).all()


def test_ce_attention_loss_spreads_the_background_evenly():
    # a 1×4 map: pixels 0 and 1 are characters 0 and 1, pixels 2-3 background; slot 2 is padding
    agg = torch.tensor([[[[1.0, 0.0, 0.5, 0.8]], [[0.0, 1.0, 0.5, 0.2]], [[0.0, 0.0, 0.0, 0.0]]]])
    M = torch.tensor([[[[1, 0, 0, 0]], [[0, 1, 0, 0]], [[0, 0, 0, 0]]]], dtype=torch.bool)
    keep = torch.tensor([[True, True, False]])
    # characters perfect (CE 0); background: pixel 2 is uniform (KL 0), pixel 3 has KL(u ‖ (0.8, 0.2))
    kl3 = -math.log(2) - (math.log(0.8) + math.log(0.2)) / 2
    assert attention_loss(agg, M, keep, "ce").item() == pytest.approx(kl3 / 2, rel=1e-5)
    # a one-character word has nothing to spread: only its character term counts
    one = torch.tensor([[True, False, False]])
    assert attention_loss(agg, M, one, "ce").item() == pytest.approx(0.0, abs=1e-5)


def test_supervision_modes_and_balanced_switch(setup):
    model, cfg, noise, batch = setup
    assert [mask_source(s, cfg.override({"loss.supervision": "balanced", "loss.k_gt": 5})) for s in (0, 4, 5, 9)] \
        == ["gt", "gt", "pred", "pred"]
    assert mask_source(10**6, cfg.override({"loss.supervision": "gt"})) == "gt"
    assert mask_source(0, cfg.override({"loss.supervision": "none"})) == "pred"
    batch = dict(batch, has_char_masks=torch.tensor([1.0, 0.0, 1.0, 1.0]))
    bal = cfg.override({"loss.supervision": "balanced", "loss.k_gt": 5})
    with torch.no_grad():
        out = run_model(model, noise, batch, bal, generator=torch.Generator().manual_seed(1))
        early, late = diffusion_losses(out, batch, 0, bal), diffusion_losses(out, batch, 5, bal)
    assert early["gt_frac"].item() == 0.75 and late["gt_frac"].item() == 0.0  # no ground truth: predicted
    assert early["miou"].item() == late["miou"].item() and 0 <= early["miou"].item() <= 1
    with pytest.raises(ConfigError, match="supervision"):
        diffusion_losses(out, batch, 0, cfg.override({"loss.supervision": "sometimes"}))


@pytest.mark.parametrize("overrides", [
    {"loss.mask_form": "code", "loss.attn_form": "max_contrast", "loss.align_form": "infonce"},
    {"loss.attn_form": "ce"},
    {"loss.supervision": "none", "unet.mask_padding": False},
    {"glyph_prior": True},
])
def test_every_option_gives_finite_terms(overrides):
    torch.manual_seed(0)
    cfg = tiny_test_cfg(**overrides)
    model = DreamTextModel(cfg)
    losses = TrainingObjective(model, cfg)(make_batch(cfg, TEXTS), step=0)
    assert set(losses) == {"total", "mask", "attn", "align", "id", "miou", "gt_frac"}
    assert all(math.isfinite(float(v.detach())) for v in losses.values())
    losses["total"].backward()


def test_overfitting_one_batch_drives_the_loss_down():
    torch.manual_seed(0)
    # 8×32 pixels (maps at 8×32; the 4×16 mid-block map is below s_min) to keep this a few seconds.
    cfg = tiny_test_cfg(**{"image_size": [8, 32], "loss.cond_dropout": 0.0, "loss.beta": 0.01, "loss.alpha": 0.1})
    model = DreamTextModel(cfg).train()
    objective = TrainingObjective(model, cfg)
    batch = make_batch(cfg, ["Hi", "ab7"])
    opt = torch.optim.Adam(model.trainable_parameters(), lr=3e-3)
    history = []
    t0 = time.perf_counter()
    for step in range(60):
        # The same noise and timesteps every step: one fixed regression problem to memorise.
        losses = objective(batch, step=step, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        losses["total"].backward()
        opt.step()
        history.append({k: float(v) for k, v in losses.items()})
    first, last = history[0], history[-1]
    assert last["total"] < 0.2 * first["total"], (first, last)
    assert last["id"] < 0.5 * first["id"]
    assert last["attn"] < first["attn"]
    print(f"60 overfitting steps: {time.perf_counter() - t0:.1f} s; {first} → {last}")


@pytest.mark.parametrize("overrides", [{}, {"loss.align_form": "infonce"}, {"loss.beta": 0.0},
                                       {"unet.trainable": "char_attn", "text.train_during_diffusion": "last:1"}])
def test_every_trainable_parameter_gets_a_gradient(overrides):
    """What DDP needs without find_unused_parameters: no trainable parameter is left out of the objective."""
    torch.manual_seed(0)
    cfg = tiny_test_cfg(**{"loss.cond_dropout": 0.0, **overrides})
    model = DreamTextModel(cfg)
    trainable = model.trainable_parameters()
    TrainingObjective(model, cfg)(make_batch(cfg, TEXTS), step=0)["total"].backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert trainable and unused == []
