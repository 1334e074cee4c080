"""What the dataset readers share: indexed access, splitting across workers, counted skips.

A reader lists its records cheaply up front (``self.entries``) and decodes one
on demand (``load(i)``), so splitting across DataLoader workers and processes
(``iter_part``) never decodes an image twice. Record-level problems that a user
would rather skip (a word with characters outside the charset, a box outside
the image, an unreadable image) are counted in ``self.skipped`` and logged once
per reason; with ``strict=True`` they raise :class:`DatasetError` naming the
file and the record instead. File-level problems (missing file, missing fields)
always raise.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Iterator

import numpy as np

from ..charset import CHARSET
from ..errors import DatasetError
from .record import TextRecord

log = logging.getLogger("dreamtext.data")
_KNOWN = set(CHARSET)


class SkipLog:
    """Counts skipped records by reason; warns on the first of each reason."""

    def __init__(self, name: str, strict: bool = False):
        self.name = name
        self.strict = strict
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def skip(self, reason: str, where: str) -> None:
        """Count a skipped record (raise instead when strict)."""
        if self.strict:
            raise DatasetError(f"{where}: {reason}")
        self.note(reason, where)

    def skip_if(self, problem: str | None, where: str) -> bool:
        """``skip(problem, where)`` when a check found a problem; True when the record is to be dropped."""
        if problem:
            self.skip(problem, where)
            return True
        return False

    def note(self, reason: str, where: str) -> None:
        """Count a record that was kept in a degraded form (never raises)."""
        if reason not in self.counts:
            self.examples[reason] = where
            log.warning("%s: skipping records: %s (first: %s); see .skipped for counts", self.name, reason, where)
        self.counts[reason] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        if not self.counts:
            return f"{self.name}: nothing skipped"
        parts = ", ".join(f"{n} × {r}" for r, n in self.counts.most_common())
        return f"{self.name}: skipped {self.total} record(s): {parts}"


def text_problem(text: str, max_len: int | None) -> str | None:
    """Why the model cannot learn ``text`` (None when it can)."""
    if not text:
        return "empty text"
    bad = sorted({c for c in text if c not in _KNOWN})
    if bad:
        return "characters outside the charset"
    if max_len is not None and len(text) > max_len:
        return f"text longer than max_len={max_len}"
    return None


def quad_problem(quad: np.ndarray, hw: tuple[int, int], tol: float = 0.25) -> str | None:
    """Why a word quad is unusable in an image of size ``hw`` (None when it is fine).

    Quads may poke out of the image a little (SynthText's often do); a quad whose
    box lies more than ``tol`` of its own size outside the image is rejected.
    """
    q = np.asarray(quad, np.float64)
    if q.shape != (4, 2) or not np.isfinite(q).all():
        return "malformed box"
    (x0, y0), (x1, y1) = q.min(0), q.max(0)
    bw, bh = x1 - x0, y1 - y0
    if bw < 1 or bh < 1:
        return "box of zero size"
    h, w = hw
    if x0 < -tol * bw or y0 < -tol * bh or x1 > w + tol * bw or y1 > h + tol * bh:
        return "box outside the image"
    return None


class IndexedSource:
    """Base class of finite sources: ``entries`` + ``load(i) -> TextRecord | None`` (None = skipped)."""

    name = "dataset"
    finite = True

    def __init__(self, strict: bool = False):
        self.skipped = SkipLog(self.name, strict)
        self.entries: list = []

    def __len__(self) -> int:
        return len(self.entries)

    def load(self, i: int) -> TextRecord | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def iter_part(self, part: int, num_parts: int, order: np.ndarray | None = None) -> Iterator[TextRecord]:
        """Records ``part, part + num_parts, ...`` (of ``order`` when given): disjoint parts, together all."""
        idx = np.arange(len(self.entries)) if order is None else order
        for i in idx[part::num_parts]:
            rec = self.load(int(i))
            if rec is not None:
                yield rec

    def __iter__(self) -> Iterator[TextRecord]:
        return self.iter_part(0, 1)
