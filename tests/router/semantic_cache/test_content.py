"""Content words: what a prompt asks about, and the few words two prompts differ in."""

from __future__ import annotations

import pytest

from triskel.router.semantic_cache.content import (
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
        # A word swapped for its opposite or a sibling is the point of the change.
        ("What is the largest planet?", "What is the smallest planet?", ("largest", "smallest")),
        ("Sort a list in Python", "Sort a dict in Python", ("list", "dict")),
        ("Sort in ascending order", "Sort in descending order", ("ascend", "descend")),
        ("install numpy with pip", "install pandas with pip", ("numpy", "panda")),
        # However worded apart the rest is.
        (
            "Which planet of our solar system is the largest one, and why?",
            "smallest planet in the solar system",
            ("largest", "smallest"),
        ),
        # A swap the lexicon does not know is rewording; a shared pole is no contrast.
        ("How can I remove duplicates from a list?", "delete duplicate items from a list", None),
        ("What is a good way to learn Spanish?", "best way to learn Spanish", None),
        ("What do the angles of a triangle add up to?", "sum of a triangle's angles", None),
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


def test_a_contrast_needs_its_word_missing_from_the_other_side() -> None:
    # Both prompts name both ends of the scale: nothing was swapped.
    assert (
        substitution(content_words("largest or smallest"), content_words("smallest, largest"))
        is None
    )
