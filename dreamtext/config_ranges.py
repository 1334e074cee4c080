"""The allowed range of every numeric setting, checked where a config is built (``DreamTextConfig.from_dict``).

Types are checked by ``config._coerce``; this adds the values: a negative image size, a text width that would
allocate 120 GB, a batch of 0 or a NaN learning rate is one ``ConfigError`` naming the key, the value and the
range, before any model is built or any data is drawn.
"""

from __future__ import annotations

import math

from .errors import ConfigError

INF = math.inf
# The sampling limits every entry point shares (dreamtext.sample_options checks them).
MAX_STEPS = 1000
MAX_GUIDANCE = 30.0  # classifier-free guidance scales past this only saturate the image
MAX_RESTARTS = 20
MAX_CANDIDATES = 16  # samples per region the word verifier chooses among
MAX_SEED = 2**63 - 1  # seeds are 0 … 2^63 − 1 (torch.Generator.manual_seed's non-negative range)
MAX_REGIONS = 32  # regions one job (one photo) may ask for: each is a whole sampling batch row
# Model windows sampled in one UNet batch (regions × chunks × candidates of all jobs of a call); more are sampled
# in groups of this many, so memory stays flat (~1.5 GB for the tiny preset at 48).
MAX_SAMPLE_BATCH = 48
# dotted key → (low, high): low ≤ value ≤ high, every value finite. A tuple value is checked element by element.
RANGES: dict[str, tuple[float, float]] = {
    "max_len": (1, 256),
    "image_size": (8, 4096),
    "latent_channels": (1, 64),
    "vae_scale": (1, 64),
    "text.dim": (8, 8192), "text.layers": (1, 64), "text.heads": (1, 128), "text.proj_dim": (1, 8192),
    "text.vis_size": (8, 4096), "text.vis_patch": (1, 512), "text.vis_dim": (8, 8192), "text.vis_layers": (1, 64),
    "text.vis_heads": (1, 128), "text.init_temperature": (1e-4, 10), "text.ff_dim": (0, 65536),
    "unet.block_out_channels": (1, 8192), "unet.layers_per_block": (1, 16), "unet.attention_heads": (1, 128),
    "unet.head_channels": (0, 8192),
    "vae.block_out_channels": (1, 8192), "vae.layers_per_block": (1, 16), "vae.norm_groups": (1, 1024),
    "vae.scaling_factor": (1e-6, 1e6),
    "diffusion.num_train_timesteps": (2, 100_000), "diffusion.beta_start": (0, 1), "diffusion.beta_end": (0, 1),
    "loss.alpha": (0, 1e6), "loss.beta": (0, 1e6), "loss.gamma": (0, 1e6), "loss.k_gt": (0, INF),
    "loss.s_min": (1, 4096), "loss.cond_dropout": (0, 1), "loss.ocr": (0, 1e6), "loss.ocr_t_max": (1, 100_000),
    "data.min_word_area_frac": (0, 1), "data.context_scale": (0.1, 100), "data.num_workers": (0, 1024),
    "data.glyph_balance": (0, 100), "data.box_slack": (0, 1), "data.edit_pairs": (0, 1),
    "data.style_ref_drop": (0, 1), "data.style_ref_same": (0, 1), "data.pair_length_delta": (0, 256),
    "data.pair_blank_source": (0, 1), "data.synth_font_px": (4, 1024),
    "train.batch_size": (1, 1 << 20), "train.grad_accum": (1, 1 << 16), "train.lr": (1e-12, 10),
    "train.weight_decay": (0, 10), "train.warmup_steps": (0, INF), "train.max_steps": (1, INF),
    "train.ema_decay": (0, 0.999999), "train.grad_clip": (0, 1e9), "train.conv_in_lr_scale": (1e-6, 1e6),
    "train.ckpt_every": (0, INF), "train.keep_ckpts": (1, 1 << 20), "train.sample_every": (0, INF),
    "train.log_every": (0, INF), "train.seed": (0, MAX_SEED), "train.probe_every": (0, INF),
    "train.probe_size": (1, 1 << 20), "train.probe_steps": (1, 1000),
    "sample.steps": (1, MAX_STEPS), "sample.guidance": (0, MAX_GUIDANCE), "sample.eta": (0, 1),
    "sample.restarts": (0, MAX_RESTARTS),
    "sample.restart_strength": (0, 1), "sample.attn_frac": (0, 1), "sample.feather": (0, 10), "sample.blend_margin": (0, 10),
    "sample.rectify_deg": (0, 90), "sample.candidates": (1, MAX_CANDIDATES), "sample.upscale_min": (0, 1000),
    "pretrain.steps": (1, INF), "pretrain.batch_size": (2, 1 << 20), "pretrain.lr": (1e-12, 10),
    "pretrain.warmup_steps": (0, INF), "pretrain.log_every": (0, INF), "pretrain.eval_batches": (0, 1 << 20),
    "pretrain.vocab": (0, INF),
    "verifier.channels": (1, 8192), "verifier.hidden": (1, 8192), "verifier.steps": (1, INF),
    "verifier.batch_size": (1, 1 << 20), "verifier.lr": (1e-12, 10), "verifier.warmup_steps": (0, INF),
    "verifier.log_every": (0, INF), "verifier.ckpt_every": (0, INF), "verifier.seed": (0, MAX_SEED),
    "verifier.degrade_prob": (0, 1), "verifier.eval_records": (1, 1 << 20),
    "refiner.channels": (1, 4096), "refiner.dilations": (1, 64), "refiner.steps": (1, INF),
    "refiner.batch_size": (1, 1 << 16), "refiner.pairs_per_step": (1, 1 << 16), "refiner.crop": (8, 4096),
    "refiner.lr": (1e-12, 10), "refiner.warmup_steps": (0, INF), "refiner.grad_weight": (0, 1000),
    "refiner.log_every": (0, INF), "refiner.ckpt_every": (0, INF), "refiner.seed": (0, MAX_SEED),
    "refiner.blur_max": (0, 10), "refiner.noise_max": (0, 255), "refiner.ref_prob": (0, 1),
    "refiner.eval_pairs": (0, 1 << 20),
}


