"""ICDAR 2013 focused scene text: ``gt_<image>.txt`` beside (or in ``gt/`` next to) the images.

Each line is ``left, top, right, bottom, "text"`` (the test set) or
``left top right bottom "text"`` (the training set). ``###`` marks
illegible words, which are skipped. No character boxes or masks.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageError
from ..io_utils import read_image_rgb
from .indexed import IndexedSource, quad_problem, text_problem
from .record import TextRecord

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".PNG")
_LINE = re.compile(r'^\s*(-?\d+(?:\.\d+)?)\s*,?\s*(-?\d+(?:\.\d+)?)\s*,?\s*(-?\d+(?:\.\d+)?)\s*,?\s*'
                   r'(-?\d+(?:\.\d+)?)\s*,?\s*"(.*)"\s*$')


def parse_gt_line(line: str) -> tuple[tuple[float, float, float, float], str] | None:
    """``'38, 43, 920, 215, "Tiredness"'`` → ((38, 43, 920, 215), 'Tiredness'); None for a malformed line."""
    m = _LINE.match(line.lstrip("\ufeff"))
    if not m:
        return None
    l, t, r, b = (float(m.group(k)) for k in range(1, 5))
    return (l, t, r, b), m.group(5).replace('\\"', '"')


class ICDAR13Reader(IndexedSource):
    name = "icdar13"

    def __init__(self, root: str | Path, max_len: int | None = None, strict: bool = False):
        super().__init__(strict)
        root = Path(root)
        if not root.is_dir():
            raise DatasetError(f"ICDAR13 folder {str(root)!r} does not exist")
        self.root, self.max_len = root, max_len
        gts = sorted(root.glob("gt_*.txt")) or sorted((root / "gt").glob("gt_*.txt"))
        if not gts:
            raise DatasetError(f"no gt_*.txt files in {str(root)!r} (or its gt/ folder)")
        image_dirs = [root, root / "images", root / "imgs", gts[0].parent]
        for gt in gts:
            stem = gt.stem[3:]
            img = next((d / (stem + e) for d in image_dirs for e in IMAGE_EXTS if (d / (stem + e)).is_file()), None)
            if img is None:
                self.skipped.skip("no image for the annotation file", str(gt))
                continue
            try:
                lines = gt.read_text(encoding="utf-8-sig", errors="replace").splitlines()
            except OSError as e:
                raise DatasetError(f"cannot read {str(gt)!r}: {e}") from None
            for ln, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                parsed = parse_gt_line(line)
                if parsed is None:
                    raise DatasetError(f"{gt}: line {ln} is not 'left, top, right, bottom, \"text\"': {line!r}")
                (l, t, r, b), text = parsed
                if r <= l or b <= t:
                    raise DatasetError(f"{gt}: line {ln}: box ({l}, {t}, {r}, {b}) has right ≤ left or bottom ≤ top")
                self.entries.append((img, gt, ln, text, (l, t, r, b)))

    @functools.lru_cache(maxsize=2)
    def _image(self, path: Path) -> np.ndarray | None:
        try:
            return read_image_rgb(path)
        except ImageError as e:
            self.skipped.skip("unreadable image", str(e))
            return None

    def load(self, i: int) -> TextRecord | None:
        img_path, gt, ln, text, (l, t, r, b) = self.entries[i]
        where = f"{gt}: line {ln} {text!r}"
        if text == "###":
            self.skipped.skip("illegible word (###)", where)
            return None
        if self.skipped.skip_if(text_problem(text, self.max_len), where):
            return None
        image = self._image(img_path)
        if image is None:
            return None
        # ICDAR13 boxes are inclusive pixel indices: the box covers [l, r + 1) × [t, b + 1).
        quad = np.array([[l, t], [r + 1, t], [r + 1, b + 1], [l, b + 1]], np.float32)
        if self.skipped.skip_if(quad_problem(quad, image.shape[:2], tol=0.0), where):
            return None
        return TextRecord(image=image, text=text, word_quad=quad, source=self.name, key=f"{img_path.name}#{ln}")
