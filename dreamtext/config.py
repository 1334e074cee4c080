"""Every setting of dreamtext in one dataclass tree (DESIGN §9, §10).

``DreamTextConfig`` holds the whole configuration: model, noise process,
losses, data, training and sampling. It travels inside every checkpoint as
JSON (``to_dict`` / ``from_dict``), so a checkpoint alone rebuilds its model.
Its sections (``SampleConfig``, ``TrainConfig``, ...) and the names string settings may take are defined in
:mod:`dreamtext.config_sections` and re-exported here. Presets (``tiny``, ``sd2``, ``test``) are plain functions
returning a config;
YAML files and ``key=value`` overrides (dotted paths, e.g.
``train.lr=2e-4 loss.supervision=gt``) are applied on top with type checks.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_sections import (  # noqa: F401 (re-exported: their documented home is dreamtext.config)
    BLEND_MODES, SAMPLERS, MASK_RULES, MASK_FORMS, ATTN_FORMS, ALIGN_FORMS, SUPERVISION_MODES, UPSCALE_MODES,
    TextEncoderConfig, UNetConfig, VAEConfig, DiffusionConfig, LossConfig, DataConfig, TrainConfig, PretrainConfig,
    VerifierConfig, RefinerConfig, SampleConfig,
)
from .errors import ConfigError


@dataclass
class DreamTextConfig:
    preset: str = "tiny"
    max_len: int = 12  # L: character slots
    image_size: tuple[int, int] = (32, 128)  # (H, W) of the model's pixel input
    latent: bool = False  # True: work in a VAE's latent space (sd2); False: pixel space (tiny)
    latent_channels: int = 3  # channels of z_t (4 for a VAE latent, 3 for RGB pixels)
    vae_scale: int = 1  # image_size / latent size (8 for SD's VAE)
    glyph_prior: bool = False  # DESIGN §12: extra input channel with the target string rendered
    # DESIGN §13: the region's original pixels (the old word, unmasked) as latent_channels more input channels,
    # plus one channel saying whether a reference is present (0: none, the reference channels are zero).
    style_ref: bool = False
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)  # latent presets built from the config only
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)  # dreamtext pretrain-encoder
    verifier: VerifierConfig = field(default_factory=VerifierConfig)  # dreamtext train-verifier
    refiner: RefinerConfig = field(default_factory=RefinerConfig)  # dreamtext train-refiner

    # ----- derived values (not stored) -----
    @property
    def latent_size(self) -> tuple[int, int]:
        """(h, w) of z_t."""
        return (self.image_size[0] // self.vae_scale, self.image_size[1] // self.vae_scale)

    @property
    def unet_in_channels(self) -> int:
        """concat(z_t, m, E(I ⊙ (1 − m)) [, glyph] [, E(I_ref)·r, r]) (DESIGN §2, §12, §13)."""
        return (2 * self.latent_channels + 1 + (1 if self.glyph_prior else 0)
                + (self.latent_channels + 1 if self.style_ref else 0))

    # ----- serialisation -----
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DreamTextConfig":
        from .config_ranges import check_ranges

        cfg = _build(cls, d, "")
        check_ranges(cfg)
        return cfg

    def override(self, overrides: dict[str, Any] | list[str]) -> "DreamTextConfig":
        """A copy with dotted-key overrides applied: ``{"train.lr": 1e-4}`` or ``["train.lr=1e-4"]``."""
        if isinstance(overrides, (list, tuple)):
            overrides = parse_overrides(overrides)
        d = self.to_dict()
        for key, value in overrides.items():
            node = d
            parts = key.split(".")
            for p in parts[:-1]:
                if not isinstance(node.get(p), dict):
                    raise ConfigError(f"unknown config key {key!r}")
                node = node[p]
            if parts[-1] not in node:
                raise ConfigError(f"unknown config key {key!r}")
            node[parts[-1]] = value
        return DreamTextConfig.from_dict(d)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[32, 64]"]`` → ``{"a.b": 1, "c": [32, 64]}`` (values parsed as YAML)."""
    import yaml

    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            out[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"override {item!r}: {raw!r} is not a valid value") from None
    return out


