"""What an edit returns: the edited image and, per region, the crop, the window and the character masks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RegionResult:
    """One edited region.

    ``quad`` float32 (4, 2) in image pixels; ``text`` what was written;
    ``crop`` uint8 (H_m, W_m, 3) the generated model-resolution crop and
    ``input_crop`` what the model was given; ``matrix`` (3, 3) image → crop
    pixels; ``char_masks`` bool (len(text), H, W) the §3 predicted masks in image
    coordinates (limited to the pixels the edit changed) and ``crop_char_masks``
    bool (len(text), h', w') the same in the crop's frame. With ``candidates`` > 1:
    ``candidate_scores`` the word verifier's log p(text | crop) per character of
    each candidate, ``chosen`` the one kept (the best; ties keep the lowest),
    ``verifier_reading`` what the verifier reads in the kept crop and
    ``candidate_crops`` uint8 (K, H_m, W_m, 3) every candidate (``crop`` is one of them). ``blend``: the
    paste-back it got.
    """

    quad: np.ndarray
    text: str
    crop: np.ndarray
    input_crop: np.ndarray
    matrix: np.ndarray
    char_masks: np.ndarray
    crop_char_masks: np.ndarray
    feather_px: float = 0.0
    candidate_scores: tuple[float, ...] | None = None
    chosen: int = 0
    verifier_reading: str | None = None
    candidate_crops: np.ndarray | None = None
    blend: str | None = None  # the paste-back blend this region got (with blend="auto": "recolor" or "feather")
    # blend="auto": the verifier's log p(text | crop) per character of the (feathered, recoloured) pastes
    blend_scores: tuple[float, float] | None = None
    # A phrase or long word written as several chunks (layout.py): each chunk's own result, in order; the
    # region's ``crop``, ``input_crop``, ``matrix`` and ``crop_char_masks`` are then its first chunk's.
    chunks: list["RegionResult"] | None = None


@dataclass
class EditResult:
    """The edited image (PIL, the input's size) and one :class:`RegionResult` per region."""

    image: object
    regions: list[RegionResult] = field(default_factory=list)
    input: np.ndarray | None = None  # uint8 (H, W, 3): the input as read (orientation applied)

    def masks_picture(self) -> np.ndarray:
        """The result with every region's characters coloured (one colour per character): uint8 (H, W, 3)."""
        from ..visualize import regions_overlay

        return regions_overlay(self.image, [r.char_masks for r in self.regions])

    def before_after(self, max_width: int = 512) -> np.ndarray:
        """Input | result | character masks, captioned, with a colour legend: uint8 RGB."""
        from ..visualize import before_after

        return before_after(self.input, self.image, [r.char_masks for r in self.regions],
                            texts=[r.text for r in self.regions], max_width=max_width)
