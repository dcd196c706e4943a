"""One finder per kind of personal data: `has_<kind>(text) -> bool`. Pure, no state.

Each finder picks cheap candidates with a regular expression, then keeps a candidate
only when a library validates it (checksum, numbering plan, address range), so a
number that merely looks right is not reported.

Numbers are read as runs of digit groups joined by one space or one dash
(`4111 1111 1111 1111`, `536-22-8726`). A run is tried span by span (contiguous
stretches of its groups, one separator throughout), and each kind only in the
layouts it is written in, so a number glued to its neighbours
(`qty 2 4111 1111 1111 1111`) is still found:

    run               2 ␣ 4111 ␣ 1111 ␣ 1111 ␣ 1111
    spans from 2      (1,)                          no card layout starts so: stop
    spans from 4111   (4,) (4, 4) (4, 4, 4) (4, 4, 4, 4)   ← a card layout: check it
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import phonenumbers
from stdnum import iban, luhn
from stdnum.de import idnr
from stdnum.es import dni
from stdnum.fr import nir
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.us import ssn

# Group lengths of a span: (4, 4, 4, 4) for "4111 1111 1111 1111".
Layout = tuple[int, ...]

# Digit groups joined by one space or dash, not glued to letters or to a decimal point.
_DIGIT_RUN = re.compile(r"(?<![\w.])\d+(?:[ -]\d+)*(?!\w|\.\d)")
_SEPARATOR = re.compile(r"([ -])")


@dataclass(frozen=True, slots=True)
class _SpanLayouts:
    """Layouts to report, and every prefix of one: a span stops growing as soon as its
    layout leads nowhere, so a run like "1 1 1 1 …" costs one step per group."""

    accepted: frozenset[Layout]
    prefixes: frozenset[Layout]

    @classmethod
    def of(cls, layouts: Iterable[Layout]) -> _SpanLayouts:
        accepted = frozenset(layouts)
        prefixes = {layout[:end] for layout in accepted for end in range(1, len(layout) + 1)}
        return cls(accepted, frozenset(prefixes))


# Cards as printed: unbroken, groups of four (the last 1–4 digits), Amex/Diners 4-6-5/4-6-4.
_CARD_SPANS = _SpanLayouts.of(
    {(length,) for length in range(13, 20)}
    | {(4, 4, 4, tail) for tail in range(1, 5)}
    | {(4, 4, 4, 4, tail) for tail in range(1, 4)}
    | {(4, 6, 4), (4, 6, 5)}
)

# National ids written in digits only: the layouts each is written in, its validator.
_DIGIT_IDS: tuple[tuple[frozenset[Layout], Callable[[str], bool]], ...] = (
    # US SSN has no checksum (nearly any nine digits pass), so only its 3-2-4 form.
    (frozenset({(3, 2, 4)}), ssn.is_valid),
    # Dutch BSN: the 11-test (one random nine-digit number in eleven passes).
    (frozenset({(9,)}), bsn.is_valid),
    # German tax id (Steuer-IdNr): digit-repetition rule and an ISO 7064 check digit.
    (frozenset({(11,), (2, 3, 3, 3)}), idnr.is_valid),
    # French NIR: sex, birth year and month, place, a mod-97 key.
    (frozenset({(15,), (1, 2, 2, 2, 3, 3, 2)}), nir.is_valid),
)
_DIGIT_ID_SPANS = _SpanLayouts.of(layout for layouts, _ in _DIGIT_IDS for layout in layouts)
# Spanish DNI: eight digits and a check letter.
_DNI = re.compile(r"(?<!\w)\d{8}-?[A-Za-z](?!\w)")
# Italian codice fiscale: surname, name, birth date and place, check letter (digits
# may be replaced by LMNPQRSTUV when two people would share a code).
_CODICE_FISCALE = re.compile(
    r"(?<!\w)[A-Z]{6}[0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?!\w)",
    re.IGNORECASE,
)

# A local part starting where a run of its characters starts (so the scan stays
# linear), "@", dot-separated labels, a top-level domain of letters.
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[\w-]+\.)+[^\W\d_]{2,}(?![\w-])")

# Country code, check digits, then the account in groups of four (the last shorter).
_IBAN = re.compile(
    r"(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?"
    r"(?![A-Za-z0-9])"
)
_IBAN_MIN_CHARS = 15  # Norway's, the shortest

_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
# "version 1.2.3.4" is a version number, though a valid address.
_VERSION_WORD = re.compile(r"(?:version|release|build)\s*$", re.IGNORECASE)


def has_email(text: str) -> bool:
    return _EMAIL.search(text) is not None


def has_phone(text: str, region: str) -> bool:
    """A number valid in its numbering plan; national numbers read as `region`'s.

    Candidates shorter than 7 characters are skipped: far cheaper on prose full of
    small numbers, and only a few tiny plans (Niue, Saint Helena) have such numbers.
    """
    matcher = phonenumbers.PhoneNumberMatcher(
        text, region, leniency=phonenumbers.Leniency.VALID, min_candidate_length=7
    )
    return matcher.has_next()


def has_card(text: str) -> bool:
    """13 to 19 digits in a card layout, a payment network's first digit (2–6) and a
    valid Luhn check digit."""
    return any(
        digits[0] in "23456" and luhn.is_valid(digits)
        for digits, _ in _digit_spans(text, _CARD_SPANS)
    )


def has_iban(text: str) -> bool:
    """An IBAN with its country's length and valid mod-97 check digits.

    A candidate may run into a following word or number ("… 6769 from"), so its
    prefixes are tried too, longest first.
    """
    for match in _IBAN.finditer(text):
        compact = match.group().replace(" ", "")
        for end in range(len(compact), _IBAN_MIN_CHARS - 1, -1):
            if iban.is_valid(compact[:end]):
                return True
    return False


def has_national_id(text: str) -> bool:
    if any(dni.is_valid(match.group()) for match in _DNI.finditer(text)):
        return True
    if any(codicefiscale.is_valid(match.group()) for match in _CODICE_FISCALE.finditer(text)):
        return True
    return any(
        layout in layouts and validate(digits)
        for digits, layout in _digit_spans(text, _DIGIT_ID_SPANS)
        for layouts, validate in _DIGIT_IDS
    )


def has_ip_address(text: str) -> bool:
    """A globally routable address: private, loopback, link-local and documentation
    ranges identify no one. IPv6 needs three non-empty groups (`a::b` is C++-like)."""
    for match in _IPV4.finditer(text):
        after_version_word = _VERSION_WORD.search(text, max(0, match.start() - 12), match.start())
        if not after_version_word and _is_global(match.group()):
            return True
    for match in _IPV6.finditer(text):
        candidate = match.group()
        if sum(1 for group in candidate.split(":") if group) >= 3 and _is_global(candidate):
            return True
    return False


def _digit_spans(text: str, layouts: _SpanLayouts) -> Iterator[tuple[str, Layout]]:
    """(digits, layout) of every contiguous span of a run's groups that keeps one
    separator throughout and whose layout is one of `layouts`."""
    for run in _DIGIT_RUN.finditer(text):
        parts = _SEPARATOR.split(run.group())
        groups, separators = parts[0::2], parts[1::2]
        for first in range(len(groups)):
            for last in range(first, len(groups)):
                if last > first and separators[last - 1] != separators[first]:
                    break
                layout = tuple(len(group) for group in groups[first : last + 1])
                if layout not in layouts.prefixes:
                    break
                if layout in layouts.accepted:
                    yield "".join(groups[first : last + 1]), layout


def _is_global(candidate: str) -> bool:
    try:
        return ipaddress.ip_address(candidate).is_global
    except ValueError:
        return False
