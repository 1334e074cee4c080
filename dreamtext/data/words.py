"""Word lists and random strings for the generator (DESIGN §6).

The built-in English list (``wordlists/english.txt``, from SCOWL via Debian's
``wamerican``; licence in the file's header) is split once, by a hash of each
word, into a ``train`` split (≈90%) and a held-out ``bench`` split (≈10%) that
training never sees: the split does not depend on any seed or config.
"""

from __future__ import annotations

import functools
import hashlib
import string
from importlib import resources

import numpy as np

from ..charset import CHARSET
from ..errors import DatasetError

SPLITS = ("train", "bench")
LETTERS = string.ascii_letters
DIGITS = string.digits
PUNCT = "".join(c for c in CHARSET if c in string.punctuation)
# Punctuation that shows up inside real scene words (prices, URLs, dates).
COMMON_PUNCT = "-.,:!?&'/$%#@"


@functools.lru_cache(maxsize=None)
def _all_english() -> tuple[str, ...]:
    text = resources.files("dreamtext.data").joinpath("wordlists/english.txt").read_text("utf-8")
    return tuple(w for w in (line.strip() for line in text.splitlines()) if w and not w.startswith("#"))


def _is_bench(word: str) -> bool:
    return hashlib.sha1(word.encode("utf-8")).digest()[0] % 10 == 0


@functools.lru_cache(maxsize=None)
def english_words(split: str = "train", max_len: int | None = None) -> tuple[str, ...]:
    """The lower-case English words of one split (``train`` or ``bench``), at most ``max_len`` long."""
    if split not in SPLITS:
        raise DatasetError(f"unknown word split {split!r}; choose one of {SPLITS}")
    want_bench = split == "bench"
    return tuple(w for w in _all_english() if _is_bench(w) == want_bench and (max_len is None or len(w) <= max_len))


def random_word(rng: np.random.Generator, max_len: int, min_len: int = 1, length: int | None = None) -> str:
    """A random string of letters, digits and punctuation (mostly letters), ``min_len..max_len`` long."""
    n = int(length) if length is not None else int(rng.integers(min_len, max_len + 1))
    kind = rng.random()
    if kind < 0.45:  # letters only, mixed case
        pool = LETTERS
    elif kind < 0.6:  # digits with a little punctuation: prices, dates, codes
        pool = DIGITS * 4 + ".,:-/$%"
    elif kind < 0.9:  # letters and digits
        pool = LETTERS + DIGITS
    else:  # anything in the charset
        pool = CHARSET
    return "".join(pool[i] for i in rng.integers(0, len(pool), size=n))


def apply_case(word: str, rng: np.random.Generator) -> str:
    """Lower, Title or UPPER case, as words appear on signs."""
    r = rng.random()
    if r < 0.45:
        return word
    if r < 0.75:
        return word[:1].upper() + word[1:]
    return word.upper()


def sample_word(rng: np.random.Generator, max_len: int, words: str = "english+random", split: str = "train") -> str:
    """One word for the generator: from the English ``split`` and/or a random string (``words`` chooses)."""
    kinds = words.split("+")
    if not kinds or any(k not in ("english", "random") for k in kinds):
        raise DatasetError(f"unknown word source {words!r}; use 'english', 'random' or 'english+random'")
    use_english = "english" in kinds and ("random" not in kinds or rng.random() < 0.7)
    if use_english:
        pool = english_words(split, max_len)
        if pool:
            word = pool[int(rng.integers(len(pool)))]
            word = apply_case(word, rng)
            if rng.random() < 0.08 and len(word) < max_len:  # trailing punctuation ("OPEN!", "Street.")
                word += COMMON_PUNCT[int(rng.integers(len(COMMON_PUNCT)))]
            return word
    return random_word(rng, max_len)


def edit_word_for(text: str, index: int) -> str:
    """The fixed held-out target of the editing task for a source word: same length, different text.

    A ``bench`` English word of ``len(text)`` letters, cased like ``text``, chosen by
    ``index`` (so benchmark item ``index`` always gets the same target); a seeded
    random string of that length when the held-out list has no such word.
    """
    n = len(text)
    if n == 0:
        raise DatasetError("edit_word_for needs a non-empty source word")
    rng = np.random.default_rng([0xED17, int(index), n])
    pool = [w for w in english_words("bench") if len(w) == n and w != text.lower()]
    if pool and text.isalpha():
        word = pool[int(rng.integers(len(pool)))]
        if text.isupper():
            return word.upper()
        if text[0].isupper():
            return word[0].upper() + word[1:]
        return word
    for _ in range(100):
        word = random_word(rng, n, length=n)
        if word != text:
            return word
    raise DatasetError(f"could not find an edit target for {text!r}")  # pragma: no cover
