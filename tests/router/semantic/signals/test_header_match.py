"""header: a request header present, equal to or starting with configured values."""

from __future__ import annotations

from typing import Any

import pytest

from triskel.router.semantic.errors import SemanticConfigError
from triskel.router.semantic.signals import header_match
from triskel.router.semantic.signals.base import (
    NOT_FIRED,
    SignalContext,
    SignalInput,
    SignalResult,
)

PATH = "semantic.signals[3]"


def build(**parameters: Any) -> header_match.HeaderSignal:
    return header_match.create("tier", parameters, SignalContext(), PATH)


def ask(headers: dict[str, str]) -> SignalInput:
    return SignalInput(text="hi", conversation_text="hi", prompt_tokens=1, headers=headers)


def test_module_exposes_what_the_registry_needs() -> None:
    assert header_match.TYPE_NAME == "header"
    assert header_match.SUMMARY
    signal = build(header="x-tier", values=["premium", "standard"])
    assert signal.name == "tier"
    # Rules may say tier:premium or tier:standard.
    assert signal.outputs == frozenset({"premium", "standard"})
    # No values: a yes/no signal.
    assert build(header="x-tenant").outputs == frozenset()


@pytest.mark.parametrize(
    ("parameters", "headers", "expected"),
    [
        # No values: present and not blank is enough; no value reported.
        ({"header": "x-tenant"}, {"x-tenant": "acme"}, SignalResult(True, (), 1.0)),
        ({"header": "x-tenant"}, {}, NOT_FIRED),
        ({"header": "x-tenant"}, {"x-tenant": "   "}, NOT_FIRED),
        # The configured name is lower-cased; request names arrive lower case.
        ({"header": "X-Tenant"}, {"x-tenant": "acme"}, SignalResult(True, (), 1.0)),
        # Exact values: the one that matched is reported.
        (
            {"header": "x-tier", "values": ["premium", "standard"]},
            {"x-tier": "standard"},
            SignalResult(True, ("standard",), 1.0),
        ),
        # Surrounding whitespace is not part of the value.
        (
            {"header": "x-tier", "values": ["premium"]},
            {"x-tier": " premium "},
            SignalResult(True, ("premium",), 1.0),
        ),
        # Compared whole: a longer value is another value.
        ({"header": "x-tier", "values": ["premium"]}, {"x-tier": "premium-plus"}, NOT_FIRED),
        # Case-sensitive by default...
        ({"header": "x-tier", "values": ["premium"]}, {"x-tier": "Premium"}, NOT_FIRED),
        # ...unless asked; the configured spelling is what is reported.
        (
            {"header": "x-tier", "values": ["Premium"], "caseSensitive": False},
            {"x-tier": "PREMIUM"},
            SignalResult(True, ("Premium",), 1.0),
        ),
        # Another header with the value does not count.
        ({"header": "x-tier", "values": ["premium"]}, {"x-plan": "premium"}, NOT_FIRED),
        # prefix: the value starts with one; every one that does, in config order.
        (
            {"header": "user-agent", "values": ["acme/", "acme/2"], "prefix": True},
            {"user-agent": "acme/2.1 (linux)"},
            SignalResult(True, ("acme/", "acme/2"), 1.0),
        ),
        (
            {"header": "user-agent", "values": ["acme/", "acme/2"], "prefix": True},
            {"user-agent": "acme/1.0"},
            SignalResult(True, ("acme/",), 1.0),
        ),
        (
            {"header": "user-agent", "values": ["acme/"], "prefix": True},
            {"user-agent": "curl/8.0 acme/"},
            NOT_FIRED,
        ),
        (
            {"header": "user-agent", "values": ["acme/"], "prefix": True, "caseSensitive": False},
            {"user-agent": "ACME/3"},
            SignalResult(True, ("acme/",), 1.0),
        ),
    ],
)
def test_matches(
    parameters: dict[str, Any], headers: dict[str, str], expected: SignalResult
) -> None:
    assert build(**parameters).evaluate(ask(headers)) == expected


@pytest.mark.parametrize(
    ("parameters", "path", "message"),
    [
        ({}, "semantic.signals[3].parameters.header", "Field required"),
        ({"header": ""}, "semantic.signals[3].parameters.header", "at least 1 character"),
        # Not an HTTP token: spaces, colons (HTTP/2 pseudo-headers), non-ASCII.
        ({"header": "x tenant"}, "semantic.signals[3].parameters.header", "not an HTTP header"),
        ({"header": ":authority"}, "semantic.signals[3].parameters.header", "not an HTTP header"),
        ({"header": "x-tenänt"}, "semantic.signals[3].parameters.header", "not an HTTP header"),
        # Credentials never reach policies, whatever the case they are named in.
        ({"header": "authorization"}, "semantic.signals[3].parameters.header", "credentials"),
        ({"header": "Cookie"}, "semantic.signals[3].parameters.header", "'cookie' carries"),
        (
            {"header": "proxy-authorization", "values": ["x"]},
            "semantic.signals[3].parameters.header",
            "credentials",
        ),
        (
            {"header": "x-tier", "values": ["gold", ""]},
            "semantic.signals[3].parameters.values[1]",
            "at least 1 character",
        ),
        (
            {"header": "x-tier", "values": ["gold", " silver"]},
            "semantic.signals[3].parameters.values[1]",
            "surrounding whitespace",
        ),
        (
            {"header": "x-tier", "values": ["gold", "silver", "gold"]},
            "semantic.signals[3].parameters.values[2]",
            "'gold' repeats values[0]",
        ),
        # The same value, once case is ignored.
        (
            {"header": "x-tier", "values": ["Gold", "GOLD"], "caseSensitive": False},
            "semantic.signals[3].parameters.values[1]",
            "'GOLD' repeats values[0]",
        ),
        ({"header": "x-tier", "prefix": True}, "semantic.signals[3].parameters.prefix", "values"),
        (
            {"header": "x-tier", "value": "gold"},
            "semantic.signals[3].parameters.value",
            "not permitted",
        ),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(
    parameters: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(SemanticConfigError) as caught:
        build(**parameters)
    assert caught.value.path == path
    assert message in caught.value.message
