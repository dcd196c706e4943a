"""Lexical guards: the defence against neighbours that are close but mean otherwise."""

from __future__ import annotations

import orjson
import pytest

from triskel.router.semantic_cache.guards import (
    Guard,
    LanguageDetector,
    QueryGuard,
    guard_of,
    guards_agree,
    normalize_number,
    query_disagreement,
)


class NoLanguage:
    """A detector that never knows: isolates the other rules."""

    def detect(self, text: str) -> str | None:
        return None


NO_LANGUAGE = NoLanguage()


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Add 1,000 and 1000", ("1000", "1000")),  # thousands separators go; repeats stay
        ("It costs 3.50 or 3.5", ("3.5", "3.5")),  # trailing decimal zeros go
        ("Is 2.0 equal to 2?", ("2", "2")),
        ("Agent 007", ("7",)),  # leading zeros go
        ("Take two pills, then twenty", ("2", "20")),  # number words one..twenty count
        ("It is -5 outside", ("-5",)),  # a sign before a number counts
        ("Compare GPT-4 with pages 5-10", ("10", "4", "5")),  # a hyphen inside is no sign
        ("Someone forgot", ()),  # "one" inside a word is no number
        ("Python v3", ()),  # digits glued to letters belong to a name, not a number
        ("thirty-five or forty two or ninety", ("35", "42", "90")),  # compound number words
        ("print 1..100", ("1", "100")),  # a range
        ("simplify x² - 9", ("2", "9")),  # a superscript is a power
        # A unit written after a number belongs to it, written out or not.
        ("a radius of 4 cm, not 4 m", ("4cm", "4m")),
        ("4 metres in 3 hours", ("3h", "4m")),
        ("three hours, 20 °C", ("20°c", "3h")),
        ("put 3 in the list", ("3",)),  # "in" after a number is the preposition
    ],
)
def test_numbers_are_normalised(text: str, numbers: tuple[str, ...]) -> None:
    assert guard_of(text, NO_LANGUAGE).numbers == numbers


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ((None, "1,000", None), "1000"),
        ((None, "3", "50"), "3.5"),
        ((None, "3", "00"), "3"),
        (("-", "0", None), "0"),  # no negative zero
        (("−", "4", None), "-4"),  # the Unicode minus too
    ],
)
def test_normalize_number(parts: tuple[str | None, str, str | None], expected: str) -> None:
    assert normalize_number(*parts) == expected


@pytest.mark.parametrize(
    ("text", "negations"),
    [
        ("List fruits that are not red", ("not",)),
        ("Don't list red fruits", ("not",)),  # n't is `not`
        ("I cannot eat red fruits", ("not",)),
        ("No red fruits please", ("not",)),
        ("Fruits without seeds, except apples", ("except", "without")),
        ("Never eat neither this nor that", ("never", "nor")),
        ("Liste les fruits qui ne sont pas rouges", ("not",)),  # French ne ... pas
        ("Ce n'est pas rouge", ("not",)),  # French n'
        ("Früchte ohne Kerne, die nicht rot sind", ("not", "without")),  # German
        ("Frutas que no son rojas", ("not",)),  # Spanish
        ("Frutti senza semi", ("without",)),  # Italian
        ("Frutas que não são vermelhas", ("not",)),  # Portuguese
        ("列出不是红色的水果", ("not",)),  # Chinese 不
        ("赤くない果物", ("not",)),  # Japanese ない
        ("빨갛지 않은 과일", ("not",)),  # Korean 않
        ("List red fruits", ()),
        ("Sort names in reverse alphabetical order", ("reverse",)),  # reversal: its own kind
    ],
)
def test_negation_markers(text: str, negations: tuple[str, ...]) -> None:
    assert guard_of(text, NO_LANGUAGE).negations == negations


@pytest.mark.parametrize(
    ("text", "language_names"),
    [
        ("Answer in French", ("fr",)),
        ("Antworte auf Deutsch", ("de",)),
        ("Responde en español", ("es",)),
        ("Translate from English to French", ("en", "fr")),
        ("Translate to French from English", ("fr", "en")),  # order of mention is kept
        ("Traduis en anglais, pas en anglais britannique", ("en",)),  # once each
        ("请用中文回答", ("zh",)),  # a name written without spaces
        ("What is a fruit?", ()),
    ],
)
def test_language_names(text: str, language_names: tuple[str, ...]) -> None:
    assert guard_of(text, NO_LANGUAGE).language_names == language_names


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Is the iPhone15 better?", ("iphone15",)),  # digits inside a word
        ("Compare GPT-4 and Llama", ("gpt-4", "llama")),  # hyphenated with digits; a capital
        ("How does JavaScript work?", ("javascript",)),  # inner capital
        ("Apples are red", ()),  # a capital at the start of a sentence is no name
        ("I like red. Apples too!", ()),  # nor after a full stop; "I" is no name
        ("Explain the word 'serendipity'", ("serendipity",)),  # quoted
        ('What does "carpe diem" mean?', ("carpe diem",)),
        ("Why does os.path.join() fail?", ("os.path.join()",)),  # code: dotted call
        ("Rename my_var please", ("my_var",)),  # code: snake_case
        ("Call parse(x) twice", ("parse",)),  # code: a call
        ("Is e.g. short?", ()),  # an abbreviation is no identifier
    ],
)
def test_name_like_tokens(text: str, names: tuple[str, ...]) -> None:
    assert guard_of(text, NO_LANGUAGE).names == names


