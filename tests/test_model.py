"""DreamTextModel: conditioning, the glyph prior channel, trainable parameters; the noise process and samplers."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_batch, tiny_test_cfg  # noqa: E402,F401

from dreamtext.config import load_config  # noqa: E402
from dreamtext.diffusion.noise import NoiseProcess, make_scheduler  # noqa: E402
from dreamtext.errors import ConfigError, ImageError  # noqa: E402
from dreamtext.model.network import DreamTextModel, count_parameters  # noqa: E402


def test_cond_and_forward_shapes_with_and_without_glyph_prior():
    for glyph in (False, True):
        torch.manual_seed(0)
        cfg = tiny_test_cfg(glyph_prior=glyph)
        model = DreamTextModel(cfg)
        assert model.unet.config.in_channels == (8 if glyph else 7) == cfg.unet_in_channels
        batch = make_batch(cfg, ["Hello", "ab"])
        cond = model.make_cond(batch)
        assert set(cond) == {"context", "context_mask", "mask", "masked"} | ({"glyph"} if glyph else set())
        assert cond["context"].shape == (2, 8, 32) and cond["context_mask"].tolist()[1] == [True] * 2 + [False] * 6
        eps = model(torch.randn(2, 3, 16, 64), torch.tensor(5), cond)
        assert eps.shape == (2, 3, 16, 64)
        if glyph:  # the glyph channel really reaches the output
            cond2 = dict(cond, glyph=1 - cond["glyph"])
            assert not torch.allclose(model(torch.zeros(2, 3, 16, 64), torch.tensor(5), cond2),
                                      model(torch.zeros(2, 3, 16, 64), torch.tensor(5), cond))
            del batch["glyph"]
            with pytest.raises(ConfigError, match="glyph"):
                model.make_cond(batch)


def test_wrong_image_size_is_a_clear_error():
    model = DreamTextModel(tiny_test_cfg())
    with pytest.raises(ImageError, match=r"\(B, 3, 16, 64\)"):
        model.encode_image(torch.zeros(1, 3, 32, 128))


def test_trainable_parameter_selection():
    model = DreamTextModel(tiny_test_cfg(**{"unet.trainable": "char_attn", "text.train_during_diffusion": "none"}))
    names = {n for n, p in model.named_parameters() if any(p is q for q in model.trainable_parameters())}
    assert names and all(".transformer_blocks." in n and (".attn2." in n or ".norm2." in n) for n in names)
    resnet_params = [p for n, p in model.unet.named_parameters() if ".resnets." in n]
    assert resnet_params and not any(p.requires_grad for p in resnet_params)  # a ResNet's norm2 is not attn's
    model = DreamTextModel(tiny_test_cfg(**{"text.train_during_diffusion": "last:1"}))
    params = model.trainable_parameters()
    assert sum(p.numel() for p in params) > count_parameters(model.unet)
    assert not model.text_encoder.embed.weight.requires_grad and model.text_encoder.char_head.weight.requires_grad
    with pytest.raises(ConfigError, match="train_during_diffusion"):
        DreamTextModel(tiny_test_cfg(**{"text.train_during_diffusion": "some"})).trainable_parameters()


def test_noise_process_matches_the_closed_form():
    cfg = tiny_test_cfg()
    npr = NoiseProcess(cfg)
    x0, eps = torch.ones(2, 3, 4, 4), torch.full((2, 3, 4, 4), 2.0)
    t = torch.tensor([0, 999])
    a = npr.alphas_cumprod[t].view(2, 1, 1, 1)
    assert torch.allclose(npr.add_noise(x0, eps, t), a.sqrt() * x0 + (1 - a).sqrt() * eps)
    # tiny (and test): the cosine schedule of iDDPM, ᾱ_T ≈ 0 (SD's scaled-linear would leave 0.0047)
    assert npr.alphas_cumprod[999].item() < 1e-6 and npr.alphas_cumprod[500].item() == pytest.approx(0.492, abs=2e-3)
    # tiny trains with v-prediction: v = √ᾱ·ε − √(1−ᾱ)·x0
    assert npr.prediction_type == "v_prediction"
    assert torch.allclose(npr.target(x0, eps, t), a.sqrt() * eps - (1 - a).sqrt() * x0, atol=1e-6)
    ts = npr.sample_timesteps(1000, torch.Generator().manual_seed(0))
    assert ts.min() >= 0 and ts.max() <= 999 and torch.equal(ts, npr.sample_timesteps(1000, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", ["ddim", "euler", "dpm++"])
def test_samplers_share_the_betas_and_are_deterministic(name):
    cfg = tiny_test_cfg()
    s = make_scheduler(cfg, name)
    assert torch.allclose(s.betas, NoiseProcess(cfg).scheduler.betas)
    s.set_timesteps(4)
    x = torch.ones(1, 3, 4, 4)
    outs = []
    for _ in range(2):
        s2 = make_scheduler(cfg, name)
        s2.set_timesteps(4)
        y = x.clone()
        for t in s2.timesteps:
            y = s2.step(0.1 * s2.scale_model_input(y, t), t, y).prev_sample
        outs.append(y)
    assert torch.equal(outs[0], outs[1])
    with pytest.raises(ConfigError, match="unknown sampler"):
        make_scheduler(cfg, "ancestral")


def test_latent_preset_without_base_is_a_clear_error():
    with pytest.raises(ConfigError, match="base_path"):
        DreamTextModel(load_config("sd2"))
