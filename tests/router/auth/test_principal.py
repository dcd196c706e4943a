"""authorize: what one principal's request may ask, as the headers the router then sees."""

from __future__ import annotations

import pytest

from triskel.router.auth.errors import Forbidden
from triskel.router.auth.principal import Authorized, Principal, RateLimit, authorize

PRINCIPAL = Principal(
    name="team-a",
    tenant="acme",
    models=frozenset({"m", "auto"}),
    max_priority=5,
    limits=RateLimit(),
    bucket="key:team-a",
)


@pytest.mark.parametrize(
    ("headers", "expected", "capped"),
    [
        # No x-tenant: the key's tenant is filled in, for admission and the cache.
        ({}, {"x-tenant": "acme"}, False),
        # The same tenant, even padded, is fine.
        ({"x-tenant": " acme "}, {"x-tenant": "acme"}, False),
        # A blank x-tenant is no claim (parse_tenant treats it as absent too).
        ({"x-tenant": " "}, {"x-tenant": "acme"}, False),
        # At or below the ceiling: untouched.
        ({"x-priority": "5"}, {"x-tenant": "acme", "x-priority": "5"}, False),
        ({"x-priority": "-3"}, {"x-tenant": "acme", "x-priority": "-3"}, False),
        # Above: lowered to the ceiling.
        ({"x-priority": "100"}, {"x-tenant": "acme", "x-priority": "5"}, True),
        # Malformed: left for the orchestrator, which answers 400 naming it.
        ({"x-priority": "high"}, {"x-tenant": "acme", "x-priority": "high"}, False),
        # Credentials never travel further; other headers do.
        (
            {"authorization": "Bearer k", "x-api-key": "k", "x-user": "u"},
            {"x-tenant": "acme", "x-user": "u"},
            False,
        ),
    ],
)
def test_allowed_requests_get_the_keys_tenant_and_ceiling(
    headers: dict[str, str], expected: dict[str, str], capped: bool
) -> None:
    verdict = authorize(PRINCIPAL, "m", headers)
    assert verdict == Authorized(expected, capped)


def test_a_negative_ceiling_lowers_the_default_priority_without_counting_it() -> None:
    low = Principal("batch", "acme", None, -1, RateLimit(), "key:batch")
    assert authorize(low, "m", {}) == Authorized({"x-tenant": "acme", "x-priority": "-1"}, False)


@pytest.mark.parametrize(
    ("model", "headers", "field", "reason"),
    [
        ("other-tenants-model", {}, "model", "model"),
        ("m", {"x-tenant": "globex"}, "x-tenant", "tenant"),
    ],
)
def test_refusals_name_the_field(
    model: str, headers: dict[str, str], field: str, reason: str
) -> None:
    verdict = authorize(PRINCIPAL, model, headers)
    assert isinstance(verdict, Forbidden)
    assert verdict.field_name == field and verdict.reason == reason


def test_a_refused_model_lists_no_model_of_anyone() -> None:
    verdict = authorize(PRINCIPAL, "secret-model", {})
    assert isinstance(verdict, Forbidden)
    # The asked name is echoed (the client sent it); no served or granted name is.
    assert "auto" not in str(verdict) and "'m'" not in str(verdict)


def test_aliases_count_as_model_names() -> None:
    # `auto` is granted by name; which model it routes to is the policy's business.
    assert isinstance(authorize(PRINCIPAL, "auto", {}), Authorized)
    every = Principal("all", "acme", None, 0, RateLimit(), "key:all")
    assert isinstance(authorize(every, "anything", {}), Authorized)
