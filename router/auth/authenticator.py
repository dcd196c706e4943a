"""The one gate both fronts call: credentials to a principal, then a request to a verdict.

    front ──authenticate(headers)──► Principal          before the body is read (401)
          ──admit(principal, req)──► GenerationRequest  once `model` is parsed (403, 429)
          ──visible(principal, cards)                   /v1/models, ListModels

Credentials: `Authorization: Bearer <API key or JWT>` or `x-api-key: <API key>` (gRPC:
the same metadata keys). A bearer value shaped like a JWT goes to the JWT verifier
when one is configured; anything else is looked up as an API key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from triskel.router.auth.bucket import Amount
from triskel.router.auth.cost import charged_tokens
from triskel.router.auth.errors import (
    AuthError,
    FailureReason,
    LimitName,
    RateLimited,
    Unauthenticated,
)
from triskel.router.auth.jwt_verifier import JwtVerifier, looks_like_jwt
from triskel.router.auth.key_store import KeyStore
from triskel.router.auth.limiter import RateLimiter
from triskel.router.auth.principal import Authorized, Principal, authorize
from triskel.router.types import GenerationRequest, ModelCard

API_KEY_HEADER = "x-api-key"
_HOW = "send `Authorization: Bearer <API key or token>` or `x-api-key: <API key>`"


class AuthObserver(Protocol):
    """Where the gate's outcomes are counted (RouterMetrics)."""

    def observe_auth_failure(self, reason: FailureReason) -> None: ...

    def observe_rate_limited(self, tenant: str, limit: LimitName) -> None: ...

    def observe_priority_capped(self, tenant: str) -> None: ...


class Authenticator:
    def __init__(
        self,
        keys: KeyStore | None,
        jwt_verifier: JwtVerifier | None,
        limiter: RateLimiter,
        observer: AuthObserver,
        models: Callable[[], Sequence[ModelCard]],
    ) -> None:
        self._keys = keys
        self._jwt = jwt_verifier
        self._limiter = limiter
        self._observer = observer
        self._models = models

    async def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller behind `headers`; Unauthenticated (counted) when there is none."""
        try:
            return await self._principal(headers)
        except AuthError as error:
            self._observer.observe_auth_failure(error.reason)
            raise

    async def admit(self, principal: Principal, request: GenerationRequest) -> GenerationRequest:
        """`request` with the principal's tenant and priority ceiling applied, once its
        buckets had room; Forbidden or RateLimited otherwise (counted)."""
        verdict = authorize(principal, request.model, request.headers)
        if not isinstance(verdict, Authorized):
            self._observer.observe_auth_failure(verdict.reason)
            raise verdict
        if verdict.priority_capped:
            self._observer.observe_priority_capped(principal.tenant)
        await self._take(principal, request)
        return dataclasses.replace(request, headers=verdict.headers)

    def visible(self, principal: Principal, cards: Sequence[ModelCard]) -> list[ModelCard]:
        """The models `principal` may name: nothing of other tenants' is listed."""
        return [card for card in cards if principal.may_use(card.name)]

    def start(self) -> None:
        """Starts watching the keys file (nothing to watch without one)."""
        if self._keys is not None:
            self._keys.start()

    async def aclose(self) -> None:
        if self._keys is not None:
            await self._keys.aclose()
        await self._limiter.aclose()

    async def _principal(self, headers: Mapping[str, str]) -> Principal:
        authorization = (headers.get("authorization") or "").strip()
        if authorization:
            scheme, _, credential = authorization.partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise Unauthenticated("invalid_key", "authorization", f"malformed; {_HOW}")
            if self._jwt is not None and looks_like_jwt(credential):
                return await self._jwt.verify(credential)
            return self._api_key(credential, "authorization")
        api_key = (headers.get(API_KEY_HEADER) or "").strip()
        if api_key:
            return self._api_key(api_key, API_KEY_HEADER)
        raise Unauthenticated("missing", "authorization", f"this API requires a key; {_HOW}")

    def _api_key(self, key: str, field_name: str) -> Principal:
        principal = None if self._keys is None else self._keys.lookup(key)
        if principal is None:
            accepted = "API keys" if self._jwt is None else "API keys or tokens"
            raise Unauthenticated(
                "invalid_key",
                field_name,
                f"not a valid key; check it, or ask your administrator for one ({accepted})",
            )
        return principal

    async def _take(self, principal: Principal, request: GenerationRequest) -> None:
        limits = principal.limits
        amounts: list[Amount] = []
        if limits.requests_per_minute is not None:
            amounts.append(Amount("requests", limits.requests_per_minute, 1))
        if limits.tokens_per_minute is not None:
            windows = {card.name: card.max_context_tokens for card in self._models()}
            cost = charged_tokens(request, windows.get(request.model))
            amounts.append(Amount("tokens", limits.tokens_per_minute, cost))
        if not amounts:
            return
        verdict = await self._limiter.take(principal.bucket, amounts)
        if verdict.allowed or verdict.limit is None:
            return
        self._observer.observe_rate_limited(principal.tenant, verdict.limit)
        per_minute = next(a.per_minute for a in amounts if a.limit == verdict.limit)
        raise RateLimited(principal.tenant, verdict.limit, per_minute, verdict.wait_s)
