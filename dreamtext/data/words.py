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


# English words drawn per pick when ``glyph_balance`` > 0; one of them is kept, favouring rare letters.
BALANCE_DRAWS = 8


@functools.lru_cache(maxsize=None)
def letter_rarity(split: str = "train", max_len: int | None = None) -> dict[str, float]:
    """Per letter of the English ``split``: (mean letter count) / (its count); 1 for a letter of average use.

    In the built-in list ``e`` is 0.33 and ``z`` / ``x`` / ``j`` / ``q`` are 10–22: the letters the
    shipped model writes worst (BENCHMARKS.md, "Which letters fail": ``benchmarks/letter_errors.py``).
    """
    counts: dict[str, int] = {}
    for w in english_words(split, max_len):
        for c in w:
            counts[c] = counts.get(c, 0) + 1
    mean = sum(counts.values()) / max(1, len(counts))
    return {c: mean / n for c, n in counts.items()}


def _english_pick(pool: tuple[str, ...], rng: np.random.Generator, glyph_balance: float, split: str,
                  max_len: int) -> str:
    """One word of ``pool``: uniform when ``glyph_balance`` is 0 (one draw), else a rarity-weighted pick.

    With ``glyph_balance`` = b > 0, :data:`BALANCE_DRAWS` words are drawn and one is kept with probability
    ∝ (mean letter rarity of the word)^b, so words with rare letters come up more often while the
    words stay English. In the default word mix q, j, x, z make 3.7 % of the letters; b = 1 gives
    4.7 %, b = 2 5.9 % (the random strings, 30 % of words, are unchanged; the benchmark never balances).
    """
    if glyph_balance <= 0:
        return pool[int(rng.integers(len(pool)))]
    rarity = letter_rarity(split, max_len)
    picks = [pool[int(k)] for k in rng.integers(len(pool), size=BALANCE_DRAWS)]
    weight = np.array([np.mean([rarity[c] for c in w]) ** glyph_balance for w in picks])
    return picks[int(rng.choice(BALANCE_DRAWS, p=weight / weight.sum()))]


def sample_word(rng: np.random.Generator, max_len: int, words: str = "english+random", split: str = "train",
                glyph_balance: float = 0.0) -> str:
    """One word for the generator: from the English ``split`` and/or a random string (``words`` chooses).

    ``glyph_balance`` > 0 favours English words with rare letters (:func:`_english_pick`); 0 draws the
    words uniformly and leaves the stream exactly as it was.
    """
    kinds = words.split("+")
    if not kinds or any(k not in ("english", "random") for k in kinds):
        raise DatasetError(f"unknown word source {words!r}; use 'english', 'random' or 'english+random'")
    if not glyph_balance >= 0:
        raise DatasetError(f"glyph_balance must be ≥ 0, got {glyph_balance}")
    use_english = "english" in kinds and ("random" not in kinds or rng.random() < 0.7)
    if use_english:
        pool = english_words(split, max_len)
        if pool:
            word = _english_pick(pool, rng, glyph_balance, split, max_len)
            word = apply_case(word, rng)
            if rng.random() < 0.08 and len(word) < max_len:  # trailing punctuation ("OPEN!", "Street.")
                word += COMMON_PUNCT[int(rng.integers(len(COMMON_PUNCT)))]
            return word
    return random_word(rng, max_len)


def long_text(rng: np.random.Generator, split: str = "bench") -> str:
    """A long string for the long-text benchmark (DESIGN §14): with probability 0.6 a phrase of 2–4 English
    words of ``split`` joined by single spaces (13–32 characters, spaces included), else one long word made by
    joining 2–3 of them (13–24 characters); cased as a whole (lower, Capitalised or UPPER)."""
    pool = [w for w in english_words(split) if w.isalpha()]
    if not pool:
        raise DatasetError(f"no English words in split {split!r}")
    for _ in range(1000):
        phrase = rng.random() < 0.6
        n = int(rng.integers(2, 5)) if phrase else int(rng.integers(2, 4))
        words = [pool[int(rng.integers(len(pool)))] for _ in range(n)]
        text = (" " if phrase else "").join(words)
        if 13 <= len(text) <= (32 if phrase else 24):
            case = rng.random()
            return text.upper() if case < 0.2 else text.title() if case < 0.6 else text
    raise DatasetError("could not draw a long text of 13–32 characters")  # pragma: no cover


def replacement_word(text: str, rng: np.random.Generator, split: str = "train", length: int | None = None) -> str:
    """Another word of ``length`` (default ``len(text)``) characters to write in ``text``'s place: an English
    word of ``split``, cased like ``text``, when ``text`` is all letters and the split has one that long;
    else a random string."""
    if not text:
        raise DatasetError("a replacement word needs a non-empty source word")
    n = len(text) if length is None else int(length)
    if n < 1:
        raise DatasetError(f"a replacement word needs a length of at least 1, got {n}")
    pool = [w for w in english_words(split) if len(w) == n and w != text.lower()]
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
    raise DatasetError(f"could not find a replacement for {text!r}")  # pragma: no cover


def edit_word_for(text: str, index: int) -> str:
    """The fixed held-out target of the editing task for a source word: same length, different text.

    A ``bench`` English word of ``len(text)`` letters, cased like ``text``, chosen by
    ``index`` (so benchmark item ``index`` always gets the same target); a seeded
    random string of that length when the held-out list has no such word.
    """
    if not text:
        raise DatasetError("edit_word_for needs a non-empty source word")
    return replacement_word(text, np.random.default_rng([0xED17, int(index), len(text)]), "bench")
