"""The sd2 loader on a directory in the SD2-inpainting layout (widths scaled down, random weights).

SD2-inpainting ships ``unet/``, ``vae/``, ``scheduler/`` with ``config.json`` /
``scheduler_config.json`` and ``diffusion_pytorch_model.safetensors``; diffusers'
``save_pretrained`` writes exactly those names and keys, so the fixture builds
the miniature with it.
"""

import json
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from _model_fixtures import make_batch  # noqa: E402,F401

from dreamtext.config import load_config  # noqa: E402
from dreamtext.errors import CheckpointError  # noqa: E402
from dreamtext.model.network import DreamTextModel  # noqa: E402
from dreamtext.model.unet import load_sd2_unet  # noqa: E402
from dreamtext.train.losses import TrainingObjective  # noqa: E402

BASE_CROSS_DIM = 40  # stands in for OpenCLIP's 1024
CHAR_DIM = 48  # ψ's width d, different on purpose


def make_sd2_dir(root: Path, widths=(32, 64, 64, 64), heads=(2, 4, 4, 4)) -> Path:
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        act_fn="silu", attention_head_dim=list(heads), block_out_channels=list(widths), center_input_sample=False,
        cross_attention_dim=BASE_CROSS_DIM,
        down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"], downsample_padding=1,
        dual_cross_attention=False, flip_sin_to_cos=True, freq_shift=0, in_channels=9, layers_per_block=1,
        mid_block_scale_factor=1, norm_eps=1e-5, norm_num_groups=16, out_channels=4, sample_size=8,
        up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, use_linear_projection=True,
    )
    with torch.no_grad():  # random, not zero, cross-attention outputs, so the swap is visible
        for p in unet.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    unet.save_pretrained(root / "unet", safe_serialization=True)
    vae = AutoencoderKL(act_fn="silu", block_out_channels=[16, 16, 16, 16],
                        down_block_types=["DownEncoderBlock2D"] * 4, up_block_types=["UpDecoderBlock2D"] * 4,
                        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=16,
                        sample_size=64)
    vae.save_pretrained(root / "vae", safe_serialization=True)
    (root / "scheduler").mkdir()
    (root / "scheduler" / "scheduler_config.json").write_text(json.dumps({
        "_class_name": "PNDMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "clip_sample": False, "num_train_timesteps": 1000, "prediction_type": "epsilon", "set_alpha_to_one": False,
        "skip_prk_steps": True, "steps_offset": 1, "trained_betas": None}))
    return root


def sd2_cfg(base: Path, **overrides):
    cfg = load_config("sd2", overrides={
        "image_size": [64, 64], "max_len": 8, "unet.base_path": str(base),
        "text.dim": CHAR_DIM, "text.layers": 2, "text.heads": 4, "text.proj_dim": 16, "text.vis_size": [16, 64],
        "text.vis_patch": 8, "text.vis_dim": 32, "text.vis_layers": 1, "text.vis_heads": 2, "loss.s_min": 4,
        "train.bf16": False, **overrides})
    return cfg


@pytest.fixture(scope="module")
def sd2_dir(tmp_path_factory):
    return make_sd2_dir(tmp_path_factory.mktemp("sd2-inpainting"))


def _swapped(name):
    return ".attn2.to_k." in name or ".attn2.to_v." in name or ".attn2.to_out." in name


@pytest.mark.parametrize("widths,heads", [((32, 64, 64, 64), (2, 4, 4, 4)), ((16, 32, 32, 48), (1, 2, 2, 3))])
def test_pretrained_weights_kept_bit_exact_and_char_attention_swapped(tmp_path, widths, heads):
    base = make_sd2_dir(tmp_path / "base", widths, heads)
    cfg = sd2_cfg(base)
    unet = load_sd2_unet(cfg, base)
    ref = load_file(str(base / "unet" / "diffusion_pytorch_model.safetensors"))
    own = unet.state_dict()
    kept = [k for k in ref if not _swapped(k)]
    assert len(kept) > 100 and any(".attn1." in k for k in kept) and any("resnets" in k for k in kept)
    for k in kept:
        assert torch.equal(own[k], ref[k]), k
    n_attn2 = 0
    for name, module in unet.named_modules():
        if name.endswith(".attn2"):
            n_attn2 += 1
            assert module.to_k.in_features == CHAR_DIM and module.to_v.in_features == CHAR_DIM
            assert module.to_out[0].weight.abs().max() == 0 and module.to_out[0].bias.abs().max() == 0
    assert n_attn2 == 3 + 1 + 3 * 2  # down (1 per block) + mid + up (2 per block)


