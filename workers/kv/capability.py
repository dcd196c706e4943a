"""KV capabilities: who may pull an export, checked with the graph's shared key. Pure.

    token = "v1.<expires_ms>.<nonce>.<tag>"          nonce, tag: urlsafe base64
    tag   = HMAC-SHA256(key, "kv-capability" | request_id | exporter_id | expires_ms | nonce)
    proof = HMAC-SHA256(key, "kv-pull" | challenge | request_id | token)

The exporter mints a token in `describe` and keeps its nonce with the export; the
handle carries the token to the puller through the router. A pull must present the
token AND a proof over the exporter's fresh per-connection challenge, so:

- without the token (or with another request's, a forged or an expired one) it is refused;
- a token works for one export only: the nonce is the export's, and an export is
  gone after one successful pull (a reused token names nothing);
- a process without the key cannot pull even with a leaked token, nor replay
  another connection's proof (the challenge differs).

`expires_ms` is on the exporter's monotonic clock: only the minter checks it.
Fields are length-prefixed before hashing so no two field lists hash alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

MIN_KEY_BYTES = 32
_NONCE_BYTES = 16
_VERSION = "v1"
_TOKEN_LABEL = b"triskel/kv-capability/v1"
_PROOF_LABEL = b"triskel/kv-pull/v1"


class CapabilityRefused(Exception):
    """A pull's capability does not hold; `reason` is for the exporter's log only
    (the puller is told "refused" and nothing more)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Capability:
    """A minted token and the nonce the export keeps to recognise it."""

    token: str
    nonce: bytes


@dataclass(frozen=True, slots=True)
class KvAuthKey:
    """The key every worker of a graph shares (a Secret in a cluster, one per run
    under `triskel up`). `secret` stays out of repr and logs."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_KEY_BYTES:
            raise ValueError(f"a KV auth key needs at least {MIN_KEY_BYTES} bytes")

    @classmethod
    def generate(cls) -> KvAuthKey:
        return cls(secrets.token_hex(MIN_KEY_BYTES).encode())

    @classmethod
    def from_file(cls, path: str | Path) -> KvAuthKey:
        """The file's bytes, surrounding whitespace stripped; ValueError names the file."""
        try:
            secret = Path(path).read_bytes().strip()
        except OSError as error:
            raise ValueError(f"kv_auth_key_file: cannot read {path}: {error.strerror}") from None
        if len(secret) < MIN_KEY_BYTES:
            raise ValueError(
                f"kv_auth_key_file: {path} holds {len(secret)} bytes, "
                f"a key needs at least {MIN_KEY_BYTES}"
            )
        return cls(secret)

    # -- exporter ------------------------------------------------------------------

    def mint(self, request_id: str, exporter_id: str, expires_ms: int) -> Capability:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        tag = self._tag(request_id, exporter_id, expires_ms, nonce)
        token = ".".join((_VERSION, str(expires_ms), _b64(nonce), _b64(tag)))
        return Capability(token, nonce)

    def check(self, token: str, request_id: str, exporter_id: str, now_ms: int) -> bytes:
        """The token's nonce; CapabilityRefused when it is not this exporter's live
        token for `request_id`."""
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
            raise CapabilityRefused("malformed or missing capability")
        expires_ms = int(parts[1])
        try:
            nonce, tag = _unb64(parts[2]), _unb64(parts[3])
        except (binascii.Error, ValueError):
            raise CapabilityRefused("malformed capability") from None
        expected = self._tag(request_id, exporter_id, expires_ms, nonce)
        if not hmac.compare_digest(tag, expected):
            raise CapabilityRefused(f"capability is not for request {request_id} here")
        if now_ms >= expires_ms:
            raise CapabilityRefused(f"capability for {request_id} expired")
        return nonce

    def check_proof(self, proof: str, challenge: bytes, request_id: str, token: str) -> bool:
        expected = self.prove(challenge, request_id, token)
        return hmac.compare_digest(proof.encode(), expected.encode())

    # -- importer ------------------------------------------------------------------

    def prove(self, challenge: bytes, request_id: str, token: str) -> str:
        """Shows the exporter this puller holds the key, for this connection only."""
        parts = (_PROOF_LABEL, challenge, request_id.encode(), token.encode())
        return _b64(hmac.digest(self.secret, _joined(parts), hashlib.sha256))

    def _tag(self, request_id: str, exporter_id: str, expires_ms: int, nonce: bytes) -> bytes:
        parts = (
            _TOKEN_LABEL,
            request_id.encode(),
            exporter_id.encode(),
            str(expires_ms).encode(),
            nonce,
        )
        return hmac.digest(self.secret, _joined(parts), hashlib.sha256)


def new_challenge() -> bytes:
    return secrets.token_bytes(_NONCE_BYTES)


@cache
def process_key() -> KvAuthKey:
    """A random key for this process: what a connector uses when given none. Workers
    in other processes hold other keys, so their pulls from this one are refused."""
    return KvAuthKey.generate()


def _joined(parts: tuple[bytes, ...]) -> bytes:
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    # Decoded strictly: only the urlsafe alphabet, so one token has one spelling.
    if not text or any(c not in _B64_ALPHABET for c in text):
        raise ValueError("not urlsafe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
