"""Lexical guards: what a semantic neighbour must share with a prompt to answer it.

Embeddings rate "list red fruits" and "list fruits that are not red" 0.97 alike, and
"convert 5 miles to km" and "convert 50 miles to km" more alike still. A neighbour
above the similarity threshold answers only if both texts also agree on:

    numbers         the same multiset ("1,000" = "1000", "3.50" = "3.5", "two" = "2")
    negation        the same kinds of markers (not / never / without / except / nor),
                    and of reversal ("reverse", "opposite", "backwards")
    language names  the same languages named, in the same order ("from English to French")
    language        the same detected language, when both texts are long enough to tell
    names           every name-like token of each text among the other's words
    content words   not a few of them swapped ("largest" / "smallest", "list" / "dict"),
                    nor the two around "to" / "from" in reverse order: see content.py

A `Guard` is computed once per prompt and stored with its cache entry, so checking a
neighbour needs no text. Pure, apart from the language model a `LanguageDetector`
loads once.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from triskel.router.semantic_cache.content import content_words, direction, substitution
from triskel.router.semantic_cache.lexicon import (
    LANGUAGE_NAME_SUBSTRINGS,
    LANGUAGE_NAME_WORDS,
    NEGATION_SUBSTRINGS,
    NEGATION_WORDS,
    NUMBER_WORDS,
    REVERSAL_WORDS,
    TENS_WORDS,
    UNIT_SYMBOLS,
    UNIT_WORDS,
)

# Not after a letter, digit or point: "GPT-4" holds 4, "v1.2" holds none (it is a name);
# after a range's two points it is a number ("1..100").
_NUMBER = re.compile(r"(?:(?<![\w.])|(?<=\.\.))([-−])?(\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?:\.(\d+))?")
# "thirty-five", "forty two", "ninety".
_COMPOUND_NUMBER = re.compile(rf"\b({'|'.join(TENS_WORDS)})(?:[- ]({'|'.join(UNIT_WORDS)}))?\b")
_UNIT = re.compile(r" ?(°?[^\W\d_]+)")
# x² is x^2 (NFC keeps superscripts as they are).
_SUPERSCRIPTS = str.maketrans({c: f"^{d}" for d, c in enumerate("⁰¹²³⁴⁵⁶⁷⁸⁹")})
_PIECE = re.compile(r"\w+")
_WORD_WITH_APOSTROPHES = re.compile(r"\w+(?:'\w+)*")
_NAME_CANDIDATE = re.compile(r"\w+(?:[-']\w+)*")
_LETTER_THEN_DIGIT = re.compile(r"[^\W\d_]-?\d")
_QUOTED = re.compile(
    r"\"([^\"\n]{1,200})\"|“([^”\n]{1,200})”|«([^»\n]{1,200})»|`([^`\n]{1,200})`"
    r"|(?<!\w)'([^'\n]{1,200})'(?!\w)"
)
# os.path.join, model.fit() (a segment of 2+ characters, so "e.g." is no identifier),
# snake_case, call(.
_CODE = re.compile(
    r"(?<![\w.])[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:\(\))?"
    r"|\b\w*[A-Za-z]\w*_\w*\b|\b_\w+\b"
    r"|\b[A-Za-z_]\w*(?=\()"
)
_DOTTED_SHORT = re.compile(r"^\w(?:\.\w)+$")
_SENTENCE_ENDS = frozenset(".!?:;\n。！？")
_SKIPPED_BEFORE_WORD = frozenset(" \t\"'“”‘’«»([{*-•>")
# German capitalises every noun: capitals there say nothing about names.
_CAPITALISING_LANGUAGES = frozenset({"de", "lb"})


class DetectsLanguage(Protocol):
    def detect(self, text: str) -> str | None:
        """ISO 639-1 code of `text`'s language, or None when it cannot tell."""
        ...


class LanguageDetector:
    """py3langid's model, loaded once (about half a second); create one and pass it on.

    Texts under `min_letters` letters, or whose best language scores under
    `min_confidence`, get None: a short or mixed text is often misread, and a misread
    language would only turn a good neighbour away. Only the first `max_chars`
    characters are read: they tell the language as well as the whole, and detection
    costs time in proportion to the text (a query is up to 1,000 characters).
    """

    def __init__(
        self, min_letters: int = 20, min_confidence: float = 0.5, max_chars: int = 300
    ) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier: Any = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._min_letters = min_letters
        self._min_confidence = min_confidence
        self._max_chars = max_chars

    def detect(self, text: str) -> str | None:
        text = text[: self._max_chars]
        if sum(1 for char in text if char.isalpha()) < self._min_letters:
            return None
        language, confidence = self._identifier.classify(text)
        return str(language) if confidence >= self._min_confidence else None


