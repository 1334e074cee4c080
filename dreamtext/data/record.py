"""The one record type every data source yields (DESIGN §6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DatasetError


@dataclass
class TextRecord:
    """One word in one image, with its geometry.

    image       uint8 (H, W, 3) RGB
    text        the word (what the model must write)
    word_quad   float32 (4, 2) (x, y): top-left, top-right, bottom-right, bottom-left
    char_quads  float32 (n, 4, 2) or None, n == len(text)
    char_masks  bool (n, H, W) or None: each character's own pixels
    source      where it came from ("synth", "synthtext", "icdar13", ...)
    key         a name unique inside its source (file + record index)
    """

    image: np.ndarray
    text: str
    word_quad: np.ndarray
    char_quads: np.ndarray | None = None
    char_masks: np.ndarray | None = None
    source: str = ""
    key: str = ""

    def __post_init__(self):
        self.word_quad = np.asarray(self.word_quad, dtype=np.float32)
        if self.char_quads is not None:
            self.char_quads = np.asarray(self.char_quads, dtype=np.float32)
        self.validate()

    def validate(self) -> None:
        """Raise :class:`DatasetError` naming the record when its parts disagree."""
        where = f"record {self.key!r} of {self.source or 'unknown source'}"
        im = self.image
        if not isinstance(im, np.ndarray) or im.dtype != np.uint8 or im.ndim != 3 or im.shape[2] != 3:
            raise DatasetError(f"{where}: image must be uint8 (H, W, 3), got "
                               f"{getattr(im, 'dtype', type(im).__name__)} {getattr(im, 'shape', '')}")
        if self.word_quad.shape != (4, 2) or not np.isfinite(self.word_quad).all():
            raise DatasetError(f"{where}: word quad must be 4 finite (x, y) points, got shape {self.word_quad.shape}")
        n = len(self.text)
        if self.char_quads is not None and self.char_quads.shape != (n, 4, 2):
            raise DatasetError(f"{where}: {self.char_quads.shape[0] if self.char_quads.ndim else '?'} character "
                               f"boxes for {n} characters of {self.text!r}")
        if self.char_masks is not None:
            cm = self.char_masks
            if cm.dtype != np.bool_ or cm.shape != (n,) + im.shape[:2]:
                raise DatasetError(f"{where}: character masks must be bool ({n}, {im.shape[0]}, {im.shape[1]}), "
                                   f"got {cm.dtype} {cm.shape}")

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
