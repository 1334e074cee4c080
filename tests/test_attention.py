"""The recording attention processor: shapes, padding really masked, and diffusers' numbers exactly."""

import sys
from pathlib import Path

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_batch, tiny_test_cfg  # noqa: E402,F401

from dreamtext.model.attention import AttentionStore, CharCrossAttnProcessor, ContextMaskedAttnProcessor  # noqa: E402
from dreamtext.model.network import DreamTextModel  # noqa: E402

TEXTS = ["Hello", "ab", "XYZ12345", "q"]


def _layer_inputs(seed=0, B=3, n=8 * 32, L=8, dim=32, ctx_dim=24):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, n, dim, generator=g)
    ctx = torch.randn(B, L, ctx_dim, generator=g)
    keep = torch.ones(B, L)
    keep[0, 5:] = 0
    keep[1, 2:] = 0
    return x, ctx, keep


def _attention(dim=32, ctx_dim=24, heads=2):
    torch.manual_seed(0)
    return Attention(query_dim=dim, cross_attention_dim=ctx_dim, heads=heads, dim_head=dim // heads)


def test_recording_processor_matches_diffusers_attnprocessor_bit_for_bit():
    attn = _attention()
    x, ctx, keep = _layer_inputs()
    bias = ((1 - keep) * -10000.0)[:, None, :]  # what UNet2DConditionModel makes of encoder_attention_mask
    attn.set_processor(AttnProcessor())
    ref = attn(x, encoder_hidden_states=ctx, attention_mask=bias)
    store = AttentionStore((8, 32))
    store.active = True
    attn.set_processor(CharCrossAttnProcessor(store, "layer"))
    out = attn(x, encoder_hidden_states=ctx, attention_mask=bias)
    assert torch.equal(out, ref)
    (A,) = store.maps()
    assert A.shape == (3, 8, 8, 32)  # (B, L, h, w), heads averaged
    assert torch.allclose(A.sum(dim=1), torch.ones(3, 8, 32), atol=1e-5)  # a softmax over the slots per pixel
    assert A[0, 5:].abs().max().item() == 0.0  # padding slots get exactly no mass
    assert A[1, 2:].abs().max().item() == 0.0
    assert A[2].min().item() > 0.0


def test_store_records_only_when_active_and_resets():
    attn = _attention()
    x, ctx, _ = _layer_inputs()
    store = AttentionStore((8, 32))
    attn.set_processor(CharCrossAttnProcessor(store, "layer"))
    attn(x, encoder_hidden_states=ctx)
    assert store.maps() == []
    store.active = True
    attn(x, encoder_hidden_states=ctx)
    attn(x, encoder_hidden_states=ctx)
    assert len(store.maps()) == 2 and store.names == ["layer", "layer"]
    store.reset()
    assert store.maps() == []


def test_context_masked_processor_masks_attn1_cross_attention():
    attn = _attention()
    x, ctx, keep = _layer_inputs()
    bias = ((1 - keep) * -10000.0)[:, None, :]
    attn.set_processor(AttnProcessor())
    ref = attn(x, encoder_hidden_states=ctx, attention_mask=bias)
    attn.set_processor(ContextMaskedAttnProcessor())
    out = attn(x, encoder_hidden_states=ctx, context_mask=keep.bool())
    assert torch.allclose(out, ref, atol=1e-5)  # fused SDPA vs. the explicit softmax: rounding only


def _model(**overrides):
    torch.manual_seed(0)
    cfg = tiny_test_cfg(**overrides)
    return DreamTextModel(cfg).eval(), cfg


def _forward(model, cfg, batch, context=None, record=True):
    cond = model.make_cond(batch)
    if context is not None:
        cond["context"] = context
    g = torch.Generator().manual_seed(3)
    z = torch.randn(len(TEXTS), cfg.latent_channels, *cfg.latent_size, generator=g)
    t = torch.tensor([10, 200, 500, 999])
    model.attention_store.reset()
    model.attention_store.active = record
    with torch.no_grad():
        eps = model(z, t, cond)
    maps = model.attention_store.maps()
    model.attention_store.active = False
    return eps, maps, cond


def test_unet_records_every_char_cross_attention_with_the_right_shapes():
    model, cfg = _model()
    batch = make_batch(cfg, TEXTS)
    eps, maps, _ = _forward(model, cfg, batch)
    assert eps.shape == (4, 3, 16, 64)
    # test preset: down block at 16×64, mid block at 8×32, up block (two transformers) at 16×64
    assert model.n_recorded_layers == 4 and len(maps) == 4
    assert sorted(tuple(m.shape) for m in maps) == [(4, 8, 8, 32)] + [(4, 8, 16, 64)] * 3
    valid = batch["token_ids"] != 0
    for A in maps:
        assert torch.allclose(A.sum(1), torch.ones_like(A[:, 0]), atol=1e-5)
        pad_mass = A.permute(0, 2, 3, 1)[~valid[:, None, None, :].expand(-1, *A.shape[2:], -1)]
        assert pad_mass.abs().max().item() == 0.0


def test_padding_slots_change_nothing_when_masked_and_something_when_not():
    batch = None
    for mask_padding in (True, False):
        model, cfg = _model(**{"unet.mask_padding": mask_padding})
        batch = make_batch(cfg, TEXTS)
        eps, _, cond = _forward(model, cfg, batch, record=False)
        noisy = cond["context"].clone()
        pad = batch["token_ids"] == 0
        noisy[pad] = torch.randn(int(pad.sum()), noisy.shape[-1]) * 5  # garbage in the padding slots only
        eps2, _, _ = _forward(model, cfg, batch, context=noisy, record=False)
        if mask_padding:  # attn1 (also a cross-attention here) and attn2 both ignore the padding slots
            assert torch.allclose(eps, eps2, atol=1e-6)
        else:  # the released code's behaviour: padding slots take part
            assert (eps - eps2).abs().max().item() > 1e-4


def test_recording_does_not_change_the_output():
    model, cfg = _model()
    batch = make_batch(cfg, TEXTS)
    eps_rec, _, _ = _forward(model, cfg, batch, record=True)
    eps_plain, _, _ = _forward(model, cfg, batch, record=False)
    assert torch.equal(eps_rec, eps_plain)


def test_dropped_condition_attends_uniformly():
    model, cfg = _model()
    batch = make_batch(cfg, TEXTS)
    cond = model.make_cond(batch, drop=torch.tensor([True, False, False, True]))
    assert cond["context"][0].abs().max() == 0 and cond["context_mask"][0].all()
    assert not cond["context_mask"][1].all()  # "ab": 2 of 8 slots real
    model.attention_store.reset()
    model.attention_store.active = True
    with torch.no_grad():
        model(torch.zeros(4, 3, 16, 64), torch.tensor([5, 5, 5, 5]), cond)
    for A in model.attention_store.maps():
        assert torch.allclose(A[0], torch.full_like(A[0], 1 / cfg.max_len), atol=1e-6)


def test_map_shape_rejects_impossible_pixel_counts():
    store = AttentionStore((16, 64))
    assert store.map_shape(16 * 64) == (16, 64) and store.map_shape(4 * 16) == (4, 16)
    with pytest.raises(ValueError):
        store.map_shape(99)
