"""The router's `auth` section: API keys from a file, bearer JWTs from an issuer, or both."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from triskel.common.api import ApiModel
from triskel.router.auth.keys_file import MAX_PRIORITY_BOUND, Name
from triskel.router.auth.lease import DEFAULT_LEASE_FRACTION, MAX_LEASE_FRACTION
from triskel.router.auth.principal import NO_LIMIT, RateLimit

# Asymmetric algorithms only: "none" verifies nothing, and HS* with a public key lets
# anyone holding the public key sign tokens (the algorithm-confusion attack).
Algorithm = Literal[
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
]
DEFAULT_ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256")
_LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class JwtClaims(ApiModel):
    """Which claims of a token carry the grants."""

    tenant: Annotated[str, Field(min_length=1)] = "tenant"
    """A string: the tenant the caller acts for (required in every token)."""
    models: Annotated[str, Field(min_length=1)] = "models"
    """A list of model names; absent from a token: every model."""
    max_priority: Annotated[str, Field(min_length=1)] = "max_priority"
    """An integer ceiling for x-priority; absent from a token: `defaultMaxPriority`."""


class JwtConfig(ApiModel):
    """OIDC / JWT bearer tokens, verified with the issuer's public keys."""

    issuer: Annotated[str, Field(min_length=1)]
    """Must equal the token's `iss`."""
    audience: Annotated[str, Field(min_length=1)]
    """Must be in the token's `aud`."""
    jwks_url: str | None = None
    """The issuer's JWKS (its discovery document's jwks_uri); https, or http on loopback."""
    public_key_file: Path | None = None
    """A PEM public key instead of a JWKS (read at start)."""
    algorithms: Annotated[list[Algorithm], Field(min_length=1)] = Field(
        default_factory=lambda: list(DEFAULT_ALGORITHMS)
    )
    claims: JwtClaims = Field(default_factory=JwtClaims)
    leeway_s: Annotated[float, Field(ge=0, le=300)] = 60.0
    """Clock skew tolerated on exp / nbf / iat (Envoy's jwt_authn default)."""
    default_max_priority: Annotated[int, Field(ge=-MAX_PRIORITY_BOUND, le=MAX_PRIORITY_BOUND)] = 0
    tenant_rate_limits: dict[Name, RateLimit] = Field(default_factory=dict)
    """Rate limits by tenant; a tenant's tokens share its buckets."""
    default_rate_limit: RateLimit = NO_LIMIT
    """For tenants not in `tenantRateLimits`."""

    @field_validator("algorithms", mode="before")
    @classmethod
    def _no_symmetric(cls, value: object) -> object:
        for name in value if isinstance(value, list) else ():
            if isinstance(name, str) and (name.lower() == "none" or name.upper().startswith("HS")):
                raise ValueError(
                    f"{name} is refused: only public-key algorithms (RS*, PS*, ES*, EdDSA) "
                    "verify a token without sharing the secret that signs it"
                )
        return value

    @field_validator("jwks_url")
    @classmethod
    def _trusted_transport(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme == "https" or (
            parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
        ):
            return value
        raise ValueError(
            "must be https:// (http:// only on loopback): keys fetched in the "
            "clear could be swapped for an attacker's"
        )

    @model_validator(mode="after")
    def _one_key_source(self) -> JwtConfig:
        if (self.jwks_url is None) == (self.public_key_file is None):
            raise ValueError("jwt: give exactly one of jwksUrl and publicKeyFile")
        return self


class AuthConfig(ApiModel):
    """Callers must present an API key (`apiKeysFile`) or a bearer JWT (`jwt`)."""

    api_keys_file: Path | None = None
    """The keys file (docs/security.md), re-read within seconds of a change."""
    jwt: JwtConfig | None = None
    rate_limit_lease: Annotated[float, Field(ge=0, le=MAX_LEASE_FRACTION)] = DEFAULT_LEASE_FRACTION
    """With Redis: the share of a limit's minute each replica may hold in advance and
    spend without a round trip (N replicas are off by at most N such shares); 0: every
    limited request asks Redis."""

    @model_validator(mode="after")
    def _some_credential(self) -> AuthConfig:
        if self.api_keys_file is None and self.jwt is None:
            raise ValueError("auth: give apiKeysFile, jwt or both (or no auth section)")
        return self
