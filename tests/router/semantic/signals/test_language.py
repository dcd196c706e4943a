"""language: py3langid's best language and its normalized probability, when listed."""

from __future__ import annotations

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import language
from triskel.router.semantic.signals.base import SignalContext, SignalInput, SignalResult

# Loading the model takes ~0.5 s: one signal for most tests.
LISTED = ["en", "fr", "de", "es", "zh", "ja"]


@pytest.fixture(scope="module")
def signal() -> language.LanguageSignal:
    return language.create("lang", {"languages": LISTED}, SignalContext(), "semantic.signals[0]")


def ask(text: str) -> SignalInput:
    return SignalInput(text=text, conversation_text=text, prompt_tokens=len(text) // 4)


def test_module_exposes_what_the_registry_needs(signal: language.LanguageSignal) -> None:
    assert language.TYPE_NAME == "language"
    assert language.SUMMARY
    assert signal.name == "lang"
    assert signal.outputs == frozenset(LISTED)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Could you help me write a function that sorts a list of numbers?", "en"),
        ("Pouvez-vous m'aider à écrire une fonction qui trie une liste de nombres ?", "fr"),
        ("Kannst du mir helfen, eine Funktion zu schreiben, die eine Liste sortiert?", "de"),
        ("¿Puedes ayudarme a escribir una función que ordene una lista de números?", "es"),
        ("你能帮我写一个对数字列表进行排序的函数吗？", "zh"),
        ("数値のリストを並べ替える関数を書くのを手伝ってもらえますか？", "ja"),
        # All capitals: py3langid lower-cases a text that is all upper case.
        ("COULD YOU HELP ME WRITE A FUNCTION THAT SORTS A LIST?", "en"),
    ],
)
def test_detects_listed_languages(signal: language.LanguageSignal, text: str, code: str) -> None:
    result = signal.evaluate(ask(text))
    assert result.fired
    assert result.values == (code,)
    # The score is the model's probability: these sentences are unambiguous.
    assert 0.8 <= result.score <= 1.0


def test_a_language_not_listed_does_not_fire(signal: language.LanguageSignal) -> None:
    # Clearly Italian (p ≈ 0.99), and Italian is not listed.
    text = "Potresti aiutarmi a scrivere una funzione che ordina un elenco di numeri?"
    assert signal.evaluate(ask(text)) == SignalResult(False)


@pytest.mark.parametrize("text", ["ok thanks", "   Bonjour !   ", ""])
def test_texts_shorter_than_min_chars_do_not_fire(
    signal: language.LanguageSignal, text: str
) -> None:
    assert not signal.evaluate(ask(text)).fired


def test_min_chars_and_min_confidence_are_applied() -> None:
    # "ok thanks" (9 characters) reads as English with p ≈ 0.55: it fires once short
    # texts are allowed, and no longer when 0.9 is required.
    lenient = language.create("l", {"languages": ["en"], "minChars": 1}, SignalContext(), "s")
    result = lenient.evaluate(ask("ok thanks"))
    assert result.fired and result.values == ("en",)
    strict = language.create(
        "l", {"languages": ["en"], "minChars": 1, "minConfidence": 0.9}, SignalContext(), "s"
    )
    assert not strict.evaluate(ask("ok thanks")).fired


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        ({"languages": ["en", "english"]}, "languages[1]", "'english' is not a language"),
        # Codes are lower case, as py3langid reports them.
        ({"languages": ["EN"]}, "languages[0]", "'EN' is not a language"),
        ({}, "languages", "Field required"),
        ({"languages": []}, "languages", "at least 1"),
        ({"languages": ["en"], "minConfidence": 1.5}, "minConfidence", "less than or equal"),
        ({"languages": ["en"], "minChars": 0}, "minChars", "greater than or equal"),
        ({"languages": ["en"], "threshold": 0.5}, "threshold", "Extra inputs"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    parameters: dict[str, object], path: str, message: str
) -> None:
    with pytest.raises(SemanticConfigError, match=message) as refused:
        language.create("lang", parameters, SignalContext(), "semantic.signals[4]")
    assert refused.value.path == f"semantic.signals[4].parameters.{path}"
