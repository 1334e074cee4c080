"""The released DreamText / UDiffText weights → our module names: the UNet, the LabelEncoder and the VAE.

The released code (sgm, Stability's generative-models, as UDiffText and DreamText modified it) keeps
SD2-inpainting's original LDM layout. diffusers' own LDM converters (``convert_ldm_unet_checkpoint``,
``convert_ldm_vae_checkpoint`` in ``diffusers.loaders.single_file_utils``) do the ResNet, attention and
up/down-block renames; this module adds only what is DreamText's own:

- each transformer block's character cross-attention ``t_attn`` and its LayerNorm ``t_norm`` (UDiffText's first
  code, ``UNetAddModel``: ``add_attn`` / ``add_norm``, beside an unused ``norm2``) take SD's ``attn2`` / ``norm2``
  place, attending to the LabelEncoder's 2048-wide output (``cross_attention_dim``);
- the LabelEncoder (``sgm.modules.encoders.modules.LabelEncoder``) → our ψ (:class:`TextEncoder`): the same
  embedding (its rows reordered: the release numbers ``string.printable[:-6]`` — digits, a–z, A–Z,
  punctuation — and we number ``!``…``~`` in ASCII order; id 0 is padding in both), the same sinusoidal
  positions (checked, not stored: ours are computed) and the same ``nn.TransformerEncoder`` layers (PyTorch's
  default layer: post-norm, ReLU, feed-forward 2048, no final norm: ``text.norm_first`` / ``final_norm`` false).

Each converter also returns where each weight came from (converted key → source key), so that the caller can
name, under their released names, the source weights that found no place in the model.
"""

from __future__ import annotations

import re
import string

import torch

from ..charset import CHARSET
from ..errors import CheckpointError

UNET_PREFIX = "model.diffusion_model."  # sgm's OpenAIWrapper around the UNet
# Character cross-attention names of the released code → SD's (and diffusers') place for them.
CHAR_ATTN_NAMES = {"t_attn": "attn2", "t_norm": "norm2", "add_attn": "attn2", "add_norm": "norm2"}
RELEASED_CHARSET = string.printable[:-6]  # the LabelEncoder's character order (id = index + 1)
# LabelEncoder parts our ψ has no counterpart for (its pre-training heads, ξ's ViT and the temperature):
# dropped. Ours (char_head, pos_head, text_proj, visual, image_proj, logit_scale) start fresh.
DROPPED_ENCODER_PARTS = ("cls_head", "pos_head", "text_head", "visual_head", "visual_encoder", "logit_scale")


def with_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _some(keys, n: int = 3) -> str:
    keys = sorted(keys)
    return ", ".join(repr(k) for k in keys[:n]) + (f" (… {len(keys)} in all)" if len(keys) > n else "")


def _get(state: dict, key: str, where: str) -> torch.Tensor:
    if key not in state:
        raise CheckpointError(f"{where} lacks {key!r}: not the released DreamText/UDiffText layout")
    return state[key]


# ----------------------------------------------------------------------------- the UNet


def check_is_dreamtext_unet(ldm: dict[str, torch.Tensor], where: str) -> None:
    """Refuse a UNet that is not DreamText's: no character cross-attention, or parts it never had."""
    names = {part for k in ldm for part in k.split(".")}
    if not names & {"t_attn", "add_attn"}:
        if "attn2" in names:
            raise CheckpointError(f"{where} is a Stable Diffusion UNet (its transformer blocks cross-attend to a "
                                  "text encoder through attn2), not DreamText/UDiffText's: it has no character "
                                  "cross-attention t_attn")
        raise CheckpointError(f"{where} has no character cross-attention (t_attn): not a DreamText/UDiffText UNet")
    for part, what in (("v_attn", "a visual cross-attention (v_attn)"), ("ctrl_block", "a control branch "
                       "(ctrl_block)"), ("label_emb", "a class embedding (label_emb)")):
        if part in names:
            raise CheckpointError(f"{where} has {what}, which the released DreamText/UDiffText models do not: "
                                  "another model of that code base, not supported")
    if "t_attn" in names and "attn2" in names:
        raise CheckpointError(f"{where} has both a text cross-attention (attn2) and the character one (t_attn): "
                              "another model of that code base, not supported")


