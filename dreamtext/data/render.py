"""The synthetic scene-text generator (DESIGN §6; SynthText-like).

``SynthGenerator(cfg_or_params, seed).sample(index)`` renders one word into a
small scene and returns a :class:`TextRecord` with exact ground truth: the word
quad, one quad per character (its ink box mapped through the same geometry as
the pixels) and one pixel mask per character (the glyph's own pixels, after
rotation, perspective and arc). Everything random comes from
``np.random.default_rng([seed, index])``, so a sample depends only on
``(seed, index)`` (and on the installed fonts).

Pipeline of one sample (all at the scene's own small size, for speed):
1. word and font; each glyph is a cached FreeType bitmap placed on a text line
   (``alpha`` coverage and ``owner`` = which character owns each pixel);
2. geometry: optional arc (circular baseline), then one homography (rotation,
   shear, perspective, placement) — applied to the line by an inverse map, and
   to the character boxes as points;
3. a background crop (photograph or texture), a text colour that contrasts with
   it (sometimes taken from the scene), optional outline, shadow, gradient and
   background-modulated ink;
4. scene-wide lighting, blur, sensor noise and JPEG artefacts.
"""

from __future__ import annotations

import colorsys
import functools
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ConfigError
from .backgrounds import sample_background
from .fonts import list_fonts
from .record import TextRecord
from .text_line import Arc, apply_h, box_quads, fit_ink_box, glyph_bitmap, layout_line, order_quad
from .words import long_text, replacement_word, sample_word

MASK_THRESHOLD = 0.4  # coverage above which a pixel belongs to its glyph's mask


@dataclass
class SynthParams:
    """Knobs of the generator (defaults give the tiny preset's scenes)."""

    max_len: int = 12
    words: str = "english+random"  # "english", "random" or "english+random"
    split: str = "train"  # English word split: "train" or the held-out "bench"
    glyph_balance: float = 0.0  # > 0: favour English words with rare letters (words.sample_word)
    text_kind: str = "word"  # "word" (words.sample_word) or "long" (words.long_text: phrases, 13–32 characters)
    # Font size range in scene pixels (cfg.data.synth_font_px): the tiny preset's window is 32 px tall,
    # so scenes stay small (letters end up ~23 px tall after the model-ready transform).
    font_px: tuple[int, int] = (18, 36)
    max_rotation: float = 10.0  # degrees (a few samples get up to 2×)
    p_arc: float = 0.15
    p_perspective: float = 0.5
    p_outline: float = 0.15
    p_shadow: float = 0.2
    p_gradient: float = 0.2
    p_blur: float = 0.35
    p_noise: float = 0.5
    p_jpeg: float = 0.4

    @classmethod
    def from_config(cls, cfg, **kw) -> "SynthParams":
        """The generator's settings from a DreamTextConfig (``max_len``, ``data.words``, ``data.synth_font_px``,
        and ``data.glyph_balance`` for the ``train`` split only: the held-out benchmark never changes with it)."""
        train = kw.get("split", "train") == "train"
        if not float(cfg.data.glyph_balance) >= 0:
            raise ConfigError(f"data.glyph_balance must be ≥ 0 (0 turns it off), got {cfg.data.glyph_balance}")
        base = dict(max_len=cfg.max_len, words=cfg.data.words, font_px=tuple(cfg.data.synth_font_px),
                    glyph_balance=float(cfg.data.glyph_balance) if train else 0.0)
        return cls(**{**base, **kw})


@functools.lru_cache(maxsize=1)
def _noise_tile() -> np.ndarray:
    """Unit Gaussian noise float32 (512, 1024, 1), drawn once: sampling fresh noise per scene costs more
    than the rest of the camera model."""
    return np.random.default_rng(7).standard_normal((512, 1024, 1), dtype=np.float32)