def _num(x: float) -> str:
    if x == INF:
        return "∞"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _get(cfg, key: str):
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def check_choices(cfg) -> None:
    """Raise ConfigError for a loss form or supervision mode that is not one of its kind's names."""
    from .config_sections import ALIGN_FORMS, ATTN_FORMS, MASK_FORMS, SUPERVISION_MODES

    c = cfg.loss
    for key, value, allowed in (("mask_form", c.mask_form, MASK_FORMS), ("attn_form", c.attn_form, ATTN_FORMS),
                                ("align_form", c.align_form, ALIGN_FORMS),
                                ("supervision", c.supervision, SUPERVISION_MODES)):
        if value not in allowed:
            raise ConfigError(f"loss.{key} must be one of {', '.join(allowed)}; got {value!r}")


def check_ranges(cfg) -> None:
    """Raise ConfigError for the first setting outside its range (RANGES), a loss form no table knows
    (``check_choices``), or two settings that disagree."""
    check_choices(cfg)
    for key, (lo, hi) in RANGES.items():
        value = _get(cfg, key)
        for v in value if isinstance(value, tuple) else (value,):
            if not (isinstance(v, (int, float)) and math.isfinite(v) and lo <= v <= hi):
                shown = "[" + ", ".join(str(x) for x in value) + "]" if isinstance(value, tuple) else repr(value)
                raise ConfigError(f"config key {key!r} is {shown}; it must be {'each ' if isinstance(value, tuple) else ''}"
                                  f"between {_num(lo)} and {_num(hi)}")
    if len(cfg.image_size) != 2:
        raise ConfigError(f"config key 'image_size' must be [height, width], got {list(cfg.image_size)}")
    factor = cfg.vae_scale * 2 ** (len(cfg.unet.block_out_channels) - 1)  # the UNet halves the size per level
    if any(side % factor for side in cfg.image_size):
        raise ConfigError(f"config key 'image_size' {list(cfg.image_size)} must be divisible by {factor} "
                          f"(vae_scale × 2^(levels − 1) for {len(cfg.unet.block_out_channels)} UNet levels)")
    if cfg.text.dim % cfg.text.heads:
        raise ConfigError(f"config key 'text.dim' ({cfg.text.dim}) must be divisible by text.heads ({cfg.text.heads})")
    if cfg.text.activation not in ("gelu", "relu"):
        raise ConfigError(f"config key 'text.activation' must be 'gelu' or 'relu', got {cfg.text.activation!r}")
    head = cfg.unet.head_channels
    if head and any(c % head for c in cfg.unet.block_out_channels):
        raise ConfigError(f"config key 'unet.head_channels' ({head}) must divide every unet.block_out_channels "
                          f"({list(cfg.unet.block_out_channels)})")
    if cfg.diffusion.beta_start >= cfg.diffusion.beta_end:
        raise ConfigError(f"config key 'diffusion.beta_start' ({cfg.diffusion.beta_start}) must be below "
                          f"diffusion.beta_end ({cfg.diffusion.beta_end})")
    lo, hi = cfg.data.synth_font_px if len(cfg.data.synth_font_px) == 2 else (1, 0)
    if lo > hi:
        raise ConfigError(f"config key 'data.synth_font_px' must be [low, high] with low ≤ high, got "
                          f"{list(cfg.data.synth_font_px)}")