def test_capitals_are_no_names_in_german(detector: LanguageDetector) -> None:
    # German capitalises every noun; only marked names (digits, quotes...) count there.
    guard = guard_of("Wie repariere ich das Auto meiner Firma ohne Werkzeug?", detector)
    assert guard.language == "de"
    assert guard.names == ()


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Please list the fruits that grow in Spain", "en"),
        ("Liste les fruits qui poussent en Espagne", "fr"),
        ("Nenne die Früchte, die in Spanien wachsen", "de"),
        ("Red fruits?", None),  # under 20 letters: too short to tell
    ],
)
def test_detected_language(detector: LanguageDetector, text: str, language: str | None) -> None:
    assert guard_of(text, detector).language == language


@pytest.mark.parametrize(
    ("first", "second", "reason"),
    [
        # The motivating near miss: one "not" apart.
        ("List red fruits", "List fruits that are not red", "negation differs"),
        ("Convert 5 miles to km", "Convert 50 miles to km", "numbers differ"),
        ("Convert 5 miles to km", "Convert five miles to km", None),  # same number
        ("Add 1,000 dollars", "Add 1000 dollars", None),
        (
            "Answer in French: what is a fruit",
            "Answer in German: what is a fruit",
            "language differs",
        ),
        (
            "Translate from English to French",
            "Translate from French to English",
            "language differs",
        ),
        ("Is the iPhone15 good?", "Is the iPhone14 good?", "names differ"),
        ("Compare it with Rust", "Compare it with Go", "names differ"),
        # Names are looked up case-insensitively among the other text's words.
        ("How fast is Rust?", "how fast is rust?", None),
        # A name at the start of a sentence is not a name there, but it is a word: agree.
        ("Tell me about Paris", "Paris facts, please", None),
        ("Never eat apples", "Do not eat apples", "negation differs"),  # never is not `not`
        ("Don't eat apples", "Do not eat apples", None),  # n't is `not`
        ("List red fruits", "List some red fruits", None),  # nothing lexical differs
    ],
)
def test_guards_agree(first: str, second: str, reason: str | None) -> None:
    a, b = guard_of(first, NO_LANGUAGE), guard_of(second, NO_LANGUAGE)
    assert guards_agree(a, b) == reason
    assert guards_agree(b, a) == reason  # symmetric


def test_detected_languages_must_agree_when_both_known(detector: LanguageDetector) -> None:
    english = guard_of("Please list the fruits that grow in Spain", detector)
    french = guard_of("Liste les fruits qui poussent en Espagne", detector)
    short = guard_of("Red fruits?", detector)  # language unknown: no verdict
    assert guards_agree(english, french) == "language differs"
    assert english.language is not None and short.language is None
    assert guards_agree(short, guard_of("Red fruits!", detector)) is None


def test_a_guard_is_hashable_and_round_trips_through_json(detector: LanguageDetector) -> None:
    guard = guard_of("Don't translate 'carpe diem' to French for GPT-4, 2 times", detector)
    assert guard.words >= {"don", "t", "carpe", "diem", "french", "gpt", "4", "2"}
    copy = Guard.from_json(orjson.loads(orjson.dumps(guard.to_json())))
    assert copy == guard
    assert hash(copy) == hash(guard)


def test_only_the_start_of_a_long_text_is_read_for_its_language(
    detector: LanguageDetector,
) -> None:
    english = "Please list the fruits that grow in Spain and say when each is picked. " * 5
    french = "Merci de dresser la liste des fruits qui poussent en Espagne chaque année. " * 20
    assert len(english) > 300
    assert detector.detect(english + french) == "en"
    assert detector.detect(french) == "fr"


class CountingDetector:
    def __init__(self) -> None:
        self.num_calls = 0

    def detect(self, text: str) -> str | None:
        self.num_calls += 1
        return "en"


def test_a_query_guard_detects_the_language_only_past_the_quick_parts() -> None:
    detector = CountingDetector()
    stored = guard_of("Convert 5 miles to km", NO_LANGUAGE)
    # Another number: the quick parts turn the neighbour away, no detection.
    other_number = QueryGuard("Convert 50 miles to km", detector)
    assert query_disagreement(other_number, stored) == "numbers differ"
    assert detector.num_calls == 0
    # The quick parts agree: the rest is computed once, and the verdict is the whole
    # guard's.
    same = QueryGuard("convert 5 miles into km please", detector)
    assert query_disagreement(same, stored) is None
    assert query_disagreement(same, stored) is None
    assert detector.num_calls == 1
    assert same() == guard_of("convert 5 miles into km please", CountingDetector())


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What does Marta do?", "What does Jonas do?"),
        ("List fruits that are not red", "List red fruits"),
        ("Write a haiku about spring", "Write a haiku about winter"),
        ("Sort a list in Python", "Sort a list in Python"),
    ],
)
def test_a_query_guard_gives_the_whole_guards_verdict(
    detector: LanguageDetector, first: str, second: str
) -> None:
    stored = guard_of(second, detector)
    whole = guards_agree(guard_of(first, detector), stored)
    assert (query_disagreement(QueryGuard(first, detector), stored) is None) == (whole is None)