def _noise_patch(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    tile = _noise_tile()
    if h > tile.shape[0] or w > tile.shape[1]:
        return rng.standard_normal((h, w, 1), dtype=np.float32)
    y, x = int(rng.integers(tile.shape[0] - h + 1)), int(rng.integers(tile.shape[1] - w + 1))
    return tile[y:y + h, x:x + w]


def glyph_sizes(params: "SynthParams") -> list[int]:
    """The font sizes the generator renders glyphs at (its cache keys)."""
    lo, hi = params.font_px
    return sorted({int(lo + 6 * round((v - lo) / 6)) for v in np.linspace(lo, hi, 64)})


def warm_glyph_cache(params: "SynthParams | None" = None, chars: str | None = None) -> int:
    """Render every (font, size, character) glyph once, as a long run's cache holds them; returns the count.

    37k glyphs (~20 MB) for the default fonts and sizes; ~10-30 s of CPU. Used by the throughput
    benchmark to time the steady state a long run reaches.
    """
    from ..charset import CHARSET

    params = params or SynthParams()
    n = 0
    for font in list_fonts():
        for size in glyph_sizes(params):
            for ch in chars or CHARSET:
                glyph_bitmap(font, size, ch)
                n += 1
    return n


def _luma(c: np.ndarray) -> float:
    return float(0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255.0


def _contrasting_colour(rng: np.random.Generator, bg_luma: float, min_contrast: float = 0.35) -> np.ndarray:
    """A text colour whose lightness is at least ``min_contrast`` away from the background's."""
    if bg_luma > 0.5:
        lum = rng.uniform(0.0, max(0.05, bg_luma - min_contrast))
    else:
        lum = rng.uniform(min(0.95, bg_luma + min_contrast), 1.0)
    sat = rng.uniform(0.0, 0.9) if rng.random() < 0.6 else 0.0
    r, g, b = colorsys.hls_to_rgb(rng.random(), lum, sat)
    return np.array([r, g, b], np.float32) * 255.0


def pair_length(n: int, delta: int, max_len: int, rng: np.random.Generator) -> int:
    """The length of an edit pair's target word for a source of ``n`` characters: uniform over the lengths
    within ``delta`` of ``n`` (at most ``max_len``) whose ink, fitted onto the source's box, is stretched or
    squeezed along the line by at most 1.5× (roughly ``n / m``)."""
    lo = max(1, n - delta, int(np.ceil(n / 1.5)))
    hi = min(max_len, n + delta, int(np.floor(n * 1.5)))
    return int(rng.integers(lo, hi + 1)) if hi >= lo else n


class SynthGenerator:
    """Deterministic synthetic scene-text records: ``sample(index)`` depends only on ``(seed, index)``."""

    def __init__(self, cfg_or_params=None, seed: int = 0, source: str = "synth"):
        if cfg_or_params is None:
            params = SynthParams()
        elif isinstance(cfg_or_params, SynthParams):
            params = cfg_or_params
        else:
            params = SynthParams.from_config(cfg_or_params)
        self.params = params
        self.seed = int(seed)
        self.source = source  # the records' ``source``; keys are ``{source}-{seed}-{index}``
        self.fonts = list_fonts()

    def __iter__(self):
        i = 0
        while True:
            yield self.sample(i)
            i += 1

    def sample(self, index: int) -> TextRecord:
        """Record ``index``: its own word in its own scene."""
        return self._render(index, pair=False)[0]

    def sample_pair(self, index: int, length_delta: int = 0,
                    blank_source: bool = False) -> tuple[TextRecord, TextRecord]:
        """An edit pair: record ``index`` (the source) and its scene written with another word (the target).

        The target's word has the source's length, or with ``length_delta`` > 0 a length within that many
        characters of it (:func:`pair_length`; :func:`replacement_word`, from the generator's own word
        split, seeded by ``(seed, index)``). ``blank_source``: the source scene is drawn without its word
        (same background and effects, no ink, empty character masks; key suffix ``-blank``): a region
        that held no text. Background, font, colours, effects, lighting and sensor noise
        are the same draws, so the two images differ only where either word's ink (or its shadow and
        outline) lies. The target's ink box is fitted onto the source's, along and across the line, as
        the glyph prior fits a word into its box: both share one ``word_quad`` (on an arc, near enough),
        the box an edit is given. ``sample_pair(i)[0]`` equals ``sample(i)``.
        """
        source, target = self._render(index, pair=True, length_delta=length_delta, blank_source=blank_source)
        target.key += "-pair"
        if blank_source:
            source.key += "-blank"
        return source, target

    def _render(self, index: int, pair: bool, length_delta: int = 0, blank_source: bool = False) -> list[TextRecord]:
        """The scene of ``index`` with its own word, and with a replacement word when ``pair``.

        Every random draw happens once, in the same order whether ``pair`` or not (a plain sample is
        the same with or without it); the second word is drawn from its own stream.
        """
        p = self.params
        rng = np.random.default_rng([self.seed, int(index), 0x5CE7E])
        text = long_text(rng, p.split) if p.text_kind == "long" else \
            sample_word(rng, p.max_len, p.words, p.split, p.glyph_balance)
        texts = [text]
        if pair:
            pair_rng = np.random.default_rng([self.seed, int(index), 0xED17])
            length = pair_length(len(text), length_delta, p.max_len, pair_rng) if length_delta > 0 else None
            texts.append(replacement_word(text, pair_rng, p.split, length=length))
        font_path = self.fonts[int(rng.integers(len(self.fonts)))]
        # Glyph bitmaps are cached per (font, size): sizes are snapped to steps of 6 px and the
        # continuous size variety comes from the homography's scale instead.
        want = rng.uniform(p.font_px[0], p.font_px[1])
        size = int(p.font_px[0] + 6 * round((want - p.font_px[0]) / 6))
        scale = want / size
        tracking = size * (rng.uniform(-0.02, 0.2) if rng.random() < 0.3 else 0.0)
        lines = [layout_line(t, font_path, size, tracking) for t in texts]
        alpha, _, boxes = lines[0]  # the source word's line sets the geometry
        lh, lw = alpha.shape
        # Per word: its line coordinates → the source word's (identity for the source itself).
        fits = [np.eye(3)] + [fit_ink_box(b, boxes) for _, _, b in lines[1:]]
        # ---- geometry: optional arc, then one homography onto the scene
        arc = None
        if len(text) >= 3 and rng.random() < p.p_arc:
            arc = Arc(lw, lh, rng.uniform(0.5, 1.3) * rng.choice([-1.0, 1.0]))
        if arc is not None:
            t = np.linspace(0, 1, 9)
            edge = np.concatenate([np.stack([t * lw, 0 * t], -1), np.stack([t * lw, 0 * t + lh], -1)])
            bent = arc.forward(edge)
            src_box = np.array([bent.min(0), bent.max(0)])
        else:
            src_box = np.array([[0, 0], [lw, lh]], np.float64)
        (sx0, sy0), (sx1, sy1) = src_box
        src = np.array([[sx0, sy0], [sx1, sy0], [sx1, sy1], [sx0, sy1]], np.float64)
        centre = src.mean(0)
        rot = rng.normal(0, p.max_rotation / 2)
        rot = float(np.clip(rot, -p.max_rotation, p.max_rotation) * (2 if rng.random() < 0.05 else 1))
        a = np.deg2rad(rot)
        R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        shear = rng.uniform(-0.25, 0.25) if rng.random() < 0.15 else 0.0
        dst = (src - centre) * scale
        dst[:, 0] += shear * dst[:, 1]
        dst = dst @ R.T
        if rng.random() < p.p_perspective:  # corners moved by up to 8% of the text height
            dst += rng.uniform(-0.08, 0.08, size=(4, 2)) * (boxes[:, 3].max() - boxes[:, 1].min()) * scale
        dmin, dmax = dst.min(0), dst.max(0)
        tw, th = dmax - dmin
        # Scene: some context around the word (the model-ready window crops to it).
        canvas_h = int(np.ceil(th * rng.uniform(1.3, 2.2))) + 4
        # At least about as wide as the model's 4:1 window around the word, so the window rarely
        # runs off the scene into replicated borders.
        canvas_w = int(np.ceil(max(tw * rng.uniform(1.1, 1.6), canvas_h * rng.uniform(2.4, 3.6)))) + 4
        ox = rng.uniform(2, canvas_w - tw - 2) - dmin[0]
        oy = rng.uniform(2, canvas_h - th - 2) - dmin[1]
        dst = dst + [ox, oy]
        H = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)

        def to_scene(pts: np.ndarray) -> np.ndarray:
            return apply_h(H, arc.forward(pts) if arc is not None else pts)

        # ---- warp each word's coverage and ownership into the scene, restricted to the source's box
        rx0, ry0 = (np.floor(dst.min(0)) - 2).astype(int).clip(0)
        rx1 = int(min(canvas_w, np.ceil(dst[:, 0].max()) + 2))
        ry1 = int(min(canvas_h, np.ceil(dst[:, 1].max()) + 2))
        roi_w, roi_h = rx1 - rx0, ry1 - ry0
        T = np.array([[1, 0, -rx0], [0, 1, -ry0], [0, 0, 1]], np.float64)
        if arc is not None:  # scene pixel → the source's line coordinates, through the arc
            yy, xx = np.mgrid[ry0:ry1, rx0:rx1].astype(np.float64)
            Hi = np.linalg.inv(H)
            den = Hi[2, 0] * xx + Hi[2, 1] * yy + Hi[2, 2]
            X = (Hi[0, 0] * xx + Hi[0, 1] * yy + Hi[0, 2]) / den
            Y = (Hi[1, 0] * xx + Hi[1, 1] * yy + Hi[1, 2]) / den
            arc_x, arc_y = arc.inverse(X, Y)
        inks = []  # per word: coverage a_roi float32 (roi_h, roi_w), owner o_roi uint8 (roi_h, roi_w)
        for (alpha_k, owner_k, _), fit in zip(lines, fits):
            if arc is None:
                Hr = T @ H @ fit
                inks.append((cv2.warpPerspective(alpha_k, Hr, (roi_w, roi_h), flags=cv2.INTER_LINEAR),
                             cv2.warpPerspective(owner_k, Hr, (roi_w, roi_h), flags=cv2.INTER_NEAREST)))
            else:
                inv = np.linalg.inv(fit)  # the source's line coordinates → this word's
                mx = (inv[0, 0] * arc_x + inv[0, 2]).astype(np.float32)
                my = (inv[1, 1] * arc_y + inv[1, 2]).astype(np.float32)
                inks.append((cv2.remap(alpha_k, mx, my, cv2.INTER_LINEAR, borderValue=0),
                             cv2.remap(owner_k, mx, my, cv2.INTER_NEAREST, borderValue=0)))
        a_roi = inks[0][0]  # the source word's coverage sets the ink colour, blank or not
        if blank_source:
            inks[0] = (np.zeros_like(inks[0][0]), np.zeros_like(inks[0][1]))

        # ---- background and ink: one set of draws, painted once per word
        bg = sample_background(rng, canvas_h, canvas_w)
        scenes = [bg.astype(np.float32) for _ in texts]
        rois = [scene[ry0:ry1, rx0:rx1] for scene in scenes]
        ink = (a_roi > 0.05).astype(np.uint8)
        under = np.array(cv2.mean(rois[0], mask=ink if ink.any() else None)[:3], np.float32)
        bg_l = _luma(under)
        colour = _contrasting_colour(rng, bg_l)
        if rng.random() < 0.25:  # harmonise: take the hue of a scene pixel, keep the contrasting lightness
            px = bg[int(rng.integers(canvas_h)), int(rng.integers(canvas_w))].astype(np.float32) / 255.0
            hh, _, ss = colorsys.rgb_to_hls(*px)
            ll = colorsys.rgb_to_hls(*(colour / 255.0))[1]
            colour = np.array(colorsys.hls_to_rgb(hh, ll, ss), np.float32) * 255.0
        fill = colour
        if rng.random() < p.p_gradient:  # ink colour drifting across the word
            c2 = np.clip(colour + rng.uniform(-70, 70, 3), 0, 255)
            ramp = np.linspace(0, 1, roi_w, dtype=np.float32)[None, :, None]
            fill = colour * (1 - ramp) + c2 * ramp
        if rng.random() < 0.35:  # painted on the surface: the surface's shading shows through the ink
            shade = cv2.cvtColor(rois[0], cv2.COLOR_RGB2GRAY)[..., None] / max(float(under.mean()), 1.0)
            fill = fill * np.clip(0.75 + 0.25 * shade, 0.5, 1.3)
        if rng.random() < p.p_shadow:
            dx, dy = rng.integers(-3, 4), rng.integers(1, 4)
            blur, strength = rng.uniform(0.6, 1.8), rng.uniform(0.4, 0.8)
            shadow_col = 0.0 if bg_l > 0.25 else 255.0
            for roi, (a_k, _) in zip(rois, inks):
                sh = np.roll(a_k, (int(dy), int(dx)), (0, 1))
                sh = cv2.GaussianBlur(sh, (0, 0), blur)[..., None] * strength
                roi[:] = roi * (1 - sh) + shadow_col * sh
        if rng.random() < p.p_outline:
            k = int(rng.integers(1, 3))
            border_col = _contrasting_colour(rng, _luma(colour), 0.4)
            for roi, (a_k, _) in zip(rois, inks):
                border = cv2.dilate(a_k, np.ones((2 * k + 1, 2 * k + 1), np.uint8))[..., None]
                roi[:] = roi * (1 - border) + border_col * border
        opacity = rng.uniform(0.85, 1.0)
        for roi, (a_k, _) in zip(rois, inks):
            roi += (fill - roi) * (a_k[..., None] * opacity)

        # ---- scene-wide camera effects, the same for every word
        gain = None
        if rng.random() < 0.3:  # uneven lighting
            gain = np.linspace(rng.uniform(0.7, 1.1), rng.uniform(0.9, 1.25), canvas_w, dtype=np.float32)[None, :, None]
        blur = rng.uniform(0.3, 1.0) if rng.random() < p.p_blur else None
        noise = _noise_patch(rng, canvas_h, canvas_w) * rng.uniform(1.5, 7.0) if rng.random() < p.p_noise else None
        quality = int(rng.integers(35, 92)) if rng.random() < p.p_jpeg else None
        records = []
        for k, (scene, word, (a_k, o_k), (_, _, boxes_k), fit) in enumerate(zip(scenes, texts, inks, lines, fits)):
            if gain is not None:
                scene *= gain
            if blur is not None:
                scene = cv2.GaussianBlur(scene, (0, 0), blur)
            if noise is not None:
                scene += noise
            np.clip(scene, 0, 255, out=scene)
            image = scene.astype(np.uint8)
            if quality is not None:
                ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
                image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)  # channel order is irrelevant to the codec

            # ---- ground truth: exact glyph pixels, ink boxes mapped through the same geometry
            n = len(word)
            char_masks = np.zeros((n, canvas_h, canvas_w), bool)
            labels = np.where(a_k >= MASK_THRESHOLD, o_k, 0)
            char_masks[:, ry0:ry1, rx0:rx1] = labels[None] == np.arange(1, n + 1, dtype=np.uint8)[:, None, None]
            line_boxes = boxes_k if k == 0 else apply_h(fit, boxes_k.reshape(-1, 2)).reshape(-1, 4)
            char_quads = to_scene(box_quads(line_boxes).reshape(-1, 2)).reshape(n, 4, 2)
            if arc is None:
                ink_box = np.array([line_boxes[:, 0].min(), line_boxes[:, 1].min(),
                                    line_boxes[:, 2].max(), line_boxes[:, 3].max()])
                word_quad = to_scene(box_quads(ink_box[None])[0])
            else:
                rect = cv2.minAreaRect(char_quads.reshape(-1, 2).astype(np.float32))
                direction = char_quads[-1].mean(0) - char_quads[0].mean(0) if n > 1 else (H[:2, 0])
                word_quad = order_quad(cv2.boxPoints(rect).astype(np.float64), np.asarray(direction, np.float64))
            records.append(TextRecord(image=image, text=word, word_quad=word_quad, char_quads=char_quads,
                                      char_masks=char_masks, source=self.source,
                                      key=f"{self.source}-{self.seed}-{index}"))
        return records
