"""Building and loading the denoiser: diffusers' UNet2DConditionModel with character cross-attention (§2, §9).

- ``build_unet(cfg)``: a freshly initialised UNet of the widths in ``cfg.unet``
  (the tiny preset: pixel space, ``in_channels = cfg.unet_in_channels``).
- ``load_sd2_unet(cfg, path)``: the UNet of a local diffusers-format
  SD2-inpainting directory (``unet/config.json`` +
  ``unet/diffusion_pytorch_model.safetensors``). Its widths, heads and block
  types come from that directory, never from ``cfg``. The cross-attention of
  every block (``attn2``) is swapped for a character cross-attention over ψ
  (``cross_attention_dim = cfg.text.dim``): new ``to_k``/``to_v`` (random),
  a zero-initialised output projection ``to_out.0`` (weight and bias), and the
  pretrained ``to_q`` and ``norm2`` kept. Everything else — self-attention,
  ResNets, feed-forwards, time embedding — keeps its pretrained weights bit for
  bit, so at initialisation the UNet computes what the base UNet computes with
  its cross-attention switched off. With the glyph prior (§12) ``conv_in``
  gains one input channel whose weights start at zero.
- ``load_vae(path)``: the directory's ``vae/`` (AutoencoderKL), frozen.
- ``build_vae(cfg)``: an AutoencoderKL of the widths in ``cfg.vae`` (a latent model without a base directory,
  e.g. one converted from the released weights), frozen; its weights come from the checkpoint.
- ``char_attn_parameters(unet)``: what ``unet.trainable=char_attn`` trains, chosen by module: each transformer
  block's cross-attention ``attn2`` and its norm ``norm2`` (never a ResNet's ``norm2``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..config import DreamTextConfig
from ..errors import CheckpointError
from ..io_utils import read_json, read_tensors


def _norm_groups(channels: tuple[int, ...]) -> int:
    """The largest group count ≤ 32 dividing every width (32 for the usual widths; 16 for the test preset)."""
    g = 0
    for c in channels:
        g = math.gcd(g, c)
    return max(d for d in range(1, 33) if g % d == 0)


def build_unet(cfg: DreamTextConfig):
    """A randomly initialised UNet2DConditionModel of the widths in ``cfg.unet``."""
    from diffusers import UNet2DConditionModel

    u = cfg.unet
    if u.head_channels:  # heads per block from the channels per head (SD2: 64 → 5, 10, 20, 20)
        heads = tuple(c // u.head_channels for c in u.block_out_channels)
    else:
        for c in u.block_out_channels:
            if c % u.attention_heads:
                raise ValueError(f"unet width {c} is not divisible by unet.attention_heads={u.attention_heads}")
        heads = u.attention_heads
    return UNet2DConditionModel(
        sample_size=tuple(cfg.latent_size),
        in_channels=cfg.unet_in_channels,
        out_channels=cfg.latent_channels,
        down_block_types=tuple(u.down_block_types),
        up_block_types=tuple(u.up_block_types),
        block_out_channels=tuple(u.block_out_channels),
        layers_per_block=u.layers_per_block,
        norm_num_groups=_norm_groups(tuple(u.block_out_channels)),
        cross_attention_dim=cfg.text.dim,
        # diffusers' attention_head_dim=N means N heads (DESIGN §11).
        attention_head_dim=heads,
        only_cross_attention=u.only_cross_attention,
        use_linear_projection=u.linear_projection,
    )


def build_vae(cfg: DreamTextConfig):
    """A frozen AutoencoderKL of the widths in ``cfg.vae`` with ``cfg.latent_channels`` latent channels."""
    from diffusers import AutoencoderKL

    v = cfg.vae
    levels = len(v.block_out_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=cfg.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * levels, up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=tuple(v.block_out_channels), layers_per_block=v.layers_per_block,
        norm_num_groups=v.norm_groups, sample_size=int(cfg.image_size[0]), scaling_factor=v.scaling_factor,
    )
    return vae.requires_grad_(False).eval()


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise CheckpointError(f"SD2-inpainting directory is missing {what}: {str(path)!r}")
    return path


def char_attn_parameters(unet) -> dict[str, torch.nn.Parameter]:
    """name → parameter of every transformer block's cross-attention ``attn2`` and its norm ``norm2``: what
    ``unet.trainable=char_attn`` trains. Chosen by module (diffusers' BasicTransformerBlock), not by name: a
    ResNet block has a ``norm2`` too (its second GroupNorm), which stays frozen."""
    from diffusers.models.attention import BasicTransformerBlock

    found = {}
    for block_name, block in unet.named_modules():
        if not isinstance(block, BasicTransformerBlock):
            continue
        for part in ("attn2", "norm2"):
            module = getattr(block, part, None)
            if module is None:
                continue
            for name, p in module.named_parameters():
                found[f"{block_name}.{part}.{name}"] = p
    return found


def load_sd2_unet(cfg: DreamTextConfig, path: str | Path, load_weights: bool = True):
    """The base UNet of ``path/unet`` with character cross-attention swapped in (see the module docstring).

    ``load_weights=False``: only the architecture (a checkpoint will overwrite every weight anyway).
    """
    from diffusers import UNet2DConditionModel

    unet_dir = _require(Path(path) / "unet", "the unet/ folder")
    config = read_json(_require(unet_dir / "config.json", "unet/config.json"))
    base_in = int(config.get("in_channels", 0))
    if base_in not in (cfg.unet_in_channels, cfg.unet_in_channels - int(cfg.glyph_prior)):
        raise CheckpointError(f"{str(unet_dir / 'config.json')!r}: in_channels={base_in}, but this config needs "
                              f"{cfg.unet_in_channels} (2·{cfg.latent_channels} latent + mask"
                              f"{' + glyph' if cfg.glyph_prior else ''})")
    if int(config.get("out_channels", -1)) != cfg.latent_channels:
        raise CheckpointError(f"{str(unet_dir / 'config.json')!r}: out_channels={config.get('out_channels')}, "
                              f"expected latent_channels={cfg.latent_channels}")
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config["cross_attention_dim"] = cfg.text.dim
    config["in_channels"] = cfg.unet_in_channels
    try:
        unet = UNet2DConditionModel.from_config(config)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{str(unet_dir / 'config.json')!r} does not describe a UNet2DConditionModel: {e}") \
            from None
    if not load_weights:
        return unet
    state = read_tensors(_require(unet_dir / "diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.safetensors"))

    own = unet.state_dict()
    keep = {}
    for name, tensor in state.items():
        if ".attn2.to_k." in name or ".attn2.to_v." in name or ".attn2.to_out." in name:
            continue  # replaced by the character cross-attention
        if name not in own:
            raise CheckpointError(f"{str(unet_dir)!r}: weight {name!r} has no place in the UNet its config describes")
        if name == "conv_in.weight" and tensor.shape[1] + 1 == own[name].shape[1]:
            # The glyph prior's extra input channel (§12), starting at zero.
            tensor = torch.cat([tensor, torch.zeros_like(tensor[:, :1])], dim=1)
        if tensor.shape != own[name].shape:
            raise CheckpointError(f"{str(unet_dir)!r}: weight {name!r} has shape {tuple(tensor.shape)}, "
                                  f"the config needs {tuple(own[name].shape)}")
        keep[name] = tensor
    missing = [n for n in own if n not in keep and not (".attn2.to_k." in n or ".attn2.to_v." in n
                                                          or ".attn2.to_out." in n)]
    if missing:
        raise CheckpointError(f"{str(unet_dir / 'diffusion_pytorch_model.safetensors')!r} lacks {len(missing)} "
                              f"weights, e.g. {missing[0]!r}")
    unet.load_state_dict(keep, strict=False)
    with torch.no_grad():
        for name, module in unet.named_modules():
            if name.endswith(".attn2"):
                torch.nn.init.zeros_(module.to_out[0].weight)
                if module.to_out[0].bias is not None:
                    torch.nn.init.zeros_(module.to_out[0].bias)
    return unet


def load_vae(path: str | Path):
    """The frozen AutoencoderKL of ``path/vae`` (config.json + diffusion_pytorch_model.safetensors)."""
    from diffusers import AutoencoderKL

    vae_dir = _require(Path(path) / "vae", "the vae/ folder")
    config = read_json(_require(vae_dir / "config.json", "vae/config.json"))
    state = read_tensors(_require(vae_dir / "diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"))
    try:
        vae = AutoencoderKL.from_config({k: v for k, v in config.items() if not k.startswith("_")})
        vae.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{str(vae_dir)!r}: VAE config and weights do not match: {str(e).splitlines()[0]}") \
            from None
    vae.requires_grad_(False).eval()
    return vae


def read_scheduler_config(path: str | Path) -> dict:
    """``path/scheduler/scheduler_config.json`` as a dict (the noise process of the base model)."""
    folder = _require(Path(path) / "scheduler", "the scheduler/ folder")
    return read_json(_require(folder / "scheduler_config.json", "scheduler/scheduler_config.json"))
