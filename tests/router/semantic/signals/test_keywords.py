"""keywords: whole words, substrings or regexes; one of `any` and all of `all`."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import keywords
from triskel.router.semantic.signals.base import SignalContext, SignalInput, SignalResult

PATH = "semantic.signals[3]"


def build(**parameters: Any) -> keywords.KeywordsSignal:
    return keywords.create("kw", parameters, SignalContext(), PATH)


def fires(text: str, **parameters: Any) -> bool:
    result = build(**parameters).evaluate(
        SignalInput(text=text, conversation_text=text, prompt_tokens=len(text) // 4)
    )
    assert result.values == ()
    return result.fired


def test_module_exposes_what_the_registry_needs() -> None:
    assert keywords.TYPE_NAME == "keywords"
    assert keywords.SUMMARY
    signal = build(any=["python"])
    assert signal.name == "kw"
    # A yes/no signal: rules may only say {signal: kw}.
    assert signal.outputs == frozenset()


def test_fired_result_is_exact() -> None:
    request = SignalInput(text="python", conversation_text="python", prompt_tokens=2)
    assert build(any=["python"]).evaluate(request) == SignalResult(True, (), 1.0)


@pytest.mark.parametrize(
    ("text", "words", "expected"),
    [
        # The keyword stands alone between spaces and punctuation.
        ("what is the sum of 2 and 3?", ["sum"], True),
        ("Sum: 5", ["sum"], True),
        # Inside a longer word: not the word.
        ("write a summary", ["sum"], False),
        ("checksum this", ["sum"], False),
        # Underscore and digits continue a word (identifiers are single words).
        ("call my_sum()", ["sum"], False),
        ("sum2", ["sum"], False),
        # A phrase's space stands for any run of whitespace, line breaks included.
        ("I study machine\n   learning", ["machine learning"], True),
        ("machinelearning", ["machine learning"], False),
        # Whole words on both ends of a phrase too.
        ("machine learnings", ["machine learning"], False),
        # Punctuation at an end has no boundary to check.
        ("modern c++17 code", ["c++"], True),
        ("abc++ code", ["c++"], False),
        ("built on asp.net core", [".net"], True),
        # One of several is enough.
        ("I love rust", ["python", "rust"], True),
        ("I love go", ["python", "rust"], False),
        # Accented letters are letters: "café" is a word, "cafés" another.
        ("un café noir", ["café"], True),
        ("deux cafés", ["café"], False),
        ("Grüße aus München", ["münchen"], True),
        ("Münchener Bier", ["münchen"], False),
        # Cyrillic and Greek letters bound words like Latin ones.
        ("привет, мир", ["мир"], True),
        ("мировой", ["мир"], False),
        ("καλημέρα κόσμε", ["κόσμε"], True),
        # CJK has no spaces between words: a CJK keyword is found as a substring...
        ("我想使用数据库存储", ["数据库"], True),
        ("データベースを使う", ["データベース"], True),
        ("서울에서 만나요", ["서울"], True),
        # ...and a Latin keyword next to CJK characters is still a whole word.
        ("我喜欢AI编程", ["ai"], True),
        ("我喜欢AIR编程", ["ai"], False),
        # A mixed keyword keeps the boundary at its Latin end.
        ("用GPU加速", ["gpu加速"], True),
        ("NVIDIAGPU加速", ["gpu加速"], False),
    ],
)
def test_word_matching(text: str, words: list[str], expected: bool) -> None:
    assert fires(text, any=words) is expected


@pytest.mark.parametrize(
    ("text", "parameters", "expected"),
    [
        # Case is ignored by default, both ways.
        ("PYTHON rocks", {"any": ["python"]}, True),
        ("python rocks", {"any": ["PYTHON"]}, True),
        # Full case folding: "ß" folds to "ss", "É" to "é".
        ("die STRASSE", {"any": ["straße"]}, True),
        ("CAFÉ", {"any": ["café"]}, True),
        # caseSensitive: the case must be the keyword's.
        ("PYTHON rocks", {"any": ["python"], "caseSensitive": True}, False),
        ("Python rocks", {"any": ["Python"], "caseSensitive": True}, True),
        # An "é" sent decomposed ("e" + combining acute) is still an "é"...
        ("un cafe\u0301 noir", {"any": ["café"]}, True),
        # ...and "cafe" is not a whole word of it.
        ("un cafe\u0301 noir", {"any": ["cafe"]}, False),
        # substring: inside words, as written.
        ("write a summary", {"any": ["sum"], "match": "substring"}, True),
        ("machine  learning", {"any": ["machine learning"], "match": "substring"}, False),
        ("SUMMARY", {"any": ["sum"], "match": "substring"}, True),
        # regex: searched anywhere; IGNORECASE unless caseSensitive.
        ("see JIRA-123 now", {"any": [r"\bjira-\d+\b"], "match": "regex"}, True),
        (
            "see JIRA-123 now",
            {"any": [r"\bjira-\d+\b"], "match": "regex", "caseSensitive": True},
            False,
        ),
        ("see JIRA-x now", {"any": [r"\bjira-\d+\b"], "match": "regex"}, False),
        # A backreference counts the groups of its own regex, whatever its neighbours.
        ("this is is doubled", {"any": [r"(a)\1", r"\b(\w+) \1\b"], "match": "regex"}, True),
        ("nothing doubled", {"any": [r"(a)\1", r"\b(\w+) \1\b"], "match": "regex"}, False),
        # A scoped inline flag is allowed.
        ("a\nb", {"any": [r"(?s:a.b)"], "match": "regex"}, True),
    ],
)
def test_case_and_modes(text: str, parameters: dict[str, Any], expected: bool) -> None:
    assert fires(text, **parameters) is expected


@pytest.mark.parametrize(
    ("text", "parameters", "expected"),
    [
        # Every `all` keyword present, in any order.
        ("add a test for this unit", {"all": ["unit", "test"]}, True),
        ("add a unit here", {"all": ["unit", "test"]}, False),
        # Whole words still: "testing" is not "test".
        ("unit testing", {"all": ["unit", "test"]}, False),
        # any and all together: one of `any` and every one of `all`.
        ("python unit test", {"any": ["python", "rust"], "all": ["unit", "test"]}, True),
        ("go unit test", {"any": ["python", "rust"], "all": ["unit", "test"]}, False),
        ("python test", {"any": ["python", "rust"], "all": ["unit", "test"]}, False),
        # all with regexes, groups included.
        ("v1.2 and v3.4", {"all": [r"v\d", r"(\d)\.\d"], "match": "regex"}, True),
        ("v1 only", {"all": [r"v\d", r"(\d)\.\d"], "match": "regex"}, False),
    ],
)
def test_any_and_all(text: str, parameters: dict[str, Any], expected: bool) -> None:
    assert fires(text, **parameters) is expected


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        # Default scope reads the last user message only: the system prompt is not there.
        (None, False),
        ("last_user", False),
        # conversation reads every message.
        ("conversation", True),
    ],
)
def test_scope(scope: str | None, expected: bool) -> None:
    parameters: dict[str, Any] = {"any": ["python"]}
    if scope is not None:
        parameters["scope"] = scope
    request = SignalInput(
        text="how do I sort a list?",
        conversation_text="You are a Python tutor.\nhow do I sort a list?",
        prompt_tokens=12,
    )
    assert build(**parameters).evaluate(request).fired is expected


def test_any_keywords_are_one_regex() -> None:
    # One alternation for any, however many keywords; compiled once, at load.
    signal = build(any=["a", "b", "c d", "é", "数据"])
    assert len(signal._any_patterns) == 1


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        ({}, "semantic.signals[3].parameters", "at least one keyword"),
        ({"any": [], "all": []}, "semantic.signals[3].parameters", "at least one keyword"),
        ({"any": ["ok", ""]}, "semantic.signals[3].parameters.any[1]", "at least 1 character"),
        ({"all": ["ok", "  "]}, "semantic.signals[3].parameters.all[1]", "only whitespace"),
        (
            {"any": ["ok", "(unclosed"], "match": "regex"},
            "semantic.signals[3].parameters.any[1]",
            "not a valid regular expression: missing ), unterminated subpattern at position 0",
        ),
        (
            {"all": ["[z-a]"], "match": "regex"},
            "semantic.signals[3].parameters.all[0]",
            "bad character range z-a",
        ),
        (
            {"any": ["ok", "(?i)python"], "match": "regex"},
            "semantic.signals[3].parameters.any[1]",
            "must scope a group",
        ),
        # Would fire on every request.
        (
            {"any": ["foo|"], "match": "regex"},
            "semantic.signals[3].parameters.any[0]",
            "matches the empty string",
        ),
        (
            {"any": ["x*"], "match": "regex"},
            "semantic.signals[3].parameters.any[0]",
            "matches the empty string",
        ),
        ({"any": ["x"], "match": "fuzzy"}, "semantic.signals[3].parameters.match", "'word'"),
        ({"any": ["x"], "scope": "system"}, "semantic.signals[3].parameters.scope", "last_user"),
        ({"any": ["x"], "anyOf": ["y"]}, "semantic.signals[3].parameters.anyOf", "not permitted"),
        ({"any": "python"}, "semantic.signals[3].parameters.any", "tuple"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    parameters: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SemanticConfigError) as caught:
        build(**parameters)
    assert caught.value.path == path
    assert message in caught.value.message
