"""Samplers with classifier-free guidance on a randomly initialised ``test``-preset model."""

import pytest
import torch

from dreamtext.charset import encode_batch
from dreamtext.config import load_config
from dreamtext.diffusion import make_scheduler
from dreamtext.errors import ConfigError
from dreamtext.model import DreamTextModel
from dreamtext.sampling import sample, sample_with_attention, uncond_twin

TEXTS = ["abc", "Hello"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return DreamTextModel(load_config("test")).eval()


@pytest.fixture(scope="module")
def batch(model):
    cfg = model.cfg
    h, w = cfg.image_size
    g = torch.Generator().manual_seed(3)
    mask = torch.zeros(len(TEXTS), 1, h, w)
    mask[:, :, 4:12, 8:56] = 1
    image = torch.rand(len(TEXTS), 3, h, w, generator=g) * 2 - 1
    return {"token_ids": torch.from_numpy(encode_batch(TEXTS, cfg.max_len)), "mask": mask,
            "masked_image": image * (1 - mask)}


@pytest.fixture(scope="module")
def cond(model, batch):
    with torch.no_grad():
        return model.make_cond(batch)


@pytest.mark.parametrize("name", ["ddim", "euler", "dpm++"])
def test_same_seed_is_bit_identical(model, cond, name):
    cfg = model.cfg
    run = lambda seed: sample(model, cond, make_scheduler(cfg, name), 3, 3.0, torch.Generator().manual_seed(seed))
    a, b, c = run(7), run(7), run(8)
    assert a.shape == (2, 3, *cfg.image_size)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.min() >= -1 and a.max() <= 1


def naive_cfg_loop(model, batch, scheduler, steps, guidance, generator):
    """The textbook loop: separate conditional and unconditional UNet calls, the model's own CFG drop."""
    cfg = model.cfg
    B = batch["token_ids"].shape[0]
    with torch.no_grad():
        cond = model.make_cond(batch)
        uncond = model.make_cond(batch, drop=torch.ones(B, dtype=torch.bool))
        scheduler.set_timesteps(steps)
        z = torch.randn(B, cfg.latent_channels, *cfg.latent_size, generator=generator) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            z_in = scheduler.scale_model_input(z, t)
            tt = t.reshape(1).expand(B)
            eps_c = model(z_in, tt, cond)
            eps_u = model(z_in, tt, uncond)
            z = scheduler.step(eps_u + guidance * (eps_c - eps_u), t, z).prev_sample
        return model.decode_latent(z).clamp(-1, 1)


@pytest.mark.parametrize("name", ["ddim", "dpm++"])
def test_batched_cfg_equals_separate_passes(model, batch, cond, name):
    cfg = model.cfg
    ours = sample(model, cond, make_scheduler(cfg, name), 4, 2.5, torch.Generator().manual_seed(1))
    ref = naive_cfg_loop(model, batch, make_scheduler(cfg, name), 4, 2.5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)


def test_uncond_twin_matches_training_drop(model, batch, cond):
    with torch.no_grad():
        dropped = model.make_cond(batch, drop=torch.ones(2, dtype=torch.bool))
    twin = uncond_twin(cond)
    for key in dropped:
        assert torch.equal(twin[key], dropped[key]), key


def _record_calls(model):
    calls = []
    handle = model.register_forward_pre_hook(
        lambda mod, args: calls.append((args[0].shape[0], mod.attention_store.active)))
    return calls, handle


def test_one_batched_call_per_step_and_no_uncond_at_guidance_one(model, cond):
    cfg = model.cfg
    calls, handle = _record_calls(model)
    try:
        sample(model, cond, make_scheduler(cfg, "ddim"), 5, 4.0, torch.Generator().manual_seed(0))
        assert [b for b, _ in calls] == [4] * 5  # [conditional; unconditional] together
        calls.clear()
        sample(model, cond, make_scheduler(cfg, "ddim"), 5, 1.0, torch.Generator().manual_seed(0))
        assert [b for b, _ in calls] == [2] * 5
    finally:
        handle.remove()


def test_attention_recorded_on_final_steps_only(model, cond):
    cfg = model.cfg
    calls, handle = _record_calls(model)
    try:
        out = sample_with_attention(model, cond, make_scheduler(cfg, "ddim"), 4, 3.0,
                                    torch.Generator().manual_seed(0), attn_frac=0.5)
    finally:
        handle.remove()
    assert [active for _, active in calls] == [False, False, True, True]
    assert not model.attention_store.active and model.attention_store.maps() == []
    assert out.attn.shape == (2, cfg.max_len, *cfg.latent_size)
    masks = out.char_masks()
    assert masks.dtype == torch.bool and masks.shape == out.attn.shape
    # padding slots are masked out of the softmax: no attention, no mask
    assert out.attn[0, 3:].abs().max() == 0 and not masks[0, 3:].any()
    assert masks[1, :5].flatten(1).any(1).all()  # every real character gets some pixels


def test_bad_options_raise_config_error(model, cond):
    with pytest.raises(ConfigError, match="steps"):
        sample(model, cond, make_scheduler(model.cfg, "ddim"), 0, 3.0)
    with pytest.raises(ConfigError, match="guidance"):
        sample(model, cond, make_scheduler(model.cfg, "ddim"), 2, -1.0)
