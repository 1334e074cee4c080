"""The character tokenizer (DESIGN §2)."""

import string

import numpy as np
import pytest

from dreamtext.charset import CHARSET, PAD_ID, VOCAB_SIZE, decode, encode, encode_batch, keep_known, validate_text
from dreamtext.errors import DreamTextError, TextError


def test_alphabet_is_printable_ascii_without_space():
    assert len(CHARSET) == 94 and VOCAB_SIZE == 95 and PAD_ID == 0
    assert " " not in CHARSET
    assert set(CHARSET) == {chr(c) for c in range(33, 127)}
    assert CHARSET[0] == "!" and CHARSET[-1] == "~"


def test_encode_golden_ids_and_padding():
    ids = encode("Ab1!", 8)
    assert ids.dtype == np.int64 and ids.shape == (8,)
    # id = index in CHARSET + 1 = ord(c) - 32
    assert ids.tolist() == [ord("A") - 32, ord("b") - 32, ord("1") - 32, 1, 0, 0, 0, 0]


def test_round_trip_every_character():
    for i in range(0, 94, 12):
        text = CHARSET[i:i + 12]
        assert decode(encode(text, 12)) == text


def test_encode_batch_shape_and_empty():
    b = encode_batch(["a", "bcd"], 5)
    assert b.shape == (2, 5) and b[0, 1] == 0 and b[1, 2] == ord("d") - 32
    assert encode_batch([], 5).shape == (0, 5)


@pytest.mark.parametrize("text, fragment", [
    ("", "empty"),
    ("hello world", "' '"),
    ("café", "'é'"),
    ("abcdefghi", "9 characters"),
])
def test_errors_name_the_problem(text, fragment):
    with pytest.raises(TextError) as e:
        validate_text(text, 8)
    assert fragment in str(e.value)
    assert isinstance(e.value, DreamTextError)


def test_non_string_is_an_error():
    with pytest.raises(TextError):
        encode(123, 8)


def test_decode_skips_padding_anywhere_and_rejects_bad_ids():
    assert decode([34, 0, 35, 0]) == "BC"
    with pytest.raises(TextError, match="95"):
        decode([95])


def test_keep_known_drops_foreign_characters():
    assert keep_known("Ünï cödé 12!") == "ncd12!"
    assert keep_known(string.ascii_letters) == string.ascii_letters
