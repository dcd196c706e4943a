"""The contrast lexicon: opposite poles and named siblings contrast, forms of one pole do not."""

from __future__ import annotations

import pytest

from triskel.router.semantic_cache.content import content_words
from triskel.router.semantic_cache.contrasts import ContrastLexicon


@pytest.fixture(scope="module")
def lexicon() -> ContrastLexicon:
    return ContrastLexicon(lambda word: word)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("largest", "smallest"),
        ("larger", "smallest"),  # any forms of the two poles
        ("first", "last"),
        ("before", "after"),
        ("sum", "average"),
        ("encrypt", "decrypt"),
        ("python", "rust"),
        ("mysql", "postgres"),
        ("km", "miles"),
        # A set written over two lines is one set.
        ("benefits", "risks"),
    ],
)
def test_contrasting_words(lexicon: ContrastLexicon, a: str, b: str) -> None:
    assert lexicon.contrast(a, b)
    assert lexicon.contrast(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("good", "best"),  # one pole
        ("add", "sum"),  # "add" is also on the sum's pole
        ("remove", "delete"),
        ("largest", "python"),  # different sets
        ("often", "frequently"),  # unknown words
        ("largest", "largest"),
    ],
)
def test_words_that_do_not_contrast(lexicon: ContrastLexicon, a: str, b: str) -> None:
    assert not lexicon.contrast(a, b)


def test_the_lookup_stems_words_as_content_words_are_stemmed() -> None:
    lexicon = ContrastLexicon(lambda word: content_words(word)[0] if content_words(word) else word)
    assert lexicon.contrast(content_words("descending")[0], content_words("ascending")[0])
