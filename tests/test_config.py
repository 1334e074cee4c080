"""Config dataclasses: presets, round-trips, YAML + key=value overrides, type checks."""

import json

import pytest

from dreamtext.config import PRESETS, DreamTextConfig, load_config, parse_overrides
from dreamtext.errors import ConfigError


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_round_trips_through_json(name):
    cfg = load_config(name)
    again = DreamTextConfig.from_dict(json.loads(cfg.to_json()))
    assert again == cfg
    assert again.preset == name


def test_derived_channels_follow_glyph_prior():
    cfg = load_config("tiny")
    assert cfg.unet_in_channels == 7  # z_t (3) + mask (1) + masked image (3)
    assert cfg.override(["glyph_prior=true"]).unet_in_channels == 8
    sd2 = load_config("sd2")
    assert sd2.unet_in_channels == 9  # SD2 inpainting: 4 + 1 + 4
    assert sd2.latent_size == (64, 64)


def test_overrides_parse_yaml_values_and_coerce_types():
    cfg = load_config("tiny", overrides=["train.lr=1e-4", "loss.supervision=gt", "image_size=[48, 192]",
                                          "train.max_steps=12.0", "unet.base_path=null"])
    assert cfg.train.lr == pytest.approx(1e-4) and isinstance(cfg.train.lr, float)
    assert cfg.loss.supervision == "gt"
    assert cfg.image_size == (48, 192)
    assert cfg.train.max_steps == 12 and isinstance(cfg.train.max_steps, int)
    assert parse_overrides(["a.b=[1, 2]"]) == {"a.b": [1, 2]}


@pytest.mark.parametrize(
    "override, message",
    [
        (["train.nope=1"], "unknown config key 'train.nope'"),
        (["nope.lr=1"], "unknown config key 'nope.lr'"),
        (["train.max_steps=abc"], "expects an integer"),
        (["glyph_prior=3"], "expects true/false"),
        (["train.lr"], "not of the form key=value"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", overrides=override)


def test_yaml_file_nested_and_dotted(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batch_size: 8\nloss.gamma: 2.5\nglyph_prior: true\n")
    cfg = load_config("tiny", path, ["train.batch_size=4"])
    assert cfg.train.batch_size == 4  # command line wins over the file
    assert cfg.loss.gamma == 2.5 and cfg.glyph_prior is True
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("tiny", tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown preset"):
        load_config("huge")
