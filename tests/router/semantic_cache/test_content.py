"""Content words: what a prompt asks about, and the few words two prompts differ in."""

from __future__ import annotations

import pytest

from triskel.router.semantic_cache.content import (
    MAX_SUBSTITUTED_WORDS,
    content_text,
    content_words,
    direction,
    substitution,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Framing words go; endings are cut (lists → list); order stays.
        ("How do I reverse a list in Python?", ("reverse", "list", "python")),
        ("Could you please show me how to sort lists?", ("sort", "list")),
        # Numbers and negations have their own guards; stems are rough but the same on
        # both sides of a comparison.
        ("Don't add 5 apples", ("add", "appl")),
        ("ne pas ajouter des pommes", ("ajouter", "pomm")),
    ],
)
def test_content_words(text: str, expected: tuple[str, ...]) -> None:
    assert content_words(text) == expected


def test_a_prompt_of_framing_words_is_embedded_as_itself() -> None:
    assert content_text("how do I do it?") == "how do I do it?"
    assert content_text("Sort the list") == "sort list"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # Paraphrases: the same content words, in any order, across typos and endings.
        ("How do I reverse a list in Python?", "what's the way to reverse a python list", None),
        ("How do I revers a list in pyhton", "How do I reverse a list in Python", None),
        ("sorting lists", "sort a list", None),
        # A swapped word is the point of the change.
        ("What is the largest planet?", "What is the smallest planet?", ("largest", "smallest")),
        ("Sort a list in Python", "Sort a dict in Python", ("list", "dict")),
        # Words added on one side only are left to the other guards and the threshold
        # (they are mostly framing: "write", "ideas"); forms of one word are no swap.
        ("List fruits", "List red fruits", None),
        ("Convert a string to an int", "string to integer conversion", None),
        # Worded apart: similarity decides, not this rule.
        (
            "Explain the causes of the First World War in detail for a history class",
            "Why did World War One start? Keep it short, it's for school",
            None,
        ),
    ],
)
def test_substitution(a: str, b: str, expected: tuple[str, ...] | None) -> None:
    assert substitution(content_words(a), content_words(b)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The content words on each side of the first direction word that has both.
        ("Convert a list to a tuple in Python", ("list", "tuple")),
        ("Python: a list into a tuple", ("list", "tuple")),
        ("Convert a tuple to a list in Python", ("tuple", "list")),
        # "how to": nothing before it but framing.
        ("How to merge dictionaries", None),
        ("merge dictionaries", None),
    ],
)
def test_direction(text: str, expected: tuple[str, str] | None) -> None:
    assert direction(text) == expected


def test_more_than_a_few_differing_words_is_no_substitution() -> None:
    a = ("alpha", "beta")
    b = tuple(f"word{i}x" for i in range(MAX_SUBSTITUTED_WORDS))
    assert substitution(a, b) is None
