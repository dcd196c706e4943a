"""Bearer JWTs (OIDC access tokens) to principals: signature, issuer, audience, expiry,
then the grants from configurable claims. PyJWT does the verifying."""

from __future__ import annotations

import re
from typing import Any

import jwt

from triskel.router.auth.config import JwtConfig
from triskel.router.auth.errors import Unauthenticated
from triskel.router.auth.jwks import JwksKeys, KeyNotFound, PemKey, SigningKeys
from triskel.router.auth.keys_file import MAX_PRIORITY_BOUND, NAME_PATTERN
from triskel.router.auth.principal import Principal

_NAME = re.compile(NAME_PATTERN)
# A compact JWS: three base64url parts; API keys never contain a dot.
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def looks_like_jwt(credential: str) -> bool:
    return _JWT_SHAPE.fullmatch(credential) is not None


def signing_keys(config: JwtConfig) -> SigningKeys:
    """The configured key source; ValueError naming the file when a PEM key is unusable."""
    if config.jwks_url is not None:
        return JwksKeys(config.jwks_url)
    assert config.public_key_file is not None  # the config requires one of the two
    return PemKey(config.public_key_file)


class JwtVerifier:
    def __init__(self, config: JwtConfig, keys: SigningKeys) -> None:
        self._config = config
        self._keys = keys

    async def verify(self, token: str) -> Principal:
        """The token's principal; Unauthenticated saying what to fix (never the token)."""
        config = self._config
        try:
            header = jwt.get_unverified_header(token)
            kid = header.get("kid")
            key = await self._keys.key_for(kid if isinstance(kid, str) else None)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(config.algorithms),
                audience=config.audience,
                issuer=config.issuer,
                leeway=config.leeway_s,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, KeyNotFound) as error:
            raise _refused(f"{_reason(error)}; get a new token from {config.issuer}") from None
        return self._principal(claims)

    def _principal(self, claims: dict[str, Any]) -> Principal:
        names = self._config.claims
        tenant = claims.get(names.tenant)
        if not isinstance(tenant, str) or not _NAME.fullmatch(tenant):
            raise _refused(f"claim {names.tenant!r} must name a tenant ({NAME_PATTERN})")
        models = claims.get(names.models)
        if models is not None and not (
            isinstance(models, list) and all(isinstance(m, str) for m in models)
        ):
            raise _refused(f"claim {names.models!r} must be a list of model names")
        max_priority = claims.get(names.max_priority, self._config.default_max_priority)
        if (
            not isinstance(max_priority, int)
            or isinstance(max_priority, bool)
            or abs(max_priority) > MAX_PRIORITY_BOUND
        ):
            raise _refused(f"claim {names.max_priority!r} must be an integer of at most 9 digits")
        subject = claims.get("sub")
        limits = self._config.tenant_rate_limits.get(tenant, self._config.default_rate_limit)
        return Principal(
            name=subject if isinstance(subject, str) and _NAME.fullmatch(subject) else "jwt",
            tenant=tenant,
            models=None if models is None else frozenset(models),
            max_priority=max_priority,
            limits=limits,
            bucket=f"tenant:{tenant}",
        )


def _refused(message: str) -> Unauthenticated:
    return Unauthenticated("invalid_token", "authorization", f"bearer token refused: {message}")


def _reason(error: Exception) -> str:
    # PyJWT's messages name the failed check ("Signature has expired", "Invalid audience")
    # and never quote the token.
    text = str(error) or error.__class__.__name__
    return text[:1].lower() + text[1:]
