"""Token-verifying keys: an issuer's JWKS fetched and cached, or one PEM public key.

PyJWKClient fetches with blocking urllib, which would stall the event loop (every
request) for a whole round trip, so the set is fetched here with aiohttp and parsed by
PyJWT (`PyJWKSet`). It is cached for `CACHE_S`; a token naming an unknown key id
refetches it (a rotation), at most once per `MIN_REFRESH_S`, so tokens with made-up
key ids cannot make the router hammer the issuer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import jwt
import orjson
from cryptography.hazmat.primitives.serialization import load_pem_public_key

_log = logging.getLogger(__name__)

CACHE_S = 300.0
MIN_REFRESH_S = 30.0
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 1024 * 1024

VerifyingKey = Any  # what jwt.decode takes: a PyJWK or a cryptography public key


class KeyNotFound(Exception):
    """No key verifies this token; the message says why, for the 401."""


class SigningKeys(Protocol):
    async def key_for(self, key_id: str | None) -> VerifyingKey:
        """The key a token with header `kid` = `key_id` must verify with; KeyNotFound."""
        ...


class PemKey:
    """One public key from a PEM file, read once (a new key: restart the router)."""

    def __init__(self, path: Path) -> None:
        try:
            self._key = load_pem_public_key(path.read_bytes())
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"{path}: not a readable PEM public key ({error})") from None

    async def key_for(self, key_id: str | None) -> VerifyingKey:
        return self._key


class JwksKeys:
    """The keys of the JWKS at `url`, refreshed as described above."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key_for(self, key_id: str | None) -> VerifyingKey:
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at > CACHE_S
        unknown = self._pick(key_id) is None
        may_refresh = self._fetched_at is None or now - self._fetched_at > MIN_REFRESH_S
        if stale or (unknown and may_refresh):
            await self._refresh()
        key = self._pick(key_id)
        if key is None:
            raise KeyNotFound("signed with a key the issuer does not publish")
        return key

    async def _refresh(self) -> None:
        async with self._lock:
            # Another request may have refreshed while this one waited for the lock.
            if self._fetched_at is not None and self._clock() - self._fetched_at < 1.0:
                return
            try:
                self._keys = await self._fetch()
            except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as error:
                # Keep the keys in force: an issuer briefly down must not lock everyone out.
                _log.warning("JWKS %s not fetched, keys in force kept: %s", self._url, error)
            finally:
                self._fetched_at = self._clock()

    async def _fetch(self) -> dict[str | None, jwt.PyJWK]:
        timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self._url) as reply,
        ):
            if reply.status != 200:
                raise ValueError(f"HTTP {reply.status}")
            body = await reply.content.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError(f"larger than {MAX_JWKS_BYTES} bytes")
        data = orjson.loads(body)
        if not isinstance(data, dict):
            raise ValueError("not a JWKS object")
        keys = jwt.PyJWKSet.from_dict(data).keys
        return {key.key_id: key for key in keys}

    def _pick(self, key_id: str | None) -> jwt.PyJWK | None:
        if key_id is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))  # one key: a token may omit kid
        return self._keys.get(key_id)
