"""Scaled-down random checkpoints in the layouts of the released DreamText / UDiffText code (no real weights).

The UNet and VAE are diffusers modules with random weights, written out under the released code's LDM names by
the *inverse* of the conversion, spelled out here independently of diffusers' converter (LDM's
``input_blocks`` / ``middle_block`` / ``output_blocks`` numbering, ResNet ``in_layers`` / ``out_layers``, the
VAE's ``down.N.block.M`` and 1×1-conv attention); DreamText's character cross-attention is written
``t_attn`` / ``t_norm``. The LabelEncoder is a copy of the release's module (``sgm.modules.encoders.modules``:
PyTorch's default encoder layer, the release's character order, its sinusoidal ``pe`` buffer and its heads).
The same shapes as the release, tiny widths: 4 UNet levels with attention in the first 3, 2 ResNets each,
linear projections; a 2-layer, 8-head encoder; a 4-level VAE with 2 ResNets each.
"""

from __future__ import annotations

import math
import re
import string
from pathlib import Path

import torch
from torch import nn

UNET_WIDTHS = (32, 64, 64, 64)
UNET_HEAD_CHANNELS = 16
TEXT_DIM, TEXT_LAYERS, TEXT_HEADS, TEXT_FF, MAX_LEN = 64, 2, 8, 48, 12
VAE_WIDTHS = (32, 32, 64, 64)
IMAGE = 64  # pixels; latents 8×8
# Settings the released weights do not carry, for these miniatures: heads of 16 channels (the release: 64) and
# a small fresh ξ (its ViT has no released counterpart and only slows the tests); §3 masks from the 4×4 maps.
CONVERT_OVERRIDES = [f"image_size=[{IMAGE},{IMAGE}]", f"unet.head_channels={UNET_HEAD_CHANNELS}",
                     "text.vis_size=[16,64]", "text.vis_patch=8", "text.vis_dim=32", "text.vis_layers=1",
                     "text.vis_heads=2", "text.proj_dim=16", "loss.s_min=4"]


def _jitter(module: nn.Module, seed: int) -> nn.Module:
    """Random, non-trivial weights everywhere (norms not 1/0, zero-initialised outputs not zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return module.eval()


# ----------------------------------------------------------------------------- UNet


def source_unet(seed: int = 0):
    """A random diffusers UNet of the released block structure (in 9, out 4, char context TEXT_DIM)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=IMAGE // 8, in_channels=9, out_channels=4, layers_per_block=2,
        block_out_channels=UNET_WIDTHS, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, cross_attention_dim=TEXT_DIM,
        attention_head_dim=tuple(w // UNET_HEAD_CHANNELS for w in UNET_WIDTHS), use_linear_projection=True,
        norm_num_groups=32)
    return _jitter(unet, seed + 1)