def rename_char_attention(ldm: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """t_attn → attn2, t_norm → norm2 (and UDiffText's early add_attn / add_norm, dropping the unused norm2
    that code kept beside them). Tensors are passed on, not copied."""
    early = any(".add_attn." in k for k in ldm)
    out = {}
    for key, value in ldm.items():
        parts = key.split(".")
        if early and "transformer_blocks" in parts and "norm2" in parts:
            continue  # the early code's LayerNorm of a CLIP attention it did not have: never used
        out[".".join(CHAR_ATTN_NAMES.get(p, p) if "transformer_blocks" in parts else p for p in parts)] = value
    return out


def unet_settings(ldm: dict[str, torch.Tensor], where: str) -> dict:
    """The UNet's shape from its LDM weights: ``config.UNetConfig`` values plus in/out channels and the
    character context's width (heads are not in the weights: the caller supplies ``head_channels``)."""
    conv_in = _get(ldm, "input_blocks.0.0.weight", where)  # (C0, in, 3, 3)
    out_w = _get(ldm, "out.2.weight", where)  # (out, C0, 3, 3)
    down_ids = sorted(int(m.group(1)) for k in ldm if (m := re.fullmatch(r"input_blocks\.(\d+)\.0\.op\.weight", k)))
    if not down_ids:
        raise CheckpointError(f"{where} has no downsampling blocks (input_blocks.N.0.op): not an SD-style UNet")
    per_level = down_ids[0]  # layers_per_block + 1 input blocks per level
    levels = len(down_ids) + 1
    if down_ids != [per_level * (k + 1) for k in range(levels - 1)]:
        raise CheckpointError(f"{where}: downsamplers at input_blocks {down_ids} do not follow the SD layout")
    widths, attention = [], []
    for level in range(levels):
        first = 1 + level * per_level
        widths.append(int(_get(ldm, f"input_blocks.{first}.0.out_layers.3.weight", where).shape[0]))
        attention.append(any(k.startswith(f"input_blocks.{first}.1.") for k in ldm))
    depth = {m.group(1) for k in ldm if (m := re.match(r"input_blocks\.\d+\.1\.transformer_blocks\.(\d+)\.", k))}
    if depth != {"0"}:
        raise CheckpointError(f"{where}: transformer depth {len(depth)} per block; the released models have 1")
    to_k = next((v for k, v in ldm.items() if k.endswith(".attn2.to_k.weight")), None)  # (inner, context)
    proj_in = next((v for k, v in ldm.items() if k.endswith(".1.proj_in.weight")), None)
    if to_k is None or proj_in is None:
        raise CheckpointError(f"{where} has no transformer blocks with a character cross-attention")
    return {
        "in_channels": int(conv_in.shape[1]), "out_channels": int(out_w.shape[0]),
        "context_dim": int(to_k.shape[1]),
        "block_out_channels": tuple(widths),
        "down_block_types": tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention),
        "up_block_types": tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)),
        "layers_per_block": per_level - 1,
        "linear_projection": proj_in.ndim == 2,
    }


def convert_unet(ldm: dict[str, torch.Tensor], unet_config: dict) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """diffusers-named UNet weights from the released LDM ones (char attention already renamed) and their
    origins. ``unet_config``: the diffusers UNet's config (its ``layers_per_block``)."""
    from diffusers.loaders.single_file_utils import convert_ldm_unet_checkpoint

    prefixed = {UNET_PREFIX + k: v for k, v in ldm.items()}
    converted = convert_ldm_unet_checkpoint(prefixed, dict(unet_config))
    converted = {k: v for k, v in converted.items() if v is not None}
    return converted, origins(ldm, converted)


# ----------------------------------------------------------------------------- the VAE


