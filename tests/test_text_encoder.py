"""ψ, its heads, ξ and the pre-training loss."""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_batch, tiny_test_cfg  # noqa: E402,F401

from dreamtext.errors import ImageError, TextError  # noqa: E402
from dreamtext.model.text_encoder import TextEncoder, retrieval_accuracy, sinusoidal_positions  # noqa: E402


def test_sinusoidal_positions_golden_values():
    pe = sinusoidal_positions(4, 6)
    assert pe.shape == (4, 6)
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0, 0.0, 1.0, 0.0, 1.0]))
    # position 1, channel pair 1: frequency 10000^(-2/6)
    f = 10000 ** (-2 / 6)
    assert pe[1, 2].item() == pytest.approx(math.sin(f), abs=1e-6)
    assert pe[1, 3].item() == pytest.approx(math.cos(f), abs=1e-6)


def test_shapes_of_psi_and_heads():
    torch.manual_seed(0)
    cfg = tiny_test_cfg()
    enc = TextEncoder(cfg)
    batch = make_batch(cfg, ["Hello", "ab", "Z"])
    h = enc(batch["token_ids"])
    assert h.shape == (3, cfg.max_len, cfg.text.dim)
    assert enc.char_logits(h).shape == (3, cfg.max_len, 95)
    assert enc.pos_logits(h).shape == (3, cfg.max_len, cfg.max_len)
    t = enc.text_embed(h, batch["token_ids"])
    v = enc.image_embed(batch["word_crop"])
    assert t.shape == v.shape == (3, cfg.text.proj_dim)
    assert torch.allclose(t.norm(dim=-1), torch.ones(3)) and torch.allclose(v.norm(dim=-1), torch.ones(3))
    assert enc.logit_scale.item() == pytest.approx(math.log(1 / cfg.text.init_temperature))


def test_text_embed_pools_real_slots_only():
    torch.manual_seed(0)
    cfg = tiny_test_cfg()
    enc = TextEncoder(cfg)
    ids = make_batch(cfg, ["abc"])["token_ids"]
    h = enc(ids)
    h2 = h.clone()
    h2[0, 3:] = 100.0  # padding slots
    assert torch.allclose(enc.text_embed(h, ids), enc.text_embed(h2, ids))


def test_bad_inputs_raise_clear_errors():
    cfg = tiny_test_cfg()
    enc = TextEncoder(cfg)
    with pytest.raises(TextError, match="token ids must be"):
        enc(torch.zeros(2, cfg.max_len + 1, dtype=torch.long))
    with pytest.raises(TextError, match="0..94"):
        enc(torch.full((1, cfg.max_len), 95))
    with pytest.raises(ImageError, match="word crop"):
        enc.image_embed(torch.zeros(1, 1, 8, 8))


def test_retrieval_accuracy_counts_duplicates_of_the_same_word():
    text = torch.eye(3)
    image = torch.eye(3)[[1, 0, 2]]  # texts 0 and 1 retrieve each other's image
    assert retrieval_accuracy(text, image).item() == pytest.approx(1 / 3)
    ids = torch.tensor([[5, 6], [5, 6], [7, 0]])  # ... which show the same word
    assert retrieval_accuracy(text, image, ids).item() == 1.0


def test_pretraining_learns_to_tell_words_apart():
    torch.manual_seed(0)
    cfg = tiny_test_cfg()
    enc = TextEncoder(cfg)
    words = ["ab", "Hello", "XYZ", "q1", "zz9", "Mn"]
    batch = make_batch(cfg, words)
    opt = torch.optim.Adam(enc.parameters(), lr=2e-3)
    first = enc.pretrain_loss(batch)
    assert set(first) == {"loss", "infonce", "ce_cls", "ce_pos", "retrieval_acc"}
    loss0 = first["loss"].item()
    assert loss0 == pytest.approx(first["infonce"].item() + 0.1 * (first["ce_cls"].item() + first["ce_pos"].item()),
                                  rel=1e-5)
    for _ in range(40):
        out = enc.pretrain_loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    out = enc.pretrain_loss(batch)
    assert out["loss"].item() < 0.3 * loss0
    assert out["retrieval_acc"].item() == 1.0
