"""pii: does the request carry personal data, and of which kinds?

Each requested kind has a finder (`detectors.py`) that picks candidates with a
regular expression and keeps one only when a library validates it:

    email        a@b.example                   regular expression
    phone        (415) 555-2671, +44 20 …      phonenumbers, valid in its plan
    card         4111 1111 1111 1111           card layout, first digit 2–6, Luhn
    iban         GB82 WEST 1234 …              stdnum.iban: country length, mod 97
    national_id  US SSN, Dutch BSN, German     python-stdnum's validator of each
                 IdNr, French NIR, Spanish
                 DNI, Italian codice fiscale
    ip_address   8.8.8.8, 2001:4860::8888      ipaddress, global addresses only

The signal fires when any kind is found; its values are the kinds found, in the
order above; its score is 1.0 (a validated match is not a matter of degree).

It reads `conversation_text` (every message, system prompt included) or, with
`scope: last_user`, `text`. Both are bounded before any signal runs, and every
finder is linear in the text, so the work is bounded too; nothing else is read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Literal, get_args

import phonenumbers
from pydantic import Field, field_validator

from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)
from triskel.router.semantic.signals.pii import detectors
from triskel.router.semantic.signals.registry import SignalParameters, parse_parameters

TYPE_NAME = "pii"
SUMMARY = "Personal data in the request: emails, phones, cards, IBANs, national ids, IPs."

Kind = Literal["email", "phone", "card", "iban", "national_id", "ip_address"]
KINDS: tuple[Kind, ...] = get_args(Kind)


class PiiParameters(SignalParameters):
    # Kinds to look for (and report); all by default.
    kinds: tuple[Kind, ...] = Field(default=KINDS, min_length=1)
    # conversation: every message's text; last_user: the last user message only.
    scope: Literal["conversation", "last_user"] = "conversation"
    # Region whose national format phone numbers without a +country code are read in.
    phone_region: str = "US"

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("not a region phonenumbers knows (ISO 3166 code: US, GB, FR…)")
        return region


class PiiSignal:
    """Fires when any of `outputs` is found; values: the kinds found, in `KINDS` order."""

    def __init__(self, name: str, parameters: PiiParameters) -> None:
        self.name = name
        self.outputs: frozenset[str] = frozenset(parameters.kinds)
        self._reads_last_user = parameters.scope == "last_user"
        finders: dict[Kind, Callable[[str], bool]] = {
            "email": detectors.has_email,
            "phone": partial(detectors.has_phone, region=parameters.phone_region),
            "card": detectors.has_card,
            "iban": detectors.has_iban,
            "national_id": detectors.has_national_id,
            "ip_address": detectors.has_ip_address,
        }
        self._finders = [(kind, finders[kind]) for kind in KINDS if kind in self.outputs]

    def evaluate(self, request: SignalInput) -> SignalResult:
        text = request.text if self._reads_last_user else request.conversation_text
        found = tuple(kind for kind, has_kind in self._finders if has_kind(text))
        if not found:
            return NOT_FIRED
        return SignalResult(True, found, 1.0)


def create(
    name: str, parameters: Mapping[str, Any], context: SignalContext, path: str
) -> PiiSignal:
    return PiiSignal(name, parse_parameters(PiiParameters, parameters, path))
