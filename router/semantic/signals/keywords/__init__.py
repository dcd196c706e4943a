"""keywords: does the request mention given words, phrases or patterns?

    any: [python, rust]       fires when one of these appears (when `any` is given)
    all: [unit, test]         and every one of these does (when `all` is given)

How a keyword matches (`match`):

    word       whole words: `sum` finds "the sum of" but not "summary" or "my_sum";
               inside a phrase, a space stands for any run of whitespace. A word
               boundary is checked only at an end that is a letter or digit of a
               script written with spaces: Chinese, Japanese, Korean, Thai, Lao,
               Khmer and Myanmar do not separate words, so a keyword in them is
               matched as a substring, and `AI` is found in "我喜欢AI编程".
    substring  the keyword anywhere, exactly as written.
    regex      a Python regular expression, searched for.

Texts and literal keywords are compared in Unicode NFC (an "é" typed as "e" plus a
combining accent is still an "é") and, with `caseSensitive: false` (the default),
case-folded: "É" is "é", "STRASSE" is "straße". A regular expression is given the
text unfolded and Python's IGNORECASE instead.

Everything is compiled once, when the signal is built. The `any` keywords become one
alternation; each `all` keyword a regex of its own (separate searches, each starting
with a fast scan for a literal, beat one regex of lookaheads several times over). A
regular expression with capture groups keeps a regex of its own: joined with others,
its backreferences would count someone else's groups. `evaluate` compiles nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

TYPE_NAME = "keywords"
SUMMARY = "Words, phrases or regular expressions in the request: any of a list, all of another."

Match = Literal["word", "substring", "regex"]

# Letters of scripts written without spaces between words: a word may end next to any
# of them, so `word` matching checks no boundary on their side.
_UNSPACED = (
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1100-\u11ff"  # Hangul Jamo
    "\u1780-\u17ff"  # Khmer
    "\u2e80-\u2fdf"  # CJK and Kangxi radicals
    "\u3040-\u31ff"  # Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo
    "\u3400-\u4dbf"  # CJK Unified Ideographs Extension A
    "\u4e00-\u9fff"  # CJK Unified Ideographs
    "\ua960-\ua97f"  # Hangul Jamo Extended-A
    "\uac00-\ud7ff"  # Hangul Syllables, Hangul Jamo Extended-B
    "\uf900-\ufaff"  # CJK Compatibility Ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\U00020000-\U0003ffff"  # CJK Extensions B and later
)
# A letter, digit or underscore of a spaced script: a whole word cannot continue into one.
_SPACED_WORD_CHAR = f"[^\\W{_UNSPACED}]"
_is_spaced_word_char = re.compile(_SPACED_WORD_CHAR).fullmatch
_WORD_END = f"(?!{_SPACED_WORD_CHAR})"

Keyword = Annotated[str, Field(min_length=1)]
FIRED = SignalResult(True, (), 1.0)


class KeywordsParameters(SignalParameters):
    # Fires when one of these matches; at least one of `any` and `all` must be given.
    any_of: tuple[Keyword, ...] = Field(default=(), alias="any")
    # ...and when every one of these matches.
    all_of: tuple[Keyword, ...] = Field(default=(), alias="all")
    match: Match = "word"
    case_sensitive: bool = False
    # last_user: the last user message (`text`); conversation: every message.
    scope: Literal["last_user", "conversation"] = "last_user"


class KeywordsSignal:
    """Fires when one of `any_patterns` is found (none given: no condition) and every
    one of `all_patterns` is. A yes/no signal: no values, score 1.0."""

    def __init__(
        self,
        name: str,
        any_patterns: Sequence[re.Pattern[str]],
        all_patterns: Sequence[re.Pattern[str]],
        reads_conversation: bool,
        folds_case: bool,
    ) -> None:
        self.name = name
        self.outputs: frozenset[str] = frozenset()
        self._any_patterns = tuple(any_patterns)
        self._all_patterns = tuple(all_patterns)
        self._reads_conversation = reads_conversation
        # Literal keywords were folded at load; the text is folded here, once.
        self._folds_case = folds_case

    def evaluate(self, request: SignalInput) -> SignalResult:
        text = request.conversation_text if self._reads_conversation else request.text
        if not unicodedata.is_normalized("NFC", text):
            text = unicodedata.normalize("NFC", text)
        if self._folds_case:
            text = text.casefold()
        if self._any_patterns and not any(p.search(text) for p in self._any_patterns):
            return NOT_FIRED
        if not all(p.search(text) for p in self._all_patterns):
            return NOT_FIRED
        return FIRED


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> KeywordsSignal:
    parsed = parse_parameters(KeywordsParameters, parameters, path)
    where = f"{path}.parameters"
    if not parsed.any_of and not parsed.all_of:
        raise SemanticConfigError(where, "give at least one keyword, in `any` or in `all`")
    is_regex = parsed.match == "regex"
    # Literal keywords are matched case-folded on a case-folded text (faster than
    # IGNORECASE, and folds "ß" too); regular expressions are left as written.
    folds_case = not parsed.case_sensitive and not is_regex
    flags = re.IGNORECASE if not parsed.case_sensitive and is_regex else 0
    any_pieces = _pieces(parsed.any_of, parsed.match, folds_case, flags, f"{where}.any")
    all_pieces = _pieces(parsed.all_of, parsed.match, folds_case, flags, f"{where}.all")
    return KeywordsSignal(
        name,
        _alternation(any_pieces, flags),
        [re.compile(piece, flags) for piece in all_pieces],
        reads_conversation=parsed.scope == "conversation",
        folds_case=folds_case,
    )


def _pieces(
    keywords: Sequence[str], match: Match, folds_case: bool, flags: int, path: str
) -> list[str]:
    """Each keyword as a regular expression, checked on its own so a fault names it."""
    pieces = []
    for index, keyword in enumerate(keywords):
        where = f"{path}[{index}]"
        if match == "regex":
            pieces.append(_checked_regex(keyword, flags, where))
            continue
        if not keyword.strip():
            raise SemanticConfigError(where, "a keyword cannot be only whitespace")
        literal = unicodedata.normalize("NFC", keyword)
        pieces.append(_literal(literal.casefold() if folds_case else literal, match))
    return pieces


def _literal(keyword: str, match: Match) -> str:
    """`keyword` as a regex. In `word` mode the boundary before it is checked once its
    first word is found (a lookbehind past that word), so a search still starts with
    a fast scan for a literal."""
    if match == "substring":
        return re.escape(keyword)
    words = keyword.split()
    first, last = words[0], words[-1]
    pattern = re.escape(first)
    if _is_spaced_word_char(first[0]):
        pattern += f"(?<!{_SPACED_WORD_CHAR}[\\s\\S]{{{len(first)}}})"
    pattern += "".join(r"\s+" + re.escape(word) for word in words[1:])
    return pattern + (_WORD_END if _is_spaced_word_char(last[-1]) else "")


def _checked_regex(pattern: str, flags: int, path: str) -> str:
    try:
        compiled = re.compile(pattern, flags)
    except re.error as error:
        raise SemanticConfigError(path, f"not a valid regular expression: {error}") from None
    try:
        re.compile(f"(?:{pattern})", flags)
    except re.error:
        # Compiles alone, not inside a group: only global inline flags do that.
        raise SemanticConfigError(
            path, "global inline flags like (?i) must scope a group here: (?i:...)"
        ) from None
    at_start = compiled.match("\0")
    if at_start is not None and at_start.end() == 0:
        raise SemanticConfigError(
            path, "matches the empty string, so it would fire on every request"
        )
    return pattern


def _alternation(pieces: Sequence[str], flags: int) -> list[re.Pattern[str]]:
    """One regex finding any of `pieces`, plus one for each piece with capture groups."""
    plain = [p for p in pieces if re.compile(p, flags).groups == 0]
    grouped = [re.compile(p, flags) for p in pieces if p not in plain]
    if not plain:
        return grouped
    return [re.compile("|".join(f"(?:{p})" for p in plain), flags), *grouped]