def _build(cls, d: dict[str, Any], prefix: str):
    """Construct dataclass ``cls`` from a dict, checking keys and coercing types."""
    if not isinstance(d, dict):
        raise ConfigError(f"config section {prefix or '<root>'!r} must be a mapping, got {type(d).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(prefix + k for k in unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        kwargs[f.name] = _coerce(hints[f.name], d[f.name], prefix + f.name)
    return cls(**kwargs)


def _coerce(tp, value, key: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key + ".")
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
        elem = args[0] if args else Any
        return tuple(_coerce(elem, v, key) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"config key {key!r} expects true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"config key {key!r} expects an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key {key!r} expects a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"config key {key!r} expects a string, got {value!r}")
        return value
    return value


# ----------------------------------------------------------------------------- presets


def tiny() -> DreamTextConfig:
    """The shipped model: pixel space, 32×128 crops, a few million parameters (DESIGN §9)."""
    cfg = DreamTextConfig(preset="tiny")
    # §3 maps at 32×128 and 16×64; the mid block's 8×32 cross-attention map (a character ≈ 2-3 cells wide) is left out.
    cfg.loss.s_min = 16
    cfg.data.min_word_area_frac = 0.35
    cfg.data.context_scale = 1.15
    # Pixel space, not SD's latents: SD's scaled-linear ε-schedule leaves ᾱ_T = 0.0047 and, with ε-prediction,
    # x̂0 = (z_t − √(1−ᾱ)·ε̂)/√ᾱ multiplies the ε error by up to 15 at high noise, so after 633 steps the
    # ε-model still could not copy the *known* pixels at t = 900 (x̂0 MSE 0.81 outside the region). The cosine
    # schedule (iDDPM, made for 32–64 px pixel images) with v-prediction (v ≈ −x0 at high noise) is
    # well-conditioned at every t. The paper's sd2 preset keeps ε and SD's schedule (its UNet was trained so).
    cfg.diffusion.beta_schedule = "squaredcos_cap_v2"
    cfg.diffusion.prediction_type = "v_prediction"
    # Two restarts at strength 0.6 (BENCHMARKS, "Restart sampling"): recon NED 0.904 → 0.828 on 64 bench records
    # at step 2,000 of the shipped run (4 restarts: 0.834); on the shipped v4, SeqAcc 31.2 % → 37.5 %. Each
    # restart costs 60 % of the steps again.
    cfg.sample.restarts = 2
    # Ten steps, not 50: on v4 (32 bench records, 2 restarts) recon SeqAcc 37.5 % / NED 0.284 with 10 steps,
    # 25.0 % / 0.333 with 20 and 25.0 % / 0.348 with 50 (BENCHMARKS, "Sampling steps"), for a fifth of the calls.
    cfg.sample.steps = 10
    return cfg


def paper_sampling() -> SampleConfig:
    """Sampling as the released DreamText code does it (its ``test.py`` / ``util.init_sampling``): sgm's
    EulerEDMSampler (s_churn 0) over LDM's discretisation, 50 steps, CFG 5.0 (its demo uses 4.0), one pass."""
    return SampleConfig(sampler="euler-edm", steps=50, guidance=5.0, restarts=0)


def sd2() -> DreamTextConfig:
    """The paper's model: SD2-inpainting UNet + VAE at 512 px, d = 2048 / 12 layers, L = 12."""
    return DreamTextConfig(
        preset="sd2",
        max_len=12,
        image_size=(512, 512),
        latent=True,
        latent_channels=4,
        vae_scale=8,
        text=TextEncoderConfig(
            dim=2048, layers=12, heads=16, proj_dim=512, vis_size=(64, 256), vis_patch=16,
            vis_dim=512, vis_layers=6, vis_heads=8, train_during_diffusion="last:2",
        ),
        unet=UNetConfig(
            block_out_channels=(320, 640, 1280, 1280),
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            layers_per_block=2,
            attention_heads=5,
            head_channels=64,
            linear_projection=True,
            only_cross_attention=False,
            trainable="char_attn",
        ),
        loss=LossConfig(s_min=16),
        data=DataConfig(min_word_area_frac=0.04, context_scale=1.0),
        train=TrainConfig(batch_size=8, lr=1e-5, max_steps=200_000, out_dir="runs/sd2"),
        sample=paper_sampling(),
    )


def test() -> DreamTextConfig:
    """A randomly initialised miniature of ``tiny`` for unit tests: runs in milliseconds."""
    cfg = tiny()
    cfg.preset = "test"
    cfg.max_len = 8
    cfg.image_size = (16, 64)
    cfg.text = TextEncoderConfig(
        dim=32, layers=1, heads=2, proj_dim=16, vis_size=(16, 64), vis_patch=8, vis_dim=32, vis_layers=1, vis_heads=2
    )
    cfg.unet = UNetConfig(block_out_channels=(16, 32), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                          up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), attention_heads=2)
    cfg.loss.s_min = 8
    cfg.loss.k_gt = 5
    cfg.train = TrainConfig(batch_size=4, lr=1e-3, warmup_steps=2, max_steps=10, ckpt_every=5, sample_every=0,
                            log_every=1, bf16=False, out_dir="runs/test")
    cfg.sample.steps = 4
    cfg.sample.restarts = 0  # one pass: the tests count UNet calls per step; restart tests ask for restarts
    cfg.verifier = VerifierConfig(channels=(8, 16, 16, 24), hidden=16, steps=6, batch_size=8, lr=3e-3,
                                  warmup_steps=1, log_every=1, ckpt_every=3, eval_records=8)
    cfg.refiner = RefinerConfig(channels=8, dilations=(1, 2), steps=4, batch_size=4, pairs_per_step=2, crop=32,
                                warmup_steps=1, log_every=1, ckpt_every=2, eval_pairs=3)
    cfg.sample.upscale = "bilinear"  # the tests of the refiner path ask for it with a refiner of their own
    return cfg


PRESETS = {"tiny": tiny, "sd2": sd2, "test": test}


def load_config(preset: str = "tiny", yaml_path: str | Path | None = None,
                overrides: list[str] | dict[str, Any] | None = None) -> DreamTextConfig:
    """Preset, then a YAML file (nested mapping or dotted keys), then ``key=value`` overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[preset]()
    if yaml_path is not None:
        import yaml

        path = Path(yaml_path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as e:
            detail = " ".join(str(e).split())
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {detail}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {str(path)!r} must hold a mapping")
        cfg = cfg.override(_flatten(data))
    if overrides:
        cfg = cfg.override(overrides)
    return cfg


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out
