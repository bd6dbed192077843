"""The counting rules, case by case, and the streamed counter against the tutorial's read-all approach."""

from __future__ import annotations

import io
import random
import string
import sys
from collections import Counter

import pytest

from node_app.counting import count_words, top_words
from node_app.errors import InputNotUtf8Error

UNICODE_WHITESPACE = [chr(code) for code in range(sys.maxunicode + 1) if chr(code).isspace()]


def tutorial_counts(data: bytes) -> Counter[str]:
    """The tutorial's approach: read everything, split, strip ASCII punctuation, count."""
    return Counter([word.strip(string.punctuation) for word in data.decode("utf-8").split()])


def count(data: bytes, **options: object) -> Counter[str]:
    return count_words(io.BytesIO(data), **options)  # type: ignore[arg-type]


def test_punctuation_only_tokens_count_as_the_empty_word() -> None:
    counts = count(b"hello !!! ... - world ?")
    assert counts == Counter({"": 4, "hello": 1, "world": 1})


def test_leading_and_trailing_ascii_punctuation_is_stripped() -> None:
    assert list(count(b"'(hello)', \"world\"... [x]").items()) == [("hello", 1), ("world", 1), ("x", 1)]


def test_inner_punctuation_is_kept() -> None:
    counts = count("you're high-scale tasks—processing a.b.c".encode())
    assert list(counts) == ["you're", "high-scale", "tasks—processing", "a.b.c"]


def test_non_ascii_punctuation_is_not_stripped() -> None:
    counts = count("“quoted” you\u2019re \u2019tis word— «guillemets» ¡hola!".encode())
    assert list(counts) == ["“quoted”", "you\u2019re", "\u2019tis", "word—", "«guillemets»", "¡hola"]


def test_byte_order_mark_is_part_of_the_first_word_by_default() -> None:
    counts = count(b"\xef\xbb\xbfword word")
    assert counts == Counter({"\ufeffword": 1, "word": 1})


def test_strip_bom_drops_only_a_leading_byte_order_mark() -> None:
    assert count(b"\xef\xbb\xbfword word", strip_bom=True) == Counter({"word": 2})
    assert count(b"word \xef\xbb\xbfword", strip_bom=True) == Counter({"word": 1, "\ufeffword": 1})


def test_counting_is_case_sensitive_by_default() -> None:
    assert count(b"Storage storage STORAGE") == Counter({"Storage": 1, "storage": 1, "STORAGE": 1})


def test_casefold_merges_cases_in_first_occurrence_order() -> None:
    counts = count("b Storage storage STRASSE straße B".encode(), casefold=True)
    assert list(counts.items()) == [("b", 2), ("storage", 2), ("strasse", 2)]


def test_ties_keep_first_occurrence_order() -> None:
    data = b"b a c a, b. (c) z"
    assert top_words(count(data), 3) == [("b", 2), ("a", 2), ("c", 2)]
    assert top_words(count(data), 4) == tutorial_counts(data).most_common(4)


def test_first_occurrence_is_that_of_the_stripped_word() -> None:
    # "(a" appears before any bare "a": the stripped word a keeps that earlier position.
    data = b"x (a b b a a x b"
    assert top_words(count(data), 3) == [("a", 3), ("b", 3), ("x", 2)]


@pytest.mark.parametrize("whitespace", UNICODE_WHITESPACE, ids=lambda char: f"U+{ord(char):04X}")
def test_every_unicode_whitespace_separates_words(whitespace: str) -> None:
    data = f"alpha{whitespace}beta,{whitespace}alpha".encode()
    assert list(count(data).items()) == [("alpha", 2), ("beta", 1)]


@pytest.mark.parametrize("character", ["\u200b", "\u180e", "\ufeff", "\u2060"], ids=lambda c: f"U+{ord(c):04X}")
def test_zero_width_characters_are_not_whitespace(character: str) -> None:
    assert list(count(f"a{character}b".encode())) == [f"a{character}b"]


def test_whitespace_only_str_knows_next_to_punctuation() -> None:
    data = ",\u3000, a\xa0!! \x1c-".encode()
    assert list(count(data).items()) == list(tutorial_counts(data).items())


def test_empty_and_whitespace_only_inputs_have_no_words() -> None:
    assert count(b"") == Counter()
    assert count(b" \n\t\r\n ") == Counter()
    assert count("\u3000\xa0".encode()) == Counter()


