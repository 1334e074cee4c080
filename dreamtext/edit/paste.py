"""Paste-back: a generated crop into the photograph, and masks back into image coordinates (DESIGN §7).

Coordinates are continuous (pixel (i, j) covers [j, j+1] × [i, i+1]), as in
:mod:`dreamtext.data.transforms`, whose ``warp`` and ``fill_quad`` are used
throughout. Every function touches only the box around a region's feather
band; pixels outside it are copied unchanged (byte-identical).
"""

from __future__ import annotations

import numpy as np

from ..config import BLEND_MODES
from ..data.geometry import bbox, enlargement, quad_height, translate, window_to_box
from ..errors import ConfigError

PASTE_BLENDS = tuple(b for b in BLEND_MODES if b != "auto")  # what paste_back itself draws


def feather_alpha(quad: np.ndarray, hw: tuple[int, int], feather_px: float) -> np.ndarray:
    """float32 (H, W) blend weight: 1 inside ``quad``, linear to 0 over ``feather_px`` pixels outside.

    Every pixel at distance ≥ ``feather_px`` from the quad gets exactly 0.
    """
    import cv2

    from ..data.geometry import fill_quad

    inside = fill_quad(quad, hw) > 0
    if feather_px <= 0:
        return inside.astype(np.float32)
    dist = cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5)  # 0 inside the quad
    return np.clip(1.0 - dist / float(feather_px), 0.0, 1.0).astype(np.float32)


def paste_back(image: np.ndarray, crop: np.ndarray, matrix: np.ndarray, quad: np.ndarray,
               feather_px: float, blend: str = "feather", clip: np.ndarray | None = None,
               detail=None) -> np.ndarray:
    """Blend a generated model-resolution crop into ``image`` (uint8 (H, W, 3)) around ``quad``.

    ``matrix`` maps image pixels to crop pixels (the context window). Only the
    box around the quad's feather band is touched; elsewhere, and wherever the
    blend weight is 0, the input pixels are copied unchanged. ``blend``:
    ``"feather"`` pastes the warped crop as it is; ``"poisson"`` first shifts its
    colours so that they meet the photograph's at the band's outer edge
    (:func:`poisson_harmonize`), keeping the crop's own gradients (its text);
    ``"inpaint"`` keeps only the crop's letters and draws them over the
    photograph's own background, its old letters inpainted away
    (:func:`letters_over_scene`); ``"recolor"`` keeps the crop's own picture, letters and background,
    shifted to the old letters' colour and the photograph's background colour (:func:`recolor_to_scene`).
    ``clip`` (4, 2): a convex polygon outside which nothing changes (one chunk
    of a long text, ``layout.chunk_cells``). ``detail(back, patch, region, upscale) -> back``: the enlarged
    crop given its detail back at the photo's resolution before it is blended (``detail.restore_detail``).
    """
    return paste_back_blends(image, crop, matrix, quad, feather_px, (blend,), clip, detail)[0]


def paste_back_blends(image: np.ndarray, crop: np.ndarray, matrix: np.ndarray, quad: np.ndarray,
                      feather_px: float, blends: tuple[str, ...], clip: np.ndarray | None = None,
                      detail=None) -> list[np.ndarray]:
    """:func:`paste_back` with each of ``blends`` → one photo per blend, in order.

    The crop is enlarged into the box and given its detail back once for all of them (``blend="auto"`` pastes
    two; a refiner's detail step is then paid once).
    """
    from ..data.geometry import fill_quad

    for blend in blends:
        if blend not in PASTE_BLENDS:  # "auto" is the pipeline's choice between two of these (it needs the verifier)
            raise ConfigError(f"unknown blend {blend!r}; choose one of {', '.join(PASTE_BLENDS)}")
    x0, y0, x1, y1 = bbox(quad, feather_px + 2, image.shape[:2])
    if x1 <= x0 or y1 <= y0:
        return [image.copy() for _ in blends]
    alpha = feather_alpha(quad - np.array([x0, y0], np.float32), (y1 - y0, x1 - x0), feather_px)[..., None]
    if clip is not None:
        alpha = alpha * (fill_quad(np.asarray(clip, np.float32) - np.array([x0, y0], np.float32),
                                   (y1 - y0, x1 - x0)) > 0)[..., None]
    # crop → the image box: the inverse window, then the box's offset
    enlarged = window_to_box(crop, matrix, (x0, y0, x1, y1))  # (h, w, 3): the crop enlarged bilinearly
    patch = image[y0:y1, x0:x1]
    local = quad - np.array([x0, y0], np.float32)
    region = fill_quad(local, patch.shape[:2]) > 0
    upscale = enlargement(matrix)  # the crop's letters' edges are that much wider than the photo's
    if detail is not None:
        enlarged = detail(enlarged, patch, region, upscale)
    outs = []
    for blend in blends:
        back = enlarged
        if blend == "poisson":
            back = poisson_harmonize(back, patch, alpha[..., 0] > 0)
        elif blend == "inpaint":
            back = letters_over_scene(back, patch, region, quad_height(local), sharpen=float(np.clip(upscale, 1.0, 3.0)))
        elif blend == "recolor":
            back = recolor_to_scene(back, patch, region, quad_height(local))
        blended = alpha * back.astype(np.float32) + (1 - alpha) * patch.astype(np.float32)
        blended = np.clip(blended + 0.5, 0, 255).astype(np.uint8)
        out = image.copy()
        out[y0:y1, x0:x1] = np.where(alpha > 0, blended, patch)
        outs.append(out)
    return outs


