"""The three ways the router refuses a caller, as typed values the fronts turn into statuses.

    Unauthenticated  401 + WWW-Authenticate: Bearer   gRPC UNAUTHENTICATED
    Forbidden        403                               gRPC PERMISSION_DENIED
    RateLimited      429 + Retry-After                 gRPC RESOURCE_EXHAUSTED + retry-after

Messages say what to do and never repeat the credential.
"""

from __future__ import annotations

from typing import Literal

from triskel.router.types import OverloadedError

# Why a caller was refused, as `triskel_auth_failures_total{reason}` counts it.
FailureReason = Literal["missing", "invalid_key", "invalid_token", "model", "tenant"]
# Which bucket ran dry, as `triskel_rate_limited_total{limit}` counts it.
LimitName = Literal["requests", "tokens"]


class AuthError(Exception):
    """A refused caller; `field_name` is what the client should fix (a header, `model`)."""

    def __init__(self, reason: FailureReason, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.reason: FailureReason = reason
        self.field_name = field_name
        self.message = message


class Unauthenticated(AuthError):
    """No credential, or one the router does not accept."""


class Forbidden(AuthError):
    """A known caller asking for what its key or token does not grant."""


class RateLimited(OverloadedError):
    """A bucket is empty: retry after `retry_after_s`. An OverloadedError, so both fronts
    answer it as they answer a full admission queue (429 / RESOURCE_EXHAUSTED)."""

    def __init__(self, tenant: str, limit: LimitName, per_minute: int, retry_after_s: float):
        super().__init__(
            f"rate limit of {per_minute} {limit} per minute reached for tenant {tenant!r}; "
            f"retry after {retry_after_s:.1f} s",
            retry_after_s=retry_after_s,
        )
        self.tenant = tenant
        self.limit: LimitName = limit
