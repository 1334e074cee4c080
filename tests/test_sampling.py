"""Samplers with classifier-free guidance on a randomly initialised ``test``-preset model."""

import pytest
import torch

from dreamtext.charset import encode_batch
from dreamtext.config import load_config
from dreamtext.diffusion.noise import make_scheduler
from dreamtext.diffusion.sampling import draw_noise, sample, sample_with_attention, uncond_twin
from dreamtext.errors import ConfigError
from dreamtext.model.network import DreamTextModel

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


def test_ddim_starts_at_the_last_training_timestep(model):
    """Trailing spacing: the first step sees t = T − 1, where z_T ~ N(0, I) is what training showed."""
    scheduler = make_scheduler(model.cfg, "ddim")
    scheduler.set_timesteps(10)
    assert scheduler.timesteps.tolist() == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]


def naive_restart_loop(model, cond, steps, guidance, restarts, strength, seed):
    """Restart sampling written out with DDIM: a full pass, then `restarts` times noise the result to the
    first timestep of the last int(steps · strength) steps and denoise from there."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    sch = make_scheduler(cfg, "ddim")
    sch.set_timesteps(steps)
    B = cond["mask"].shape[0]
    uncond = uncond_twin(cond)

    def denoise(z, timesteps):
        for t in timesteps:
            tt = t.reshape(1).expand(B)
            eps_c, eps_u = model(z, tt, cond), model(z, tt, uncond)
            z = sch.step(eps_u + guidance * (eps_c - eps_u), t, z).prev_sample
        return z

    with torch.no_grad():
        z = denoise(torch.randn(B, cfg.latent_channels, *cfg.latent_size, generator=g), sch.timesteps)
        n = int(steps * strength)
        for _ in range(restarts):
            ts = sch.timesteps[steps - n:]
            a_bar = sch.alphas_cumprod[ts[0]]
            z = a_bar.sqrt() * z + (1 - a_bar).sqrt() * torch.randn(z.shape, generator=g)  # q(z_t | z_0)
            z = denoise(z, ts)
    return z.clamp(-1, 1)


def test_restart_sampling_matches_the_written_out_loop(model, cond):
    ours = sample(model, cond, make_scheduler(model.cfg, "ddim"), 5, 2.0, torch.Generator().manual_seed(4),
                  restarts=2, restart_strength=0.6)
    ref = naive_restart_loop(model, cond, 5, 2.0, restarts=2, strength=0.6, seed=4)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)
    plain = sample(model, cond, make_scheduler(model.cfg, "ddim"), 5, 2.0, torch.Generator().manual_seed(4),
                   restarts=0)
    assert (ours - plain).abs().max() > 1e-2  # the restarts changed the result


@pytest.mark.parametrize("name", ["euler", "dpm++"])
def test_restarts_with_stateful_schedulers_are_seeded(model, cond, name):
    """Euler and DPM++ keep a step index: each restart pass must start it at its first timestep."""
    cfg = model.cfg
    run = lambda seed: sample(model, cond, make_scheduler(cfg, name), 4, 3.0, torch.Generator().manual_seed(seed),
                              restarts=1, restart_strength=0.5)
    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert torch.isfinite(a).all() and a.min() >= -1 and a.max() <= 1


def test_restarts_call_count_progress_and_attention_on_the_last_pass(model, cond):
    calls, handle = _record_calls(model)
    ticks = []
    try:
        out = sample_with_attention(model, cond, make_scheduler(model.cfg, "ddim"), 5, 3.0,
                                    torch.Generator().manual_seed(0), attn_frac=0.5, restarts=2,
                                    restart_strength=0.6, progress=lambda i, n: ticks.append((i, n)))
    finally:
        handle.remove()
    # 5 steps, then 2 restarts of int(5 · 0.6) = 3 steps; Ā from the final 2 steps of the last pass only
    assert [active for _, active in calls] == [False] * 9 + [True, True]
    assert ticks == [(i, 11) for i in range(1, 12)]
    assert out.attn.shape == (2, model.cfg.max_len, *model.cfg.latent_size)


def test_restarts_default_to_the_config(model, cond):
    cfg = model.cfg
    old = cfg.sample.restarts, cfg.sample.restart_strength
    try:
        cfg.sample.restarts, cfg.sample.restart_strength = 1, 0.5
        by_config = sample(model, cond, make_scheduler(cfg, "ddim"), 4, 3.0, torch.Generator().manual_seed(2))
        explicit = sample(model, cond, make_scheduler(cfg, "ddim"), 4, 3.0, torch.Generator().manual_seed(2),
                          restarts=1, restart_strength=0.5)
    finally:
        cfg.sample.restarts, cfg.sample.restart_strength = old
    assert torch.equal(by_config, explicit)


def test_bad_restart_settings_raise_config_error(model, cond):
    with pytest.raises(ConfigError, match="restarts"):
        sample(model, cond, make_scheduler(model.cfg, "ddim"), 2, 3.0, restarts=-1)
    with pytest.raises(ConfigError, match="restart_strength"):
        sample(model, cond, make_scheduler(model.cfg, "ddim"), 2, 3.0, restarts=1, restart_strength=0.0)


def test_draw_noise_per_item_generators():
    shape = (3, 3, 8, 32)
    one = draw_noise(shape, torch.Generator().manual_seed(1))
    assert one.shape == shape and one.dtype == torch.float32
    per_item = draw_noise(shape, [torch.Generator().manual_seed(s) for s in (5, 6, 7)])
    for i, s in enumerate((5, 6, 7)):  # item i is what its own generator draws alone
        assert torch.equal(per_item[i:i + 1], draw_noise((1, *shape[1:]), torch.Generator().manual_seed(s)))
    shared = torch.Generator().manual_seed(1)  # one generator shared by every item: drawn in batch order
    assert torch.equal(draw_noise(shape, [shared] * 3), one)
    with pytest.raises(ConfigError, match="2 generators for a batch of 3"):
        draw_noise(shape, [shared, shared])