def poisson_harmonize(src: np.ndarray, dst: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``src`` inside ``region`` re-coloured to meet ``dst`` at the region's edge: uint8 (h, w, 3).

    Poisson image editing (Pérez et al. 2003, "guided interpolation" with the
    source's gradients as guidance): inside ``region`` (bool (h, w)) the result
    keeps ∇src and equals dst on the boundary, i.e. src plus the harmonic
    membrane that carries the boundary's colour difference inwards. A model
    whose region comes out a shade too pale or too grey is pulled back to the
    scene's colour and brightness, its letters' contrast kept. OpenCV's
    ``seamlessClone`` (NORMAL_CLONE) solves it; src and dst are padded so the
    region never touches the array border (OpenCV needs a margin around it).
    """
    import cv2

    if not region.any():
        return src.copy()
    pad = 3
    def padded(a, border):
        return cv2.copyMakeBorder(np.ascontiguousarray(a), pad, pad, pad, pad, border)

    mask = padded(region.astype(np.uint8) * 255, cv2.BORDER_CONSTANT)
    x, y, w, h = cv2.boundingRect(mask)
    # seamlessClone centres the mask's bounding box on `center`: this centre keeps src and dst aligned
    out = cv2.seamlessClone(padded(src, cv2.BORDER_REFLECT), padded(dst, cv2.BORDER_REFLECT), mask,
                            (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return out[pad:-pad, pad:-pad]


def local_background(picture: np.ndarray, height: float) -> np.ndarray:
    """uint8 (h, w, 3): each pixel's background colour, the median over a window 1.5 × the text's height.

    Letters' strokes fill well under half of such a window, so the median is the colour around them even
    where the background changes along the word (a word across a table's edge, a gradient sky).
    """
    import cv2

    k = max(3, int(round(1.5 * height)) | 1)  # odd aperture
    return cv2.medianBlur(np.ascontiguousarray(picture), k)


LETTER_MIN_CONTRAST = 24.0  # RGB distance below which nothing counts as a letter (letter_pixels' floor)


def letter_pixels(picture: np.ndarray, region: np.ndarray, height: float,
                  min_contrast: float = LETTER_MIN_CONTRAST) -> np.ndarray:
    """bool (h, w): the pixels of ``region`` that stand out from their :func:`local_background` in ``picture``
    (uint8 (h, w, 3)) by more than Otsu's threshold and ``min_contrast`` — a word's letters, ``height`` tall."""
    from ..model.char_masks import text_pixels

    return text_pixels(picture, region, local_background(picture, height).astype(np.float32), min_contrast)


def letters_over_scene(back: np.ndarray, patch: np.ndarray, region: np.ndarray, height: float,
                       sharpen: float = 1.0, min_contrast: float = LETTER_MIN_CONTRAST) -> np.ndarray:
    """The generated letters of ``back`` drawn over ``patch``'s own background: uint8 (h, w, 3).

    ``back`` is the generated crop warped to the photograph's box, ``patch`` the photograph's box (both
    uint8 (h, w, 3)), ``region`` bool (h, w) the word's quad there and ``height`` its height in pixels.
    The model works at 32×128: pasted whole, its crop is a blurred, re-invented background around the
    letters. Here only the letters come from it:

    1. the photograph's old letters (:func:`letter_pixels`) — grown by ~height/8 pixels to take their
       anti-aliased rims and faint halos, are inpainted away (Telea, ``cv2.inpaint``): the scene's
       background at full resolution, its texture and colour kept;
    2. the generated letters, found the same way in ``back``, become a soft alpha under a two-colour
       model, ``back ≈ bg + a · (fg − bg)`` with ``bg`` the local background of ``back`` and ``fg`` the
       median colour of its letters; ``a`` is stretched by ``sharpen`` about 0.5 to undo the
       upscaling blur (:func:`paste_back` passes the crop's enlargement, clipped to [1, 3]);
    3. ``out = (1 − a) · scene + a · ink`` inside the region, where ``ink`` is the median colour of the
       photograph's old letters (:func:`old_ink`: of a fill and its outline, the one nearer ``fg``) —
       the text's colour is part of its style, which an edit keeps, and the small model's own letter
       colour drifts (pale, greyed) — or ``fg`` where the photograph had no
       letters (under 3 % of the region); outside the region ``patch`` is returned unchanged.

    Where the model drew no letters (none farther than ``min_contrast`` from their background) the region
    comes back as the bare scene.
    """
    if not region.any():
        return patch.copy()
    a, _, fg = two_colour_alpha(back, region, height, min_contrast)
    scene, ink = scene_without_letters(patch, region, height, min_contrast, near=fg)
    out = patch.copy()
    out[region] = scene[region]
    if fg is None:
        return out
    a = np.clip((a - 0.5) * sharpen + 0.5, 0.0, 1.0)  # sharpen ≥ 1 keeps 0 where two_colour_alpha gave 0
    ink = fg if ink is None else ink
    mixed = (1.0 - a[..., None]) * scene.astype(np.float32) + a[..., None] * ink
    out[region] = np.clip(mixed[region] + 0.5, 0, 255).astype(np.uint8)
    return out


def two_colour_alpha(picture: np.ndarray, region: np.ndarray, height: float,
                     min_contrast: float = LETTER_MIN_CONTRAST):
    """A word's letters in ``picture`` (uint8 (h, w, 3)) as a soft alpha under ``picture ≈ bg + a · (fg − bg)``.

    ``bg`` (h, w, 3) float32 is the :func:`local_background`, ``fg`` (3,) the median colour of the
    letters (:func:`text_pixels` against ``bg``); ``a`` (h, w) is 0 on the background colour, 1 on the
    letters' and 0 outside ``region`` and wherever fg and bg are closer than ``min_contrast``. Returns
    ``(a, bg, fg)``; ``fg`` is None (and ``a`` all 0) where no pixel stands out.
    """
    from ..model.char_masks import text_pixels

    bg = local_background(picture, height).astype(np.float32)
    letters = text_pixels(picture, region, bg, min_contrast)
    if not letters.any():
        return np.zeros(region.shape, np.float32), bg, None
    p = picture.astype(np.float32)
    fg = np.median(p[letters], axis=0)  # (3,)
    span = fg - bg  # (h, w, 3)
    norm2 = np.maximum((span * span).sum(-1), 1.0)
    a = ((p - bg) * span).sum(-1) / norm2
    a = np.clip(a, 0.0, 1.0) * region * (norm2 >= min_contrast ** 2)
    return a.astype(np.float32), bg, fg


def old_ink(patch: np.ndarray, region: np.ndarray, height: float, min_contrast: float = LETTER_MIN_CONTRAST,
            near: np.ndarray | None = None):
    """(letters bool (h, w), ink (3,) float32 or None): the photograph's old letters and their median colour.

    A few stray pixels of a textured scene are not letters: their colour is trusted from 3 % of the region
    up (strokes fill some 15–40 % of a word's box); below that ``ink`` is None. ``near`` (3,): the colour
    the new letters were drawn in. What stands out from the background is not always one colour — a fill
    and its outline or shadow, or letters and a bright object beside them — so the standing-out pixels are
    split in two by colour (k-means) and, of the parts holding at least a quarter of them, the one whose
    median lies nearest ``near`` gives the ink (the model saw the old word and chose between them).
    """
    import cv2

    letters = letter_pixels(patch, region, height, min_contrast)
    if letters.sum() < 0.03 * region.sum():
        return letters, None
    colours = patch[letters].astype(np.float32)  # (n, 3)
    if near is None or len(colours) < 8:
        return letters, np.median(colours, axis=0)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)
    _, label, _ = cv2.kmeans(colours, 2, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    parts = [colours[label[:, 0] == k] for k in range(2)]
    parts = [c for c in parts if len(c) >= 0.25 * len(colours)]
    medians = [np.median(c, axis=0) for c in parts]
    return letters, min(medians, key=lambda m: float(np.linalg.norm(m - near)))


def scene_without_letters(patch: np.ndarray, region: np.ndarray, height: float,
                          min_contrast: float = LETTER_MIN_CONTRAST, near: np.ndarray | None = None):
    """(scene uint8 (h, w, 3), ink (3,) or None): ``patch`` with its old letters inpainted away, and their ink.

    The old letters (:func:`old_ink`, ``near`` as there) are grown by ~height/8 pixels to take their
    anti-aliased rims and faint halos, then inpainted (Telea, ``cv2.inpaint``) inside ``region``: the
    scene's background at full resolution, its texture and colour kept.
    """
    import cv2

    grow = max(1, int(round(height / 8)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    letters, ink = old_ink(patch, region, height, min_contrast, near=near)
    old = cv2.dilate(letters.astype(np.uint8), kernel) & region.astype(np.uint8)
    if not old.any():
        return patch.copy(), ink
    return cv2.inpaint(np.ascontiguousarray(patch), old, max(3.0, height / 8), cv2.INPAINT_TELEA), ink


def recolor_to_scene(back: np.ndarray, patch: np.ndarray, region: np.ndarray, height: float,
                     min_contrast: float = LETTER_MIN_CONTRAST) -> np.ndarray:
    """The generated crop ``back`` with its colours moved to the photograph's: uint8 (h, w, 3).

    ``back`` is the generated crop warped to the photograph's box, ``patch`` the photograph's box (both
    uint8 (h, w, 3)), ``region`` bool (h, w) the word's quad and ``height`` its height in pixels. The small
    model's letter shapes read better than its colours (pale, greyed, hue-shifted ink; a re-invented
    background tone): every pixel keeps the crop's picture but is shifted by
    ``(1 − a) · (bg_photo − bg_crop) + a · (ink − fg)``, with ``a``, ``bg_crop`` and ``fg`` the crop's
    :func:`two_colour_alpha`, ``bg_photo`` the photograph's :func:`local_background` (its letters fill
    under half of the median's window) and ``ink`` the old letters' median colour (:func:`old_ink`, the
    part of them nearest ``fg`` where they hold two colours). Where
    the photograph had no letters, the letters move with the background (the model's own contrast kept).
    Unlike :func:`letters_over_scene` nothing is cut
    out or inpainted: the letters' soft edges, the crop's texture and the whole box's geometry stay the
    model's, so legibility is the crop's own. The background shift is smooth (two median-filtered
    fields) and covers the whole box, so the feather band meets the photo without a seam.
    """
    if not region.any():
        return back.copy()
    a, bg_crop, fg = two_colour_alpha(back, region, height, min_contrast)
    bg_photo = local_background(patch, height).astype(np.float32)
    shift = bg_photo - bg_crop  # (h, w, 3)
    if fg is not None:
        _, ink = old_ink(patch, region, height, min_contrast, near=fg)
        if ink is not None:
            shift = shift + a[..., None] * ((ink - fg) - shift)
    return np.clip(back.astype(np.float32) + shift + 0.5, 0, 255).astype(np.uint8)


def masks_to_image(masks: np.ndarray, matrix: np.ndarray, model_hw: tuple[int, int], image_hw: tuple[int, int],
                   support: np.ndarray | None = None) -> np.ndarray:
    """Model-space masks bool (n, h', w') → bool (n, H, W) in image coordinates.

    ``matrix`` maps image pixels to model pixels; masks at a coarser resolution
    than the model (h' < H_model) are scaled first. Each mask is warped as coverage
    (bilinear) and cut at ½, so an enlarged mask's outline runs through the photo's
    pixels instead of in blocks of the enlargement; disjoint masks stay disjoint
    (two coverages cannot both pass ½). ``support`` (bool (H, W)) limits the masks
    to where the image was changed.
    """
    from ..data.geometry import apply_matrix, warp

    n, mh, mw = masks.shape
    to_mask = np.diag([mw / model_hw[1], mh / model_hw[0], 1.0]) @ matrix
    out = np.zeros((n, *image_hw), bool)
    if n == 0:
        return out
    corners = np.array([[0, 0], [mw, 0], [mw, mh], [0, mh]], np.float64)
    x0, y0, x1, y1 = bbox(apply_matrix(np.linalg.inv(to_mask), corners), 1, image_hw)
    if x1 <= x0 or y1 <= y0:
        return out
    back = warp(masks.transpose(1, 2, 0).astype(np.float32), translate(-x0, -y0) @ np.linalg.inv(to_mask),
                (y1 - y0, x1 - x0), border="constant", interpolation="linear")
    out[:, y0:y1, x0:x1] = back.reshape(y1 - y0, x1 - x0, n).transpose(2, 0, 1) > 0.5
    if support is not None:
        out &= support[None]
    return out


def region_support(quad: np.ndarray, image_hw: tuple[int, int], feather_px: float) -> np.ndarray:
    """bool (H, W): the pixels an edit of ``quad`` may change (the quad and its feather band)."""
    out = np.zeros(image_hw, bool)
    x0, y0, x1, y1 = bbox(quad, feather_px + 2, image_hw)
    if x1 > x0 and y1 > y0:
        local = quad - np.array([x0, y0], np.float32)
        out[y0:y1, x0:x1] = feather_alpha(local, (y1 - y0, x1 - x0), feather_px) > 0
    return out
