"""pii: regex candidates, kept only when a library validates them (Luhn, mod 97, ...)."""

from __future__ import annotations

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import pii
from triskel.router.semantic.signals.base import SignalContext, SignalInput, SignalResult


def detect(text: str, **parameters: object) -> SignalResult:
    signal = pii.create("pii", parameters, SignalContext(), "semantic.signals[0]")
    return signal.evaluate(SignalInput(text=text, conversation_text=text, prompt_tokens=100))


def test_module_exposes_what_the_registry_needs() -> None:
    assert pii.TYPE_NAME == "pii"
    assert pii.SUMMARY
    signal = pii.create("private", {}, SignalContext(), "semantic.signals[0]")
    assert signal.name == "private"
    assert signal.outputs == frozenset(
        {"email", "phone", "card", "iban", "national_id", "ip_address"}
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to jane.doe+news@mail.example.co.uk today", "email"),
        ("call me at (415) 555-2671 tomorrow", "phone"),
        # International format: valid whatever phoneRegion is.
        ("my London number is +44 20 7946 0958", "phone"),
        # Visa test number, in fours and unbroken; Mastercard with dashes.
        ("card 4111 1111 1111 1111 exp 12/27", "card"),
        ("card 4111111111111111", "card"),
        ("5555-5555-5555-4444", "card"),
        # Amex prints 4-6-5.
        ("amex 3782 822463 10005", "card"),
        # Glued to a quantity: the span without the "2" is still a card.
        ("qty 2 4111 1111 1111 1111", "card"),
        ("IBAN GB82 WEST 1234 5698 7654 32 please", "iban"),
        ("iban de89370400440532013000", "iban"),
        # Runs into the next word ("from"): a prefix of the candidate is valid.
        ("BE71 0961 2345 6769 from my account", "iban"),
        ("SSN 536-22-8726", "national_id"),
        ("BSN 111222333", "national_id"),
        ("Steuer-IdNr 36 574 261 809", "national_id"),
        ("NIR 2 95 10 99 126 111 93", "national_id"),
        ("DNI 54362315-K", "national_id"),
        ("codice fiscale RCCMNL83S18D969H", "national_id"),
        ("connect from 8.8.8.8", "ip_address"),
        ("resolver 2001:4860:4860::8888", "ip_address"),
        # Four numbers with no version word before them: a public address.
        ("ping 1.2.3.4", "ip_address"),
    ],
)
def test_finds_each_kind(text: str, kind: str) -> None:
    assert detect(text) == SignalResult(True, (kind,), 1.0)


@pytest.mark.parametrize(
    "text",
    [
        "write to jane.doe@localhost",  # no top-level domain
        "@property def name(self)",
        "call 555-0100",  # seven digits: no US area code
        "call 415-555-267",  # one digit short
        "card 4111 1111 1111 1112",  # Luhn check digit wrong
        "ref 1234 5678 9012 3456",  # 16 digits failing Luhn
        "ratio 3.14159265358979",  # decimals, not a number run
        "IBAN GB82 WEST 1234 5698 7654 33",  # mod-97 check digits wrong
        "SSN 666-22-8726",  # area 666 is never issued
        "SSN 078-05-1120",  # the Woolworth wallet card: blacklisted
        "order 123456789",  # bare nine digits: not an SSN, fails the BSN 11-test
        "NIR 2 95 10 99 126 111 99",  # mod-97 key wrong
        "Steuer-IdNr 36574261890",  # check digit wrong
        "DNI 54362315Z",  # check letter wrong
        "codice fiscale RCCMNL83S18D969A",  # check letter wrong
        "router at 192.168.1.1",  # private range
        "localhost 127.0.0.1 and docs 192.0.2.1",  # loopback, documentation
        "version 1.2.3.4",  # a version number, though a valid address
        "v1.2.3.4",
        "ip 999.1.1.1",  # not an address
        "at 12:30:45",  # a time
        "dead::beef",  # two groups: more likely code than an address
        "meeting on 2024-01-15 at 10:30 with 12 people",
    ],
)
def test_near_misses_do_not_fire(text: str) -> None:
    assert detect(text) == SignalResult(False)


def test_values_are_every_kind_found_in_a_stable_order() -> None:
    # The text mentions them ip, card, email; values follow the kinds' order.
    text = "from 8.8.8.8 paid with 4111 1111 1111 1111, receipt to a@b.example"
    assert detect(text).values == ("email", "card", "ip_address")


def test_kinds_limit_what_is_looked_for_and_declared() -> None:
    signal = pii.create("pii", {"kinds": ["card", "email"]}, SignalContext(), "s")
    assert signal.outputs == frozenset({"email", "card"})
    text = "call (415) 555-2671 or mail a@b.example"
    request = SignalInput(text=text, conversation_text=text, prompt_tokens=10)
    assert signal.evaluate(request) == SignalResult(True, ("email",), 1.0)


def test_scope_last_user_reads_only_the_last_message() -> None:
    earlier, last = "my email is jane@example.com", "thanks, what was my question?"
    request = SignalInput(text=last, conversation_text=f"{earlier}\n{last}", prompt_tokens=20)
    conversation = pii.create("pii", {}, SignalContext(), "s")
    last_user = pii.create("pii", {"scope": "last_user"}, SignalContext(), "s")
    assert conversation.evaluate(request).values == ("email",)
    assert not last_user.evaluate(request).fired


def test_phone_region_reads_national_numbers() -> None:
    # A London number in national format is valid for GB, not for the US default.
    assert not detect("ring 020 7946 0958").fired
    assert detect("ring 020 7946 0958", phoneRegion="GB").values == ("phone",)


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        ({"kinds": ["email", "passport"]}, "kinds[1]", "'passport'"),
        ({"kinds": []}, "kinds", "at least 1"),
        ({"scope": "everything"}, "scope", "'conversation' or 'last_user'"),
        # The United Kingdom's ISO 3166 code is GB.
        ({"phoneRegion": "UK"}, "phoneRegion", "not a region"),
        ({"region": "US"}, "region", "Extra inputs"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    parameters: dict[str, object], path: str, message: str
) -> None:
    with pytest.raises(SemanticConfigError, match=message) as refused:
        pii.create("pii", parameters, SignalContext(), "semantic.signals[3]")
    assert refused.value.path == f"semantic.signals[3].parameters.{path}"


@pytest.mark.parametrize(
    "text",
    [
        # One run of 1,000 one-digit groups: spans stop at once, no quadratic walk.
        "1 " * 1000,
        # A 2,000-character local part with no "@" after it: the email scan stays linear.
        "a" * 2000,
        "1-" * 1000,
        "1." * 1000,
        "a:" * 1000,
        # Numbers only, every one a phone candidate.
        " ".join(str(10_000 + 7 * i) for i in range(400)),
    ],
)
def test_pathological_texts_finish_without_firing(text: str) -> None:
    # Not timed (the suite's timeout bounds it); it must simply finish and say no.
    assert not detect(text).fired
