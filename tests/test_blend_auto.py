"""``blend="auto"`` (issue 26): the recoloured paste unless the word verifier reads the new word worse in it."""

from __future__ import annotations

import numpy as np
import pytest

from dreamtext.edit.candidates import blend_scores, keeps_recolor
from dreamtext.edit.paste import PASTE_BLENDS, paste_back, paste_back_blends
from dreamtext.edit.pipeline import DreamTextPipeline
from dreamtext.errors import ConfigError
from _pipeline_fixtures import photo, save_random_pipeline


def _fake_scores(monkeypatch, score):
    """The verifier's per-character log p replaced by ``score(crops) -> (B,)``; returns the crops it saw."""
    import dreamtext.model.verifier as V

    seen = []

    def fake(verifier, crops, masks, texts, max_len):
        seen.append(np.asarray(crops))
        return V.VerifierScores(logp_per_char=np.asarray(score(crops), np.float64), readings=list(texts))

    monkeypatch.setattr(V, "score_crops", fake)
    return seen


def prefer_recolor(windows: np.ndarray, mask: np.ndarray, margin: float) -> bool:
    return keeps_recolor(blend_scores(None, 8, windows, mask, "ab"), margin)


def test_prefer_recolor_keeps_it_within_the_margin(monkeypatch):
    _fake_scores(monkeypatch, lambda crops: np.asarray(crops, np.float64).mean(axis=(1, 2, 3)) / 255.0)
    mask = np.ones((8, 32), bool)
    dark, light = np.full((8, 32, 3), 100, np.uint8), np.full((8, 32, 3), 110, np.uint8)
    # scores = brightness / 255: light 0.431, dark 0.392 (a gap of 0.039)
    assert prefer_recolor(np.stack([dark, light]), mask, 0.0)  # recolor reads better
    assert prefer_recolor(np.stack([light, dark]), mask, 0.05)  # worse, but within the margin
    assert not prefer_recolor(np.stack([light, dark]), mask, 0.02)  # worse beyond it
    assert prefer_recolor(np.stack([dark, dark]), mask, 0.0)  # a tie keeps the old word's colour


@pytest.mark.parametrize("margin, expected", [(0.05, "feather"), (2.0, "recolor")])
def test_pipeline_auto_blend_is_one_of_its_two_pastes(tmp_path, monkeypatch, margin, expected):
    pipe = DreamTextPipeline.from_pretrained(save_random_pipeline(tmp_path / "model", **{"style_ref": True}))
    pipe.cfg.sample.blend_margin = margin
    seen = _fake_scores(monkeypatch, lambda crops: [0.0, -1.0])  # the recoloured paste reads worse by 1 nat
    monkeypatch.setattr(DreamTextPipeline, "verifier", property(lambda self: None))  # the fake needs none
    img = photo(96, 256, seed=5)
    box = (30, 30, 220, 66)
    kw = dict(seed=2, steps=2)
    got = {b: np.asarray(pipe.edit(img, [box], ["abc"], blend=b, **kw).image) for b in ("feather", "recolor")}
    assert not np.array_equal(got["feather"], got["recolor"])
    res = pipe.edit(img, [box], ["abc"], blend="auto", **kw)
    assert res.regions[0].blend == expected and np.array_equal(np.asarray(res.image), got[expected])
    assert res.regions[0].blend_scores == (0.0, -1.0)  # (feathered, recoloured), as the verifier scored them
    # the verifier saw both pastes through the region's model window
    assert len(seen) == 1 and seen[0].shape == (2, *pipe.cfg.image_size, 3)
    # without the old word (the style reference off) auto reads nothing of it: feather, and no verifier call
    plain = pipe.edit(img, [box], ["abc"], blend="auto", style_ref=False, **kw)
    assert plain.regions[0].blend == "feather" and len(seen) == 1
    assert np.array_equal(np.asarray(plain.image), np.asarray(pipe.edit(img, [box], ["abc"], blend="feather",
                                                                        style_ref=False, **kw).image))


def test_paste_back_itself_has_no_auto():
    img = photo(64, 128, seed=1)
    quad = np.array([[10, 10], [100, 10], [100, 40], [10, 40]], np.float32)
    with pytest.raises(ConfigError, match="unknown blend 'auto'"):
        paste_back(img, np.zeros((16, 64, 3), np.uint8), np.eye(3), quad, 3.0, "auto")


def test_several_blends_share_one_detail_step_and_equal_single_pastes():
    img = photo(64, 160, seed=3)
    quad = np.array([[20, 14], [140, 16], [139, 46], [19, 44]], np.float32)
    crop = photo(16, 64, seed=4)
    matrix = np.array([[0.5, 0, -4], [0, 0.5, -3], [0, 0, 1]], np.float32)  # a 2x enlargement
    calls = []

    def detail(back, patch, region, upscale):
        calls.append(upscale)
        return np.clip(back.astype(np.int16) + 7, 0, 255).astype(np.uint8)  # a visible change

    many = paste_back_blends(img, crop, matrix, quad, 4.0, PASTE_BLENDS, detail=detail)
    assert len(calls) == 1 and calls[0] == pytest.approx(2.0)
    for blend, got in zip(PASTE_BLENDS, many):
        assert np.array_equal(got, paste_back(img, crop, matrix, quad, 4.0, blend, detail=detail)), blend
    assert not np.array_equal(many[0], paste_back(img, crop, matrix, quad, 4.0, "feather"))  # detail was applied
    assert len({m.tobytes() for m in many}) == len(PASTE_BLENDS)  # each blend its own picture
