"""Who is calling, and what its key or token grants: a pure check of one request.

`authorize` reads nothing but its arguments. It returns the headers the rest of the
router sees (the admission queue's tenant and priority, the semantic cache's
partition), or the `Forbidden` error to answer with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import Field

from triskel.common.api import ApiModel
from triskel.router.admission import PRIORITY_HEADER, TENANT_HEADER, parse_priority
from triskel.router.auth.errors import Forbidden

# Credentials the fronts may pass on as headers; nothing after authentication needs them.
CREDENTIAL_HEADERS = frozenset({"authorization", "x-api-key"})


class RateLimit(ApiModel):
    """Requests and tokens one principal may use per minute; an absent field: no limit."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=10_000_000)
    """Requests admitted per minute (a bucket of this size refilled over a minute)."""
    tokens_per_minute: int | None = Field(default=None, ge=1, le=10_000_000_000)
    """Prompt tokens (estimated) plus max_tokens per minute."""


NO_LIMIT = RateLimit()


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    `models` None: every model (an alias such as `auto` is a model name here).
    `bucket` names the rate-limit buckets it draws from: its key, or its tenant for
    bearer tokens, whose limits are per tenant.
    """

    name: str
    tenant: str
    models: frozenset[str] | None
    max_priority: int
    limits: RateLimit
    bucket: str

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True, slots=True)
class Authorized:
    """The headers to serve the request with, and whether its x-priority was lowered."""

    headers: dict[str, str]
    priority_capped: bool


def authorize(
    principal: Principal, requested_model: str, headers: Mapping[str, str]
) -> Authorized | Forbidden:
    """The request's headers under `principal`'s grants, or why it is refused.

    - `requested_model` is the name the client sent (an alias counts as itself); one
      outside the principal's list is refused without naming any other model.
    - `x-tenant` becomes the principal's tenant; a client naming another one is refused.
    - `x-priority` above the principal's ceiling is lowered to it. A malformed value is
      left for the orchestrator's check, which answers 400 naming it.
    - Credential headers are dropped: routing policies never see them.
    """
    if not principal.may_use(requested_model):
        return Forbidden(
            "model",
            "model",
            f"this key may not use model {requested_model!r}; GET /v1/models lists the "
            "models it may use",
        )
    passed = {k: v for k, v in headers.items() if k.lower() not in CREDENTIAL_HEADERS}
    claimed = _pop(passed, TENANT_HEADER)
    if claimed is not None and claimed.strip() and claimed.strip() != principal.tenant:
        return Forbidden(
            "tenant",
            TENANT_HEADER,
            f"this key belongs to tenant {principal.tenant!r}; send that tenant or no "
            f"{TENANT_HEADER} header",
        )
    passed[TENANT_HEADER] = principal.tenant
    priority_capped = False
    asked = _pop(passed, PRIORITY_HEADER)
    if asked is not None:
        passed[PRIORITY_HEADER] = asked
    try:
        priority = parse_priority(passed)
    except ValueError:
        return Authorized(passed, priority_capped)
    if priority > principal.max_priority:
        passed[PRIORITY_HEADER] = str(principal.max_priority)
        # Without the header the default priority was lowered (a negative ceiling):
        # nothing the client asked for was refused.
        priority_capped = asked is not None
    return Authorized(passed, priority_capped)


def _pop(headers: dict[str, str], name: str) -> str | None:
    """Removes `name` whatever its case; the last value wins, as one header would."""
    value = None
    for key in [key for key in headers if key.lower() == name]:
        value = headers.pop(key)
    return value
