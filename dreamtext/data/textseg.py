"""TextSeg (Xu et al. 2021): words with per-character pixel masks.

Layout: ``image/<name>.jpg`` and ``annotation/<name>_anno.json`` +
``annotation/<name>_mask.png``. The JSON maps word ids to
``{"text", "bbox": [x1, y1, ..., x4, y4], "char": {id: {"text", "bbox", "mask_value"}}}``;
character ``i``'s pixels are those of the mask image equal to its ``mask_value``.
Words containing ``#`` (illegible in TextSeg) are skipped.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError, ImageError
from ..io_utils import read_image_rgb
from .indexed import IndexedSource, quad_problem, text_problem
from .record import TextRecord

IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def _quad(bbox, where: str) -> np.ndarray:
    try:
        a = np.asarray(bbox, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: bbox must be 8 numbers x1, y1, ..., x4, y4, got {bbox!r}") from None
    if a.size != 8 or not np.isfinite(a).all():
        raise DatasetError(f"{where}: bbox must be 8 numbers x1, y1, ..., x4, y4, got {bbox!r}")
    return a.reshape(4, 2).astype(np.float32)


def _mask_value(value, where: str) -> int:
    """A character's label in the ``_mask.png`` (an 8- or 16-bit label image): a whole number 1 … 65535."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) \
            or float(value) != int(value) or not 1 <= int(value) <= 65535:
        raise DatasetError(f"{where}: a character's mask_value must be a whole number from 1 to 65535, got {value!r}")
    return int(value)


class TextSegReader(IndexedSource):
    name = "textseg"

    def __init__(self, root: str | Path, max_len: int | None = None, strict: bool = False):
        super().__init__(strict)
        root = Path(root)
        ann_dir, img_dir = root / "annotation", root / "image"
        if not ann_dir.is_dir() or not img_dir.is_dir():
            raise DatasetError(f"TextSeg folder {str(root)!r} must hold image/ and annotation/")
        self.root, self.max_len = root, max_len
        annos = sorted(ann_dir.glob("*_anno.json"))
        if not annos:
            raise DatasetError(f"no *_anno.json files in {str(ann_dir)!r}")
        for anno in annos:
            name = anno.name[: -len("_anno.json")]
            img = next((img_dir / (name + e) for e in IMAGE_EXTS if (img_dir / (name + e)).is_file()), None)
            mask = ann_dir / f"{name}_mask.png"
            if img is None or not mask.is_file():
                self.skipped.skip("image or _mask.png missing", str(anno))
                continue
            try:
                words = json.loads(anno.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise DatasetError(f"cannot read {str(anno)!r}: {e}") from None
            if not isinstance(words, dict):
                raise DatasetError(f"{anno}: expected a mapping of word ids to words")
            for wid, word in sorted(words.items()):
                where = f"{anno}: word {wid}"
                if not isinstance(word, dict) or "text" not in word or "bbox" not in word:
                    raise DatasetError(f"{where}: lacks 'text' or 'bbox'")
                chars = word.get("char") or {}
                if not isinstance(chars, dict):
                    raise DatasetError(f"{where}: 'char' must be a mapping")
                chars = [chars[k] for k in sorted(chars)]
                for c in chars:
                    if not isinstance(c, dict) or "mask_value" not in c or "bbox" not in c:
                        raise DatasetError(f"{where}: a character lacks 'bbox' or 'mask_value'")
                self.entries.append((img, mask, anno, wid, str(word["text"]), _quad(word["bbox"], where),
                                     [(_quad(c["bbox"], where), _mask_value(c["mask_value"], where)) for c in chars]))

    @functools.lru_cache(maxsize=2)
    def _pair(self, img: Path, mask: Path):
        try:
            image = read_image_rgb(img)
        except ImageError as e:
            self.skipped.skip("unreadable image", str(e))
            return None
        labels = cv2.imread(str(mask), cv2.IMREAD_UNCHANGED)
        if labels is None:
            self.skipped.skip("unreadable mask", str(mask))
            return None
        if labels.ndim == 3:
            if not (labels[..., :1] == labels[..., :3]).all():
                raise DatasetError(f"{mask}: a colour mask; expected one label value per pixel")
            labels = labels[..., 0]
        if labels.shape != image.shape[:2]:
            raise DatasetError(f"{mask}: size {labels.shape[::-1]} differs from its image's {image.shape[1::-1]}")
        return image, labels

    def load(self, i: int) -> TextRecord | None:
        img, mask, anno, wid, text, quad, chars = self.entries[i]
        where = f"{anno}: word {wid} {text!r}"
        if "#" in text:
            self.skipped.skip("illegible word (#)", where)
            return None
        if self.skipped.skip_if(text_problem(text, self.max_len), where):
            return None
        if len(chars) != len(text):
            self.skipped.skip("character count differs from the text", f"{where}: {len(chars)} chars annotated")
            return None
        pair = self._pair(img, mask)
        if pair is None:
            return None
        image, labels = pair
        if self.skipped.skip_if(quad_problem(quad, image.shape[:2]), where):
            return None
        top = max(v for _, v in chars)
        if top > np.iinfo(labels.dtype).max:
            raise DatasetError(f"{where}: mask_value {top} cannot occur in {str(mask)!r}, an image of "
                               f"{np.iinfo(labels.dtype).bits}-bit labels")
        masks = labels[None] == np.array([v for _, v in chars], labels.dtype)[:, None, None]
        if not masks.any(axis=(1, 2)).all():
            self.skipped.skip("a character's mask_value is absent from the mask", where)
            return None
        return TextRecord(image=image, text=text, word_quad=quad, char_quads=np.stack([q for q, _ in chars]),
                          char_masks=masks, source=self.name, key=f"{img.name}#{wid}")
