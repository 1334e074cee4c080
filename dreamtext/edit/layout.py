"""Long text in one region (DESIGN §14): a phrase or a long word laid out as chunks the model writes well.

The model writes at most ``max_len`` characters, without spaces, into one window. A longer string or a phrase
is cut into chunks — at spaces first, inside a word only when the word alone is longer than ``max_len`` (then
into near-equal pieces) — and each chunk gets its share of the region along the text line in proportion to
its width rendered in the glyph font (a space's width is split between the chunks beside it, so the chunks
tile the region and no old pixel is left between them). A quad is cut along its top and bottom edges at the
same fractions, so slanted and perspective lines stay straight. The pipeline samples all chunks of all
regions in one batch and pastes each back inside its own cell of the region (``chunk_cells``), so the
feathered seams of neighbouring chunks never show the old text.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..charset import CHARSET
from ..errors import TextError

MAX_PHRASE_CHARS = 48  # characters one region may be given, spaces included


def check_phrase(text, max_len: int) -> str:
    """``text`` if one region can hold it, else :class:`TextError` naming the problem.

    Printable ASCII and single spaces between words; leading, trailing or repeated spaces are refused (not
    normalised: what is written must be what was asked for); at most ``MAX_PHRASE_CHARS`` characters.
    ``max_len`` is the model's chunk length (a longer word is split, so it does not limit the text).
    """
    if not isinstance(text, str):
        raise TextError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise TextError("text is empty (or only spaces): give at least one character")
    bad = sorted({c for c in text if c != " " and c not in CHARSET})
    if bad:
        names = ", ".join(repr(c) if c.isprintable() else f"U+{ord(c):04X}" for c in bad)
        raise TextError(f"text {text!r} has characters outside the charset: {names} (printable ASCII and single "
                        "spaces)")
    if text != text.strip() or "  " in text:
        raise TextError(f"text {text!r} has leading, trailing or double spaces: separate words by one space")
    if len(text) > MAX_PHRASE_CHARS:
        raise TextError(f"text is {len(text)} characters long; one region takes at most {MAX_PHRASE_CHARS} "
                        "(split it over several regions)")
    return text


@dataclass(frozen=True)
class Chunk:
    text: str  # what the model writes (no space, at most max_len characters)
    start: int  # its first character's index in the region's text
    span: tuple[float, float]  # its share of the region along the line, fractions 0 … 1


def split_chunks(text: str, max_len: int) -> list[tuple[str, int]]:
    """``text`` → ``[(chunk, start index)]``: its words, a word longer than ``max_len`` cut into
    ``ceil(len / max_len)`` near-equal pieces."""
    out, pos = [], 0
    for word in text.split(" "):
        pieces = -(-len(word) // max_len)
        size, extra = divmod(len(word), pieces)
        at = 0
        for k in range(pieces):
            n = size + (1 if k < extra else 0)
            out.append((word[at:at + n], pos + at))
            at += n
        pos += len(word) + 1
    return out


@functools.lru_cache(maxsize=4096)
def _width(text: str) -> float:
    """Advance width of ``text`` in the glyph font (pixels at its drawing size)."""
    from ..data.fonts import load_font, plain_font_path
    from ..data.glyph import GLYPH_FONT_PX

    return float(load_font(plain_font_path(), GLYPH_FONT_PX).getlength(text))


def layout(text: str, max_len: int) -> list[Chunk]:
    """The chunks of ``text`` with their spans along the line (one chunk spanning (0, 1) when it fits)."""
    pieces = split_chunks(text, max_len)
    if len(pieces) == 1:
        return [Chunk(pieces[0][0], 0, (0.0, 1.0))]
    # Each piece's rendered width; the gap after it: a space between words, nothing inside a split word.
    widths = [_width(p) for p, _ in pieces]
    gaps = [_width(" ") if pieces[k][1] + len(pieces[k][0]) < pieces[k + 1][1] else 0.0
            for k in range(len(pieces) - 1)]
    total = sum(widths) + sum(gaps)
    chunks, x = [], 0.0
    for k, (piece, start) in enumerate(pieces):
        left = 0.0 if k == 0 else x - gaps[k - 1] / 2
        x += widths[k]
        right = total if k == len(pieces) - 1 else x + gaps[k] / 2
        if k < len(pieces) - 1:
            x += gaps[k]
        chunks.append(Chunk(piece, start, (left / total, right / total)))
    return chunks


def sub_quad(quad: np.ndarray, f0: float, f1: float) -> np.ndarray:
    """The part of ``quad`` (4, 2: TL, TR, BR, BL) between fractions ``f0`` and ``f1`` along its text line,
    cut along the top and bottom edges (so a slanted or perspective line stays straight)."""
    q = np.asarray(quad, np.float64)
    top = lambda f: q[0] + f * (q[1] - q[0])  # noqa: E731
    bottom = lambda f: q[3] + f * (q[2] - q[3])  # noqa: E731
    return np.stack([top(f0), top(f1), bottom(f1), bottom(f0)]).astype(np.float32)


def chunk_cells(quad: np.ndarray, chunks: list[Chunk], reach: float) -> list[np.ndarray]:
    """Per chunk, the polygon (4, 2) its paste-back may change: its sub-quad's cut lines extended by ``reach``
    pixels across the line (into the feather band), and outwards along the line for the first and last chunk.
    The cells do not overlap, so pasting the chunks one after another equals pasting them at once."""
    q = np.asarray(quad, np.float64)
    along = q[1] - q[0]
    along = along / max(np.linalg.norm(along), 1e-9)
    cells = []
    for k, c in enumerate(chunks):
        s = sub_quad(q, *c.span).astype(np.float64)
        left_top, left_bottom, right_top, right_bottom = s[0], s[3], s[1], s[2]

        def extend(top, bottom):
            d = (top - bottom) / max(np.linalg.norm(top - bottom), 1e-9)
            return top + reach * d, bottom - reach * d

        lt, lb = extend(left_top, left_bottom)
        rt, rb = extend(right_top, right_bottom)
        if k == 0:
            lt, lb = lt - reach * along, lb - reach * along
        if k == len(chunks) - 1:
            rt, rb = rt + reach * along, rb + reach * along
        cells.append(np.stack([lt, rt, rb, lb]).astype(np.float32))
    return cells