def test_a_token_longer_than_many_blocks_is_kept_whole() -> None:
    word = "x" * 1000 + "é" * 100
    data = f"a {word}! b {word}".encode()
    assert list(count(data, chunk_size=7).items()) == [("a", 1), (word, 2), ("b", 1)]


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"\xff", 0),
        (b"good words \x80 here", 11),
        (b"caf\xc3 ok", 3),  # a lead byte followed by ASCII
        (b"ends in the middle \xe2\x80", 19),  # a character cut off at the end of the file
        (b"surrogate \xed\xa0\x80 is not UTF-8", 10),
    ],
)
@pytest.mark.parametrize("chunk_size", [1, 2, 5, 64 * 1024])
def test_invalid_utf8_reports_the_byte_offset(data: bytes, offset: int, chunk_size: int) -> None:
    with pytest.raises(InputNotUtf8Error) as raised:
        count(data, chunk_size=chunk_size)
    assert raised.value.offset == offset
    assert f"byte offset {offset}" in str(raised.value)


def test_invalid_utf8_offset_counts_a_stripped_bom() -> None:
    with pytest.raises(InputNotUtf8Error) as raised:
        count(b"\xef\xbb\xbfab \xff", strip_bom=True, chunk_size=2)
    assert raised.value.offset == 6


def test_chunk_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        count(b"a", chunk_size=0)


_ASCII_ALPHABET = [*"abcAB,.'!-()\"", " ", " ", "\n", "\t", "\r\n"]
_UNICODE_ALPHABET = [*_ASCII_ALPHABET, "é", "\u2019", "—", "数", "\ufeff", "\u200b", "😀", *UNICODE_WHITESPACE]


def _random_text(rng: random.Random, alphabet: list[str]) -> bytes:
    pieces = [rng.choice(alphabet) for _ in range(rng.randint(0, 80))]
    if rng.random() < 0.3:
        pieces.insert(0, "\ufeff")
    return "".join(pieces).encode()


@pytest.mark.parametrize("alphabet", [_ASCII_ALPHABET, _UNICODE_ALPHABET], ids=["ascii", "unicode"])
@pytest.mark.parametrize("seed", range(8))
def test_streamed_counts_equal_the_tutorials_for_generated_inputs(alphabet: list[str], seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        data = _random_text(rng, alphabet)
        expected = tutorial_counts(data)
        for chunk_size in (1, 2, 3, 4, 7, 64 * 1024):
            got = count(data, chunk_size=chunk_size)
            # Same words, same counts, same first-occurrence order (so the same ties in most_common).
            assert list(got.items()) == list(expected.items()), (data, chunk_size)
            assert top_words(got, 3) == expected.most_common(3)


@pytest.mark.parametrize("seed", range(4))
def test_casefold_equals_folding_the_tutorials_words(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        data = _random_text(rng, [*_UNICODE_ALPHABET, "ß", "SS", "Σ", "ς"])
        expected = Counter([w.strip(string.punctuation).casefold() for w in data.decode().split()])
        for chunk_size in (1, 3, 64 * 1024):
            assert list(count(data, casefold=True, chunk_size=chunk_size).items()) == list(expected.items())


class _ReadCounter(io.BytesIO):
    """A stream that counts the bytes handed out."""

    bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        block = super().read(size)
        self.bytes_read += len(block)
        return block


def test_nbsp_early_in_the_file_switches_to_the_exact_pass_after_one_block() -> None:
    data = "a\xa0b ".encode() + b"plain words " * 50_000
    stream = _ReadCounter(data)
    counts = count_words(stream, chunk_size=4096)
    assert list(counts.items()) == [("a", 1), ("b", 1), ("plain", 50_000), ("words", 50_000)]
    # The fast pass stopped after its first block instead of reading the whole file before the exact pass.
    assert stream.bytes_read <= len(data) + 4096


def test_invalid_utf8_early_in_the_file_is_reported_without_reading_it_all() -> None:
    stream = _ReadCounter(b"caf\xe9 " + b"plain words " * 50_000)
    with pytest.raises(InputNotUtf8Error, match=r"byte offset 3$"):
        count_words(stream, chunk_size=4096)
    assert stream.bytes_read <= 2 * 4096
