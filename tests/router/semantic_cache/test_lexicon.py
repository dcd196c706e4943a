"""The guards' word lists stay consistent as they grow."""

from __future__ import annotations

import re

from triskel.router.semantic_cache.lexicon import (
    LANGUAGE_NAME_WORDS,
    NEGATION_WORDS,
    NUMBER_WORDS,
)


def test_keys_are_casefolded_single_words() -> None:
    # The guards look words up casefolded, one \w+ run at a time: other keys never match.
    for table in (NUMBER_WORDS, NEGATION_WORDS, LANGUAGE_NAME_WORDS):
        for word in table:
            assert word == word.casefold() and re.fullmatch(r"\w+", word), word


def test_number_words_run_from_two_to_twenty() -> None:
    # "zero" and "one" are rarely counts in a prompt ("one line at a time").
    assert NUMBER_WORDS["two"] == "2" and NUMBER_WORDS["twenty"] == "20"
    assert "one" not in NUMBER_WORDS and "zero" not in NUMBER_WORDS
    assert len(NUMBER_WORDS) == 19


def test_negation_kinds_are_few() -> None:
    assert set(NEGATION_WORDS.values()) == {"not", "never", "without", "except", "nor"}
    assert NEGATION_WORDS["ausser"] == NEGATION_WORDS["außer".casefold()] == "except"


def test_language_names_map_to_iso_codes() -> None:
    assert {LANGUAGE_NAME_WORDS[w] for w in ("french", "französisch", "francés")} == {"fr"}
    assert all(len(code) == 2 for code in LANGUAGE_NAME_WORDS.values())
