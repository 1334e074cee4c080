"""Character tokenizer shared by the text encoder, the data and the metrics (DESIGN §2).

The alphabet is the 94 printable ASCII characters except space. A character's
id is its index + 1; id 0 is padding. A text becomes exactly ``max_len`` ids.
Unknown characters, empty text and over-long text are errors at this boundary,
never silently mapped to padding.
"""

from __future__ import annotations

import string

import numpy as np

from .errors import TextError

# The 94 printable ASCII characters from "!" (33) to "~" (126): no space.
CHARSET: str = "".join(chr(c) for c in range(33, 127))
PAD_ID: int = 0
VOCAB_SIZE: int = len(CHARSET) + 1  # 95 classes: padding + 94 characters
_ID_OF = {ch: i + 1 for i, ch in enumerate(CHARSET)}

assert len(CHARSET) == 94 and set(CHARSET) == set(string.printable) - set(string.whitespace)


def validate_text(text: str, max_len: int) -> str:
    """Return ``text`` unchanged if the model can write it, else raise :class:`TextError`."""
    if not isinstance(text, str):
        raise TextError(f"text must be a string, got {type(text).__name__}")
    if len(text) == 0:
        raise TextError("text is empty: give at least one character")
    unknown = sorted({ch for ch in text if ch not in _ID_OF})
    if unknown:
        shown = ", ".join(repr(ch) for ch in unknown)
        raise TextError(
            f"text {text!r} has characters outside the charset (printable ASCII without space): {shown}"
        )
    if len(text) > max_len:
        raise TextError(f"text {text!r} has {len(text)} characters; this model writes at most {max_len}")
    return text


def encode(text: str, max_len: int) -> np.ndarray:
    """Token ids of ``text``: int64 array of shape (max_len,), padded with 0."""
    validate_text(text, max_len)
    ids = np.zeros(max_len, dtype=np.int64)
    ids[: len(text)] = [_ID_OF[ch] for ch in text]
    return ids


def encode_batch(texts: list[str], max_len: int) -> np.ndarray:
    """Token ids of several texts: int64 array of shape (len(texts), max_len)."""
    return np.stack([encode(t, max_len) for t in texts]) if texts else np.zeros((0, max_len), np.int64)


def decode(ids) -> str:
    """Text of a sequence of ids; padding (0) is skipped wherever it appears."""
    out = []
    for i in np.asarray(ids).reshape(-1).tolist():
        if i == PAD_ID:
            continue
        if not 1 <= i <= len(CHARSET):
            raise TextError(f"token id {i} is outside 0..{len(CHARSET)}")
        out.append(CHARSET[i - 1])
    return "".join(out)


def keep_known(text: str) -> str:
    """Drop every character outside the charset (used to clean OCR readings, DESIGN §11)."""
    return "".join(ch for ch in text if ch in _ID_OF)