@dataclass(frozen=True, slots=True)
class Guard:
    """What a text must share with a neighbour; hashable, and JSON through to/from_json."""

    numbers: tuple[str, ...]  # normalised, sorted, repeats kept
    negations: tuple[str, ...]  # marker kinds, sorted
    language_names: tuple[str, ...]  # ISO codes in order of first mention
    language: str | None  # detected language
    names: tuple[str, ...]  # casefolded, sorted
    words: frozenset[str]  # every casefolded word (\w+ run) of the text
    content: tuple[str, ...] = ()  # content words in order (content.py)
    direction: tuple[str, str] | None = None  # content words around "to", "from"...

    def to_json(self) -> dict[str, Any]:
        return {
            "numbers": list(self.numbers),
            "negations": list(self.negations),
            "language_names": list(self.language_names),
            "language": self.language,
            "names": list(self.names),
            "words": sorted(self.words),
            "content": list(self.content),
            "direction": None if self.direction is None else list(self.direction),
        }

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Guard:
        return cls(
            numbers=tuple(value["numbers"]),
            negations=tuple(value["negations"]),
            language_names=tuple(value["language_names"]),
            language=value["language"],
            names=tuple(value["names"]),
            words=frozenset(value["words"]),
            content=tuple(value.get("content", ())),
            direction=_pair(value.get("direction")),
        )


def guard_of(text: str, detector: DetectsLanguage) -> Guard:
    return QueryGuard(text, detector)()


class QueryGuard:
    """A query's guard, computed in two parts as neighbours need them: the parts any
    text yields quickly (numbers, negations, language names, content words), and on
    the first neighbour that passes those, the rest (the language, which costs most of
    a guard's time, and the names, which depend on it). A neighbour the quick parts
    turn away costs no language detection; the verdict is the same as the whole
    guard's, though its reason may name another guard that disagrees too."""

    def __init__(self, text: str, detector: DetectsLanguage) -> None:
        self._text = unicodedata.normalize("NFC", text).replace("’", "'")
        self._detector = detector
        folded = self._text.casefold()
        self._folded = folded
        self._quick = Guard(
            numbers=tuple(sorted(_numbers(self._text, folded))),
            negations=tuple(sorted(_negations(folded))),
            language_names=_language_names(folded),
            language=None,
            names=(),
            words=frozenset(_PIECE.findall(folded)),
            content=content_words(self._text),
            direction=direction(self._text),
        )
        self._whole: Guard | None = None

    def quick_disagreement(self, other: Guard) -> str | None:
        """Why the quick parts alone turn `other` away, or None."""
        return _quick_disagreement(self._quick, other)

    def __call__(self) -> Guard:
        """The whole guard (computed once)."""
        if self._whole is None:
            language = self._detector.detect(self._text)
            skip_capitals = language in _CAPITALISING_LANGUAGES
            names = tuple(sorted(_names(self._text, skip_capitals)))
            self._whole = dataclasses.replace(self._quick, language=language, names=names)
        return self._whole


def query_disagreement(query: Guard | QueryGuard, other: Guard) -> str | None:
    """`guards_agree` for a query's guard, whole or still to be completed."""
    if isinstance(query, QueryGuard):
        reason = query.quick_disagreement(other)
        if reason is not None:
            return reason
        query = query()
    return guards_agree(query, other)


def guards_agree(a: Guard, b: Guard) -> str | None:
    """None when neither text's guard stops the other; else why, in a few words (the
    first that disagrees, in the order of the module docstring)."""
    quick = _quick_disagreement(a, b)
    if quick in _BEFORE_LANGUAGE:
        return quick
    if a.language is not None and b.language is not None and a.language != b.language:
        return "language differs"
    if not (_all_present(a.names, b.words) and _all_present(b.names, a.words)):
        return "names differ"
    return quick


# Reasons of the quick parts that come before the language and the names.
_BEFORE_LANGUAGE = frozenset({"numbers differ", "negation differs", "language differs"})


