"""Bearer JWTs: keys made here with `cryptography`, tokens signed with PyJWT, verified from a
PEM file or a JWKS served on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import pytest_asyncio
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from triskel.router.auth.config import JwtConfig
from triskel.router.auth.errors import Unauthenticated
from triskel.router.auth.jwks import JwksKeys
from triskel.router.auth.jwt_verifier import JwtVerifier, looks_like_jwt, signing_keys
from triskel.router.auth.principal import RateLimit

ISSUER = "https://issuer.test"
AUDIENCE = "triskel"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "tenant": "acme"}
    return {key: value for key, value in (base | overrides).items() if value is not None}


def rs256(payload: dict[str, Any], kid: str | None = None) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(payload, RSA_KEY, algorithm="RS256", headers=headers)


def hs256_keyed_with_the_public_key(payload: dict[str, Any]) -> str:
    """A token MACed with the issuer's public PEM as the HMAC secret: anyone can make
    one. PyJWT will not encode it, so it is built by hand."""

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = part(b'{"alg":"HS256","typ":"JWT"}') + b"." + part(json.dumps(payload).encode())
    mac = hmac.new(public_pem(RSA_KEY), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + part(mac)).decode()


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def pem_verifier(tmp_path: Path) -> JwtVerifier:
    path = tmp_path / "issuer.pem"
    path.write_bytes(public_pem(RSA_KEY))
    config = JwtConfig(
        issuer=ISSUER,
        audience=AUDIENCE,
        public_key_file=path,
        tenant_rate_limits={"acme": RateLimit(requests_per_minute=5)},
        default_rate_limit=RateLimit(tokens_per_minute=100),
    )
    return JwtVerifier(config, signing_keys(config))


@pytest.mark.asyncio
async def test_a_valid_token_becomes_its_tenants_principal(pem_verifier: JwtVerifier) -> None:
    token = rs256(claims(sub="alice", models=["m"], max_priority=3))
    assert looks_like_jwt(token)
    principal = await pem_verifier.verify(token)
    assert principal.name == "alice" and principal.tenant == "acme"
    assert principal.models == frozenset({"m"}) and principal.max_priority == 3
    # The tenant's row of the rate-limit table; its tokens share one bucket.
    assert principal.limits == RateLimit(requests_per_minute=5)
    assert principal.bucket == "tenant:acme"
    other = await pem_verifier.verify(rs256(claims(tenant="globex")))
    # No models claim: every model; no max_priority: the default, 0; the default limits.
    assert other.models is None and other.max_priority == 0
    assert other.limits == RateLimit(tokens_per_minute=100)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (lambda: rs256(claims(exp=int(time.time()) - 3600)), "expired"),
        (lambda: rs256(claims(aud="someone-else")), "audience"),
        (lambda: rs256(claims(iss="https://evil.test")), "issuer"),
        (lambda: rs256(claims(exp=None)), '"exp"'),
        # Another key's signature.
        (
            lambda: jwt.encode(claims(), rsa.generate_private_key(65537, 2048), algorithm="RS256"),
            "signature",
        ),
        # Algorithm confusion: HS256 keyed with the issuer's public key.
        (lambda: hs256_keyed_with_the_public_key(claims()), "alg value is not allowed"),
        (lambda: jwt.encode(claims(), "", algorithm="none"), "alg value is not allowed"),
        (lambda: rs256(claims(tenant=None)), "claim 'tenant'"),
        (lambda: rs256(claims(tenant="two words")), "claim 'tenant'"),
        (lambda: rs256(claims(models="m")), "claim 'models'"),
        (lambda: rs256(claims(max_priority="high")), "claim 'max_priority'"),
    ],
)
@pytest.mark.asyncio
async def test_bad_tokens_are_refused_saying_why(
    pem_verifier: JwtVerifier, token: Any, expected: str
) -> None:
    value = token()
    with pytest.raises(Unauthenticated) as refused:
        await pem_verifier.verify(value)
    assert expected.lower() in str(refused.value).lower()
    assert refused.value.field_name == "authorization"
    assert value not in str(refused.value)  # the token is never echoed


def test_only_public_key_algorithms_are_accepted() -> None:
    for refused in (["none"], ["HS256"], ["RS256", "hs512"]):
        with pytest.raises(ValueError, match="only public-key algorithms"):
            JwtConfig.model_validate(
                {
                    "issuer": ISSUER,
                    "audience": AUDIENCE,
                    "jwksUrl": "https://i/j",
                    "algorithms": refused,
                }
            )


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "exactly one of jwksUrl and publicKeyFile"),
        ({"jwks_url": "https://i/j", "public_key_file": "/k.pem"}, "exactly one"),
        ({"jwks_url": "http://issuer.example/jwks"}, "must be https://"),
    ],
)
def test_key_sources_are_checked(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        JwtConfig(issuer=ISSUER, audience=AUDIENCE, **fields)


def test_an_unreadable_pem_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.pem").write_text("not a key")
    config = JwtConfig(issuer=ISSUER, audience=AUDIENCE, public_key_file=tmp_path / "bad.pem")
    with pytest.raises(ValueError, match=r"bad\.pem: not a readable PEM public key"):
        signing_keys(config)


class Jwks:
    """An issuer's JWKS endpoint on 127.0.0.1:0; `keys` can be rotated, fetches counted."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0

    async def serve(self, request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": self.keys})


@pytest_asyncio.fixture
async def jwks() -> AsyncIterator[tuple[Jwks, str]]:
    endpoint = Jwks()
    app = web.Application()
    app.router.add_get("/jwks.json", endpoint.serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield endpoint, f"http://127.0.0.1:{port}/jwks.json"
    await runner.cleanup()


def jwk(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    if isinstance(key, rsa.RSAPrivateKey):
        data = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    else:
        data = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return data | {"kid": kid, "use": "sig"}


@pytest.mark.asyncio
async def test_jwks_keys_are_fetched_cached_and_rotated(jwks: tuple[Jwks, str]) -> None:
    endpoint, url = jwks
    endpoint.keys = [jwk(RSA_KEY, "rsa-1")]
    config = JwtConfig(issuer=ISSUER, audience=AUDIENCE, jwks_url=url)
    now_s = [0.0]
    verifier = JwtVerifier(config, JwksKeys(url, clock=lambda: now_s[0]))
    assert (await verifier.verify(rs256(claims(), kid="rsa-1"))).tenant == "acme"
    assert (await verifier.verify(rs256(claims(), kid="rsa-1"))).tenant == "acme"
    assert endpoint.fetches == 1  # cached
    # The issuer rotates to an ES256 key: a token naming it makes the router refetch.
    endpoint.keys.append(jwk(EC_KEY, "ec-1"))
    es256 = jwt.encode(claims(), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    now_s[0] = 31.0  # past the least time between two refreshes
    assert (await verifier.verify(es256)).tenant == "acme"
    assert endpoint.fetches == 2
    # A made-up key id soon after: refused without another fetch (no hammering).
    now_s[0] = 40.0
    with pytest.raises(Unauthenticated, match="does not publish"):
        await verifier.verify(rs256(claims(), kid="made-up"))
    assert endpoint.fetches == 2
