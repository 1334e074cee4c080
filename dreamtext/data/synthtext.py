"""SynthText ``gt.mat`` (Gupta et al. 2016): one record per word (DESIGN §6).

Fields (MATLAB cell arrays of length N, one per image):
  ``imnames``  image path relative to the folder of gt.mat
  ``wordBB``   2×4×Nw word quads (x row, y row; corners clockwise from top-left);
               a single word comes as a plain 2×4 matrix
  ``charBB``   2×4×Nc character quads, in the order of the text's characters
  ``txt``      strings; each may hold several lines and words; splitting all of
               them on white space gives the Nw words, whose lengths sum to Nc
SynthText has no character masks (``char_masks`` is None).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import DatasetError, ImageError
from ..io_utils import read_image_rgb
from .indexed import IndexedSource, quad_problem, text_problem
from .record import TextRecord

REQUIRED_FIELDS = ("imnames", "wordBB", "charBB", "txt")


def _as_quads(bb, what: str, where: str) -> np.ndarray:
    """2×4 or 2×4×K array → float32 (K, 4, 2)."""
    try:
        a = np.asarray(bb, dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {what} must be a 2×4×K array of numbers, got {type(bb).__name__} "
                           f"{str(bb)[:40]!r}") from None
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[:2] != (2, 4):
        raise DatasetError(f"{where}: {what} must be 2×4×K, got shape {a.shape}")
    return a.transpose(2, 1, 0).astype(np.float32)


def _strings(cell) -> list[str]:
    """A MATLAB cell of strings (as scipy loads it) → list of Python strings."""
    out = []
    for item in np.asarray(cell, dtype=object).reshape(-1):
        if isinstance(item, np.ndarray):
            item = "".join(str(x) for x in item.reshape(-1)) if item.dtype.kind in "UO" else str(item)
        out.append(str(item))
    return out


class SynthTextReader(IndexedSource):
    """Words of a SynthText ``gt.mat``; images are read lazily, relative to the .mat's folder."""

    name = "synthtext"

    def __init__(self, path: str | Path, max_len: int | None = None, strict: bool = False):
        super().__init__(strict)
        path = Path(path)
        if path.is_dir():
            path = path / "gt.mat"
        if not path.is_file():
            raise DatasetError(f"SynthText annotation file {str(path)!r} does not exist")
        self.path, self.root, self.max_len = path, path.parent, max_len
        import scipy.io

        try:
            mat = scipy.io.loadmat(str(path), squeeze_me=False)
        except Exception as e:  # noqa: BLE001 - scipy raises many kinds for a bad file
            raise DatasetError(f"cannot read {str(path)!r} as a MATLAB file: {e}") from None
        missing = [f for f in REQUIRED_FIELDS if f not in mat]
        if missing:
            raise DatasetError(f"{str(path)!r} lacks the field(s) {missing} (needs {list(REQUIRED_FIELDS)})")
        imnames = _strings(mat["imnames"])
        word_bbs = np.asarray(mat["wordBB"], dtype=object).reshape(-1)
        char_bbs = np.asarray(mat["charBB"], dtype=object).reshape(-1)
        txts = np.asarray(mat["txt"], dtype=object).reshape(-1)
        n = len(imnames)
        if not (len(word_bbs) == len(char_bbs) == len(txts) == n):
            raise DatasetError(f"{str(path)!r}: imnames/wordBB/charBB/txt have different lengths "
                               f"({n}, {len(word_bbs)}, {len(char_bbs)}, {len(txts)})")
        self.images: list[str] = imnames
        for i in range(n):
            where = f"{path}: image {i} ({imnames[i]})"
            words = " ".join(_strings(txts[i])).split()
            wq = _as_quads(word_bbs[i], "wordBB", where)
            cq = _as_quads(char_bbs[i], "charBB", where)
            if len(words) != len(wq) or sum(map(len, words)) != len(cq):
                self.skipped.skip("word/character counts disagree with the boxes",
                                  f"{where}: {len(words)} words / {sum(map(len, words))} chars in txt, "
                                  f"{len(wq)} word boxes / {len(cq)} char boxes")
                continue
            start = 0
            for w, word in enumerate(words):
                self.entries.append((i, w, word, wq[w], cq[start:start + len(word)]))
                start += len(word)

    @functools.lru_cache(maxsize=2)
    def _image(self, i: int) -> np.ndarray | None:
        try:
            return read_image_rgb(self.root / self.images[i])
        except ImageError as e:
            self.skipped.skip("unreadable image", f"{self.path}: {e}")
            return None

    def load(self, k: int) -> TextRecord | None:
        i, w, word, wq, cq = self.entries[k]
        where = f"{self.path}: image {i} ({self.images[i]}) word {w} {word!r}"
        if self.skipped.skip_if(text_problem(word, self.max_len), where):
            return None
        image = self._image(i)
        if image is None:
            return None
        if self.skipped.skip_if(quad_problem(wq, image.shape[:2]), where):
            return None
        return TextRecord(image=image, text=word, word_quad=wq, char_quads=cq, char_masks=None,
                          source=self.name, key=f"{self.images[i]}#{w}")