def _quick_disagreement(a: Guard, b: Guard) -> str | None:
    if a.numbers != b.numbers:
        return "numbers differ"
    if a.negations != b.negations:
        return "negation differs"
    if a.language_names != b.language_names:
        return "language differs"
    if a.direction and b.direction and a.direction == b.direction[::-1] != b.direction:
        return "direction differs"
    swapped = substitution(a.content, b.content)
    if swapped is not None:
        return "words differ: " + ", ".join(swapped)
    return None


def _pair(value: object) -> tuple[str, str] | None:
    if isinstance(value, list) and len(value) == 2:
        return str(value[0]), str(value[1])
    return None


def normalize_number(sign: str | None, whole: str, fraction: str | None) -> str:
    """ "1,000" → "1000", "3.50" → "3.5", "007" → "7", "2.0" → "2", "−4" → "-4"."""
    whole = whole.replace(",", "").lstrip("0") or "0"
    fraction = (fraction or "").rstrip("0")
    number = f"{whole}.{fraction}" if fraction else whole
    return f"-{number}" if sign and number != "0" else number


def _numbers(text: str, folded: str) -> list[str]:
    text = text.translate(_SUPERSCRIPTS)
    numbers = [
        normalize_number(*match.groups()) + _unit_after(text, match.end())
        for match in _NUMBER.finditer(text)
    ]
    for match in _COMPOUND_NUMBER.finditer(folded):
        tens, unit = match.groups()
        value = TENS_WORDS[tens] + (UNIT_WORDS[unit] if unit else 0)
        numbers.append(f"{value}{_unit_after(folded, match.end())}")
    rest = _COMPOUND_NUMBER.sub(" ", folded)
    numbers += [
        NUMBER_WORDS[match.group()] + _unit_after(rest, match.end())
        for match in _PIECE.finditer(rest)
        if match.group() in NUMBER_WORDS
    ]
    return numbers


def _unit_after(text: str, end: int) -> str:
    """The unit symbol written right after a number ("4 cm", "4cm", "20 °C"), or ""."""
    match = _UNIT.match(text, end)
    if match is None:
        return ""
    return UNIT_SYMBOLS.get(match.group(1).casefold(), "")


def _negations(folded: str) -> set[str]:
    kinds = {kind for marker, kind in NEGATION_SUBSTRINGS.items() if marker in folded}
    for word in _WORD_WITH_APOSTROPHES.findall(folded):
        if word.endswith("n't") or word == "cannot" or word.startswith("n'"):
            kinds.add("not")  # don't, can't; cannot; French n'est
        elif word in NEGATION_WORDS:
            kinds.add(NEGATION_WORDS[word])
        elif word in REVERSAL_WORDS:
            kinds.add("reverse")
    return kinds


def _language_names(folded: str) -> tuple[str, ...]:
    mentions = [
        (m.start(), LANGUAGE_NAME_WORDS[m.group()])
        for m in _PIECE.finditer(folded)
        if m.group() in LANGUAGE_NAME_WORDS
    ]
    for name, code in LANGUAGE_NAME_SUBSTRINGS.items():
        position = folded.find(name)
        if position >= 0:
            mentions.append((position, code))
    return tuple(dict.fromkeys(code for _, code in sorted(mentions)))


def _names(text: str, skip_capitals: bool) -> set[str]:
    names = {next(g for g in m.groups() if g).strip().casefold() for m in _QUOTED.finditer(text)}
    names.update(
        m.group().casefold() for m in _CODE.finditer(text) if not _DOTTED_SHORT.match(m.group())
    )
    for match in _NAME_CANDIDATE.finditer(text):
        word = match.group()
        if _is_name(word, text, match.start(), skip_capitals):
            names.add(word.casefold())
    return {name for name in names if _PIECE.search(name)}


def _is_name(word: str, text: str, start: int, skip_capitals: bool) -> bool:
    if _LETTER_THEN_DIGIT.search(word):  # iPhone15, GPT-4, x86, mp3
        return True
    if word[0].isalpha() and any(char.isupper() for char in word[1:]):  # iPhone, NASA
        return True
    if not word[0].isupper() or skip_capitals:
        return False
    if word == "I" or word.startswith("I'"):  # the English pronoun
        return False
    return not _starts_sentence(text, start)


def _starts_sentence(text: str, start: int) -> bool:
    index = start - 1
    while index >= 0 and text[index] in _SKIPPED_BEFORE_WORD:
        index -= 1
    return index < 0 or text[index] in _SENTENCE_ENDS


def _all_present(names: Iterable[str], words: frozenset[str]) -> bool:
    return all(piece in words for name in names for piece in _PIECE.findall(name))