def test_output_equals_the_base_unet_at_initialisation(sd2_dir):
    from diffusers import UNet2DConditionModel

    cfg = sd2_cfg(sd2_dir)
    model = DreamTextModel(cfg).eval()
    base = UNet2DConditionModel.from_pretrained(sd2_dir / "unet").eval()
    with torch.no_grad():
        for name, module in base.named_modules():
            if name.endswith(".attn2"):  # the base with its (CLIP) cross-attention switched off
                module.to_out[0].weight.zero_()
                module.to_out[0].bias.zero_()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 9, 8, 8, generator=g)
    t = torch.tensor([10, 700])
    batch = make_batch(cfg, ["Hello", "ab"])
    cond = model.make_cond(batch)
    assert cond["masked"].shape == (2, 4, 8, 8) and cond["mask"].shape == (2, 1, 8, 8)
    cond["mask"], cond["masked"] = x[:, 4:5], x[:, 5:]
    with torch.no_grad():
        ours = model(x[:, :4], t, cond)
        theirs = base(x, t, encoder_hidden_states=torch.randn(2, 77, BASE_CROSS_DIM, generator=g)).sample
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert ours.abs().max() > 0


def test_sd2_model_trains_char_attention_and_encoder_tail(sd2_dir):
    cfg = sd2_cfg(sd2_dir)
    model = DreamTextModel(cfg)
    params = {id(p) for p in model.trainable_parameters()}
    names = [n for n, p in model.named_parameters() if id(p) in params]
    unet_names = [n for n in names if n.startswith("unet.")]
    # Only the transformer blocks' attn2 / norm2: a ResNet's norm2 (its second GroupNorm) stays frozen.
    assert unet_names and all(".transformer_blocks." in n and (".attn2." in n or ".norm2." in n) for n in unet_names)
    resnets = [(n, p) for n, p in model.unet.named_parameters() if ".resnets." in n]
    assert any(".norm2." in n for n, _ in resnets) and not any(p.requires_grad for _, p in resnets)
    blocks = [n for n, _ in model.unet.named_parameters() if ".transformer_blocks." in n
              and (".attn2." in n or ".norm2." in n)]
    assert sorted("unet." + n for n in blocks) == sorted(unet_names)
    assert not any(n.startswith("vae.") for n in names)
    assert "text_encoder.blocks.layers.1.linear1.weight" in names  # last:2 of 2 layers
    assert "text_encoder.char_head.weight" in names and not any(n.startswith("text_encoder.visual.") for n in names)
    losses = TrainingObjective(model, cfg)(make_batch(cfg, ["Hello", "ab"]), step=0)
    losses["total"].backward()
    assert all(torch.isfinite(v).all() for v in losses.values() if not torch.isnan(v).all())
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("unet.conv_in"))


def test_glyph_prior_adds_a_zero_channel_to_conv_in(sd2_dir):
    cfg = sd2_cfg(sd2_dir, glyph_prior=True)
    unet = load_sd2_unet(cfg, sd2_dir)
    ref = load_file(str(sd2_dir / "unet" / "diffusion_pytorch_model.safetensors"))["conv_in.weight"]
    w = unet.conv_in.weight
    assert w.shape[1] == 10 and torch.equal(w[:, :9], ref) and w[:, 9].abs().max() == 0


def test_broken_directories_raise_checkpoint_errors(tmp_path, sd2_dir):
    cfg = sd2_cfg(tmp_path)
    with pytest.raises(CheckpointError, match="unet/ folder"):
        load_sd2_unet(cfg, tmp_path)
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(sd2_dir, broken)
    weights = broken / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="diffusion_pytorch_model.safetensors"):
        load_sd2_unet(cfg, broken)
    cfg_json = broken / "unet" / "config.json"
    cfg_json.write_text(cfg_json.read_text().replace('"in_channels": 9', '"in_channels": 4'))
    with pytest.raises(CheckpointError, match="in_channels=4"):
        load_sd2_unet(cfg, broken)


def test_sd2_checkpoint_round_trip(tmp_path, sd2_dir):
    from dreamtext.model.checkpoint import load_model, save_checkpoint

    cfg = sd2_cfg(sd2_dir)
    torch.manual_seed(1)
    model = DreamTextModel(cfg).eval()
    with torch.no_grad():  # make the swapped-in attention matter, so the round trip is not trivially equal
        for name, p in model.unet.named_parameters():
            if ".attn2.to_out" in name:
                p.normal_(0, 0.05)
    save_checkpoint(tmp_path / "ck", cfg, {"model": model.state_dict()}, {"step": 0})
    loaded, _ = load_model(tmp_path / "ck")
    batch = make_batch(cfg, ["Hello", "ab"])
    z, t = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0)), torch.tensor([5, 500])
    with torch.no_grad():
        assert torch.equal(loaded(z, t, loaded.make_cond(batch)), model(z, t, model.make_cond(batch)))