def vae_settings(ldm_vae: dict[str, torch.Tensor], where: str) -> dict:
    """``config.VAEConfig`` values and the latent channels from the LDM AutoencoderKL's weights."""
    levels = sorted({int(m.group(1)) for k in ldm_vae if (m := re.match(r"encoder\.down\.(\d+)\.", k))})
    if not levels:
        raise CheckpointError(f"{where} has no encoder.down.* weights: not an LDM AutoencoderKL")
    widths = [int(_get(ldm_vae, f"encoder.down.{i}.block.0.conv2.weight", where).shape[0]) for i in levels]
    blocks = {int(m.group(1)) for k in ldm_vae if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", k))}
    latent = int(_get(ldm_vae, "post_quant_conv.weight", where).shape[1])  # Conv2d(embed_dim, z_channels)
    return {"block_out_channels": tuple(widths), "layers_per_block": len(blocks), "latent_channels": latent}


def convert_vae(ldm_vae: dict[str, torch.Tensor], vae_config: dict) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """diffusers AutoencoderKL weights from the LDM ones (mid-block attention 1×1 convs become linear layers)
    and their origins."""
    from diffusers.loaders.single_file_utils import convert_ldm_vae_checkpoint

    converted = convert_ldm_vae_checkpoint(dict(ldm_vae), dict(vae_config))
    converted = {k: v for k, v in converted.items() if v is not None}
    return converted, origins(ldm_vae, converted)


# ----------------------------------------------------------------------------- the LabelEncoder


def encoder_settings(label_encoder: dict[str, torch.Tensor], where: str) -> dict:
    """``config.TextEncoderConfig`` values (and ``max_len``) from the LabelEncoder's weights; heads are not in
    the weights (the release uses 8)."""
    emb = _get(label_encoder, "label_embedding.weight", where)  # (95, d)
    if emb.shape[0] != len(RELEASED_CHARSET) + 1:
        raise CheckpointError(f"{where}: label_embedding has {emb.shape[0]} rows; the LabelEncoder has "
                              f"{len(RELEASED_CHARSET) + 1} (94 characters + padding)")
    pe = _get(label_encoder, "pos_embedding.pe", where)  # (L, d)
    layers = {int(m.group(1)) for k in label_encoder if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    if layers != set(range(len(layers))) or not layers:
        raise CheckpointError(f"{where}: encoder layers {sorted(layers)} are not 0…N−1")
    ff = _get(label_encoder, "encoder.layers.0.linear1.weight", where)  # (ff_dim, d)
    return {"dim": int(emb.shape[1]), "max_len": int(pe.reshape(-1, emb.shape[1]).shape[0]), "layers": len(layers),
            "ff_dim": int(ff.shape[0]), "final_norm": "encoder.norm.weight" in label_encoder}


def convert_label_encoder(label_encoder: dict[str, torch.Tensor], where: str
                          ) -> tuple[dict[str, torch.Tensor], dict[str, str], set[str]]:
    """Our ψ's weights (``embed``, ``blocks``, ``norm``) from the LabelEncoder's → (weights, their origins, keys
    of the dropped parts). The positions are checked against ours and not stored."""
    from .text_encoder import sinusoidal_positions

    emb = label_encoder["label_embedding.weight"]  # (95, d): row = released id
    pe = label_encoder["pos_embedding.pe"]
    ours = sinusoidal_positions(pe.reshape(-1, emb.shape[1]).shape[0], emb.shape[1])
    if not torch.allclose(pe.reshape(ours.shape).float(), ours, atol=1e-5):
        err = float((pe.reshape(ours.shape).float() - ours).abs().max())
        raise CheckpointError(f"{where}: pos_embedding.pe is not the sinusoidal encoding this model computes "
                              f"(max difference {err:.3g})")
    # Our id i + 1 is CHARSET[i]; its row is the released row of the same character.
    order = [0] + [RELEASED_CHARSET.index(ch) + 1 for ch in CHARSET]
    out = {"embed.weight": emb[order]}  # (95, d)
    origin = {"embed.weight": "label_embedding.weight"}
    dropped = {"pos_embedding.pe"}  # checked above; ours is computed
    for key, value in label_encoder.items():
        if key.startswith("encoder.layers."):
            name = "blocks.layers." + key[len("encoder.layers."):]
        elif key.startswith("encoder.norm."):
            name = "norm." + key[len("encoder.norm."):]
        else:
            if key.split(".")[0] in DROPPED_ENCODER_PARTS:
                dropped.add(key)
            continue
        out[name], origin[name] = value, key
    return out, origin, dropped


# ----------------------------------------------------------------------------- bookkeeping


def origins(source: dict[str, torch.Tensor], converted: dict[str, torch.Tensor]) -> dict[str, str]:
    """converted key → the source key its tensor came from (diffusers' converters pass tensors on, or views of
    them for the reshaped attention weights), found by identity and then by data pointer."""
    by_id = {id(v): k for k, v in source.items()}
    by_ptr = {v.data_ptr(): k for k, v in source.items() if v.numel()}
    found = {}
    for name, v in converted.items():
        key = by_id.get(id(v)) or (by_id.get(id(v._base)) if v._base is not None else None)
        if key is None and v.numel():
            key = by_ptr.get(v.data_ptr())
        if key is not None:
            found[name] = key
    return found


def placed(origin: dict[str, str], prefix: str, expected) -> set[str]:
    """The source keys whose converted weight (``prefix`` + its converted key) is one the model has."""
    return {src for name, src in origin.items() if prefix + name in expected}


def check_state(expected: dict[str, tuple], state: dict[str, torch.Tensor], where: str) -> None:
    """Every weight the model has, none it lacks, each of its shape; else one CheckpointError naming the first
    few keys of each problem and their counts."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k]))
    problems = []
    if wrong:
        k = wrong[0]
        problems.append(f"{len(wrong)} of the wrong shape (e.g. {k!r}: expected {tuple(expected[k])}, found "
                        f"{tuple(state[k].shape)})")
    if missing:
        problems.append(f"{len(missing)} missing: {_some(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected: {_some(unexpected)}")
    if problems:
        raise CheckpointError(f"{where}: the converted weights do not fit the model: " + "; ".join(problems))


def check_all_used(source: dict[str, torch.Tensor], used: set[str], where: str) -> None:
    """Refuse source weights the conversion did not carry (a part of another model, a renamed layer)."""
    left = sorted(set(source) - used)
    if left:
        raise CheckpointError(f"{where}: {len(left)} unexpected weight(s) with no place in the model: {_some(left)}")