_RESNET_TO_LDM = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1",
                  "norm2": "out_layers.0", "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def ldm_unet_key(key: str, layers: int = 2, attention=(True, True, True, False), names=("t_attn", "t_norm")) -> str:
    """A diffusers UNet key → the released code's (``model.diffusion_model.`` not included)."""
    fixed = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
             "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    head, _, leaf = key.rpartition(".")
    if head in fixed:
        return f"{fixed[head]}.{leaf}"

    def resnet(rest: str) -> str:
        first, _, tail = rest.partition(".")
        return f"{_RESNET_TO_LDM[first]}.{tail}"

    def attn(rest: str) -> str:  # the character cross-attention under the released names
        return rest.replace(".attn2.", f".{names[0]}.").replace(".norm2.", f".{names[1]}.")

    n = layers + 1
    if m := re.fullmatch(r"down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * n + int(m[2])}.0.{resnet(m[3])}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        return f"input_blocks.{1 + int(m[1]) * n + int(m[2])}.1.{attn(m[3])}"
    if m := re.fullmatch(r"down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        return f"input_blocks.{(int(m[1]) + 1) * n}.0.op.{m[2]}"
    if m := re.fullmatch(r"mid_block\.resnets\.(\d)\.(.+)", key):
        return f"middle_block.{2 * int(m[1])}.{resnet(m[2])}"
    if m := re.fullmatch(r"mid_block\.attentions\.0\.(.+)", key):
        return f"middle_block.1.{attn(m[1])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        return f"output_blocks.{int(m[1]) * n + int(m[2])}.0.{resnet(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)", key):
        return f"output_blocks.{int(m[1]) * n + int(m[2])}.1.{attn(m[3])}"
    if m := re.fullmatch(r"up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        level = len(attention) - 1 - int(m[1])  # up block b works at down level L − 1 − b
        return f"output_blocks.{int(m[1]) * n + layers}.{2 if attention[level] else 1}.conv.{m[2]}"
    raise KeyError(key)


def ldm_unet_state(unet, names=("t_attn", "t_norm")) -> dict[str, torch.Tensor]:
    return {"model.diffusion_model." + ldm_unet_key(k, names=names): v.clone() for k, v in unet.state_dict().items()}


# ----------------------------------------------------------------------------- VAE


def source_vae(seed: int = 2):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=VAE_WIDTHS,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                        layers_per_block=2, norm_num_groups=32, sample_size=IMAGE)
    return _jitter(vae, seed + 1)


def ldm_vae_key(key: str, levels: int = 4) -> str:
    renames = {"conv_norm_out": "norm_out", "conv_shortcut": "nin_shortcut", "group_norm": "norm", "to_q": "q",
               "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}
    if m := re.fullmatch(r"(encoder|decoder)\.mid_block\.resnets\.(\d)\.(.+)", key):
        key = f"{m[1]}.mid.block_{int(m[2]) + 1}.{m[3]}"
    elif m := re.fullmatch(r"(encoder|decoder)\.mid_block\.attentions\.0\.(.+)", key):
        key = f"{m[1]}.mid.attn_1.{m[2]}"
    elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        key = f"encoder.down.{m[1]}.block.{m[2]}.{m[3]}"
    elif m := re.fullmatch(r"encoder\.down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)", key):
        key = f"encoder.down.{m[1]}.downsample.conv.{m[2]}"
    elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\.(.+)", key):
        key = f"decoder.up.{levels - 1 - int(m[1])}.block.{m[2]}.{m[3]}"  # LDM numbers the decoder bottom-up
    elif m := re.fullmatch(r"decoder\.up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)", key):
        key = f"decoder.up.{levels - 1 - int(m[1])}.upsample.conv.{m[2]}"
    for a, b in renames.items():
        key = key.replace(f".{a}.", f".{b}.")
    return key


def ldm_vae_state(vae, prefix: str = "first_stage_model.") -> dict[str, torch.Tensor]:
    out = {}
    for k, v in vae.state_dict().items():
        name = ldm_vae_key(k)
        if ".mid.attn_1." in name and name.endswith("weight") and v.ndim == 2:
            v = v[:, :, None, None]  # LDM's attention projections are 1×1 convolutions
        out[prefix + name] = v.clone()
    return out


# ----------------------------------------------------------------------------- LabelEncoder (a copy of the release's)


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=5000):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        pe = torch.zeros(max_len, d_model)
        position = torch.arange(0, max_len, dtype=torch.float).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe)

    def forward(self, x):
        return self.dropout(x + torch.tile(self.pe[None, ...].to(x.device), (x.shape[0], 1, 1)))


class ReleasedLabelEncoder(nn.Module):
    """The release's LabelEncoder (its ``trainable`` parts included: heads, a stand-in visual encoder, τ)."""

    def __init__(self, heads: bool = True):
        super().__init__()
        self.max_len, self.character = MAX_LEN, string.printable[:-6]
        self.num_cls = len(self.character) + 1
        self.label_embedding = nn.Embedding(self.num_cls, TEXT_DIM)
        self.pos_embedding = PositionalEncoding(d_model=TEXT_DIM, max_len=MAX_LEN)
        block = nn.TransformerEncoderLayer(d_model=TEXT_DIM, nhead=TEXT_HEADS, batch_first=True,
                                           dim_feedforward=TEXT_FF)  # the release: the default 2048
        self.encoder = nn.TransformerEncoder(block, num_layers=TEXT_LAYERS)
        if heads:
            self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
            self.visual_encoder = nn.Linear(8, 16)  # stands in for its ViTSTR
            self.cls_head = nn.Sequential(nn.InstanceNorm1d(MAX_LEN), nn.Linear(TEXT_DIM, TEXT_DIM), nn.GELU(),
                                          nn.Linear(TEXT_DIM, self.num_cls))
            self.pos_head = nn.Sequential(nn.InstanceNorm1d(MAX_LEN), nn.Linear(TEXT_DIM, MAX_LEN, bias=False))
            self.text_head = nn.Sequential(nn.InstanceNorm1d(MAX_LEN), nn.Linear(TEXT_DIM, 24, bias=False),
                                           nn.Conv1d(MAX_LEN, 1, kernel_size=1))
            self.visual_head = nn.Sequential(nn.InstanceNorm1d(5), nn.Linear(16, 24, bias=False),
                                             nn.Conv1d(5, 1, kernel_size=1))

    def get_index(self, labels):
        rows = [[self.character.find(c) + 1 for c in label] + [0] * (self.max_len - len(label)) for label in labels]
        return torch.tensor(rows)

    def forward(self, labels):
        return self.encoder(self.pos_embedding(self.label_embedding(self.get_index(labels))))


def source_label_encoder(seed: int = 4, heads: bool = True) -> ReleasedLabelEncoder:
    torch.manual_seed(seed)
    return _jitter(ReleasedLabelEncoder(heads), seed + 1)


# ----------------------------------------------------------------------------- files


def released_state(unet, encoder, vae, *, encoder_in_ckpt=True, vae_in_ckpt=True, latent_copy=True,
                   sigmas=True, names=("t_attn", "t_norm")) -> dict[str, torch.Tensor]:
    """The DiffusionEngine's state dict as the release saves it."""
    state = ldm_unet_state(unet, names)
    if encoder_in_ckpt:
        state.update({"conditioner.embedders.0." + k: v.clone() for k, v in encoder.state_dict().items()})
    if vae_in_ckpt:
        state.update(ldm_vae_state(vae))
    if latent_copy:  # the LatentEncoder that encodes the masked image: the same AE
        state.update(ldm_vae_state(vae, "conditioner.embedders.2.model."))
    if sigmas:
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
        alpha_bar = torch.cumprod(1 - betas, 0)
        state["denoiser.sigmas"] = ((1 - alpha_bar) / alpha_bar).sqrt().float()  # ascending, as sgm keeps it
    return state


def write_bundle(root: Path, unet, encoder, vae, **kwargs) -> Path:
    """A DreamText bundle folder: checkpoints/pre_trained.ckpt (+ the AE, the LabelEncoder, PARSeq files)."""
    from safetensors.torch import save_file

    ck = root / "checkpoints"
    (ck / "AEs").mkdir(parents=True)
    (ck / "encoders" / "LabelEncoder").mkdir(parents=True)
    (ck / "predictors").mkdir()
    state = released_state(unet, encoder, vae, **kwargs)
    torch.save({"state_dict": state, "epoch": 3, "global_step": 100, "pytorch-lightning_version": "1.9.0",
                "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.1), "dirpath": "ckpts"}}},
               ck / "pre_trained.ckpt")
    save_file({k[len("first_stage_model."):]: v.contiguous() for k, v in ldm_vae_state(vae).items()},
              str(ck / "AEs" / "AE_inpainting_2.safetensors"))
    torch.save({"state_dict": {k: v.clone() for k, v in encoder.state_dict().items()}, "epoch": 19},
               ck / "encoders" / "LabelEncoder" / "epoch=19-step=7820.ckpt")
    (ck / "predictors" / "parseq-bb5792a6.pt").write_bytes(b"not read")
    return root
