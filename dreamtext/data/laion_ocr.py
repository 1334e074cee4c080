"""LAION-OCR as released by TextDiffuser (MARIO-10M layout): one folder per image,

  ``<dir>/image.jpg``    the picture (512×512 in the release)
  ``<dir>/ocr.txt``      one word per line: ``text x1,y1,x2,y2,x3,y3,x4,y4[ score]``
  ``<dir>/charseg.npy``  (H, W) integer map: 0 background, else 1 + the character's index in
                         TextDiffuser's alphabet (digits, a-z, A-Z, punctuation, space)

``charseg`` labels character *classes*, not instances. A word's character masks
are recovered as the released UDiffText code does: inside the word's quad, the
pixels of each character's class (or its lower-case class) are split into
connected components, matched to the character's occurrences from left to
right along the word. When that fails (too few components), the word keeps its
quad but has no character masks or boxes (counted in ``skipped``).
"""

from __future__ import annotations

import functools
import string
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError, ImageError
from ..io_utils import read_image_rgb
from .indexed import IndexedSource, quad_problem, text_problem
from .record import TextRecord

ALPHABET = string.digits + string.ascii_lowercase + string.ascii_uppercase + string.punctuation + " "


def charseg_class(ch: str) -> int:
    """The value ``charseg.npy`` stores for character ``ch`` (0 if it has none)."""
    return ALPHABET.find(ch) + 1


def parse_ocr_line(line: str) -> tuple[str, np.ndarray] | None:
    """``'Hello 1,2,30,2,30,12,1,12 0.9'`` → ('Hello', (4, 2) quad); None for a malformed line."""
    parts = line.strip().split(" ")
    if len(parts) < 2:
        return None
    # The text may itself contain spaces in some dumps: the coordinates are the first all-numeric field after it.
    for k in range(1, len(parts)):
        coords = parts[k].split(",")
        if len(coords) == 8:
            try:
                quad = np.array([float(v) for v in coords], np.float32).reshape(4, 2)
            except ValueError:
                continue
            return " ".join(parts[:k]), quad
    return None


def split_char_masks(seg: np.ndarray, text: str, quad: np.ndarray) -> np.ndarray | None:
    """bool (n, H, W) masks of ``text``'s characters from a class map, or None when they cannot be separated."""
    h, w = seg.shape
    region = np.zeros((h, w), np.uint8)
    cv2.fillPoly(region, [np.round(quad - 0.5).astype(np.int32)], 1)
    direction = (quad[1] - quad[0]) + (quad[2] - quad[3])
    direction = direction / (np.linalg.norm(direction) + 1e-9)
    masks = np.zeros((len(text), h, w), bool)
    positions: dict[str, list[int]] = {}
    for i, ch in enumerate(text):
        positions.setdefault(ch, []).append(i)
    for ch, slots in positions.items():
        cls = {charseg_class(ch), charseg_class(ch.lower())} - {0}
        pix = (np.isin(seg, list(cls)) & (region > 0)).astype(np.uint8)
        # Join a glyph's broken strokes (gaps ≤ 2 px) before counting components; the reference dilates
        # more (5×), which also merges neighbouring repeated letters ("ll").
        joined = cv2.dilate(pix, np.ones((3, 3), np.uint8), iterations=1)
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(joined, connectivity=8)
        if count - 1 < len(slots):
            return None
        comps = sorted(range(1, count), key=lambda c: -stats[c, cv2.CC_STAT_AREA])[: len(slots)]
        comps.sort(key=lambda c: float(centroids[c] @ direction))
        for slot, c in zip(slots, comps):
            masks[slot] = (labels == c) & (pix > 0)
    return masks


def _mask_quad(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


class LaionOCRReader(IndexedSource):
    name = "laion_ocr"

    def __init__(self, root: str | Path, max_len: int | None = None, strict: bool = False):
        super().__init__(strict)
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"LAION-OCR folder {str(root)!r} does not exist")
        self.root, self.max_len = root, max_len
        ocr_files = sorted(root.rglob("ocr.txt"))
        if not ocr_files:
            raise DatasetError(f"no */ocr.txt files under {str(root)!r}")
        for ocr in ocr_files:
            folder = ocr.parent
            if not (folder / "image.jpg").is_file():
                self.skipped.skip("folder without image.jpg", str(folder))
                continue
            try:
                lines = ocr.read_text(encoding="utf-8", errors="replace").splitlines()
            except OSError as e:
                raise DatasetError(f"cannot read {str(ocr)!r}: {e}") from None
            for ln, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                parsed = parse_ocr_line(line)
                if parsed is None:
                    raise DatasetError(f"{ocr}: line {ln} is not 'text x1,y1,...,x4,y4': {line!r}")
                self.entries.append((folder, ln, parsed[0], parsed[1]))

    @functools.lru_cache(maxsize=2)
    def _folder(self, folder: Path):
        try:
            image = read_image_rgb(folder / "image.jpg")
        except ImageError as e:
            self.skipped.skip("unreadable image", str(e))
            return None
        seg_path = folder / "charseg.npy"
        seg = None
        if seg_path.is_file():
            try:
                seg = np.load(seg_path, allow_pickle=False)
            except (OSError, ValueError) as e:
                raise DatasetError(f"cannot read {str(seg_path)!r}: {e}") from None
            if seg.ndim != 2:
                raise DatasetError(f"{seg_path}: expected an (H, W) map, got shape {seg.shape}")
            if seg.shape != image.shape[:2]:  # the release stores 512×512 maps; follow the image
                seg = cv2.resize(seg.astype(np.int32).astype(np.float32), image.shape[1::-1],
                                 interpolation=cv2.INTER_NEAREST).astype(np.int32)
        return image, seg

    def load(self, i: int) -> TextRecord | None:
        folder, ln, text, quad = self.entries[i]
        where = f"{folder / 'ocr.txt'}: line {ln} {text!r}"
        if self.skipped.skip_if(text_problem(text, self.max_len), where):
            return None
        got = self._folder(folder)
        if got is None:
            return None
        image, seg = got
        if self.skipped.skip_if(quad_problem(quad, image.shape[:2]), where):
            return None
        masks = quads = None
        if seg is None:
            self.skipped.note("no charseg.npy (record kept without character masks)", where)
        else:
            masks = split_char_masks(seg, text, quad)
            if masks is None:
                self.skipped.note("charseg does not separate the characters (record kept without masks)", where)
            else:
                quads = np.stack([_mask_quad(m) for m in masks])
        return TextRecord(image=image, text=text, word_quad=quad, char_quads=quads, char_masks=masks,
                          source=self.name, key=f"{folder.name}#{ln}")
